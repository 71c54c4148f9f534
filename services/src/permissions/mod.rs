//! Who may do what (issue 4). [`matrix`] is THE table (one row per plan);
//! [`decide`] holds the pure decisions over loaded facts; [`facts`] keeps
//! coach–athlete relationships and video grants, [`profiles`] the profiles,
//! both in the key-value port; [`Permissions`] loads the facts a question
//! needs and asks [`decide`]; [`error`] holds [`PermissionError`], what
//! routes answer when a question or a change is refused. The server's
//! gateway (its `gateway::guard`) and REST routes (its `permissions`
//! module) are the only callers. Rules in prose: docs/PROTOCOL.md,
//! "Permissions".

pub mod decide;
pub mod error;
pub mod facts;
pub mod matrix;
pub mod profiles;

use std::sync::Arc;

use chalktalk_actors::encoder::MediaStore;
use chalktalk_actors::store::{Store, StoreError};
use chalktalk_protocol::{Asset, MediaKind, ThreadKind};

pub use decide::{Decision, Subject, Why};
pub use error::PermissionError;
pub use facts::{Facts, RelState, Relationship};
pub use matrix::{MATRIX, Row, row};

use crate::accounts::{Accounts, Plan};
use chalktalk_adapters::kv::Kv;
use decide::{MessagingFacts, VideoFacts};
use matrix::VideoAccess;

/// The permission service of a node.
pub struct Permissions {
    pub facts: Facts,
    pub profiles: profiles::Profiles,
    /// Assets (absent on nodes without the media pipeline: no video is an
    /// asset there, rooms are governed by membership only).
    pub media: Option<Arc<dyn MediaStore>>,
    /// Rooms and threads.
    pub store: Arc<dyn Store>,
    /// Accounts (plans of users other than the caller).
    pub accounts: Option<Arc<Accounts>>,
    /// Training programs: their entitlements open videos (absent on nodes
    /// whose store has no program port).
    pub programs: Option<Arc<crate::programs::ProgramService>>,
}

impl Permissions {
    pub fn new(
        kv: Option<Arc<dyn Kv>>,
        media: Option<Arc<dyn MediaStore>>,
        store: Arc<dyn Store>,
        accounts: Option<Arc<Accounts>>,
    ) -> Permissions {
        Permissions {
            facts: Facts::new(kv.clone()),
            profiles: profiles::Profiles::new(kv),
            media,
            store,
            accounts,
            programs: None,
        }
    }

    /// With training programs (their entitlements open videos).
    pub fn with_programs(mut self, programs: Arc<crate::programs::ProgramService>) -> Permissions {
        self.programs = Some(programs);
        self
    }

    /// The video asset `id` (voice-overs and unknown ids are `None`).
    pub async fn video_asset(&self, id: &str) -> Result<Option<Asset>, StoreError> {
        let Some(m) = &self.media else {
            return Ok(None);
        };
        if !chalktalk_protocol::valid_id(id) {
            return Ok(None);
        }
        Ok(m.asset(id).await?.filter(|a| a.kind == MediaKind::Video))
    }

    /// May `who` see a video of `owner` with id `video`?
    pub async fn video(
        &self,
        who: Subject<'_>,
        owner: &str,
        video: &str,
    ) -> Result<Decision, StoreError> {
        let mut facts = VideoFacts::default();
        if owner != who.user {
            match row(who.plan).video {
                VideoAccess::OwnAndAthletes | VideoAccess::OwnAndLimited { .. } => {
                    facts.athletes = self.facts.active_athletes(who.user).await?;
                }
                VideoAccess::OwnAndPurchased => {
                    facts.granted = self.facts.granted(who.user, video).await?;
                }
                VideoAccess::Full | VideoAccess::OwnOnly => {}
            }
        }
        let d = decide::video(who, owner, &facts);
        if d.allowed() {
            return Ok(d);
        }
        if let Some(p) = &self.programs {
            facts.entitled = p.entitled_to_video(who.user, owner, video).await?;
        }
        Ok(decide::video(who, owner, &facts))
    }

    /// May `who` create, or send in, a thread of `kind` with `members`
    /// (the caller may be among them)?
    pub async fn message(
        &self,
        who: Subject<'_>,
        kind: ThreadKind,
        members: &[String],
    ) -> Result<Decision, StoreError> {
        let mut others: Vec<String> = members
            .iter()
            .filter(|m| m.as_str() != who.user)
            .cloned()
            .collect();
        others.sort();
        others.dedup();
        let mut facts = MessagingFacts::default();
        if kind != ThreadKind::Room && decide::messaging_needs_facts(who.plan) {
            match who.plan.role() {
                chalktalk_protocol::Role::Coach => {
                    facts.athletes = self
                        .facts
                        .active_athletes(who.user)
                        .await?
                        .into_iter()
                        .map(|a| a.other)
                        .collect();
                }
                _ => facts.coaches = self.facts.active_coaches(who.user).await?,
            }
        }
        Ok(decide::message(who, kind, &others, &facts))
    }

    /// The plan of a user now: from their subscriptions when they have any
    /// and no admin override (`ProgramService::billed_plan`), else their
    /// account's; `None` without an account (dev identities, or a node
    /// without accounts).
    pub async fn plan_of(&self, user: &str) -> Option<Plan> {
        let a = self.accounts.as_ref()?;
        let account = a.get(user).await.ok().flatten()?;
        if let Some(p) = &self.programs {
            // The subscriptions decide when the user has any (and no admin
            // override); a storage failure falls back to the account's.
            match p.billed_plan(user, account.role).await {
                Ok(Some(plan)) => return Some(plan),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(user, error = %e, "billing unreadable; the account's plan decides")
                }
            }
        }
        Some(account.plan())
    }

    /// Every video `who` can see, owner's first: own, then (coaches) their
    /// athletes' as the matrix allows, then (athletes) granted ones, then
    /// those of the training programs `who` is enrolled in. Admins
    /// list a given `owner`'s videos (their own without).
    pub async fn visible_videos(
        &self,
        who: Subject<'_>,
        owner: Option<&str>,
    ) -> Result<Vec<Asset>, StoreError> {
        const LIMIT: usize = 1000;
        let Some(m) = &self.media else {
            return Ok(vec![]);
        };
        let videos = |v: Vec<Asset>| {
            v.into_iter()
                .filter(|a| a.kind == MediaKind::Video)
                .collect::<Vec<_>>()
        };
        let mut out = videos(m.assets_of(owner.unwrap_or(who.user), LIMIT).await?);
        if owner.is_some() {
            return Ok(out);
        }
        match row(who.plan).video {
            VideoAccess::OwnAndAthletes | VideoAccess::OwnAndLimited { .. } => {
                let athletes = self.facts.active_athletes(who.user).await?;
                let seen: Vec<&str> = match row(who.plan).video {
                    VideoAccess::OwnAndLimited { athletes: n } => {
                        decide::first_athletes(&athletes, n)
                    }
                    _ => athletes.iter().map(|a| a.other.as_str()).collect(),
                };
                for a in seen {
                    out.extend(videos(m.assets_of(a, LIMIT).await?));
                }
            }
            VideoAccess::OwnAndPurchased => {
                for g in self.facts.grants_of(who.user).await? {
                    if let Some(a) = self.video_asset(&g.video).await? {
                        out.push(a);
                    }
                }
            }
            VideoAccess::Full | VideoAccess::OwnOnly => {}
        }
        if row(who.plan).video != VideoAccess::Full
            && let Some(p) = &self.programs
        {
            // Videos of the programs the caller is enrolled in (the
            // program's coach's own videos only, as `video` decides).
            for (owner, id) in p.entitled_videos(who.user).await? {
                if let Some(a) = self.video_asset(&id).await?
                    && a.owner == owner
                    && !out.iter().any(|x| x.id == a.id)
                {
                    out.push(a);
                }
            }
        }
        Ok(out)
    }
}
