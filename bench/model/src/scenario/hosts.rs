//! `[hosts]`: real hypervisor hosts reached by libvirt URIs, instead of the
//! local lab. migbench measures a guest the user already runs there,
//! migrating it back and forth (run k from where it is to the other host),
//! probing it from where migbench runs. What real hosts can do is checked
//! here too ([`super::Scenario::check_hosts`]).

use serde::{Deserialize, Serialize};

use crate::capability::Capability;
use crate::settings::StorageMode;

/// How the probe reaches a guest on real hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostProbe {
    /// UDP echo to migbench's agent (the guest runs it; workloads and
    /// integrity checks need it).
    #[default]
    Udp,
    /// ICMP echo, answered by the guest's kernel: any guest, an idle
    /// workload, no integrity check.
    Icmp,
}

/// Real hosts (see the module docs): one pair written at the top of
/// `[hosts]`, or several as `[[hosts.pair]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostsSpec {
    /// libvirt URI of one host, e.g. "qemu+ssh://root@hv-a/system".
    #[serde(default)]
    pub src: String,
    /// libvirt URI of the other host.
    #[serde(default)]
    pub dst: String,
    /// `dst`'s address on the migration network: migrations to it stream there.
    #[serde(default)]
    pub migration_address: String,
    /// `src`'s address on the migration network, for migrations back
    /// (needed with more than one run).
    #[serde(default)]
    pub return_address: Option<String>,
    /// The running guest (libvirt domain) to measure; with `provision`,
    /// the name migbench gives its own guest (default "migbench-guest").
    #[serde(default)]
    pub domain: String,
    /// Where the probe, running where migbench runs, reaches the guest.
    #[serde(default)]
    pub guest_address: String,
    /// udp (needs migbench's agent in the guest) | icmp (any guest).
    #[serde(default)]
    pub probe: HostProbe,
    /// `[hosts.provision]`: migbench boots its own guest image on the
    /// hosts instead of measuring an existing domain.
    #[serde(default)]
    pub provision: Option<ProvisionSpec>,
    /// `[[hosts.pair]]`: several host pairs, each with the fields above
    /// but `probe` and `provision` (shared); the matrix runs on each, the
    /// pairs in parallel.
    #[serde(default, rename = "pair")]
    pub pairs: Vec<PairSpec>,
}

/// One host pair of `[[hosts.pair]]`: a name, and the fields `[hosts]`
/// has for a single pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairSpec {
    /// Names the pair in records, tables and `compare --by pair`.
    pub name: String,
    /// libvirt URI of one host.
    pub src: String,
    /// libvirt URI of the other host.
    pub dst: String,
    /// `dst`'s address on the migration network.
    pub migration_address: String,
    /// `src`'s address on the migration network.
    #[serde(default)]
    pub return_address: Option<String>,
    /// The running guest to measure; with `provision`, the name of
    /// migbench's own guest on this pair (default "migbench-guest-NAME").
    #[serde(default)]
    pub domain: String,
    /// Where the probe reaches this pair's guest.
    pub guest_address: String,
}

/// How migbench provisions its own guest on real hosts: its kernel and
/// initramfs uploaded to a libvirt storage pool on both hosts, the guest
/// on a host bridge at `guest_address`; all removed after the matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProvisionSpec {
    /// The bridge on both hosts that reaches the guest LAN (e.g. "br0").
    pub bridge: String,
    /// libvirt storage pool on both hosts, at the same path on each.
    #[serde(default = "default_pool")]
    pub pool: String,
    /// Prefix length of `guest_address` on that LAN.
    #[serde(default = "default_prefix")]
    pub prefix: u8,
    /// Default gateway for the guest (when migbench runs on another subnet).
    #[serde(default)]
    pub gateway: Option<String>,
}

fn default_pool() -> String {
    "default".into()
}

fn default_prefix() -> u8 {
    24
}

/// The name of migbench's own guest on real hosts unless `domain` says
/// (on a pair of `[[hosts.pair]]`: this, a dash and the pair's name).
pub const PROVISIONED_DOMAIN: &str = "migbench-guest";

/// The longest pair name: it is part of every run's label.
const PAIR_NAME_MAX: usize = 32;

impl HostsSpec {
    /// Each host pair as a one-pair spec, with its name ("" when `[hosts]`
    /// names one pair itself).
    pub fn each_pair(&self) -> Vec<(String, HostsSpec)> {
        if self.pairs.is_empty() {
            return vec![(String::new(), self.clone())];
        }
        self.pairs
            .iter()
            .map(|p| {
                let one = HostsSpec {
                    src: p.src.clone(),
                    dst: p.dst.clone(),
                    migration_address: p.migration_address.clone(),
                    return_address: p.return_address.clone(),
                    domain: p.domain.clone(),
                    guest_address: p.guest_address.clone(),
                    probe: self.probe,
                    provision: self.provision.clone(),
                    pairs: Vec::new(),
                };
                (p.name.clone(), one)
            })
            .collect()
    }

    /// Provisioned guests' default names: [`PROVISIONED_DOMAIN`], with the
    /// pair's name on each pair.
    pub(crate) fn name_provisioned(&mut self) {
        if self.provision.is_none() {
            return;
        }
        if self.pairs.is_empty() && self.domain.is_empty() {
            self.domain = PROVISIONED_DOMAIN.into();
        }
        for p in self.pairs.iter_mut().filter(|p| p.domain.is_empty()) {
            p.domain = format!("{PROVISIONED_DOMAIN}-{}", p.name);
        }
    }

    /// The checks of the pairs against `runs` runs in all: (field, message).
    fn check_pairs(&self, runs: usize) -> Result<(), (&'static str, String)> {
        self.check_provision()?;
        if self.pairs.is_empty() {
            for (field, v) in [
                ("hosts.src", &self.src),
                ("hosts.dst", &self.dst),
                ("hosts.migration_address", &self.migration_address),
                ("hosts.guest_address", &self.guest_address),
            ] {
                if v.trim().is_empty() {
                    return Err((
                        field,
                        "is missing: name one host pair in [hosts], or several as [[hosts.pair]]"
                            .into(),
                    ));
                }
            }
            return self.check(runs);
        }
        let top = [
            ("hosts.src", !self.src.is_empty()),
            ("hosts.dst", !self.dst.is_empty()),
            (
                "hosts.migration_address",
                !self.migration_address.is_empty(),
            ),
            ("hosts.return_address", self.return_address.is_some()),
            ("hosts.domain", !self.domain.is_empty()),
            ("hosts.guest_address", !self.guest_address.is_empty()),
        ];
        if let Some((field, _)) = top.iter().find(|(_, written)| *written) {
            return Err((
                field,
                "with [[hosts.pair]], each pair names its own hosts and guest: move it into the pairs".into(),
            ));
        }
        let fine = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if let Some(p) = self.pairs.iter().find(|p| {
            p.name.is_empty() || p.name.len() > PAIR_NAME_MAX || !p.name.chars().all(fine)
        }) {
            return Err((
                "hosts.pair",
                format!("name = \"{}\": give each pair a name of 1–{PAIR_NAME_MAX} letters, digits, '-', '_' or '.'", p.name),
            ));
        }
        // Each pair on its own first: a missing domain is named as such,
        // not as two pairs sharing "".
        let per_pair = runs / self.pairs.len().max(1);
        for (name, one) in self.each_pair() {
            one.check(per_pair).map_err(|(field, msg)| {
                let key = field.strip_prefix("hosts.").unwrap_or(field);
                ("hosts.pair", format!("pair `{name}`: {key}: {msg}"))
            })?;
        }
        let mut seen: Vec<&PairSpec> = Vec::new();
        for p in &self.pairs {
            for q in &seen {
                let shared = |a: &PairSpec, b: &PairSpec| {
                    [&a.src, &a.dst]
                        .iter()
                        .any(|h| **h == b.src || **h == b.dst)
                };
                let clash = if q.name == p.name {
                    Some("the same name: give each pair its own".to_string())
                } else if q.guest_address == p.guest_address {
                    Some(format!(
                        "the same guest_address {}: each pair's probe must reach its own guest",
                        p.guest_address
                    ))
                } else if q.domain == p.domain && shared(p, q) {
                    Some(format!(
                        "the same domain \"{}\" on a shared host: each pair measures its own guest",
                        p.domain
                    ))
                } else {
                    None
                };
                if let Some(why) = clash {
                    return Err((
                        "hosts.pair",
                        format!("pairs `{}` and `{}` have {why}", q.name, p.name),
                    ));
                }
            }
            seen.push(p);
        }
        Ok(())
    }

    /// The checks of one pair against the runs it would make: (field, message).
    pub(crate) fn check(&self, runs: usize) -> Result<(), (&'static str, String)> {
        for (field, uri) in [("hosts.src", &self.src), ("hosts.dst", &self.dst)] {
            if !uri.contains("://") {
                return Err((
                    field,
                    format!(
                        "`{uri}` is not a libvirt URI: write e.g. \"qemu+ssh://root@hv-a/system\""
                    ),
                ));
            }
        }
        if self.src == self.dst {
            return Err((
                "hosts.dst",
                "is the same URI as hosts.src: name two hosts".into(),
            ));
        }
        for (field, a) in [
            ("hosts.migration_address", Some(&self.migration_address)),
            ("hosts.return_address", self.return_address.as_ref()),
            ("hosts.guest_address", Some(&self.guest_address)),
        ] {
            if let Some(a) = a {
                if a.parse::<std::net::IpAddr>().is_err() {
                    return Err((field, format!("`{a}` is not an IP address")));
                }
            }
        }
        if self.guest_address.parse::<std::net::Ipv4Addr>().is_err() {
            return Err((
                "hosts.guest_address",
                "the probe speaks IPv4: give an IPv4 address".into(),
            ));
        }
        if runs > 1 && self.return_address.is_none() {
            return Err((
                "hosts.return_address",
                format!("{runs} runs migrate the guest back and forth: give the source host's address on the migration network"),
            ));
        }
        if self.provision.is_none() && self.domain.trim().is_empty() {
            return Err((
                "hosts.domain",
                "name the running guest (libvirt domain) to measure, or add [hosts.provision] to let migbench boot its own".into(),
            ));
        }
        Ok(())
    }

    /// The checks of `[hosts.provision]`, shared by every pair.
    fn check_provision(&self) -> Result<(), (&'static str, String)> {
        let Some(p) = &self.provision else {
            return Ok(());
        };
        if p.bridge.trim().is_empty() {
            return Err((
                "hosts.provision.bridge",
                "name the bridge on both hosts that reaches the guest LAN".into(),
            ));
        }
        if !(1..=32).contains(&p.prefix) {
            return Err((
                "hosts.provision.prefix",
                format!("{} is not an IPv4 prefix length (1–32)", p.prefix),
            ));
        }
        if let Some(g) = &p.gateway {
            if g.parse::<std::net::Ipv4Addr>().is_err() {
                return Err((
                    "hosts.provision.gateway",
                    format!("`{g}` is not an IPv4 address"),
                ));
            }
        }
        Ok(())
    }
}

impl super::Scenario {
    /// With `[hosts]`: what real hosts can do; returns (field, message).
    pub(super) fn check_hosts(&self) -> Result<(), (&'static str, String)> {
        let Some(h) = &self.hosts else {
            return Ok(());
        };
        if h.provision.is_some() {
            // One guest is booted for the whole matrix.
            for (field, n) in [
                ("guest.ram", self.guest.ram.0.len()),
                ("guest.vcpus", self.guest.vcpus.0.len()),
            ] {
                if n > 1 {
                    return Err((
                        field,
                        "migbench provisions one guest for the matrix on real hosts: give one value".into(),
                    ));
                }
            }
            if self.storage.mode.0.iter().any(|m| *m != StorageMode::None) {
                return Err((
                    "storage.mode",
                    "migbench's own guest on real hosts is diskless: mode = \"none\" (measure a guest with disks through hosts.domain)".into(),
                ));
            }
        }
        // Expanded only when small: the count after post-copy faults are dropped.
        let runs = match crate::matrix::size(self).runs {
            Some(n) if n <= crate::matrix::Limits::default().max_runs => {
                crate::matrix::expand(self).len()
            }
            n => n
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(usize::MAX),
        };
        h.check_pairs(runs)?;
        if let Some(r) = self.lacking(Capability::RealHosts, "") {
            return Err(("backend.kind", r));
        }
        if self.storage.mode.0.contains(&StorageMode::SharedNbd) {
            return Err((
                "storage.mode",
                "shared-nbd is the lab's storage host; on real hosts the storage is yours: none, shared, block or block-incremental".into(),
            ));
        }
        if self.needs_netem() {
            return Err((
                "link.delay",
                "the link between real hosts is your network: migbench does not shape it (delay, jitter and loss must be 0)".into(),
            ));
        }
        let agent_work = self.workload.dirty_rate.0.iter().any(|r| r.0 > 0)
            || self.workload.disk_write_rate.0.iter().any(|r| r.0 > 0)
            || self.workload.disk_fill.0.iter().any(|f| f.0 > 0);
        if h.probe == HostProbe::Icmp && self.service.kind.0.iter().any(|s| s.needs_agent()) {
            return Err((
                "service.kind",
                "the TCP services are served by migbench's agent in the guest: use hosts.probe = \"udp\", or kind = \"icmp\"".into(),
            ));
        }
        if h.probe == HostProbe::Icmp && agent_work {
            return Err((
                "workload.dirty_rate",
                "a workload needs migbench's agent in the guest: use hosts.probe = \"udp\", or an idle workload".into(),
            ));
        }
        Ok(())
    }
}
