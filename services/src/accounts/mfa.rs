//! TOTP enrollment (secret → confirmation with a code → recovery codes)
//! and the second sign-in step (challenge + code or recovery code). The
//! last TOTP step used is kept per account with a compare-and-set, so a
//! code works once even when two requests race; a recovery code is removed
//! from the account with a compare-and-set too.

use std::net::IpAddr;

use serde::Serialize;

use super::error::AccountError;
use super::service::{Accounts, SignIn, Tokens, unavailable};
use super::store::{NS_TOTP_PENDING, NS_TOTP_STEP};
use super::totp;
use crate::auth::{Audience, Claims};
use chalktalk_adapters::kv::KvBatch;

/// What enrollment hands out (the secret is shown once).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Enrollment {
    /// base32, for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
}

/// What confirmation hands out.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Confirmed {
    /// Ten single-use codes, shown once.
    pub recovery_codes: Vec<String>,
    /// A full access token for the caller's session (the enrollment-only
    /// one is no longer needed), if the caller has a session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
}

fn now_step() -> u64 {
    totp::step_of(chalktalk_actors::now_ms() / 1000)
}

fn wrong_code() -> AccountError {
    AccountError::unauthorized("wrong or already used code")
}

impl Accounts {
    /// Starts (or restarts) TOTP enrollment for the caller.
    pub async fn totp_enroll(&self, caller: &Claims) -> Result<Enrollment, AccountError> {
        let v = self.account(&caller.sub).await?;
        if v.account.totp_secret.is_some() {
            return Err(AccountError::MfaAlreadyEnabled);
        }
        let secret = totp::new_secret().map_err(|e| AccountError::internal(e.to_string()))?;
        let b = KvBatch::default().put(NS_TOTP_PENDING, caller.sub.clone(), secret.clone());
        self.store
            .kv
            .apply(b)
            .await
            .map_err(|e| unavailable(e.into()))?;
        let label = if v.account.email.is_empty() {
            &v.account.id
        } else {
            &v.account.email
        };
        Ok(Enrollment {
            secret: totp::base32(&secret),
            otpauth_uri: totp::otpauth_uri(&secret, label),
        })
    }

    /// The step of `code` if it is valid for `secret` and newer than the
    /// account's last used step; records it (compare-and-set) in `batch`'s
    /// company. Returns the batch to apply.
    async fn claim_step(
        &self,
        user: &str,
        secret: &[u8],
        code: &str,
    ) -> Result<Option<KvBatch>, AccountError> {
        let last = self
            .store
            .kv
            .get(NS_TOTP_STEP, user)
            .await
            .map_err(|e| unavailable(e.into()))?;
        let last_step = last
            .as_deref()
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes);
        let Some(step) = totp::verify(secret, code, now_step(), last_step) else {
            return Ok(None);
        };
        let b = match last {
            Some(old) => KvBatch::default().if_equals(NS_TOTP_STEP, user.to_string(), old),
            None => KvBatch::default().if_absent(NS_TOTP_STEP, user.to_string()),
        };
        Ok(Some(b.put(
            NS_TOTP_STEP,
            user.to_string(),
            step.to_be_bytes().to_vec(),
        )))
    }

    /// Confirms enrollment with a code from the authenticator app.
    pub async fn totp_confirm(
        &self,
        caller: &Claims,
        code: &str,
    ) -> Result<Confirmed, AccountError> {
        let user = caller.sub.as_str();
        let v = self.account(user).await?;
        if v.account.totp_secret.is_some() {
            return Err(AccountError::MfaAlreadyEnabled);
        }
        let pending = self
            .store
            .kv
            .get(NS_TOTP_PENDING, user)
            .await
            .map_err(|e| unavailable(e.into()))?;
        let Some(secret) = pending else {
            return Err(AccountError::MfaNotEnrolling);
        };
        let Some(batch) = self.claim_step(user, &secret, code).await? else {
            return Err(AccountError::invalid("code", "wrong code"));
        };
        let (codes, hashes) =
            totp::new_recovery_codes().map_err(|e| AccountError::internal(e.to_string()))?;
        let mut new = v.account.clone();
        new.totp_secret = Some(secret.clone());
        new.recovery_hashes = hashes;
        let batch = batch
            .if_equals(NS_TOTP_PENDING, user.to_string(), secret)
            .delete(NS_TOTP_PENDING, user.to_string());
        if !self
            .store
            .update(&v, &new, batch)
            .await
            .map_err(unavailable)?
        {
            return Err(AccountError::MfaConflict);
        }
        tracing::info!(%user, "TOTP enabled");
        let mut out = Confirmed {
            recovery_codes: codes,
            access_token: None,
            expires_in: None,
        };
        if let Some(sid) = &caller.sid {
            let (t, _) = self.access_token(&new, sid)?;
            out.access_token = Some(t);
            out.expires_in = Some(self.cfg.access_ttl.as_secs());
        }
        Ok(out)
    }

    /// The second sign-in step: `challenge` and a TOTP code or a recovery
    /// code. Failures count towards the account's lock.
    pub async fn sign_in_second_factor(
        &self,
        challenge: &str,
        code: Option<&str>,
        recovery_code: Option<&str>,
        device: &str,
        ip: Option<IpAddr>,
    ) -> Result<Tokens, AccountError> {
        let claims = self
            .auth
            .verify_as(challenge, &[Audience::MfaChallenge])
            .map_err(|_| {
                AccountError::unauthorized("invalid or expired challenge; sign in again")
            })?;
        let v = self
            .account(&claims.sub)
            .await
            .map_err(|_| AccountError::unauthorized("unknown account"))?;
        let lock_key = if v.account.email.is_empty() {
            v.account.id.clone()
        } else {
            v.account.email.clone()
        };
        self.check_lock(&lock_key, ip)?;
        let Some(secret) = v.account.totp_secret.clone() else {
            // TOTP was disabled meanwhile: the password step suffices.
            return match self.after_first_factor(&v.account, device).await? {
                SignIn::Tokens(t) => Ok(t),
                SignIn::Challenge { .. } => Err(AccountError::internal("unexpected challenge")),
            };
        };
        let ok = match (code, recovery_code) {
            (Some(code), _) => match self.claim_step(&v.account.id, &secret, code).await? {
                Some(batch) => self
                    .store
                    .kv
                    .apply(batch)
                    .await
                    .map_err(|e| unavailable(e.into()))?,
                None => false,
            },
            (None, Some(rc)) => {
                let h = totp::recovery_hash(rc);
                let mut new = v.account.clone();
                let before = new.recovery_hashes.len();
                new.recovery_hashes
                    .retain(|x| !totp::ct_eq(x.as_bytes(), h.as_bytes()));
                before != new.recovery_hashes.len()
                    && self
                        .store
                        .update(&v, &new, KvBatch::default())
                        .await
                        .map_err(unavailable)?
            }
            (None, None) => {
                return Err(AccountError::invalid("code", "required (or recovery_code)"));
            }
        };
        if !ok {
            self.failed(&lock_key, ip);
            return Err(wrong_code());
        }
        let fresh = self.account(&v.account.id).await?;
        self.start_session(&fresh.account, device).await
    }
}
