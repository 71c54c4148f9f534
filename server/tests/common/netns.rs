//! Network namespaces for the tests that cut links between nodes: one
//! namespace per node, each with a veth into a bridge of the test's own
//! (10.77.N.0/24, the bridge at .1, node i at .11+i), made with iproute2
//! and removed when dropped. A link between two nodes is cut with a
//! blackhole route on each side, which drops only that pair's traffic.

use std::process::Command;

/// The namespaces of one test.
pub struct Net {
    tag: String,
    subnet: u8,
    nodes: usize,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Net {
    /// `nodes` namespaces on a fresh bridge; `Err` (why) where the machine
    /// does not allow it (not root, no iproute2, no veth or bridge).
    pub fn create(nodes: usize) -> Result<Net, String> {
        let pid = std::process::id();
        let net = Net {
            tag: format!("ct{:x}", pid % 0xffff),
            subnet: (pid % 200) as u8 + 20,
            nodes: 0,
        };
        let mut net = net;
        let br = net.bridge();
        let host = format!("{}/24", net.host());
        ip(&["link", "add", &br, "type", "bridge"])?;
        ip(&["addr", "add", &host, "dev", &br])?;
        ip(&["link", "set", &br, "up"])?;
        for i in 0..nodes {
            let (ns, h, n) = (
                net.ns(i),
                format!("{}h{i}", net.tag),
                format!("{}n{i}", net.tag),
            );
            ip(&["netns", "add", &ns])?;
            net.nodes = i + 1;
            ip(&["link", "add", &h, "type", "veth", "peer", "name", &n])?;
            ip(&["link", "set", &h, "master", &br, "up"])?;
            ip(&["link", "set", &n, "netns", &ns])?;
            let addr = format!("{}/24", net.ip(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &n])?;
            ip(&["-n", &ns, "link", "set", &n, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    /// The namespace of node `i`.
    pub fn ns(&self, i: usize) -> String {
        format!("{}ns{i}", self.tag)
    }

    /// The host's address on the bridge (where servers for every node
    /// listen).
    pub fn host(&self) -> String {
        format!("10.77.{}.1", self.subnet)
    }

    /// The network, in CIDR form.
    pub fn cidr(&self) -> String {
        format!("10.77.{}.0/24", self.subnet)
    }

    /// Node `i`'s address.
    pub fn ip(&self, i: usize) -> String {
        format!("10.77.{}.{}", self.subnet, 11 + i)
    }

    /// Cuts the link between nodes `a` and `b` (both directions); each
    /// still reaches everything else.
    pub fn cut(&self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let to = format!("{}/32", self.ip(y));
            ip(&["-n", &self.ns(x), "route", "add", "blackhole", &to]).expect("cut");
        }
    }

    /// Restores the link cut by [`Net::cut`].
    pub fn heal(&self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let to = format!("{}/32", self.ip(y));
            ip(&["-n", &self.ns(x), "route", "del", "blackhole", &to]).expect("heal");
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth, and the other.
        for i in 0..self.nodes {
            let _ = ip(&["netns", "del", &self.ns(i)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}
