//! The account settings of the configuration (flags and environment over
//! the file over defaults, like every other setting): the external
//! identity provider (`oidc_issuer`, `oidc_audience`, `oidc_jwks_url`, all
//! three or none) and the sign-in lock (`signin_lock_after`,
//! `signin_lock_secs`).

use std::time::Duration;

use super::{ConfigError, Settings};
use chalktalk_services::accounts::{AccountsConfig, OidcConfig};

fn value<'a>(cli: &'a Option<String>, file: &'a Option<String>) -> Option<(&'a str, &'static str)> {
    match (cli, file) {
        (Some(v), _) => Some((v.trim(), "flag or environment")),
        (None, Some(v)) => Some((v.trim(), "config file")),
        (None, None) => None,
    }
}

fn number(
    key: &'static str,
    cli: &Option<String>,
    file: &Option<String>,
    default: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some((v, from)) = value(cli, file) else {
        return Ok(default);
    };
    match v.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::Value {
            key,
            value: v.to_string(),
            from,
            message: format!("must be a whole number within 1..={max}"),
        }),
    }
}

/// The account settings of `cli` over `file` over the defaults.
pub fn resolve(cli: &Settings, file: &Settings) -> Result<AccountsConfig, ConfigError> {
    let mut c = AccountsConfig {
        lock_after: number(
            "signin_lock_after",
            &cli.signin_lock_after,
            &file.signin_lock_after,
            5,
            1000,
        )? as u32,
        ..AccountsConfig::default()
    };
    c.lock_for = Duration::from_secs(number(
        "signin_lock_secs",
        &cli.signin_lock_secs,
        &file.signin_lock_secs,
        900,
        7 * 24 * 3600,
    )?);
    let issuer = value(&cli.oidc_issuer, &file.oidc_issuer).filter(|(v, _)| !v.is_empty());
    let audience = value(&cli.oidc_audience, &file.oidc_audience).filter(|(v, _)| !v.is_empty());
    let jwks = value(&cli.oidc_jwks_url, &file.oidc_jwks_url).filter(|(v, _)| !v.is_empty());
    c.oidc = match (issuer, audience, jwks) {
        (None, None, None) => None,
        (Some((i, _)), Some((a, _)), Some((j, from))) => {
            if !j.starts_with("http://") {
                return Err(ConfigError::Value {
                    key: "oidc_jwks_url",
                    value: j.to_string(),
                    from,
                    message:
                        "only http:// is supported (put a local proxy in front of an https:// JWKS)"
                            .into(),
                });
            }
            Some(OidcConfig::new(i, a, j))
        }
        _ => {
            return Err(ConfigError::Value {
                key: "oidc_issuer",
                value: String::new(),
                from: "settings",
                message: "oidc_issuer, oidc_audience and oidc_jwks_url go together".into(),
            });
        }
    };
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_oidc() {
        let d = Settings::default();
        assert_eq!(resolve(&d, &d).unwrap(), AccountsConfig::default());
        let cli = Settings {
            oidc_issuer: Some("https://idp".into()),
            oidc_audience: Some("chalktalk".into()),
            oidc_jwks_url: Some("http://127.0.0.1:9/jwks".into()),
            signin_lock_after: Some("3".into()),
            ..Settings::default()
        };
        let c = resolve(&cli, &d).unwrap();
        assert_eq!(c.lock_after, 3);
        assert_eq!(c.oidc.unwrap().issuer, "https://idp");
        let partial = Settings {
            oidc_issuer: Some("x".into()),
            ..Settings::default()
        };
        assert!(resolve(&partial, &d).is_err());
        let bad = Settings {
            signin_lock_secs: Some("0".into()),
            ..Settings::default()
        };
        assert!(
            resolve(&bad, &d)
                .unwrap_err()
                .to_string()
                .contains("signin_lock_secs")
        );
    }
}
