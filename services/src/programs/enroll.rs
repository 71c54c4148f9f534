//! Enrollment in free programs, the caller's programs (their locker), items
//! marked done, and progress as the athlete and as the coach see it (per
//! item, per program, last activity).

use chalktalk_adapters::programs::{
    Entitlement, EntitlementStatus, ItemProgress, Price, Program, ProgramStatus, Source,
};
use serde::Serialize;

use super::{MAX_LIST, ProgramError, ProgramService, now_ms};

/// One user's progress in one program.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Progress {
    pub user: String,
    pub program: String,
    /// Items done, by item id, with when.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub done: Vec<ItemProgress>,
    pub done_count: usize,
    pub total: usize,
    /// 0-100, rounded down.
    pub percent: u8,
    /// The latest item done (ms), if any.
    pub last_activity_ms: Option<u64>,
}

fn summary(user: &str, p: &Program, done: Vec<ItemProgress>) -> Progress {
    // Items removed by a later edit no longer count.
    let done: Vec<ItemProgress> = done
        .into_iter()
        .filter(|d| p.items.iter().any(|i| i.id() == d.item))
        .collect();
    let total = p.items.len();
    let percent = (done.len() * 100).checked_div(total).unwrap_or(0) as u8;
    Progress {
        user: user.to_owned(),
        program: p.id.clone(),
        last_activity_ms: done.iter().map(|d| d.done_ms).max(),
        done_count: done.len(),
        total,
        percent,
        done,
    }
}

impl ProgramService {
    /// The entitlement of `user` to `program` that opens it now
    /// (`entitlement_live`: a lapsed program subscription does not).
    pub(crate) async fn active(
        &self,
        user: &str,
        program: &str,
    ) -> Result<Option<Entitlement>, ProgramError> {
        match self.store.entitlement(user, program).await? {
            Some(e) if self.entitlement_live(&e).await? => Ok(Some(e)),
            _ => Ok(None),
        }
    }

    /// Enrolls `user` in the free, published program `id`.
    #[tracing::instrument(skip(self))]
    pub async fn enroll_free(&self, user: &str, id: &str) -> Result<Entitlement, ProgramError> {
        let p = self.visible(user, id).await?;
        if p.status != ProgramStatus::Published {
            return Err(ProgramError::NotPublished);
        }
        if p.price != Price::Free {
            return Err(ProgramError::NotFree);
        }
        if self.active(user, id).await?.is_some() {
            return Err(ProgramError::AlreadyEntitled);
        }
        let e = Entitlement {
            user: user.to_owned(),
            program: id.to_owned(),
            source: Source::Free,
            status: EntitlementStatus::Active,
            granted_ms: now_ms(),
            revoked_ms: None,
            reference: None,
        };
        self.store.put_entitlement(&e).await?;
        Ok(e)
    }

    /// The programs `user` can open, with their entitlements (active only).
    pub async fn locker(&self, user: &str) -> Result<Vec<(Program, Entitlement)>, ProgramError> {
        let mut out = Vec::new();
        for e in self.store.entitlements_of(user, MAX_LIST).await? {
            if !self.entitlement_live(&e).await? {
                continue;
            }
            if let Some(p) = self.store.program(&e.program).await? {
                out.push((p, e));
            }
        }
        Ok(out)
    }

    /// Marks `item` of program `id` done for `user` (enrolled).
    #[tracing::instrument(skip(self))]
    pub async fn mark_done(
        &self,
        user: &str,
        id: &str,
        item: &str,
    ) -> Result<Progress, ProgramError> {
        let p = self.visible(user, id).await?;
        if self.active(user, id).await?.is_none() {
            return Err(ProgramError::NotEntitled);
        }
        if !p.items.iter().any(|i| i.id() == item) {
            return Err(ProgramError::NoSuchItem(item.to_owned()));
        }
        self.store
            .put_progress(&ItemProgress {
                user: user.to_owned(),
                program: id.to_owned(),
                item: item.to_owned(),
                done_ms: now_ms(),
            })
            .await?;
        let done = self.store.progress(user, id).await?;
        Ok(summary(user, &p, done))
    }

    /// Progress in program `id`: the caller's own (enrolled), or, for its
    /// coach, every enrolled user's (revoked enrollments included: the
    /// work was done).
    pub async fn progress(&self, caller: &str, id: &str) -> Result<Vec<Progress>, ProgramError> {
        let p = self.visible(caller, id).await?;
        if p.coach == caller {
            let mut out = Vec::new();
            for e in self.store.entitlements_to(id, MAX_LIST).await? {
                let done = self.store.progress(&e.user, id).await?;
                out.push(summary(&e.user, &p, done));
            }
            return Ok(out);
        }
        if self.store.entitlement(caller, id).await?.is_none() {
            return Err(ProgramError::NotEntitled);
        }
        let done = self.store.progress(caller, id).await?;
        Ok(vec![summary(caller, &p, done)])
    }
}
