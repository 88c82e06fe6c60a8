//! The lab network: namespaces `src`, `dst` (hypervisor hosts) and `client`
//! (the probe's host and the guest LAN's switch), a shaped veth migration
//! link between src and dst, and the guest NIC as a tap in src and in dst,
//! each bridged to an uplink into the client bridge.
//!
//! Built with `ip`/`tc` commands an operator can copy; torn down
//! idempotently on drop. Namespace names carry the owning pid, so leftovers
//! of a killed run are recognised and swept ([`sweep_leftovers`]).
//!
//! Addresses (all in the benchmarking range 198.18.0.0/15):
//! migration link 198.18.0.1 (src) – 198.18.0.2 (dst); guest LAN
//! 198.18.1.0/24 with the client at .1 and the guest at .10.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicU32, Ordering};

use migbench_model::units::{BitRate, Dur, Percent};

use crate::system::{owner_pid, pid_alive, run, run_quiet, CommandError, OWNED_PREFIX};

/// Prefix of every namespace migbench creates.
pub const NS_PREFIX: &str = OWNED_PREFIX;
/// Source host's address on the migration link.
pub const SRC_MIG_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Destination host's address on the migration link.
pub const DST_MIG_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The client's address on the guest LAN.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// The client's MAC on the guest LAN (fixed: see `build`).
pub const CLIENT_MAC: &str = "52:54:00:6d:62:fe";
/// The guest's address.
pub const GUEST_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
/// The storage host's address on its link (shared-nbd).
pub const STORAGE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
/// Port of the storage host's NBD server.
pub const STORAGE_NBD_PORT: u16 = 10810;
/// Guest LAN prefix length.
pub const GUEST_PREFIX: u8 = 24;
/// Port the destination QEMU listens on for the migration stream.
pub const MIGRATION_PORT: u16 = 4444;

/// Packets the tap queues toward a paused QEMU (see `build`).
pub const TAP_QUEUE: u32 = 8;

static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// Link shaping for one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shaping {
    /// Rate limit (tbf) in each direction.
    pub rate: BitRate,
    /// One-way delay (netem).
    pub delay: Dur,
    /// Delay variation (netem).
    pub jitter: Dur,
    /// Loss (netem).
    pub loss: Percent,
}

impl Shaping {
    fn needs_netem(&self) -> bool {
        !self.delay.0.is_zero() || !self.jitter.0.is_zero() || self.loss.0 > 0.0
    }
}

/// One lab's namespaces; dropping it removes them (and kills what runs in them).
#[derive(Debug)]
pub struct LabNet {
    /// Name of the source host namespace.
    pub src: String,
    /// Name of the destination host namespace.
    pub dst: String,
    /// Name of the client namespace.
    pub client: String,
    /// Name of the storage host's namespace, when there is one.
    pub storage: Option<String>,
    /// How the migration link is shaped now.
    shaping: Shaping,
    torn_down: bool,
}

/// Errors building the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A setup command failed.
    #[error("Lab setup failed")]
    Command(#[from] CommandError),
    /// The kernel lacks netem but the scenario needs it.
    #[error("Link delay, jitter and loss need the kernel's netem qdisc (sch_netem), which this kernel lacks ({0}). Remove link.delay, link.jitter and link.loss from the scenario, or run on a kernel with netem")]
    NoNetem(String),
}

impl LabNet {
    /// Create the namespaces and links and shape the migration link.
    pub fn create(shaping: &Shaping) -> Result<LabNet, LabError> {
        let n = NEXT_LAB.fetch_add(1, Ordering::Relaxed);
        let base = format!("{NS_PREFIX}{}-{n}", std::process::id());
        let mut lab = LabNet {
            src: format!("{base}-src"),
            dst: format!("{base}-dst"),
            client: format!("{base}-client"),
            storage: None,
            shaping: *shaping,
            torn_down: false,
        };
        // On error, `lab` drops here and removes whatever was made.
        lab.build(shaping)?;
        Ok(lab)
    }

    fn build(&mut self, shaping: &Shaping) -> Result<(), LabError> {
        let (src, dst, cli) = (self.src.clone(), self.dst.clone(), self.client.clone());
        for ns in [&src, &dst, &cli] {
            run("ip", &["netns", "add", ns])?;
            ip(ns, &["link", "set", "lo", "up"])?;
        }
        // Migration link.
        ip(
            &src,
            &[
                "link", "add", "mig0", "type", "veth", "peer", "name", "mig0", "netns", &dst,
            ],
        )?;
        ip(
            &src,
            &["addr", "add", &format!("{SRC_MIG_IP}/30"), "dev", "mig0"],
        )?;
        ip(
            &dst,
            &["addr", "add", &format!("{DST_MIG_IP}/30"), "dev", "mig0"],
        )?;
        for ns in [&src, &dst] {
            ip(ns, &["link", "set", "mig0", "up"])?;
            shape(ns, "mig0", shaping)?;
        }
        // Guest LAN: a bridge in the client, a bridge + tap in each host.
        ip(&cli, &["link", "add", "br0", "type", "bridge"])?;
        // The same MAC in every run: a guest started from a saved state
        // keeps the client in its neighbour cache and reaches it at once
        // (a new MAC each run cost it ~6 s until the stale entry expired).
        ip(&cli, &["link", "set", "br0", "address", CLIENT_MAC])?;
        ip(
            &cli,
            &[
                "addr",
                "add",
                &format!("{CLIENT_IP}/{GUEST_PREFIX}"),
                "dev",
                "br0",
            ],
        )?;
        ip(&cli, &["link", "set", "br0", "up"])?;
        for (ns, port) in [(&src, "p-src"), (&dst, "p-dst")] {
            ip(
                ns,
                &[
                    "link", "add", "up0", "type", "veth", "peer", "name", port, "netns", &cli,
                ],
            )?;
            ip(&cli, &["link", "set", port, "master", "br0"])?;
            ip(&cli, &["link", "set", port, "up"])?;
            ip(ns, &["link", "add", "br0", "type", "bridge"])?;
            ip(ns, &["link", "set", "br0", "up"])?;
            ip(ns, &["link", "set", "up0", "master", "br0"])?;
            ip(ns, &["link", "set", "up0", "up"])?;
            ip(ns, &["tuntap", "add", "dev", "tap0", "mode", "tap"])?;
            // A short queue toward QEMU: while the VM is paused, probes
            // beyond it are dropped rather than queued, so on resume the
            // guest does not first drain hundreds of stale 1 ms probes
            // (which delays its first reply by milliseconds under TCG and
            // would inflate the measured outage).
            ip(
                ns,
                &["link", "set", "tap0", "txqueuelen", &TAP_QUEUE.to_string()],
            )?;
            ip(ns, &["link", "set", "tap0", "master", "br0"])?;
            ip(ns, &["link", "set", "tap0", "up"])?;
        }
        Ok(())
    }

    /// What a finished run leaves in a network kept for the next
    /// ([`crate::lab::netpool`]) goes: whatever still runs in its
    /// namespaces is killed and the storage host removed.
    pub fn release(&mut self) {
        if let Some(ns) = self.storage.take() {
            remove_namespace(&ns);
        }
        for ns in [&self.src, &self.dst, &self.client] {
            kill_all(ns);
        }
    }

    /// Make a released network like new for a run shaped by `shaping`:
    /// reshape the link when its shaping differs, and flush the bridges'
    /// forwarding tables (the last run's guest ended on the destination;
    /// the next one starts on the source).
    pub fn reset(&mut self, shaping: &Shaping) -> Result<(), LabError> {
        if self.shaping != *shaping {
            for ns in [&self.src, &self.dst] {
                run("tc", &["-n", ns, "qdisc", "del", "dev", "mig0", "root"])?;
                shape(ns, "mig0", shaping)?;
            }
            self.shaping = *shaping;
        }
        for ns in [&self.src, &self.dst, &self.client] {
            ip(ns, &["link", "set", "br0", "type", "bridge", "fdb_flush"])?;
        }
        Ok(())
    }

    /// Add a storage host (`<base>-storage`) reachable from src and dst over
    /// its own link, shaped to `rate` in both directions: the NFS/SAN of
    /// shared-nbd storage.
    pub fn add_storage_host(&mut self, rate: BitRate) -> Result<(), LabError> {
        let ns = self.src.replace("-src", "-storage");
        run("ip", &["netns", "add", &ns])?;
        self.storage = Some(ns.clone());
        ip(&ns, &["link", "set", "lo", "up"])?;
        ip(&ns, &["link", "add", "sbr0", "type", "bridge"])?;
        ip(
            &ns,
            &["addr", "add", &format!("{STORAGE_IP}/24"), "dev", "sbr0"],
        )?;
        ip(&ns, &["link", "set", "sbr0", "up"])?;
        let shaping = Shaping {
            rate,
            delay: Dur(std::time::Duration::ZERO),
            jitter: Dur(std::time::Duration::ZERO),
            loss: Percent(0.0),
        };
        for (host, port, addr) in [
            (self.src.clone(), "s-src", "198.18.2.2"),
            (self.dst.clone(), "s-dst", "198.18.2.3"),
        ] {
            ip(
                &host,
                &[
                    "link", "add", "sto0", "type", "veth", "peer", "name", port, "netns", &ns,
                ],
            )?;
            ip(
                &host,
                &["addr", "add", &format!("{addr}/24"), "dev", "sto0"],
            )?;
            ip(&host, &["link", "set", "sto0", "up"])?;
            ip(&ns, &["link", "set", port, "master", "sbr0"])?;
            ip(&ns, &["link", "set", port, "up"])?;
            shape(&host, "sto0", &shaping)?;
            shape(&ns, port, &shaping)?;
        }
        Ok(())
    }

    /// The guest agent's echo address, as seen from the client namespace.
    pub fn guest_echo(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(
            GUEST_IP,
            migbench_probes::protocol::ECHO_PORT,
        ))
    }

    /// The guest agent's control address, as seen from the client namespace.
    pub fn guest_control(&self) -> SocketAddr {
        SocketAddr::V4(SocketAddrV4::new(
            GUEST_IP,
            migbench_probes::protocol::CONTROL_PORT,
        ))
    }

    /// A counter of the bytes the source host has sent on the migration
    /// link (L2, from the kernel's interface counters; read back with
    /// `ip -s -j`), owning what it needs so it outlives a borrow of `self`.
    pub fn migration_tx_counter(&self) -> impl Fn() -> Option<u64> + Send + Sync + 'static {
        let ns = self.src.clone();
        move || tx_bytes(&ns, "mig0")
    }

    /// Kill everything still running in the namespaces and delete them.
    pub fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        for ns in [&self.src, &self.dst, &self.client]
            .into_iter()
            .chain(self.storage.as_ref())
        {
            remove_namespace(ns);
        }
        self.torn_down = true;
    }
}

impl Drop for LabNet {
    fn drop(&mut self) {
        self.teardown();
    }
}

fn ip(ns: &str, args: &[&str]) -> Result<String, CommandError> {
    let mut full = vec!["-n", ns];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// The token bucket of `rate`: its `tc` arguments after `tbf`.
fn tbf(rate: BitRate) -> [String; 6] {
    // The bucket must hold at least one timer tick of traffic; 2 ms of the
    // rate (min 16 KB) keeps 100mbit–10gbit accurate (a tbf at 100mbit
    // measured 95 Mbit/s of TCP payload on the project's machines).
    let burst = ((rate.0 / 8) as f64 * 0.002).max(16_384.0) as u64;
    [
        "rate".into(),
        rate.to_string(),
        "burst".into(),
        burst.to_string(),
        "latency".into(),
        "50ms".into(),
    ]
}

/// Shape `dev`'s egress: tbf at the link rate, with netem under it for
/// delay/jitter/loss.
fn shape(ns: &str, dev: &str, s: &Shaping) -> Result<(), LabError> {
    let bucket = tbf(s.rate);
    let mut args = vec![
        "-n", ns, "qdisc", "add", "dev", dev, "root", "handle", "1:", "tbf",
    ];
    args.extend(bucket.iter().map(String::as_str));
    run("tc", &args)?;
    if s.needs_netem() {
        let (delay, jitter, loss) = (
            format!("{}us", s.delay.0.as_micros()),
            format!("{}us", s.jitter.0.as_micros()),
            format!("{}%", s.loss.0),
        );
        let a = [
            "-n", ns, "qdisc", "add", "dev", dev, "parent", "1:1", "handle", "10:", "netem",
            "delay", &delay, &jitter, "loss", &loss,
        ];
        run("tc", &a).map_err(|e| LabError::NoNetem(e.to_string()))?;
    }
    Ok(())
}

/// Change the rate of `dev`'s token bucket in place (a degraded link).
pub fn reshape(ns: &str, dev: &str, rate: BitRate) -> Result<(), CommandError> {
    let bucket = tbf(rate);
    let mut args = vec![
        "-n", ns, "qdisc", "change", "dev", dev, "root", "handle", "1:", "tbf",
    ];
    args.extend(bucket.iter().map(String::as_str));
    run("tc", &args).map(|_| ())
}

/// Take `dev` in `ns` down or bring it up (a pulled cable; IPv4 addresses
/// stay, routes come back with the link).
pub fn set_link(ns: &str, dev: &str, up: bool) -> Result<(), CommandError> {
    ip(ns, &["link", "set", dev, if up { "up" } else { "down" }]).map(|_| ())
}

/// Whether namespace `ns` exists.
pub fn namespace_exists(ns: &str) -> bool {
    run("ip", &["netns", "list"])
        .map(|l| l.lines().any(|x| x.split_whitespace().next() == Some(ns)))
        .unwrap_or(false)
}

/// Bytes interface `dev` in namespace `ns` has sent (kernel counter, L2).
pub fn tx_bytes(ns: &str, dev: &str) -> Option<u64> {
    let out = ip(ns, &["-s", "-j", "link", "show", dev]).ok()?;
    let v: serde_json::Value = serde_json::from_str(&out).ok()?;
    v[0]["stats64"]["tx"]["bytes"].as_u64()
}

/// Kill the processes in a namespace and delete it; ignores absence.
pub fn remove_namespace(ns: &str) {
    kill_all(ns);
    run_quiet("ip", &["netns", "del", ns]);
}

/// Kill the processes in a namespace and wait (up to 1 s) until they are gone.
fn kill_all(ns: &str) {
    if let Ok(pids) = run("ip", &["netns", "pids", ns]) {
        if pids.trim().is_empty() {
            return;
        }
        for pid in pids
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Give the kernel a moment to release the taps the processes held.
        for _ in 0..50 {
            match run("ip", &["netns", "pids", ns]) {
                Ok(p) if !p.trim().is_empty() => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                _ => break,
            }
        }
    }
}

/// Namespaces left by migbench processes that no longer exist.
pub fn leftover_namespaces() -> Vec<String> {
    namespaces_where(|pid| !pid_alive(pid))
}

/// migbench namespaces whose owner pid satisfies `owner`.
fn namespaces_where(owner: impl Fn(u32) -> bool) -> Vec<String> {
    let Ok(list) = run("ip", &["netns", "list"]) else {
        return vec![];
    };
    list.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| owner_pid(name).is_some_and(&owner))
        .map(str::to_string)
        .collect()
}

/// Remove leftovers of killed runs; returns what was removed.
pub fn sweep_leftovers() -> Vec<String> {
    let gone = leftover_namespaces();
    for ns in &gone {
        remove_namespace(ns);
    }
    gone
}

/// Remove this process's own namespaces (forced exit on a second interrupt).
pub fn remove_own() {
    let me = std::process::id();
    for ns in namespaces_where(|pid| pid == me) {
        remove_namespace(&ns);
    }
}

/// Check up front that the kernel can do netem, in a throwaway namespace.
pub fn check_netem() -> Result<(), LabError> {
    let ns = format!("{NS_PREFIX}{}-netemcheck", std::process::id());
    run("ip", &["netns", "add", &ns])?;
    let r = run(
        "tc",
        &[
            "-n", &ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms",
        ],
    );
    remove_namespace(&ns);
    r.map(|_| ())
        .map_err(|e| LabError::NoNetem(e.to_string().trim_end_matches('.').to_string()))
}

/// Whether the host can make namespaces at all (root, iproute2).
pub fn check_privileges() -> Result<(), String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Err(
            "migbench needs root to create network namespaces, taps and tc qdiscs: run it as root"
                .into(),
        );
    }
    if run("ip", &["-V"]).is_err() {
        return Err("`ip` (iproute2) is missing: apt-get install iproute2".into());
    }
    Ok(())
}
