//! The ScyllaDB store's options and their URL:
//! `scylla://[user[:password]@]host1[:port],host2[:port]/keyspace?dc=NAME&consistency=local_quorum&serial=local_serial&timeout_ms=5000`.
//!
//! - `dc`: the local datacenter; requests go to its nodes first
//!   (`prefer_datacenter`). Without it, every node is equally local.
//! - `consistency`: the consistency of every read and write (default
//!   `local_quorum`): one of `one`, `local_one`, `quorum`, `local_quorum`,
//!   `each_quorum`, `all`.
//! - `serial`: the serial consistency of lightweight transactions and of the
//!   reads that settle a timed-out one (default `local_serial`; `serial`
//!   for a cluster whose LWTs must be linearizable across datacenters).
//! - `timeout_ms`: connecting and each request (default 5000).
//! - `tls=true&ca=PATH`: TLS to every node, verified against the CA
//!   certificates (PEM) in `PATH` (`ca` is required with `tls=true`: a
//!   cluster's certificates are signed by its own CA, not a public one).
//!   The node certificates must name the addresses the driver connects to
//!   (the contact points and the addresses the nodes advertise).
//! - `create_keyspace=N`: migrations create the keyspace when it is missing,
//!   with `NetworkTopologyStrategy` and replication factor N in every
//!   datacenter. Without it the keyspace must exist.
//! - `tablets=false`: with `create_keyspace`, create it with tablets
//!   disabled (ScyllaDB 6+, whose LWT on tablets needs a newer cluster).
//!
//! The password may be percent-encoded; it never appears in an error or in
//! `Debug` output.

use std::time::Duration;

use scylla::statement::{Consistency, SerialConsistency};

use super::ScyllaSetupError;

/// How to reach the cluster and how to talk to it.
#[derive(Clone)]
pub struct ScyllaOptions {
    /// `host:port` contact points.
    pub hosts: Vec<String>,
    pub keyspace: String,
    pub user: Option<String>,
    pub password: Option<String>,
    /// The local datacenter (`dc=`).
    pub datacenter: Option<String>,
    /// Reads and writes (`consistency=`, default LOCAL_QUORUM).
    pub consistency: Consistency,
    /// Lightweight transactions (`serial=`, default LOCAL_SERIAL).
    pub serial: SerialConsistency,
    /// Connecting and each request.
    pub timeout: Duration,
    /// Apply pending migrations on connect; otherwise a schema that is
    /// behind the binary is an error.
    pub migrate: bool,
    /// With `migrate`, create the keyspace when it does not exist, with
    /// this replication map (CQL text, e.g.
    /// `{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}`).
    /// `None`: the keyspace must exist (operators create it, see
    /// docs/OPERATIONS.md).
    pub create_keyspace: Option<String>,
    /// With `create_keyspace`, add `AND tablets = {'enabled': false}`
    /// (ScyllaDB 6+: LWT on tablet keyspaces needs a cluster feature that
    /// older versions lack).
    pub disable_tablets: bool,
    /// `tls=true`: the CA bundle (PEM) node certificates are verified with.
    pub tls_ca: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for ScyllaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaOptions")
            .field("hosts", &self.hosts)
            .field("keyspace", &self.keyspace)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("datacenter", &self.datacenter)
            .field("consistency", &self.consistency)
            .field("serial", &self.serial)
            .field("timeout", &self.timeout)
            .field("migrate", &self.migrate)
            .field("create_keyspace", &self.create_keyspace)
            .field("tls_ca", &self.tls_ca)
            .finish()
    }
}

fn bad(msg: impl Into<String>) -> ScyllaSetupError {
    ScyllaSetupError::BadUrl(msg.into())
}

impl ScyllaOptions {
    /// Parses a `scylla://` URL (nothing is contacted).
    pub fn from_url(url: &str) -> Result<ScyllaOptions, ScyllaSetupError> {
        let rest = url
            .strip_prefix("scylla://")
            .ok_or_else(|| bad("expected scylla://[user[:password]@]host[:port],.../keyspace"))?;
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (authority, keyspace) = rest
            .split_once('/')
            .ok_or_else(|| bad("no keyspace: expected scylla://host[:port]/keyspace"))?;
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (name, pw) = match u.split_once(':') {
                    Some((n, p)) => (n, Some(p)),
                    None => (u, None),
                };
                if name.is_empty() {
                    return Err(bad("empty user name before '@'"));
                }
                let name = percent_decode(name).ok_or_else(|| bad("bad %-escape in the user"))?;
                let pw = match pw {
                    Some(p) => {
                        Some(percent_decode(p).ok_or_else(|| bad("bad %-escape in the password"))?)
                    }
                    None => None,
                };
                (Some(name), pw)
            }
        };
        let hosts = hosts
            .split(',')
            .map(check_host)
            .collect::<Result<Vec<_>, _>>()?;
        check_keyspace(keyspace)?;
        let mut opts = ScyllaOptions {
            hosts,
            keyspace: keyspace.to_string(),
            user,
            password,
            datacenter: None,
            consistency: Consistency::LocalQuorum,
            serial: SerialConsistency::LocalSerial,
            timeout: Duration::from_secs(5),
            migrate: true,
            create_keyspace: None,
            disable_tablets: false,
            tls_ca: None,
        };
        let mut tls = false;
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match k {
                "dc" if !v.is_empty() => opts.datacenter = Some(v.to_string()),
                "dc" => return Err(bad("dc= needs a datacenter name")),
                "consistency" => opts.consistency = consistency(v)?,
                "serial" => {
                    opts.serial = match v {
                        "serial" => SerialConsistency::Serial,
                        "local_serial" => SerialConsistency::LocalSerial,
                        _ => {
                            return Err(bad(format!(
                                "serial={v}: expected serial or local_serial"
                            )));
                        }
                    }
                }
                "timeout_ms" => {
                    let ms: u64 =
                        v.parse().ok().filter(|ms| *ms > 0).ok_or_else(|| {
                            bad(format!("timeout_ms={v}: expected milliseconds > 0"))
                        })?;
                    opts.timeout = Duration::from_millis(ms);
                }
                "tls" => match v {
                    "false" => tls = false,
                    "true" => tls = true,
                    _ => return Err(bad(format!("tls={v}: expected true or false"))),
                },
                "ca" if !v.is_empty() => {
                    let path = percent_decode(v).ok_or_else(|| bad("bad %-escape in ca="))?;
                    opts.tls_ca = Some(path.into());
                }
                "ca" => return Err(bad("ca= needs the path of a PEM file")),
                "create_keyspace" => {
                    let rf: u32 =
                        v.parse()
                            .ok()
                            .filter(|n| (1..=15).contains(n))
                            .ok_or_else(|| {
                                bad(format!(
                                    "create_keyspace={v}: expected a replication factor 1..15"
                                ))
                            })?;
                    opts.create_keyspace = Some(format!(
                        "{{'class': 'NetworkTopologyStrategy', 'replication_factor': {rf}}}"
                    ));
                }
                "tablets" => match v {
                    "false" => opts.disable_tablets = true,
                    "true" => opts.disable_tablets = false,
                    _ => return Err(bad(format!("tablets={v}: expected true or false"))),
                },
                other => return Err(bad(format!("unknown parameter `{other}`"))),
            }
        }
        match (tls, &opts.tls_ca) {
            (true, None) => {
                return Err(bad(
                    "tls=true needs ca=PATH: the PEM file of the CA that signed the nodes' certificates",
                ));
            }
            (false, Some(_)) => return Err(bad("ca= is only used with tls=true")),
            _ => {}
        }
        Ok(opts)
    }
}

/// Checks that `url` is a valid `scylla://` URL (nothing is contacted).
pub fn check_url(url: &str) -> Result<(), ScyllaSetupError> {
    ScyllaOptions::from_url(url).map(drop)
}

fn consistency(v: &str) -> Result<Consistency, ScyllaSetupError> {
    Ok(match v {
        "one" => Consistency::One,
        "local_one" => Consistency::LocalOne,
        "quorum" => Consistency::Quorum,
        "local_quorum" => Consistency::LocalQuorum,
        "each_quorum" => Consistency::EachQuorum,
        "all" => Consistency::All,
        _ => {
            return Err(bad(format!(
                "consistency={v}: expected one, local_one, quorum, local_quorum, each_quorum or all"
            )));
        }
    })
}

fn check_host(h: &str) -> Result<String, ScyllaSetupError> {
    if h.is_empty() {
        return Err(bad("empty host in the host list"));
    }
    let (host, port) = if let Some(v6) = h.strip_prefix('[') {
        let (addr, rest) = v6
            .split_once(']')
            .ok_or_else(|| bad(format!("host {h}: unclosed '['")))?;
        (format!("[{addr}]"), rest.strip_prefix(':'))
    } else {
        match h.split_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (h.to_string(), None),
        }
    };
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(bad(format!("bad host `{host}`")));
    }
    let port = match port {
        None => 9042,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| bad(format!("host {host}: port `{p}` is not a number 1..65535")))?,
    };
    Ok(format!("{host}:{port}"))
}

/// Keyspace names: a letter then letters, digits or `_`, at most 48, lower
/// case (CQL folds unquoted names to lower case; the adapter never quotes).
fn check_keyspace(ks: &str) -> Result<(), ScyllaSetupError> {
    let ok = !ks.is_empty()
        && ks.len() <= 48
        && ks.starts_with(|c: char| c.is_ascii_lowercase())
        && ks
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(bad(format!(
            "keyspace `{ks}`: expected a lower-case letter then letters, digits or _ (at most 48)"
        )))
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_urls() {
        let o = ScyllaOptions::from_url("scylla://db1,db2:9043/chalktalk").unwrap();
        assert_eq!(o.hosts, vec!["db1:9042", "db2:9043"]);
        assert_eq!(o.keyspace, "chalktalk");
        assert_eq!(o.consistency, Consistency::LocalQuorum);
        assert_eq!(o.serial, SerialConsistency::LocalSerial);
        assert!(o.user.is_none() && o.password.is_none() && o.datacenter.is_none());
        assert!(o.create_keyspace.is_none() && !o.disable_tablets);

        let o = ScyllaOptions::from_url("scylla://h/ks?create_keyspace=3&tablets=false").unwrap();
        assert_eq!(
            o.create_keyspace.as_deref(),
            Some("{'class': 'NetworkTopologyStrategy', 'replication_factor': 3}")
        );
        assert!(o.disable_tablets);

        let o = ScyllaOptions::from_url(
            "scylla://chalk:p%40ss%3Aw@10.0.0.1:9042,[::1]:19042/ks_2?dc=eu-west&consistency=quorum&serial=serial&tls=false&timeout_ms=1500",
        )
        .unwrap();
        assert_eq!(o.hosts, vec!["10.0.0.1:9042", "[::1]:19042"]);
        assert_eq!(o.user.as_deref(), Some("chalk"));
        assert_eq!(o.password.as_deref(), Some("p@ss:w"));
        assert_eq!(o.datacenter.as_deref(), Some("eu-west"));
        assert_eq!(o.consistency, Consistency::Quorum);
        assert_eq!(o.serial, SerialConsistency::Serial);
        assert_eq!(o.timeout, Duration::from_millis(1500));
        let shown = format!("{o:?}");
        assert!(!shown.contains("p@ss"), "{shown}");
    }

    #[test]
    fn bad_urls_say_why_and_hide_the_password() {
        for (url, why) in [
            ("postgres://h/db", "expected scylla://"),
            ("scylla://h:9042", "no keyspace"),
            ("scylla://h:9042/", "keyspace ``"),
            ("scylla://h:9042/Chalk", "keyspace `Chalk`"),
            ("scylla://h:notaport/ks", "port `notaport`"),
            ("scylla://h:0/ks", "port `0`"),
            ("scylla://h1,,h2/ks", "empty host"),
            ("scylla://u:hunter2@/ks", "empty host"),
            ("scylla://:hunter2@h/ks", "empty user"),
            ("scylla://h/ks?consistency=most", "consistency=most"),
            ("scylla://h/ks?serial=quorum", "serial=quorum"),
            ("scylla://u:hunter2@h/ks?tls=true", "needs ca=PATH"),
            ("scylla://h/ks?ca=x.pem", "only used with tls=true"),
            ("scylla://h/ks?tls=true&ca=", "needs the path"),
            ("scylla://h/ks?tls=yes", "tls=yes"),
            ("scylla://h/ks?timeout_ms=0", "timeout_ms=0"),
            ("scylla://h/ks?dc=", "dc= needs"),
            ("scylla://h/ks?colour=blue", "unknown parameter `colour`"),
            ("scylla://h/ks?create_keyspace=0", "create_keyspace=0"),
            ("scylla://h/ks?tablets=no", "tablets=no"),
            ("scylla://u:bad%zzpw@h/ks", "password"),
        ] {
            let e = check_url(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
            assert!(!e.contains("hunter2"), "{url}: {e}");
        }
    }
}
