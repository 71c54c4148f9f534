//! The payment settings (Stripe, issue 12): `stripe_secret_key`,
//! `stripe_webhook_secret`, `stripe_connect_webhook_secret`,
//! `stripe_api_base` (another API than Stripe's,
//! e.g. a local test server), `platform_fee_percent` (0-100, the
//! application fee of destination charges), the subscription plans' Stripe
//! Price ids (`stripe_price_coach_basic`, `stripe_price_coach_premium`,
//! `stripe_price_athlete_paid`), `past_due_grace_secs` and
//! `coach_trial_days`. Flags and
//! environment over the file, like every other setting.

use super::{ConfigError, Settings};
use chalktalk_services::programs::{
    DEFAULT_COACH_TRIAL_DAYS, DEFAULT_GRACE_SECS, PaymentsConfig, PlanPrices,
};

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
    let price =
        |cli: &Option<String>, file: &Option<String>, key: &'static str| match value(cli, file) {
            None => Ok(None),
            Some((v, _)) if v.len() <= 255 && !v.chars().any(char::is_whitespace) => Ok(Some(v)),
            Some((v, from)) => Err(ConfigError::Value {
                key,
                value: v,
                from,
                message: "a Stripe Price id (at most 255 characters, no spaces)".into(),
            }),
        };
    let prices = PlanPrices {
        coach_basic: price(
            &cli.stripe_price_coach_basic,
            &file.stripe_price_coach_basic,
            "stripe_price_coach_basic",
        )?,
        coach_premium: price(
            &cli.stripe_price_coach_premium,
            &file.stripe_price_coach_premium,
            "stripe_price_coach_premium",
        )?,
        athlete_paid: price(
            &cli.stripe_price_athlete_paid,
            &file.stripe_price_athlete_paid,
            "stripe_price_athlete_paid",
        )?,
    };
    let grace = match value(&cli.past_due_grace_secs, &file.past_due_grace_secs) {
        None => DEFAULT_GRACE_SECS,
        Some((v, from)) => match v.parse::<u32>() {
            Ok(n) => u64::from(n),
            Err(_) => {
                return Err(ConfigError::Value {
                    key: "past_due_grace_secs",
                    value: v,
                    from,
                    message: "a whole number of seconds (0 to about 136 years)".into(),
                });
            }
        },
    };
    let trial = match value(&cli.coach_trial_days, &file.coach_trial_days) {
        None => DEFAULT_COACH_TRIAL_DAYS,
        // Stripe takes 1..=730 days.
        Some((v, from)) => match v.parse::<u32>() {
            Ok(n) if n <= 730 => n,
            _ => {
                return Err(ConfigError::Value {
                    key: "coach_trial_days",
                    value: v,
                    from,
                    message: "a whole number of days within 0..=730 (0: no trial)".into(),
                });
            }
        },
    };
    Ok(PaymentsConfig {
        secret_key: secret_key.map(|(k, _)| k),
        webhook_secret: webhook_secret.map(|(k, _)| k),
        connect_webhook_secret: value(
            &cli.stripe_connect_webhook_secret,
            &file.stripe_connect_webhook_secret,
        )
        .map(|(k, _)| k),
        api_base: api_base.map(|(u, _)| u),
        platform_fee_percent: fee,
        prices,
        past_due_grace_secs: grace,
        coach_trial_days: trial,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_values_and_refusals() {
        let d = Settings::default();
        let none = resolve(&d, &d).unwrap();
        assert_eq!(
            (none.secret_key, none.prices),
            (None, PlanPrices::default())
        );
        let cli = Settings {
            stripe_secret_key: Some("sk_test_123".into()),
            stripe_webhook_secret: Some(" whsec_abc ".into()),
            platform_fee_percent: Some("10".into()),
            stripe_price_coach_premium: Some("price_premium".into()),
            past_due_grace_secs: Some("60".into()),
            coach_trial_days: Some("0".into()),
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
        assert_eq!(c.prices.coach_premium.as_deref(), Some("price_premium"));
        assert_eq!(c.prices.coach_basic, None);
        assert_eq!(c.past_due_grace_secs, 60);
        assert_eq!(c.coach_trial_days, 0);
        let defaults = resolve(&d, &d).unwrap();
        assert_eq!(
            (defaults.past_due_grace_secs, defaults.coach_trial_days),
            (DEFAULT_GRACE_SECS, DEFAULT_COACH_TRIAL_DAYS)
        );
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
            Settings {
                past_due_grace_secs: Some("-1".into()),
                ..Settings::default()
            },
            Settings {
                coach_trial_days: Some("731".into()),
                ..Settings::default()
            },
            Settings {
                stripe_price_athlete_paid: Some("price with space".into()),
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
