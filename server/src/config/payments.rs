//! The payment settings (Stripe, issue 12): `stripe_secret_key`,
//! `stripe_webhook_secret`, `stripe_api_base` (another API than Stripe's,
//! e.g. a local test server) and `platform_fee_percent` (0-100, recorded
//! only: Connect payouts are not built). Flags and environment over the
//! file, like every other setting.

use super::{ConfigError, Settings};
use chalktalk_services::programs::PaymentsConfig;

fn value(cli: &Option<String>, file: &Option<String>) -> Option<(String, &'static str)> {
    match (cli, file) {
        (Some(v), _) => Some((v.trim().to_owned(), "flag or environment")),
        (None, Some(v)) => Some((v.trim().to_owned(), "config file")),
        (None, None) => None,
    }
    .filter(|(v, _)| !v.is_empty())
}

/// The payment settings of `cli` over `file`.
pub fn resolve(cli: &Settings, file: &Settings) -> Result<PaymentsConfig, ConfigError> {
    let secret_key = value(&cli.stripe_secret_key, &file.stripe_secret_key);
    if let Some((k, from)) = &secret_key
        && !(k.starts_with("sk_") || k.starts_with("rk_"))
    {
        return Err(ConfigError::Value {
            key: "stripe_secret_key",
            value: "(hidden)".into(),
            from,
            message: "a Stripe secret key starts with sk_ (or rk_ for a restricted key)".into(),
        });
    }
    let webhook_secret = value(&cli.stripe_webhook_secret, &file.stripe_webhook_secret);
    let api_base = value(&cli.stripe_api_base, &file.stripe_api_base);
    if let Some((u, from)) = &api_base
        && !(u.starts_with("http://") || u.starts_with("https://"))
    {
        return Err(ConfigError::Value {
            key: "stripe_api_base",
            value: u.clone(),
            from,
            message: "an http:// or https:// URL".into(),
        });
    }
    let fee = match value(&cli.platform_fee_percent, &file.platform_fee_percent) {
        None => 0,
        Some((v, from)) => match v.parse::<u8>() {
            Ok(n) if n <= 100 => n,
            _ => {
                return Err(ConfigError::Value {
                    key: "platform_fee_percent",
                    value: v,
                    from,
                    message: "a whole number within 0..=100".into(),
                });
            }
        },
    };
    Ok(PaymentsConfig {
        secret_key: secret_key.map(|(k, _)| k),
        webhook_secret: webhook_secret.map(|(k, _)| k),
        api_base: api_base.map(|(u, _)| u),
        platform_fee_percent: fee,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_values_and_refusals() {
        let d = Settings::default();
        assert_eq!(resolve(&d, &d).unwrap(), PaymentsConfig::default());
        let cli = Settings {
            stripe_secret_key: Some("sk_test_123".into()),
            stripe_webhook_secret: Some(" whsec_abc ".into()),
            platform_fee_percent: Some("10".into()),
            ..Settings::default()
        };
        let file = Settings {
            stripe_api_base: Some("http://127.0.0.1:9".into()),
            stripe_secret_key: Some("sk_file".into()),
            ..Settings::default()
        };
        let c = resolve(&cli, &file).unwrap();
        assert_eq!(c.secret_key.as_deref(), Some("sk_test_123"));
        assert_eq!(c.webhook_secret.as_deref(), Some("whsec_abc"));
        assert_eq!(c.api_base.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(c.platform_fee_percent, 10);
        for bad in [
            Settings {
                stripe_secret_key: Some("pk_live".into()),
                ..Settings::default()
            },
            Settings {
                platform_fee_percent: Some("101".into()),
                ..Settings::default()
            },
            Settings {
                stripe_api_base: Some("ftp://x".into()),
                ..Settings::default()
            },
        ] {
            assert!(resolve(&bad, &d).is_err());
        }
        let e = resolve(
            &Settings {
                stripe_secret_key: Some("oops".into()),
                ..d.clone()
            },
            &d,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("stripe_secret_key") && !e.contains("oops"),
            "{e}"
        );
    }
}
