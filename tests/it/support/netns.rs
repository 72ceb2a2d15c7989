//! A private Redis on a host of its own: a network namespace made for the test, joined to
//! this one by one veth pair per link (per app instance), so that each instance reaches
//! Redis over a network path of its own that the test can cut.
//!
//! [`NetHost::start`] makes the namespace (`ip netns add`), the links (`ip link add ... type
//! veth`, one end moved into the namespace, a /30 subnet each) and starts `redis-server`
//! inside (`ip netns exec`), bound to every link's far address. [`NetHost::cut`] sets the
//! far end of a link down: the near end loses its carrier and every packet is dropped in
//! silence (no reset, no refusal: connections hang, connects time out), as across a real
//! partition. [`NetHost::heal`] sets it up again. On Drop the server is killed and the
//! namespace deleted, which deletes its veth pairs with it.
//!
//! Addresses are `10.<128 + pid % 120>.<link number>.{1,2}`: private, never routed
//! anywhere but to this namespace, distinct between the test processes of one machine and
//! between the hosts of one process. Without `ip` or the right to make namespaces (not
//! root), [`NetHost::start`] returns `None` after saying why, unless
//! `QUERYCACHE_REQUIRE_SERVICES=1`, where it panics.
//!
//! `tc netem` would add latency to these links, but the kernel this was written on has no
//! `sch_netem` (`tc qdisc add ... netem` answers "Specified qdisc kind is unknown"): the
//! latency tests delay traffic in a proxy instead (`support::proxy`).

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use super::services;

/// The port Redis listens on inside its namespace (nothing else is there).
const PORT: u16 = 6400;
/// How long the server has to answer once started.
const READY: Duration = Duration::from_secs(10);
/// Link numbers handed out in this process (the third octet of their subnet).
static NEXT_LINK: AtomicU16 = AtomicU16::new(0);
/// Hosts made in this process (their names).
static NEXT_HOST: AtomicU16 = AtomicU16::new(0);

/// A network namespace holding a private `redis-server`, joined to this namespace by
/// `links` veth pairs. See the module docs.
#[derive(Debug)]
pub struct NetHost {
    name: String,
    links: Vec<Link>,
    server: Option<Child>,
    dir: tempfile::TempDir,
}

/// One veth pair: `near` here with `near_addr`, `far` in the namespace with `far_addr`.
#[derive(Debug)]
struct Link {
    near: String,
    far: String,
    far_addr: String,
}

impl NetHost {
    /// Makes the namespace, `links` links to it and starts Redis inside. `None` (after
    /// printing why) when namespaces cannot be made here.
    ///
    /// # Panics
    ///
    /// When the namespace was made but its links or its server do not come up.
    pub fn start(links: usize) -> Option<NetHost> {
        let pid = std::process::id();
        let host = NEXT_HOST.fetch_add(1, Ordering::Relaxed);
        let name = format!("qc{}h{host}", pid % 100_000);
        if let Err(reason) = ip(&["netns", "add", &name]) {
            return services::unavailable(format!(
                "cannot make a network namespace (needs root and iproute2): {reason}"
            ));
        }
        let dir = tempfile::Builder::new()
            .prefix("querycache-netns-")
            .tempdir()
            .expect("a temporary directory");
        let mut made = NetHost {
            name,
            links: Vec::new(),
            server: None,
            dir,
        };
        let second = 128 + pid % 120;
        for i in 0..links {
            let third = NEXT_LINK.fetch_add(1, Ordering::Relaxed) % 250;
            let link = Link {
                near: format!("qc{}l{third}a", pid % 10_000),
                far: format!("qc{}l{third}b", pid % 10_000),
                far_addr: format!("10.{second}.{third}.2"),
            };
            let near_addr = format!("10.{second}.{third}.1/30");
            let far_cidr = format!("{}/30", link.far_addr);
            let steps: [&[&str]; 4] = [
                &[
                    "link", "add", &link.near, "type", "veth", "peer", "name", &link.far,
                ],
                &["link", "set", &link.far, "netns", &made.name],
                &["addr", "add", &near_addr, "dev", &link.near],
                &["link", "set", &link.near, "up"],
            ];
            for step in steps {
                ip(step).unwrap_or_else(|e| panic!("link {i}: ip {}: {e}", step.join(" ")));
            }
            made.inside(&["ip", "addr", "add", &far_cidr, "dev", &link.far]);
            made.inside(&["ip", "link", "set", &link.far, "up"]);
            made.links.push(link);
        }
        made.inside(&["ip", "link", "set", "lo", "up"]);
        made.start_server();
        Some(made)
    }

    /// `redis://<far address of link>:6400`: the server, through link `link`.
    pub fn url(&self, link: usize) -> String {
        format!("redis://{}:{PORT}", self.links[link].far_addr)
    }

    /// The server's address through link `link`.
    pub fn addr(&self, link: usize) -> std::net::SocketAddr {
        let ip: std::net::Ipv4Addr = self.links[link]
            .far_addr
            .parse()
            .expect("an IPv4 address made here");
        std::net::SocketAddr::from((ip, PORT))
    }

    /// Cuts link `link`: its far end goes down, and every packet on it is dropped.
    pub fn cut(&self, link: usize) {
        self.inside(&["ip", "link", "set", &self.links[link].far, "down"]);
    }

    /// Heals link `link`.
    pub fn heal(&self, link: usize) {
        self.inside(&["ip", "link", "set", &self.links[link].far, "up"]);
    }

    /// Runs `command` inside the namespace and waits for it.
    ///
    /// # Panics
    ///
    /// When it fails.
    fn inside(&self, command: &[&str]) {
        let mut args = vec!["netns", "exec", &self.name];
        args.extend_from_slice(command);
        ip(&args).unwrap_or_else(|e| panic!("in {}: {}: {e}", self.name, command.join(" ")));
    }

    /// Starts `redis-server` in the namespace, bound to every link's far address, and waits
    /// until it answers through link 0.
    fn start_server(&mut self) {
        let binds: Vec<&str> = self.links.iter().map(|l| l.far_addr.as_str()).collect();
        let log = std::fs::File::create(self.dir.path().join("redis.log")).expect("a log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, "redis-server"])
            .args(["--port", &PORT.to_string()])
            .arg("--bind")
            .args(&binds)
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .spawn()
            .expect("start redis-server in the namespace");
        self.server = Some(child);
        let client = redis::Client::open(self.url(0)).expect("a valid URL");
        let deadline = Instant::now() + READY;
        loop {
            let answered = client
                .get_connection_with_timeout(Duration::from_millis(200))
                .and_then(|mut conn| redis::cmd("PING").query::<String>(&mut conn));
            if answered.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server in {} did not answer within {READY:?}: {answered:?}; log:\n{}",
                self.name,
                std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for NetHost {
    fn drop(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Deleting the namespace deletes the far ends, and a veth pair dies with either end.
        let _ = ip(&["netns", "del", &self.name]);
        for link in &self.links {
            let _ = ip(&["link", "del", &link.near]);
        }
    }
}

/// `ip args`: its stderr on failure.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}
