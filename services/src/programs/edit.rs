//! A coach builds programs: [`ProgramInput`] checked field by field into a
//! `Program` (a draft when created), replaced by later edits (published
//! programs stay published and their enrollments stay: entitlements are
//! separate records), published and unpublished. Only coaches build
//! programs, and only a program's coach edits it.

use chalktalk_adapters::programs::{Interval, Price, Program, ProgramItem, ProgramStatus};
use chalktalk_protocol::Role;
use serde::Deserialize;

use super::{MAX_LIST, ProgramError, ProgramService, new_id, now_ms};

/// Items a program holds at most.
pub const MAX_ITEMS: usize = 200;
/// Largest price in minor units (Stripe's 8-digit limit).
pub const MAX_AMOUNT: u64 = 99_999_999;

/// A program as a coach sends it (create and full replace).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProgramInput {
    /// 1-200 characters.
    pub title: String,
    /// At most 5000 characters.
    #[serde(default)]
    pub description: String,
    /// 1-64 characters (e.g. `weightlifting`).
    pub sport: String,
    /// An asset id of yours shown as the cover.
    #[serde(default)]
    pub cover: Option<String>,
    /// At most 200, in order.
    #[serde(default)]
    pub items: Vec<ItemInput>,
    pub price: PriceInput,
}

/// One item: a video of your library, a text drill, one of your review
/// rooms (its video with the annotations and voice-overs on it), or a
/// document of yours (an attachment: a PDF, an image).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    /// `video`, `drill`, `review` or `attachment`.
    pub kind: String,
    /// Keep an item's id across edits so its progress stays; new items
    /// get one.
    #[serde(default)]
    pub id: Option<String>,
    /// 1-200 characters.
    pub title: String,
    /// `video`: the asset id (a video you uploaded); `attachment`: a
    /// document you uploaded (upload kind `document`).
    #[serde(default)]
    pub asset: Option<String>,
    /// `drill`: at most 5000 characters.
    #[serde(default)]
    pub text: Option<String>,
    /// `review`: the id of a review room you own that shows a video of
    /// yours.
    #[serde(default)]
    pub room: Option<String>,
}

/// `free`, `one_time` or `subscription`; amounts are integer minor units
/// (cents) with a three-letter lower-case ISO 4217 currency.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PriceInput {
    pub kind: String,
    #[serde(default)]
    pub amount: Option<u64>,
    #[serde(default)]
    pub currency: Option<String>,
    /// `subscription`: `monthly` or `yearly`.
    #[serde(default)]
    pub interval: Option<String>,
}

fn text(field: &'static str, v: &str, min: usize, max: usize) -> Result<String, ProgramError> {
    let n = v.trim().chars().count();
    if (min..=max).contains(&n) {
        Ok(v.trim().to_owned())
    } else {
        Err(ProgramError::invalid(
            field,
            format!("{min}-{max} characters"),
        ))
    }
}

fn price(p: &PriceInput) -> Result<Price, ProgramError> {
    let money = || -> Result<(u64, String), ProgramError> {
        let amount = p
            .amount
            .filter(|a| (1..=MAX_AMOUNT).contains(a))
            .ok_or_else(|| {
                ProgramError::invalid(
                    "price.amount",
                    format!("minor units within 1..={MAX_AMOUNT}"),
                )
            })?;
        let currency = p
            .currency
            .as_deref()
            .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()))
            .ok_or_else(|| {
                ProgramError::invalid("price.currency", "three lower-case letters (ISO 4217)")
            })?;
        Ok((amount, currency.to_owned()))
    };
    match p.kind.as_str() {
        "free" => Ok(Price::Free),
        "one_time" => {
            let (amount, currency) = money()?;
            Ok(Price::OneTime { amount, currency })
        }
        "subscription" => {
            let (amount, currency) = money()?;
            let interval = match p.interval.as_deref() {
                Some("monthly") => Interval::Monthly,
                Some("yearly") => Interval::Yearly,
                _ => return Err(ProgramError::invalid("price.interval", "monthly or yearly")),
            };
            Ok(Price::Subscription {
                interval,
                amount,
                currency,
            })
        }
        _ => Err(ProgramError::invalid(
            "price.kind",
            "free, one_time or subscription",
        )),
    }
}

impl ProgramService {
    fn require_coach(role: Role) -> Result<(), ProgramError> {
        if role == Role::Coach {
            Ok(())
        } else {
            Err(ProgramError::Forbidden("only coaches build programs"))
        }
    }

    /// `asset` must be an asset of `coach`: the asset, or `None` when this
    /// node keeps no assets (nothing to check against).
    pub(crate) async fn own_asset(
        &self,
        field: &'static str,
        coach: &str,
        asset: &str,
    ) -> Result<Option<chalktalk_protocol::Asset>, ProgramError> {
        if !chalktalk_protocol::valid_id(asset) {
            return Err(ProgramError::invalid(field, "an asset id"));
        }
        let Some(m) = &self.media else {
            return Ok(None);
        };
        match m.asset(asset).await? {
            Some(a) if a.owner == coach => Ok(Some(a)),
            _ => Err(ProgramError::invalid(field, "not an asset of yours")),
        }
    }

    /// Checks `input` into the fields of a program of `coach`.
    async fn checked(
        &self,
        coach: &str,
        input: &ProgramInput,
        into: &mut Program,
    ) -> Result<(), ProgramError> {
        into.title = text("title", &input.title, 1, 200)?;
        into.description = text("description", &input.description, 0, 5000)?;
        into.sport = text("sport", &input.sport, 1, 64)?;
        if let Some(c) = &input.cover {
            self.own_asset("cover", coach, c).await?;
        }
        into.cover = input.cover.clone();
        if input.items.len() > MAX_ITEMS {
            return Err(ProgramError::invalid(
                "items",
                format!("at most {MAX_ITEMS}"),
            ));
        }
        let mut items = Vec::with_capacity(input.items.len());
        for i in &input.items {
            let id = match &i.id {
                Some(id) if chalktalk_protocol::valid_id(id) => id.clone(),
                Some(_) => {
                    return Err(ProgramError::invalid(
                        "items.id",
                        "1-64 characters of [A-Za-z0-9_.:@-]",
                    ));
                }
                None => new_id("it"),
            };
            if items.iter().any(|x: &ProgramItem| x.id() == id) {
                return Err(ProgramError::invalid(
                    "items.id",
                    format!("{id} appears twice"),
                ));
            }
            let title = text("items.title", &i.title, 1, 200)?;
            items.push(match i.kind.as_str() {
                "video" => {
                    let asset = i.asset.as_deref().unwrap_or_default();
                    self.own_asset("items.asset", coach, asset).await?;
                    ProgramItem::Video {
                        id,
                        title,
                        asset: asset.to_owned(),
                    }
                }
                "drill" => ProgramItem::Drill {
                    id,
                    title,
                    text: text("items.text", i.text.as_deref().unwrap_or_default(), 1, 5000)?,
                },
                "review" => {
                    let room = i.room.as_deref().unwrap_or_default();
                    let video = self.own_review(coach, room).await?;
                    ProgramItem::Review {
                        id,
                        title,
                        room: room.to_owned(),
                        video,
                    }
                }
                "attachment" => {
                    let asset = i.asset.as_deref().unwrap_or_default();
                    self.own_document(coach, asset).await?;
                    ProgramItem::Attachment {
                        id,
                        title,
                        asset: asset.to_owned(),
                    }
                }
                _ => {
                    return Err(ProgramError::invalid(
                        "items.kind",
                        "video, drill, review or attachment",
                    ));
                }
            });
        }
        into.items = items;
        into.price = price(&input.price)?;
        Ok(())
    }

    /// Creates a draft program of `coach`.
    #[tracing::instrument(skip(self, input))]
    pub async fn create(
        &self,
        coach: &str,
        role: Role,
        input: &ProgramInput,
    ) -> Result<Program, ProgramError> {
        Self::require_coach(role)?;
        let now = now_ms();
        let mut p = Program {
            id: new_id("pg"),
            coach: coach.to_owned(),
            title: String::new(),
            description: String::new(),
            sport: String::new(),
            cover: None,
            items: vec![],
            status: ProgramStatus::Draft,
            price: chalktalk_adapters::programs::Price::Free,
            created_ms: now,
            updated_ms: now,
            published_ms: None,
        };
        self.checked(coach, input, &mut p).await?;
        self.store.put_program(&p).await?;
        Ok(p)
    }

    /// A program of `coach`, else `NotFound` (someone else's draft) or
    /// `Forbidden` (someone else's published program).
    async fn own(&self, coach: &str, id: &str) -> Result<Program, ProgramError> {
        let p = self.visible(coach, id).await?;
        if p.coach != coach {
            return Err(ProgramError::Forbidden("only its coach edits a program"));
        }
        Ok(p)
    }

    /// Replaces the content of a program of `coach`; its status and
    /// enrollments stay. A published free program becomes paid only for a
    /// payable coach (`not_payable`), as publishing a paid one does.
    #[tracing::instrument(skip(self, input))]
    pub async fn update(
        &self,
        coach: &str,
        id: &str,
        input: &ProgramInput,
    ) -> Result<Program, ProgramError> {
        let mut p = self.own(coach, id).await?;
        let was_free = p.price == chalktalk_adapters::programs::Price::Free;
        self.checked(coach, input, &mut p).await?;
        if was_free
            && p.status == ProgramStatus::Published
            && p.price != chalktalk_adapters::programs::Price::Free
        {
            self.destination(coach, 0).await?;
        }
        p.updated_ms = now_ms();
        self.store.put_program(&p).await?;
        Ok(p)
    }

    /// Publishes (`true`) or takes back to draft (`false`) a program of
    /// `coach`. Enrolled users keep access to a program taken back. A paid
    /// program is published only by a payable coach (`not_payable`) on a
    /// node with Stripe.
    #[tracing::instrument(skip(self))]
    pub async fn set_published(
        &self,
        coach: &str,
        id: &str,
        published: bool,
    ) -> Result<Program, ProgramError> {
        let mut p = self.own(coach, id).await?;
        if published && p.price != chalktalk_adapters::programs::Price::Free {
            // A coach who cannot be paid does not sell (with Stripe set).
            self.destination(coach, 0).await?;
        }
        p.status = if published {
            ProgramStatus::Published
        } else {
            ProgramStatus::Draft
        };
        if published && p.published_ms.is_none() {
            p.published_ms = Some(now_ms());
        }
        p.updated_ms = now_ms();
        self.store.put_program(&p).await?;
        Ok(p)
    }

    /// The programs of `coach`: every one for the coach, published ones
    /// for everyone else.
    pub async fn of_coach(&self, viewer: &str, coach: &str) -> Result<Vec<Program>, ProgramError> {
        let mut v = self.store.programs_of(coach, MAX_LIST).await?;
        if viewer != coach {
            v.retain(|p| p.status == ProgramStatus::Published);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(
        kind: &str,
        amount: Option<u64>,
        currency: Option<&str>,
        interval: Option<&str>,
    ) -> PriceInput {
        PriceInput {
            kind: kind.into(),
            amount,
            currency: currency.map(Into::into),
            interval: interval.map(Into::into),
        }
    }

    #[test]
    fn prices_are_minor_units_with_a_currency() {
        assert_eq!(price(&p("free", None, None, None)).unwrap(), Price::Free);
        assert_eq!(
            price(&p("one_time", Some(4999), Some("eur"), None)).unwrap(),
            Price::OneTime {
                amount: 4999,
                currency: "eur".into()
            }
        );
        let field = |r: Result<Price, ProgramError>| match r {
            Err(ProgramError::Invalid { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field(price(&p("one_time", Some(0), Some("eur"), None))),
            "price.amount"
        );
        assert_eq!(
            field(price(&p(
                "one_time",
                Some(MAX_AMOUNT + 1),
                Some("eur"),
                None
            ))),
            "price.amount"
        );
        assert_eq!(
            field(price(&p("one_time", Some(5), Some("EUR"), None))),
            "price.currency"
        );
        assert_eq!(
            field(price(&p("one_time", Some(5), None, None))),
            "price.currency"
        );
        assert_eq!(
            field(price(&p(
                "subscription",
                Some(5),
                Some("usd"),
                Some("weekly")
            ))),
            "price.interval"
        );
        assert_eq!(field(price(&p("gift", None, None, None))), "price.kind");
        assert!(matches!(
            price(&p("subscription", Some(900), Some("usd"), Some("monthly"))),
            Ok(Price::Subscription {
                interval: Interval::Monthly,
                amount: 900,
                ..
            })
        ));
    }

    #[test]
    fn text_limits() {
        assert_eq!(text("t", "  a  ", 1, 3).unwrap(), "a");
        assert!(text("t", "   ", 1, 3).is_err());
        assert!(text("t", "abcd", 1, 3).is_err());
    }
}
