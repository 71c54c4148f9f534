//! Revenue analytics (issue 12): a coach's figures
//! ([`ProgramService::coach_revenue`]: gross, fees, net, refunds and
//! disputes per currency, per program and per UTC month, sales, active
//! subscribers and churn) and the platform's
//! ([`ProgramService::platform_revenue`]: the same sums over every coach,
//! paying coaches, plan subscriptions by plan and status). Read from the
//! order listings of the `ProgramStore` port; the arithmetic and its
//! definitions are in [`super::figures`]. Every amount is integer minor
//! units with its currency.

use std::collections::{BTreeMap, BTreeSet};

use chalktalk_adapters::billing::{PaidPlan, SubscriptionStatus};
use chalktalk_adapters::programs::{Order, OrderRange, Price, Source};
use chalktalk_protocol::Role;
use serde::Serialize;

use super::figures::{Churn, Money, Period, Tally, churn, month_label, sold_ms};
use super::{MAX_LIST, ProgramError, ProgramService};

/// Orders read per page.
const PAGE: usize = 500;
/// Most orders one report reads; past it the report says `complete:
/// false`.
pub const MAX_ORDERS: usize = 200_000;
/// How long before the period an order may have been opened and still be
/// paid inside it (Checkout Sessions expire within a day; delayed payment
/// methods settle within days).
pub const LOOKBACK_MS: u64 = 31 * 24 * 3600 * 1000;
/// Most subscriptions the platform report counts.
pub const MAX_SUBSCRIPTIONS: usize = 200_000;

/// One program's sums.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProgramRevenue {
    pub program: String,
    /// Its title now (empty if it no longer exists).
    pub title: String,
    pub totals: Vec<Money>,
}

/// One month's sums (months without sales have an empty `totals`).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MonthRevenue {
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub totals: Vec<Money>,
}

/// A coach's revenue over a period.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CoachRevenue {
    pub coach: String,
    pub period: Period,
    /// Per currency.
    pub totals: Vec<Money>,
    /// Programs with sales in the period, by id.
    pub programs: Vec<ProgramRevenue>,
    /// Every month of the period, oldest first.
    pub months: Vec<MonthRevenue>,
    /// Paying subscribers of the coach's paid programs.
    pub subscribers: Churn,
    /// False when more than `MAX_ORDERS` orders were in range (the sums
    /// cover the first ones).
    pub complete: bool,
}

/// Plan subscriptions in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlanCount {
    /// `coach_basic`, `coach_premium` or `athlete_paid`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub plan: PaidPlan,
    /// Stripe's status (`trialing`, `active`, `past_due`, `canceled`, ...).
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub status: SubscriptionStatus,
    pub count: u64,
}

/// The platform's revenue over a period.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlatformRevenue {
    pub period: Period,
    /// Per currency: `fees` is the platform's revenue, `net` what the
    /// coaches keep.
    pub totals: Vec<Money>,
    pub months: Vec<MonthRevenue>,
    /// Coaches with at least one sale in the period.
    pub paying_coaches: u64,
    /// Plan subscriptions now, by plan and status.
    pub plans: Vec<PlanCount>,
    /// Of those, in force (trialing, active or past_due).
    pub plans_in_force: u64,
    /// False when more than `MAX_ORDERS` orders or `MAX_SUBSCRIPTIONS`
    /// subscriptions were read.
    pub complete: bool,
}

/// Sums per month of a period.
struct Months(BTreeMap<String, Tally>);

impl Months {
    fn new(p: &Period) -> Months {
        Months(
            p.months()
                .into_iter()
                .map(|m| (m, Tally::default()))
                .collect(),
        )
    }

    fn add(&mut self, ms: u64, o: &Order) {
        self.0.entry(month_label(ms)).or_default().add(o);
    }

    fn into_vec(self) -> Vec<MonthRevenue> {
        self.0
            .into_iter()
            .map(|(month, t)| MonthRevenue {
                month,
                totals: t.into_vec(),
            })
            .collect()
    }
}

impl ProgramService {
    /// Reads every order a listing gives for `period` (and the lookback
    /// before it) and hands each sale inside the period, with its sale
    /// time, to `each`; false when cut at [`MAX_ORDERS`].
    async fn sales<F, Fut>(
        &self,
        period: &Period,
        read: F,
        mut each: impl FnMut(u64, &Order),
    ) -> Result<bool, ProgramError>
    where
        F: Fn(OrderRange) -> Fut,
        Fut: std::future::Future<Output = Result<Vec<Order>, chalktalk_actors::store::StoreError>>,
    {
        let from = period.from_ms.saturating_sub(LOOKBACK_MS);
        let mut range = Some(OrderRange::new(from, period.to_ms, PAGE));
        let mut read_so_far = 0;
        while let Some(r) = range {
            if read_so_far >= MAX_ORDERS {
                return Ok(false);
            }
            let page = read(r.clone()).await?;
            read_so_far += page.len();
            for o in &page {
                if let Some(ms) = sold_ms(o).filter(|ms| period.contains(*ms)) {
                    each(ms, o);
                }
            }
            range = r.next(&page);
        }
        Ok(true)
    }

    /// The revenue of coach `coach` (the caller, a coach) over `period`.
    #[tracing::instrument(skip(self))]
    pub async fn coach_revenue(
        &self,
        coach: &str,
        role: Role,
        period: &Period,
    ) -> Result<CoachRevenue, ProgramError> {
        if role != Role::Coach {
            return Err(ProgramError::Forbidden("revenue analytics are for coaches"));
        }
        let mut totals = Tally::default();
        let mut months = Months::new(period);
        let mut per_program: BTreeMap<String, Tally> = BTreeMap::new();
        let store = &self.store;
        let complete = self
            .sales(
                period,
                |r| async move { store.orders_of_coach(coach, &r).await },
                |ms, o| {
                    totals.add(o);
                    months.add(ms, o);
                    per_program.entry(o.program.clone()).or_default().add(o);
                },
            )
            .await?;
        let programs = self.store.programs_of(coach, MAX_LIST).await?;
        let mut by_program = Vec::new();
        for (id, t) in per_program {
            let title = programs
                .iter()
                .find(|p| p.id == id)
                .map(|p| p.title.clone())
                .unwrap_or_default();
            by_program.push(ProgramRevenue {
                program: id,
                title,
                totals: t.into_vec(),
            });
        }
        // The subscribers are the paid entitlements (purchases, a
        // program's own subscriptions) to paid programs.
        let mut ents = Vec::new();
        for p in programs.iter().filter(|p| p.price != Price::Free) {
            ents.extend(
                self.store
                    .entitlements_to(&p.id, MAX_ORDERS)
                    .await?
                    .into_iter()
                    .filter(|e| matches!(e.source, Source::Purchase | Source::Subscription)),
            );
        }
        Ok(CoachRevenue {
            coach: coach.to_owned(),
            period: period.clone(),
            totals: totals.into_vec(),
            programs: by_program,
            months: months.into_vec(),
            subscribers: churn(&ents, period),
            complete,
        })
    }

    /// The platform's revenue over `period` (callers check that the caller
    /// is an admin).
    #[tracing::instrument(skip(self))]
    pub async fn platform_revenue(&self, period: &Period) -> Result<PlatformRevenue, ProgramError> {
        let mut totals = Tally::default();
        let mut months = Months::new(period);
        let mut coaches = BTreeSet::new();
        let store = &self.store;
        let mut complete = self
            .sales(
                period,
                |r| async move { store.orders_created(&r).await },
                |ms, o| {
                    totals.add(o);
                    months.add(ms, o);
                    if !o.coach.is_empty() {
                        coaches.insert(o.coach.clone());
                    }
                },
            )
            .await?;
        let mut counts: BTreeMap<(String, String), PlanCount> = BTreeMap::new();
        let mut after: Option<String> = None;
        let mut seen = 0;
        loop {
            let page = self
                .store
                .subscriptions_page(after.as_deref(), PAGE)
                .await?;
            seen += page.len();
            for s in &page {
                let key = (format!("{:?}", s.plan), format!("{:?}", s.status));
                counts
                    .entry(key)
                    .or_insert(PlanCount {
                        plan: s.plan,
                        status: s.status,
                        count: 0,
                    })
                    .count += 1;
            }
            if page.len() < PAGE {
                break;
            }
            if seen >= MAX_SUBSCRIPTIONS {
                complete = false;
                break;
            }
            after = page.last().map(|s| s.id.clone());
        }
        let plans: Vec<PlanCount> = counts.into_values().collect();
        let plans_in_force = plans
            .iter()
            .filter(|c| {
                matches!(
                    c.status,
                    SubscriptionStatus::Trialing
                        | SubscriptionStatus::Active
                        | SubscriptionStatus::PastDue
                )
            })
            .map(|c| c.count)
            .sum();
        Ok(PlatformRevenue {
            period: period.clone(),
            totals: totals.into_vec(),
            months: months.into_vec(),
            paying_coaches: coaches.len() as u64,
            plans,
            plans_in_force,
            complete,
        })
    }
}
