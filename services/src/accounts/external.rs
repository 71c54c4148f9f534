//! Sign-in with an external identity provider's ID token: verified by
//! [`Oidc`](super::oidc::Oidc), mapped by (issuer, subject) to a local
//! account, created on first use as a free athlete. The provider's email
//! is kept only if verified and not already registered: an external
//! identity is never linked to an existing account automatically.

use chalktalk_protocol::Role;

use super::error::AccountError;
use super::model::{Account, Tier};
use super::oidc::OidcError;
use super::password::normalise_email;
use super::service::{Accounts, SignIn, unavailable};
use super::store::new_user_id;

impl Accounts {
    /// Sign-in with an external identity provider's ID token.
    pub async fn external(&self, id_token: &str, device: &str) -> Result<SignIn, AccountError> {
        let Some(oidc) = &self.oidc else {
            return Err(AccountError::NotFound(
                "no external identity provider is configured".into(),
            ));
        };
        let claims = oidc.verify(id_token).await.map_err(|e| match e {
            OidcError::Invalid(m) => AccountError::unauthorized(m),
            OidcError::Keys(m) => AccountError::unavailable(m),
        })?;
        for _ in 0..3 {
            if let Some(v) = self
                .store
                .by_external(&claims.iss, &claims.sub)
                .await
                .map_err(unavailable)?
            {
                return self.after_first_factor(&v.account, device).await;
            }
            // Linked to an email only if verified and not already taken
            // (never linked to an existing account automatically).
            let email = match claims
                .verified_email()
                .and_then(|e| normalise_email(e).ok())
            {
                Some(e)
                    if self
                        .store
                        .by_email(&e)
                        .await
                        .map_err(unavailable)?
                        .is_none() =>
                {
                    e
                }
                _ => String::new(),
            };
            let account = Account {
                id: new_user_id().map_err(|e| AccountError::internal(e.to_string()))?,
                email,
                password_hash: String::new(),
                role: Role::Athlete,
                subscription: None,
                tier: Some(Tier::Free),
                created_ms: chalktalk_actors::now_ms(),
                external: Some((claims.iss.clone(), claims.sub.clone())),
                totp_secret: None,
                recovery_hashes: Vec::new(),
            };
            if self.store.create(&account).await.map_err(unavailable)? {
                tracing::info!(user = %account.id, "account created for an external identity");
                return self.after_first_factor(&account, device).await;
            }
        }
        Err(AccountError::unavailable(
            "could not create the account; retry",
        ))
    }
}
