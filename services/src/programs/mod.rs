//! Training programs and what an athlete may open (issue 12, first slice):
//! [`edit`] builds and publishes a coach's programs, [`enroll`] enrolls in
//! free ones and keeps per-item progress, [`checkout`] sells one-time
//! programs through Stripe Checkout and [`webhook`] applies Stripe's events
//! durably (receipt stored first, applied once, in any order). Everything
//! is stored through the `ProgramStore` port
//! (`chalktalk_adapters::programs`); entitlements feed the permission
//! matrix through [`ProgramService::entitled_to_video`]. Errors:
//! [`ProgramError`]. Subscriptions to the plans: [`subscribe`] (Checkout
//! in subscription mode, the webhook's subscription and invoice events)
//! and [`plans`] (the plan a user's subscriptions give, admin overrides
//! with their audit log); coach payouts through Stripe Connect
//! ([`payouts`]); the backfill of undelivered events ([`backfill`]);
//! revenue analytics for coaches and admins ([`revenue`], its arithmetic
//! in [`figures`]); review rooms shown as program items ([`review`]) and
//! documents attached to them ([`attachments`]).

pub mod attachments;
pub mod backfill;
pub mod checkout;
pub mod edit;
pub mod enroll;
pub mod error;
pub mod figures;
pub mod payouts;
pub mod plans;
pub mod program_subs;
pub mod revenue;
pub mod review;
pub mod subscribe;
pub mod webhook;

use std::sync::Arc;

use chalktalk_actors::encoder::MediaStore;
use chalktalk_actors::store::StoreError;
use chalktalk_adapters::billing::PaidPlan;
use chalktalk_adapters::payments::Payments;
use chalktalk_adapters::programs::{Program, ProgramStore};

pub use error::ProgramError;

/// How many entitlements, programs or enrollments one call reads at most.
pub const MAX_LIST: usize = 1000;

/// How long a past_due subscription keeps its plan by default (7 days).
pub const DEFAULT_GRACE_SECS: u64 = 7 * 24 * 3600;

/// Free trial days of a coach's first plan subscription by default.
pub const DEFAULT_COACH_TRIAL_DAYS: u32 = 14;

/// The Stripe Price (or Plan) id of each paid plan; a plan without one
/// cannot be subscribed to (`plan_unavailable`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanPrices {
    pub coach_basic: Option<String>,
    pub coach_premium: Option<String>,
    pub athlete_paid: Option<String>,
}

impl PlanPrices {
    /// The price of `plan`.
    pub fn of(&self, plan: PaidPlan) -> Option<&str> {
        match plan {
            PaidPlan::CoachBasic => self.coach_basic.as_deref(),
            PaidPlan::CoachPremium => self.coach_premium.as_deref(),
            PaidPlan::AthletePaid => self.athlete_paid.as_deref(),
            PaidPlan::Program => None,
        }
    }

    /// The plan whose price is `price`.
    pub fn plan(&self, price: &str) -> Option<PaidPlan> {
        [
            PaidPlan::CoachPremium,
            PaidPlan::CoachBasic,
            PaidPlan::AthletePaid,
        ]
        .into_iter()
        .find(|p| self.of(*p) == Some(price))
    }
}

/// Stripe settings (docs/OPERATIONS.md, "Payments"). Its `Debug` hides
/// the secrets.
#[derive(Clone, PartialEq)]
pub struct PaymentsConfig {
    /// `sk_...` (`CHALKTALK_STRIPE_SECRET_KEY`); without it checkout and
    /// refunds answer `payments_disabled`.
    pub secret_key: Option<String>,
    /// `whsec_...` (`CHALKTALK_STRIPE_WEBHOOK_SECRET`); without it the
    /// webhook answers `payments_disabled`.
    pub webhook_secret: Option<String>,
    /// `whsec_...` of the endpoint of events on connected accounts
    /// (`CHALKTALK_STRIPE_CONNECT_WEBHOOK_SECRET`; Stripe signs those,
    /// e.g. `account.updated`, with that endpoint's own secret).
    pub connect_webhook_secret: Option<String>,
    /// Another API base than Stripe's (tests: a local server).
    pub api_base: Option<String>,
    /// The platform's share of each sale in percent: the application fee
    /// of every destination charge (rounded down to a minor unit).
    pub platform_fee_percent: u8,
    /// The subscription plans' prices.
    pub prices: PlanPrices,
    /// How long a past_due subscription keeps its plan (seconds).
    pub past_due_grace_secs: u64,
    /// Free trial days of a coach's first plan subscription (0: none).
    pub coach_trial_days: u32,
}

impl Default for PaymentsConfig {
    fn default() -> PaymentsConfig {
        PaymentsConfig {
            secret_key: None,
            webhook_secret: None,
            connect_webhook_secret: None,
            api_base: None,
            platform_fee_percent: 0,
            prices: PlanPrices::default(),
            past_due_grace_secs: DEFAULT_GRACE_SECS,
            coach_trial_days: DEFAULT_COACH_TRIAL_DAYS,
        }
    }
}

/// What the subscription side needs of the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Billing {
    pub prices: PlanPrices,
    pub past_due_grace_secs: u64,
    /// The platform's share of each sale in percent (0-100): the
    /// `application_fee_amount` of destination charges.
    pub platform_fee_percent: u8,
    /// Free trial days of a coach's first plan subscription (0: none).
    pub coach_trial_days: u32,
}

impl std::fmt::Debug for PaymentsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |v: &Option<String>| v.as_ref().map(|_| "(hidden)");
        f.debug_struct("PaymentsConfig")
            .field("secret_key", &hidden(&self.secret_key))
            .field("webhook_secret", &hidden(&self.webhook_secret))
            .field(
                "connect_webhook_secret",
                &hidden(&self.connect_webhook_secret),
            )
            .field("api_base", &self.api_base)
            .field("platform_fee_percent", &self.platform_fee_percent)
            .field("prices", &self.prices)
            .field("past_due_grace_secs", &self.past_due_grace_secs)
            .field("coach_trial_days", &self.coach_trial_days)
            .finish()
    }
}

/// The program service of a node.
pub struct ProgramService {
    pub(crate) store: Arc<dyn ProgramStore>,
    /// Assets, to check that a program's videos are the coach's.
    pub(crate) media: Option<Arc<dyn MediaStore>>,
    pub(crate) payments: Option<Arc<dyn Payments>>,
    pub(crate) webhook_secret: Option<String>,
    /// The Connect endpoint's secret, tried when the first does not match.
    pub(crate) connect_webhook_secret: Option<String>,
    pub(crate) billing: Billing,
    /// One webhook processing pass at a time on this node.
    pub(crate) processing: tokio::sync::Mutex<()>,
    /// Review rooms (items of kind `review`); without it such items are
    /// refused.
    pub(crate) rooms: Option<Arc<dyn chalktalk_actors::store::Store>>,
}

impl ProgramService {
    pub fn new(
        store: Arc<dyn ProgramStore>,
        media: Option<Arc<dyn MediaStore>>,
        payments: Option<Arc<dyn Payments>>,
        webhook_secret: Option<String>,
        billing: Billing,
    ) -> Arc<ProgramService> {
        Arc::new(ProgramService {
            store,
            media,
            payments,
            webhook_secret,
            connect_webhook_secret: None,
            billing,
            processing: tokio::sync::Mutex::new(()),
            rooms: None,
        })
    }

    /// With the rooms and threads store (review rooms as program items).
    pub fn with_rooms(
        mut self: Arc<Self>,
        rooms: Arc<dyn chalktalk_actors::store::Store>,
    ) -> Arc<ProgramService> {
        if let Some(svc) = Arc::get_mut(&mut self) {
            svc.rooms = Some(rooms);
        }
        self
    }

    /// With the secret of the endpoint of events on connected accounts.
    pub fn with_connect_secret(mut self: Arc<Self>, secret: Option<String>) -> Arc<ProgramService> {
        if let Some(svc) = Arc::get_mut(&mut self) {
            svc.connect_webhook_secret = secret;
        }
        self
    }

    /// The store (tests and tools).
    pub fn store(&self) -> &Arc<dyn ProgramStore> {
        &self.store
    }

    /// Does `user` hold an active entitlement to a program that shows the
    /// video `video` of `owner`? (The program must be `owner`'s: a coach
    /// cannot sell someone else's video.)
    #[tracing::instrument(skip(self))]
    pub async fn entitled_to_video(
        &self,
        user: &str,
        owner: &str,
        video: &str,
    ) -> Result<bool, StoreError> {
        self.holds_program(user, |p| p.coach == owner && p.videos().any(|v| v == video))
            .await
    }

    /// Does `user` hold an entitlement in force to a program for which
    /// `fits` is true?
    pub(crate) async fn holds_program(
        &self,
        user: &str,
        fits: impl Fn(&Program) -> bool,
    ) -> Result<bool, StoreError> {
        for e in self.store.entitlements_of(user, MAX_LIST).await? {
            if !self.entitlement_live(&e).await? {
                continue;
            }
            if let Some(p) = self.store.program(&e.program).await?
                && fits(&p)
            {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The videos (owner, asset id) of every program `user` holds an
    /// active entitlement to, in entitlement order, each once.
    pub async fn entitled_videos(&self, user: &str) -> Result<Vec<(String, String)>, StoreError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for e in self.store.entitlements_of(user, MAX_LIST).await? {
            if !self.entitlement_live(&e).await? {
                continue;
            }
            if let Some(p) = self.store.program(&e.program).await? {
                for v in p.videos() {
                    if !out.iter().any(|(_, x)| x == v) {
                        out.push((p.coach.clone(), v.to_owned()));
                    }
                }
            }
        }
        Ok(out)
    }

    /// The program `id` as `user` may see it: published ones, and drafts
    /// of their own; else `NotFound`.
    pub async fn visible(&self, user: &str, id: &str) -> Result<Program, ProgramError> {
        let p = self
            .store
            .program(id)
            .await?
            .ok_or_else(|| ProgramError::NotFound(id.to_owned()))?;
        if p.coach == user || p.status == chalktalk_adapters::programs::ProgramStatus::Published {
            return Ok(p);
        }
        let entitled = match self.store.entitlement(user, id).await? {
            Some(e) => self.entitlement_live(&e).await?,
            None => false,
        };
        if entitled {
            Ok(p)
        } else {
            Err(ProgramError::NotFound(id.to_owned()))
        }
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random id with `prefix`.
pub(crate) fn new_id(prefix: &str) -> String {
    let n = getrandom::u64().unwrap_or_else(|_| now_ms());
    format!("{prefix}-{n:016x}")
}
