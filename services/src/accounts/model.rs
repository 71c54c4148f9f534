//! The account record and where it lives: the shared vocabulary of
//! accounts, sessions and permissions (issue 4). Accounts are stored in the
//! key-value port (`chalktalk_adapters::kv`) under namespace [`NS_ACCOUNT`], key =
//! user id, value = MessagePack (named) of [`Account`]; the email index is
//! [`NS_EMAIL`], key = normalised email, value = a
//! `Reservation` of the user id (MessagePack; see `store.rs`).

use chalktalk_protocol::{Role, UserId};
use serde::{Deserialize, Serialize};

pub const NS_ACCOUNT: &str = "account";
pub const NS_EMAIL: &str = "email";

/// A coach's subscription status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subscription {
    Active,
    Trial,
    Expired,
}

/// An athlete's tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    Paid,
    Free,
}

/// The row of the permission matrix a user is in (derived from role,
/// subscription and tier; carried in access tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    Admin,
    /// Coach with an active or trial subscription.
    CoachPremium,
    /// Coach whose subscription expired.
    CoachBasic,
    AthletePaid,
    AthleteFree,
}

impl Plan {
    pub fn of(role: Role, subscription: Option<Subscription>, tier: Option<Tier>) -> Plan {
        match role {
            Role::Admin => Plan::Admin,
            Role::Coach => match subscription {
                Some(Subscription::Active | Subscription::Trial) => Plan::CoachPremium,
                _ => Plan::CoachBasic,
            },
            Role::Athlete => match tier {
                Some(Tier::Paid) => Plan::AthletePaid,
                _ => Plan::AthleteFree,
            },
        }
    }

    pub fn role(self) -> Role {
        match self {
            Plan::Admin => Role::Admin,
            Plan::CoachPremium | Plan::CoachBasic => Role::Coach,
            Plan::AthletePaid | Plan::AthleteFree => Role::Athlete,
        }
    }
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: UserId,
    /// Normalised (trimmed, lowercase); empty for accounts of an external
    /// identity provider that gave no email.
    pub email: String,
    /// argon2id PHC string; empty for external-only accounts.
    pub password_hash: String,
    pub role: Role,
    pub subscription: Option<Subscription>,
    pub tier: Option<Tier>,
    pub created_ms: u64,
    /// (issuer, subject) of an external identity provider, if linked.
    #[serde(default)]
    pub external: Option<(String, String)>,
    /// TOTP second factor, once confirmed.
    #[serde(default)]
    pub totp_secret: Option<Vec<u8>>,
    /// sha256 hex of unused recovery codes.
    #[serde(default)]
    pub recovery_hashes: Vec<String>,
}

/// How long a coach's trial lasts from account creation (until payments
/// set the subscription).
pub const TRIAL_MS: u64 = 14 * 24 * 3600 * 1000;

impl Account {
    /// The subscription at `now_ms`: a trial older than [`TRIAL_MS`] has
    /// expired.
    pub fn subscription_at(&self, now_ms: u64) -> Option<Subscription> {
        match self.subscription {
            Some(Subscription::Trial) if now_ms >= self.created_ms.saturating_add(TRIAL_MS) => {
                Some(Subscription::Expired)
            }
            s => s,
        }
    }

    /// The user's row of the permission matrix now.
    pub fn plan(&self) -> Plan {
        self.plan_at(chalktalk_actors::now_ms())
    }

    pub fn plan_at(&self, now_ms: u64) -> Plan {
        Plan::of(self.role, self.subscription_at(now_ms), self.tier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trials_expire_into_the_basic_row() {
        let mut a = Account {
            id: "c1".into(),
            email: "c@example.com".into(),
            password_hash: String::new(),
            role: Role::Coach,
            subscription: Some(Subscription::Trial),
            tier: None,
            created_ms: 1_000,
            external: None,
            totp_secret: None,
            recovery_hashes: Vec::new(),
        };
        assert_eq!(a.plan_at(1_000), Plan::CoachPremium);
        assert_eq!(a.plan_at(1_000 + TRIAL_MS - 1), Plan::CoachPremium);
        assert_eq!(a.plan_at(1_000 + TRIAL_MS), Plan::CoachBasic);
        assert_eq!(
            a.subscription_at(1_000 + TRIAL_MS),
            Some(Subscription::Expired)
        );
        // An active subscription does not expire by age.
        a.subscription = Some(Subscription::Active);
        assert_eq!(a.plan_at(u64::MAX), Plan::CoachPremium);
        a.subscription = Some(Subscription::Expired);
        assert_eq!(a.plan_at(0), Plan::CoachBasic);
    }
}
