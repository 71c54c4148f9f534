//! The cluster settings (`cluster_listen`, `cluster_seeds`,
//! `cluster_cookie`, `node_name`, `cluster_heartbeat_ms`,
//! `cluster_suspect_ms`, `cluster_down_ms`, `cluster_lease_ms`,
//! `cluster_relay_port`, `cluster_placement`, and the
//! optional `cluster_tls_cert`/`_key`/`_ca`/`_name`): none of them set means the
//! node runs alone; with `cluster_listen` a cookie is required, and the
//! timers must be ordered heartbeat < suspect < down.

use std::net::SocketAddr;
use std::time::Duration;

use chalktalk_cluster::{ClusterConfig, Timing, Tls, TlsFiles};

use super::{ConfigError, Settings};

fn value<'a>(cli: &'a Option<String>, file: &'a Option<String>) -> Option<(&'a str, &'static str)> {
    match (cli, file) {
        (Some(v), _) => Some((v.trim(), "flag or environment")),
        (None, Some(v)) => Some((v.trim(), "config file")),
        (None, None) => None,
    }
}

fn bad(
    key: &'static str,
    value: &str,
    from: &'static str,
    message: impl Into<String>,
) -> ConfigError {
    ConfigError::Value {
        key,
        value: value.to_string(),
        from,
        message: message.into(),
    }
}

fn ms(
    key: &'static str,
    cli: &Option<String>,
    file: &Option<String>,
    default: u64,
) -> Result<Duration, ConfigError> {
    let Some((v, from)) = value(cli, file) else {
        return Ok(Duration::from_millis(default));
    };
    match v.parse::<u64>() {
        Ok(n) if (10..=600_000).contains(&n) => Ok(Duration::from_millis(n)),
        _ => Err(bad(
            key,
            v,
            from,
            "must be a whole number of ms within 10..=600000",
        )),
    }
}

/// The cluster settings of `cli` over `file`; `http` is the node's HTTP
/// listen address (shown to operators).
pub fn resolve(
    cli: &Settings,
    file: &Settings,
    http: SocketAddr,
) -> Result<Option<ClusterConfig>, ConfigError> {
    let Some((listen_text, from)) =
        value(&cli.cluster_listen, &file.cluster_listen).filter(|(v, _)| !v.is_empty())
    else {
        if let Some((v, from)) =
            value(&cli.cluster_seeds, &file.cluster_seeds).filter(|(v, _)| !v.is_empty())
        {
            return Err(bad(
                "cluster_seeds (CHALKTALK_CLUSTER_SEEDS)",
                v,
                from,
                "needs cluster_listen (CHALKTALK_CLUSTER_LISTEN)",
            ));
        }
        return Ok(None);
    };
    let listen: SocketAddr = listen_text.parse().map_err(|e: std::net::AddrParseError| {
        bad(
            "cluster_listen (CHALKTALK_CLUSTER_LISTEN)",
            listen_text,
            from,
            format!("expected ip:port: {e}"),
        )
    })?;
    if listen.port() == 0 {
        return Err(bad(
            "cluster_listen (CHALKTALK_CLUSTER_LISTEN)",
            listen_text,
            from,
            "needs a fixed port (other nodes dial it)",
        ));
    }
    let cookie = match value(&cli.cluster_cookie, &file.cluster_cookie) {
        Some((c, _)) if c.len() >= 16 => c.to_string(),
        Some((_, from)) => {
            return Err(bad(
                "cluster_cookie (CHALKTALK_CLUSTER_COOKIE)",
                "***",
                from,
                "must be at least 16 bytes",
            ));
        }
        None => {
            return Err(bad(
                "cluster_cookie (CHALKTALK_CLUSTER_COOKIE)",
                "",
                "settings",
                "required with cluster_listen: the same secret on every node",
            ));
        }
    };
    let mut seeds = Vec::new();
    if let Some((list, from)) = value(&cli.cluster_seeds, &file.cluster_seeds) {
        for seed in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match seed.rsplit_once(':') {
                Some((host, port))
                    if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) =>
                {
                    seeds.push(seed.to_string());
                }
                _ => {
                    return Err(bad(
                        "cluster_seeds (CHALKTALK_CLUSTER_SEEDS)",
                        seed,
                        from,
                        "expected host:port, separated by commas",
                    ));
                }
            }
        }
    }
    let heartbeat = ms(
        "cluster_heartbeat_ms",
        &cli.cluster_heartbeat_ms,
        &file.cluster_heartbeat_ms,
        500,
    )?;
    let suspect_after = ms(
        "cluster_suspect_ms",
        &cli.cluster_suspect_ms,
        &file.cluster_suspect_ms,
        1_500,
    )?;
    let down_after = ms(
        "cluster_down_ms",
        &cli.cluster_down_ms,
        &file.cluster_down_ms,
        3_000,
    )?;
    if !(heartbeat < suspect_after && suspect_after < down_after) {
        return Err(bad(
            "cluster_heartbeat_ms / cluster_suspect_ms / cluster_down_ms",
            &format!(
                "{} / {} / {}",
                heartbeat.as_millis(),
                suspect_after.as_millis(),
                down_after.as_millis()
            ),
            "settings",
            "must be increasing: heartbeat < suspect < down",
        ));
    }
    let lease = ms(
        "cluster_lease_ms",
        &cli.cluster_lease_ms,
        &file.cluster_lease_ms,
        4_000,
    )?;
    if lease < heartbeat * 2 {
        return Err(bad(
            "cluster_lease_ms (CHALKTALK_CLUSTER_LEASE_MS)",
            &lease.as_millis().to_string(),
            "settings",
            "must be at least twice cluster_heartbeat_ms",
        ));
    }
    let node = match value(&cli.node_name, &file.node_name) {
        Some((n, _)) if !n.is_empty() && n.len() <= 128 => n.to_string(),
        Some((n, from)) => {
            return Err(bad(
                "node_name (CHALKTALK_NODE_NAME)",
                n,
                from,
                "1 to 128 characters",
            ));
        }
        None => listen.to_string(),
    };
    let relay_port = match value(&cli.cluster_relay_port, &file.cluster_relay_port) {
        None => 0,
        Some((v, from)) => v.parse::<u16>().map_err(|_| {
            bad(
                "cluster_relay_port (CHALKTALK_CLUSTER_RELAY_PORT)",
                v,
                from,
                "a port number (0: any free port)",
            )
        })?,
    };
    let placement = match value(&cli.cluster_placement, &file.cluster_placement) {
        None => Default::default(),
        Some((v, from)) => v.parse().map_err(|m: String| {
            bad(
                "cluster_placement (CHALKTALK_CLUSTER_PLACEMENT)",
                v,
                from,
                m,
            )
        })?,
    };
    let tls = tls(cli, file)?;
    Ok(Some(ClusterConfig {
        placement,
        relay_port,
        node,
        listen,
        advertise_host: listen.ip().to_string(),
        http: http.to_string(),
        seeds,
        cookie,
        heartbeat,
        timing: Timing {
            suspect_after,
            down_after,
            forget_after: Duration::from_secs(600),
        },
        lease,
        tls,
    }))
}

/// The TLS settings: none of cert, key and CA (plain TCP), or all three.
fn tls(cli: &Settings, file: &Settings) -> Result<Option<Tls>, ConfigError> {
    let cert = value(&cli.cluster_tls_cert, &file.cluster_tls_cert);
    let key = value(&cli.cluster_tls_key, &file.cluster_tls_key);
    let ca = value(&cli.cluster_tls_ca, &file.cluster_tls_ca);
    let name = value(&cli.cluster_tls_name, &file.cluster_tls_name)
        .map_or("chalktalk-cluster", |(n, _)| n);
    let (cert, key, ca) = match (cert, key, ca) {
        (None, None, None) => return Ok(None),
        (Some(c), Some(k), Some(a)) => (c, k, a),
        (c, k, a) => {
            let from = c.or(k).or(a).map_or("settings", |(_, f)| f);
            return Err(bad(
                "cluster_tls_cert / cluster_tls_key / cluster_tls_ca",
                "",
                from,
                "set all three (CHALKTALK_CLUSTER_TLS_CERT, _KEY, _CA) or none",
            ));
        }
    };
    let files = TlsFiles {
        cert: cert.0.into(),
        key: key.0.into(),
        ca: ca.0.into(),
        name: name.to_string(),
    };
    Tls::load(&files)
        .map(Some)
        .map_err(|e| bad("cluster_tls_*", cert.0, cert.1, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http() -> SocketAddr {
        "127.0.0.1:7700".parse().unwrap()
    }

    #[test]
    fn alone_unless_a_listener_is_set() {
        assert!(
            resolve(&Settings::default(), &Settings::default(), http())
                .unwrap()
                .is_none()
        );
        let seeds_only = Settings {
            cluster_seeds: Some("127.0.0.1:7801".into()),
            ..Settings::default()
        };
        let e = resolve(&seeds_only, &Settings::default(), http())
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs cluster_listen"), "{e}");
    }

    #[test]
    fn a_cluster_needs_a_cookie_and_good_seeds() {
        let mut s = Settings {
            cluster_listen: Some("127.0.0.1:7800".into()),
            ..Settings::default()
        };
        let e = resolve(&s, &Settings::default(), http())
            .unwrap_err()
            .to_string();
        assert!(e.contains("cluster_cookie"), "{e}");
        s.cluster_cookie = Some("short".into());
        let e = resolve(&s, &Settings::default(), http())
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 16") && !e.contains("short"), "{e}");
        s.cluster_cookie = Some("a-cookie-of-enough-length".into());
        s.cluster_seeds = Some("127.0.0.1:7801, nohost".into());
        let e = resolve(&s, &Settings::default(), http())
            .unwrap_err()
            .to_string();
        assert!(e.contains("nohost"), "{e}");
        s.cluster_seeds = Some("127.0.0.1:7801,127.0.0.1:7802".into());
        let c = resolve(&s, &Settings::default(), http()).unwrap().unwrap();
        assert_eq!(c.node, "127.0.0.1:7800");
        assert_eq!(c.seeds, ["127.0.0.1:7801", "127.0.0.1:7802"]);
        assert_eq!(c.heartbeat, Duration::from_millis(500));
        s.cluster_suspect_ms = Some("400".into());
        let e = resolve(&s, &Settings::default(), http())
            .unwrap_err()
            .to_string();
        assert!(e.contains("increasing"), "{e}");
    }

    #[test]
    fn relay_port_and_placement_are_checked() {
        let mut s = Settings {
            cluster_listen: Some("127.0.0.1:7800".into()),
            cluster_cookie: Some("a-cookie-of-enough-length".into()),
            ..Settings::default()
        };
        let c = resolve(&s, &Settings::default(), http()).unwrap().unwrap();
        assert_eq!(c.relay_port, 0);
        assert_eq!(c.placement, chalktalk_actors::lease::PlacePolicy::FirstUse);
        s.cluster_relay_port = Some("7900".into());
        s.cluster_placement = Some("rendezvous".into());
        let c = resolve(&s, &Settings::default(), http()).unwrap().unwrap();
        assert_eq!(c.relay_port, 7900);
        assert_eq!(
            c.placement,
            chalktalk_actors::lease::PlacePolicy::Rendezvous
        );
        s.cluster_relay_port = Some("70000".into());
        let e = resolve(&s, &Settings::default(), http())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("cluster_relay_port") && e.contains("70000"),
            "{e}"
        );
        s.cluster_relay_port = None;
        s.cluster_placement = Some("random".into());
        let e = resolve(&s, &Settings::default(), http())
            .unwrap_err()
            .to_string();
        assert!(e.contains("first_use, rendezvous"), "{e}");
    }
}
