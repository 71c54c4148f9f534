//! The rate-limit part of the configuration and the parsers of its settings:
//! `rate_limits` (quota overrides, `class=RATE/UNIT[:BURST]` separated by
//! commas, e.g. `public=200/min:300,upload=20/hour`) and `trusted_proxies`
//! (IP addresses or CIDR blocks separated by commas).

use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use super::{Class, Quota, Quotas};

/// How a node limits requests (see `RateLimits::start`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// The quota table ([`Quotas::defaults`] unless overridden).
    pub quotas: Quotas,
    /// Peers whose `X-Forwarded-For` is believed (load balancers). Empty:
    /// the client is always the TCP peer.
    pub trusted_proxies: Vec<Cidr>,
    /// Longest a request waits on Redis before the local limiter decides
    /// (and Redis is treated as down until it answers again).
    pub redis_timeout: Duration,
    /// About how many buckets the in-process limiter keeps at most.
    pub local_max_keys: usize,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            quotas: Quotas::defaults(),
            trusted_proxies: Vec::new(),
            redis_timeout: Duration::from_millis(50),
            local_max_keys: 100_000,
        }
    }
}

impl RateLimitConfig {
    /// Applies the `rate_limits` and `trusted_proxies` settings (either may
    /// be empty).
    pub fn from_settings(rate_limits: &str, trusted_proxies: &str) -> Result<Self, String> {
        let mut c = RateLimitConfig::default();
        for item in rate_limits
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            let (class, quota) = parse_override(item, &c.quotas)?;
            c.quotas.set(class, quota);
        }
        c.trusted_proxies = trusted_proxies
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<_, _>>()?;
        Ok(c)
    }

    /// True when `ip` is a trusted proxy.
    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|c| c.contains(ip))
    }
}

/// `class=RATE/UNIT[:BURST]`; without a burst, the class keeps its ratio of
/// burst to rate.
fn parse_override(item: &str, current: &Quotas) -> Result<(Class, Quota), String> {
    let bad = |why: &str| format!("{item:?}: {why} (expected class=RATE/UNIT[:BURST])");
    let (name, spec) = item.split_once('=').ok_or_else(|| bad("no `=`"))?;
    let class = Class::from_name(name.trim()).ok_or_else(|| {
        let names: Vec<&str> = Class::ALL.iter().map(|c| c.name()).collect();
        bad(&format!("unknown class; one of {}", names.join(", ")))
    })?;
    if class == Class::WsFrame {
        return Err(bad(
            "WebSocket frames are set by the node's frame limits (welcome)",
        ));
    }
    let (rate, rest) = spec.split_once('/').ok_or_else(|| bad("no `/`"))?;
    let (unit, burst) = match rest.split_once(':') {
        Some((u, b)) => (u, Some(b)),
        None => (rest, None),
    };
    let rate: u32 = rate.trim().parse().map_err(|_| bad("bad rate"))?;
    let period = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "day" => Duration::from_secs(86_400),
        _ => return Err(bad("unit must be s, min, hour or day")),
    };
    let burst: u32 = match burst {
        Some(b) => b.trim().parse().map_err(|_| bad("bad burst"))?,
        None => {
            let q = current.get(class);
            let scaled = u64::from(rate) * u64::from(q.burst) / u64::from(q.rate.max(1));
            u32::try_from(scaled).unwrap_or(u32::MAX)
        }
    };
    if rate == 0 || burst == 0 {
        return Err(bad("rate and burst must be at least 1"));
    }
    Ok((class, Quota::new(rate, period, burst)))
}

/// An IP block: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// True when `ip` is inside the block (IPv4-mapped IPv6 addresses count
    /// as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(a) & mask == u32::from(b) & mask
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(a) & mask == u128::from(b) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let bad = || format!("{s:?} is not an IP address or CIDR block");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = IpAddr::from_str(addr.trim())
            .map_err(|_| bad())?
            .to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(Cidr { addr, prefix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides() {
        let c = RateLimitConfig::from_settings(" public=200/min:300, upload=20/hour", "").unwrap();
        assert_eq!(
            c.quotas.get(Class::Public),
            Quota::new(200, Duration::from_secs(60), 300)
        );
        // Burst keeps the ratio 15:10.
        assert_eq!(c.quotas.get(Class::Upload).burst, 30);
        assert_eq!(c.quotas.get(Class::Analytics).rate, 500);
        for bad in [
            "public",
            "nope=1/min",
            "public=x/min",
            "public=1/week",
            "public=0/min",
            "public=1/min:0",
            "ws_frame=1/s",
        ] {
            assert!(RateLimitConfig::from_settings(bad, "").is_err(), "{bad}");
        }
    }

    #[test]
    fn proxies() {
        let c = RateLimitConfig::from_settings("", "10.0.0.0/8, 127.0.0.1, ::1").unwrap();
        let ip = |s: &str| IpAddr::from_str(s).unwrap();
        assert!(c.is_trusted(ip("10.1.2.3")));
        assert!(c.is_trusted(ip("127.0.0.1")));
        assert!(c.is_trusted(ip("::ffff:127.0.0.1")));
        assert!(c.is_trusted(ip("::1")));
        assert!(!c.is_trusted(ip("11.0.0.1")));
        assert!(!c.is_trusted(ip("127.0.0.2")));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nope".parse::<Cidr>().is_err());
    }
}
