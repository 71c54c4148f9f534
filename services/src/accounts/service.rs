//! The account operations behind the REST routes: registration, sign-in
//! (password, then TOTP when enabled), token issue and refresh, devices,
//! sign-out and external identities. TOTP enrollment is in `mfa`.
//!
//! Every failure the client may see is an [`AccountError`]; sign-in failures
//! are uniform (one error for an unknown email, a wrong password
//! and an account without a password) and take the same argon2 work.

use std::net::IpAddr;
use std::sync::Arc;

use chalktalk_protocol::Role;
use serde::Serialize;

use super::AccountsConfig;
use super::error::AccountError;
use super::model::{Account, Subscription, Tier};
use super::oidc::Oidc;
use super::password::{Hasher, check_password, normalise_email};
use super::sessions::{NS_SID, RefreshError, SessionRecord, Sessions};
use super::store::{AccountStore, RecordError, Versioned, new_user_id};
use super::throttle::Throttle;
use crate::auth::{Audience, Auth};
use chalktalk_adapters::revocations::Revocations;

/// Tokens handed to a client after a sign-in or refresh.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tokens {
    pub access_token: String,
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: u64,
    pub refresh_token: String,
    /// The session (device) id.
    pub session: String,
    /// `"ok"`, or `"enrollment_required"`: the access token only allows
    /// TOTP enrollment until TOTP is confirmed.
    pub mfa: &'static str,
}

/// The outcome of a first sign-in step.
#[derive(Debug, Clone)]
pub enum SignIn {
    Tokens(Tokens),
    /// TOTP is enabled: send a code with this challenge.
    Challenge {
        challenge: String,
        expires_in: u64,
    },
}

/// The account service of a node.
pub struct Accounts {
    pub(super) store: AccountStore,
    pub(super) sessions: Sessions,
    pub(super) auth: Auth,
    pub(super) revocations: Arc<dyn Revocations>,
    pub(super) hasher: Hasher,
    pub(super) throttle: Throttle,
    pub(super) oidc: Option<Oidc>,
    pub(super) cfg: AccountsConfig,
}

/// A storage failure as the client sees it.
pub(super) fn unavailable(e: RecordError) -> AccountError {
    tracing::error!(%e, "account storage failed");
    AccountError::unavailable("account storage is unavailable; retry later")
}

pub(super) fn bad_credentials() -> AccountError {
    AccountError::unauthorized("wrong email or password")
}

pub(super) fn locked(retry_after: u64) -> AccountError {
    AccountError::Locked { retry_after }
}

/// Roles that must enable TOTP.
pub fn requires_mfa(role: Role) -> bool {
    matches!(role, Role::Coach | Role::Admin)
}

/// A device name from the client, or `"unknown"`.
pub fn device_name(d: Option<&str>) -> String {
    let d: String = d
        .unwrap_or("")
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    if d.is_empty() { "unknown".into() } else { d }
}

impl Accounts {
    /// The service over `kv`; `auth` should carry `revocations`.
    pub fn new(
        kv: Arc<dyn chalktalk_adapters::kv::Kv>,
        auth: Auth,
        revocations: Arc<dyn Revocations>,
        cfg: AccountsConfig,
    ) -> Result<Accounts, String> {
        let hasher =
            Hasher::with_params(cfg.argon2_m_kib, cfg.argon2_t).map_err(|e| e.to_string())?;
        let oidc = match &cfg.oidc {
            Some(o) => Some(Oidc::new(o.clone()).map_err(|e| e.to_string())?),
            None => None,
        };
        Ok(Accounts {
            store: AccountStore::new(kv.clone()),
            sessions: Sessions {
                kv,
                refresh_ttl_ms: cfg.refresh_ttl.as_millis() as u64,
            },
            auth,
            revocations,
            hasher,
            throttle: Throttle::new(cfg.failure_window, cfg.lock_for),
            oidc,
            cfg,
        })
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Creates an account (any role: the CLI creates admins). `Ok(false)`
    /// if the email is taken.
    pub async fn create_account(
        &self,
        email: &str,
        password: &str,
        role: Role,
    ) -> Result<Option<Account>, AccountError> {
        let email = normalise_email(email).map_err(|p| AccountError::invalid("email", p))?;
        check_password(password, &email).map_err(|p| AccountError::invalid("password", p))?;
        if self
            .store
            .by_email(&email)
            .await
            .map_err(unavailable)?
            .is_some()
        {
            // Same work as a creation.
            let _ = self.hasher.hash(password).await;
            return Ok(None);
        }
        let hash = self
            .hasher
            .hash(password)
            .await
            .map_err(|e| AccountError::internal(e.to_string()))?;
        let account = Account {
            id: new_user_id().map_err(|e| AccountError::internal(e.to_string()))?,
            email,
            password_hash: hash,
            role,
            subscription: (role == Role::Coach).then_some(Subscription::Trial),
            tier: (role == Role::Athlete).then_some(Tier::Free),
            created_ms: chalktalk_actors::now_ms(),
            external: None,
            totp_secret: None,
            recovery_hashes: Vec::new(),
        };
        let created = self.store.create(&account).await.map_err(unavailable)?;
        Ok(created.then_some(account))
    }

    /// Changes role, subscription and tier (admin tools). Takes effect in
    /// access tokens at the next refresh.
    pub async fn set_plan(
        &self,
        user: &str,
        role: Role,
        subscription: Option<Subscription>,
        tier: Option<Tier>,
    ) -> Result<Account, AccountError> {
        for _ in 0..5 {
            let old = self.account(user).await?;
            let mut new = old.account.clone();
            (new.role, new.subscription, new.tier) = (role, subscription, tier);
            if self
                .store
                .update(&old, &new, Default::default())
                .await
                .map_err(unavailable)?
            {
                return Ok(new);
            }
        }
        Err(AccountError::unavailable(
            "the account keeps changing; retry",
        ))
    }

    pub(super) async fn account(&self, user: &str) -> Result<Versioned, AccountError> {
        self.store
            .get(user)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| AccountError::NotFound("no account for this token".into()))
    }

    /// The account of `user`; `not_found` if there is none.
    pub async fn account_of(&self, user: &str) -> Result<Account, AccountError> {
        Ok(self.account(user).await?.account)
    }

    /// The account of `user`, if any.
    pub async fn get(&self, user: &str) -> Result<Option<Account>, AccountError> {
        Ok(self
            .store
            .get(user)
            .await
            .map_err(unavailable)?
            .map(|v| v.account))
    }

    fn keys(email: &str, ip: Option<IpAddr>) -> (String, String) {
        (
            format!("email:{email}"),
            format!("ip:{}", ip.map(|i| i.to_string()).unwrap_or_default()),
        )
    }

    /// Refuses the attempt while the email or address is locked.
    pub(super) fn check_lock(&self, email: &str, ip: Option<IpAddr>) -> Result<(), AccountError> {
        let (ek, ik) = Self::keys(email, ip);
        match self.throttle.locked(&[&ek, &ik]) {
            Some(secs) => Err(locked(secs)),
            None => Ok(()),
        }
    }

    pub(super) fn failed(&self, email: &str, ip: Option<IpAddr>) {
        let (ek, ik) = Self::keys(email, ip);
        self.throttle
            .fail(&[(&ek, self.cfg.lock_after), (&ik, self.cfg.ip_lock_after)]);
    }

    /// Password sign-in.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        device: &str,
        ip: Option<IpAddr>,
    ) -> Result<SignIn, AccountError> {
        let email = normalise_email(email).map_err(|p| AccountError::invalid("email", p))?;
        self.check_lock(&email, ip)?;
        let found = self.store.by_email(&email).await.map_err(unavailable)?;
        let phc = found.as_ref().map(|v| v.account.password_hash.as_str());
        let ok = self.hasher.verify(password, phc).await;
        let account = match (ok, found) {
            (true, Some(v)) => v.account,
            _ => {
                self.failed(&email, ip);
                return Err(bad_credentials());
            }
        };
        self.throttle.clear(&format!("email:{email}"));
        self.after_first_factor(&account, device).await
    }

    /// A challenge if TOTP is enabled, else a session.
    pub(super) async fn after_first_factor(
        &self,
        account: &Account,
        device: &str,
    ) -> Result<SignIn, AccountError> {
        if account.totp_secret.is_some() {
            let ttl = self.cfg.challenge_ttl.as_secs();
            let challenge = self
                .auth
                .mint_session(
                    &account.id,
                    account.plan(),
                    None,
                    Audience::MfaChallenge,
                    ttl,
                )
                .map_err(|e| AccountError::internal(e.message))?;
            return Ok(SignIn::Challenge {
                challenge,
                expires_in: ttl,
            });
        }
        Ok(SignIn::Tokens(self.start_session(account, device).await?))
    }

    /// A new session of `account` and its tokens.
    pub(super) async fn start_session(
        &self,
        account: &Account,
        device: &str,
    ) -> Result<Tokens, AccountError> {
        let pending = requires_mfa(account.role) && account.totp_secret.is_none();
        let (rec, refresh) = self
            .sessions
            .create(&account.id, device, pending)
            .await
            .map_err(unavailable)?;
        self.tokens(account, &rec, refresh)
    }

    pub(super) fn access_token(
        &self,
        account: &Account,
        sid: &str,
    ) -> Result<(String, bool), AccountError> {
        let pending = requires_mfa(account.role) && account.totp_secret.is_none();
        let aud = if pending {
            Audience::MfaEnroll
        } else {
            Audience::Access
        };
        let t = self
            .auth
            .mint_session(
                &account.id,
                account.plan(),
                Some(sid),
                aud,
                self.cfg.access_ttl.as_secs(),
            )
            .map_err(|e| AccountError::internal(e.message))?;
        Ok((t, pending))
    }

    fn tokens(
        &self,
        account: &Account,
        rec: &SessionRecord,
        refresh: String,
    ) -> Result<Tokens, AccountError> {
        let (access_token, pending) = self.access_token(account, &rec.sid)?;
        Ok(Tokens {
            access_token,
            token_type: "Bearer",
            expires_in: self.cfg.access_ttl.as_secs(),
            refresh_token: refresh,
            session: rec.sid.clone(),
            mfa: if pending { "enrollment_required" } else { "ok" },
        })
    }

    /// Rotates a refresh token; a reused one revokes its session.
    pub async fn refresh(&self, token: &str) -> Result<Tokens, AccountError> {
        match self.sessions.refresh(token).await.map_err(unavailable)? {
            Ok((rec, refresh)) => match self.store.get(&rec.user).await.map_err(unavailable)? {
                Some(v) => self.tokens(&v.account, &rec, refresh),
                None => {
                    self.revoke_sid(&rec.sid).await?;
                    Err(AccountError::unauthorized("the account no longer exists"))
                }
            },
            Err(RefreshError::Unknown) => Err(AccountError::unauthorized(
                "unknown or expired refresh token",
            )),
            Err(RefreshError::Reused(sid)) => {
                tracing::warn!(%sid, "refresh token reused; revoking the session");
                self.revoke_sid(&sid).await?;
                Err(AccountError::RefreshReused)
            }
        }
    }

    /// Revokes session `sid` whoever it belongs to.
    async fn revoke_sid(&self, sid: &str) -> Result<(), AccountError> {
        if let Some(user) = self
            .sessions
            .kv
            .get(NS_SID, sid)
            .await
            .map_err(|e| unavailable(e.into()))?
        {
            let user = String::from_utf8_lossy(&user).into_owned();
            self.sessions
                .delete(&user, sid)
                .await
                .map_err(unavailable)?;
        }
        self.announce(sid).await;
        Ok(())
    }

    async fn announce(&self, sid: &str) {
        if let Err(e) = self.revocations.revoke(sid).await {
            tracing::error!(%sid, %e, "revocation not shared; other nodes learn it when the access token expires");
        }
    }

    /// Revokes session `sid` of `user`; `false` if `user` has no such
    /// session (another user's sid included).
    pub async fn revoke(&self, user: &str, sid: &str) -> Result<bool, AccountError> {
        if !self.sessions.delete(user, sid).await.map_err(unavailable)? {
            return Ok(false);
        }
        self.announce(sid).await;
        Ok(true)
    }

    /// The live sessions of `user`.
    pub async fn sessions(&self, user: &str) -> Result<Vec<SessionRecord>, AccountError> {
        self.sessions.list(user).await.map_err(unavailable)
    }
}
