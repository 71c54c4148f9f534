//! Pure decisions: the caller ([`Subject`]: user id and plan), the facts
//! loaded for the question (relationships, grants, owner) and the matrix row
//! give [`Decision::Allow`] or [`Decision::Deny`] with a [`Why`]. No I/O
//! here: `super::facts` loads, the gateway and the routes ask.
//!
//! Definitions (docs/PROTOCOL.md, "Permissions"):
//! - "their athletes" are athletes with an ACTIVE relationship (invited,
//!   declined and ended ones do not count);
//! - a basic coach sees the videos of at most 3 athletes: the 3 ACTIVE
//!   relationships that started first (`since_ms`, ties by athlete id);
//! - "purchased" videos are grants (written by `/api/v1/admin/grants`);
//! - a video in a training program the caller holds an active
//!   entitlement to (enrolled free, bought, granted) is open to them on
//!   any plan (issue 12);
//! - athlete↔athlete direct threads are never allowed: athletes may only
//!   message coaches, and a thread's creator is always a member;
//! - a review room's own thread (kind `room`) is open to every member of
//!   the room whatever their row: being in the room is already the
//!   matrix's decision (rooms are created by coaches and admins, invites
//!   and joins need access to the room's video), so the room is its
//!   owner's paid context and a free athlete invited to it discusses the
//!   review there. Membership itself is checked by the thread.

use chalktalk_protocol::ThreadKind;

use super::matrix::{AdminTools, Analytics, Messaging, VideoAccess, row};
use crate::accounts::Plan;

/// Who asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subject<'a> {
    pub user: &'a str,
    pub plan: Plan,
}

/// Why a decision went the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Admin,
    Owner,
    ActiveAthlete,
    WithinBasicLimit,
    BeyondBasicLimit,
    NotYourAthlete,
    Granted,
    NotGranted,
    Entitled,
    OwnOnly,
    Unlimited,
    OwnAthletes,
    NotAllOwnAthletes,
    CoachOfActiveRelationship,
    DirectOnly,
    NotYourCoach,
    RoomMember,
    NoMessaging,
    AnalyticsAllowed,
    NoAnalytics,
    NotAdmin,
}

impl Why {
    /// A human sentence for error messages.
    pub fn message(self) -> &'static str {
        match self {
            Why::Admin => "admins may do everything",
            Why::Owner => "you own it",
            Why::ActiveAthlete => "it belongs to one of your active athletes",
            Why::WithinBasicLimit => "it belongs to one of your first 3 active athletes",
            Why::BeyondBasicLimit => {
                "a basic coach sees the videos of their 3 longest active athletes only"
            }
            Why::NotYourAthlete => "it does not belong to you or to one of your active athletes",
            Why::Granted => "it was granted (purchased) to you",
            Why::NotGranted => "it is neither yours nor purchased",
            Why::Entitled => "it is in a training program you are enrolled in",
            Why::OwnOnly => "your plan shows your own videos only",
            Why::Unlimited => "your plan allows messaging anyone",
            Why::OwnAthletes => "every other member is one of your active athletes",
            Why::NotAllOwnAthletes => "a basic coach may message their active athletes only",
            Why::CoachOfActiveRelationship => "a direct thread with your coach",
            Why::DirectOnly => "athletes may only use direct threads with their coach",
            Why::RoomMember => "the chat of a review room is open to the room's members",
            Why::NotYourCoach => {
                "athletes may only message a coach they work with (active relationship)"
            }
            Why::NoMessaging => "your plan does not include messaging",
            Why::AnalyticsAllowed => "your plan includes analytics",
            Why::NoAnalytics => "your plan does not include analytics",
            Why::NotAdmin => "admin tools are for admins only",
        }
    }
}

/// Allow or deny, with the reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow(Why),
    Deny(Why),
}

impl Decision {
    pub fn allowed(self) -> bool {
        matches!(self, Decision::Allow(_))
    }
    pub fn why(self) -> Why {
        match self {
            Decision::Allow(w) | Decision::Deny(w) => w,
        }
    }
}

/// One ACTIVE relationship seen from one side: the other user and when it
/// became active.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Active {
    pub other: String,
    pub since_ms: u64,
}

/// What a video decision needs to know.
#[derive(Debug, Clone, Default)]
pub struct VideoFacts {
    /// The caller's ACTIVE athletes (caller as coach).
    pub athletes: Vec<Active>,
    /// The video was granted to the caller.
    pub granted: bool,
    /// The caller holds an active entitlement to a program of the owner
    /// that shows the video (issue 12): allowed whatever the row says.
    pub entitled: bool,
}

/// The `n` athletes whose active relationships started first.
pub fn first_athletes(athletes: &[Active], n: usize) -> Vec<&str> {
    let mut v: Vec<&Active> = athletes.iter().collect();
    v.sort_by(|a, b| (a.since_ms, &a.other).cmp(&(b.since_ms, &b.other)));
    v.into_iter().take(n).map(|a| a.other.as_str()).collect()
}

/// May `who` see a video owned by `owner`?
pub fn video(who: Subject<'_>, owner: &str, facts: &VideoFacts) -> Decision {
    let access = row(who.plan).video;
    if access == VideoAccess::Full {
        return Decision::Allow(Why::Admin);
    }
    if owner == who.user {
        return Decision::Allow(Why::Owner);
    }
    if facts.entitled {
        return Decision::Allow(Why::Entitled);
    }
    match access {
        VideoAccess::Full => Decision::Allow(Why::Admin),
        VideoAccess::OwnAndAthletes => {
            if facts.athletes.iter().any(|a| a.other == owner) {
                Decision::Allow(Why::ActiveAthlete)
            } else {
                Decision::Deny(Why::NotYourAthlete)
            }
        }
        VideoAccess::OwnAndLimited { athletes } => {
            if first_athletes(&facts.athletes, athletes).contains(&owner) {
                Decision::Allow(Why::WithinBasicLimit)
            } else if facts.athletes.iter().any(|a| a.other == owner) {
                Decision::Deny(Why::BeyondBasicLimit)
            } else {
                Decision::Deny(Why::NotYourAthlete)
            }
        }
        VideoAccess::OwnAndPurchased => {
            if facts.granted {
                Decision::Allow(Why::Granted)
            } else {
                Decision::Deny(Why::NotGranted)
            }
        }
        VideoAccess::OwnOnly => Decision::Deny(Why::OwnOnly),
    }
}

/// What a messaging decision needs to know.
#[derive(Debug, Clone, Default)]
pub struct MessagingFacts {
    /// ACTIVE athletes of the caller (caller as coach).
    pub athletes: Vec<String>,
    /// ACTIVE coaches of the caller (caller as athlete).
    pub coaches: Vec<String>,
}

/// Does the row of `plan` need [`MessagingFacts`] at all?
pub fn messaging_needs_facts(plan: Plan) -> bool {
    matches!(
        row(plan).messaging,
        Messaging::OwnAthletes | Messaging::DirectToCoach
    )
}

/// May `who` create, or send in, a thread of `kind` whose other members
/// are `others` (the caller excluded)? A room thread is allowed to every
/// row (the module doc says why); the server alone creates those.
pub fn message(
    who: Subject<'_>,
    kind: ThreadKind,
    others: &[String],
    facts: &MessagingFacts,
) -> Decision {
    if kind == ThreadKind::Room {
        return Decision::Allow(Why::RoomMember);
    }
    match row(who.plan).messaging {
        Messaging::Full => Decision::Allow(Why::Admin),
        Messaging::Unlimited => Decision::Allow(Why::Unlimited),
        Messaging::OwnAthletes => {
            if others.iter().all(|o| facts.athletes.contains(o)) {
                Decision::Allow(Why::OwnAthletes)
            } else {
                Decision::Deny(Why::NotAllOwnAthletes)
            }
        }
        Messaging::DirectToCoach => {
            if kind != ThreadKind::Direct || others.len() != 1 {
                Decision::Deny(Why::DirectOnly)
            } else if facts.coaches.contains(&others[0]) {
                Decision::Allow(Why::CoachOfActiveRelationship)
            } else {
                Decision::Deny(Why::NotYourCoach)
            }
        }
        Messaging::None => Decision::Deny(Why::NoMessaging),
    }
}

/// May `who` read analytics (their own; admins anyone's)?
pub fn analytics(who: Subject<'_>) -> Decision {
    match row(who.plan).analytics {
        Analytics::Full => Decision::Allow(Why::Admin),
        Analytics::None => Decision::Deny(Why::NoAnalytics),
        _ => Decision::Allow(Why::AnalyticsAllowed),
    }
}

/// May `who` use the admin tools?
pub fn admin(who: Subject<'_>) -> Decision {
    match row(who.plan).admin {
        AdminTools::Full => Decision::Allow(Why::Admin),
        AdminTools::None => Decision::Deny(Why::NotAdmin),
    }
}

#[cfg(test)]
#[path = "decide_tests.rs"]
mod tests;
