//! The permission matrix of issue 4, kept here and only here: one row per
//! [`Plan`], one column per capability. Every REST route and WebSocket
//! operation decides through [`row`] (via `super::decide`); change a cell
//! here and `tests/permissions.rs` names the case that now differs.

use crate::accounts::Plan;

/// Which videos a row may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoAccess {
    /// Every video.
    Full,
    /// Own videos and those of every athlete with an ACTIVE relationship.
    OwnAndAthletes,
    /// Own videos and those of at most this many athletes: the ones with
    /// the longest-running ACTIVE relationships (oldest `since`, ties by
    /// athlete id).
    OwnAndLimited { athletes: usize },
    /// Own videos and videos granted (purchased) to the caller.
    OwnAndPurchased,
    /// Own videos only.
    OwnOnly,
}

/// Whom a row may message (creating threads and sending in them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Messaging {
    /// Anyone, any thread.
    Full,
    /// Anyone, direct and group threads.
    Unlimited,
    /// Direct or group threads whose other members are all own ACTIVE athletes.
    OwnAthletes,
    /// Direct threads only, with a coach of an ACTIVE relationship.
    DirectToCoach,
    /// No messaging at all.
    None,
}

/// What `GET /api/v1/analytics/me` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Analytics {
    /// Own numbers, and any user's with `?user=`.
    Full,
    /// Own numbers: videos, reviews, threads, messages, athletes, athletes' videos.
    OwnData,
    /// Counts only: videos, reviews, athletes.
    Basic,
    /// Own progress: videos, reviews, threads, messages, coaches.
    OwnProgress,
    /// 403.
    None,
}

/// Admin tools (`/api/v1/admin/*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminTools {
    Full,
    None,
}

/// One row of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub plan: Plan,
    pub video: VideoAccess,
    pub messaging: Messaging,
    pub analytics: Analytics,
    pub admin: AdminTools,
}

/// How many athletes' videos a basic coach sees.
pub const BASIC_COACH_ATHLETES: usize = 3;

use AdminTools as A;
use Analytics as N;
use Messaging as M;
use VideoAccess as V;

/// The matrix (issue 4). Read it as the issue's table.
#[rustfmt::skip]
pub const MATRIX: [Row; 5] = [
    //    plan                      video access                                              messaging                    analytics                  admin tools
    Row { plan: Plan::Admin,        video: V::Full,                                           messaging: M::Full,          analytics: N::Full,        admin: A::Full },
    Row { plan: Plan::CoachPremium, video: V::OwnAndAthletes,                                 messaging: M::Unlimited,     analytics: N::OwnData,     admin: A::None },
    Row { plan: Plan::CoachBasic,   video: V::OwnAndLimited { athletes: BASIC_COACH_ATHLETES }, messaging: M::OwnAthletes,   analytics: N::Basic,       admin: A::None },
    Row { plan: Plan::AthletePaid,  video: V::OwnAndPurchased,                                messaging: M::DirectToCoach, analytics: N::OwnProgress, admin: A::None },
    Row { plan: Plan::AthleteFree,  video: V::OwnOnly,                                        messaging: M::None,          analytics: N::None,        admin: A::None },
];

/// The row of `plan`.
pub fn row(plan: Plan) -> &'static Row {
    match plan {
        Plan::Admin => &MATRIX[0],
        Plan::CoachPremium => &MATRIX[1],
        Plan::CoachBasic => &MATRIX[2],
        Plan::AthletePaid => &MATRIX[3],
        Plan::AthleteFree => &MATRIX[4],
    }
}

/// Every plan, in the table's order.
pub const PLANS: [Plan; 5] = [
    Plan::Admin,
    Plan::CoachPremium,
    Plan::CoachBasic,
    Plan::AthletePaid,
    Plan::AthleteFree,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_has_its_own_row() {
        for p in PLANS {
            assert_eq!(row(p).plan, p, "row() of {p:?}");
        }
        for (i, r) in MATRIX.iter().enumerate() {
            assert_eq!(r.plan, PLANS[i]);
        }
    }

    #[test]
    fn the_table_of_the_issue() {
        let cells: Vec<_> = PLANS
            .iter()
            .map(|p| {
                let r = row(*p);
                (r.video, r.messaging, r.analytics, r.admin)
            })
            .collect();
        assert_eq!(
            cells,
            vec![
                (V::Full, M::Full, N::Full, A::Full),
                (V::OwnAndAthletes, M::Unlimited, N::OwnData, A::None),
                (
                    V::OwnAndLimited { athletes: 3 },
                    M::OwnAthletes,
                    N::Basic,
                    A::None
                ),
                (
                    V::OwnAndPurchased,
                    M::DirectToCoach,
                    N::OwnProgress,
                    A::None
                ),
                (V::OwnOnly, M::None, N::None, A::None),
            ]
        );
    }

    #[test]
    fn only_admins_have_admin_tools() {
        for p in PLANS {
            assert_eq!(row(p).admin == A::Full, p == Plan::Admin, "{p:?}");
        }
    }
}
