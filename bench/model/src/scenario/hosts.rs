//! `[hosts]`: real hypervisor hosts reached by libvirt URIs, instead of the
//! local lab. migbench measures a guest the user already runs there,
//! migrating it back and forth (run k from where it is to the other host),
//! probing it from where migbench runs.

use serde::{Deserialize, Serialize};

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

/// Real hosts (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostsSpec {
    /// libvirt URI of one host, e.g. "qemu+ssh://root@hv-a/system".
    pub src: String,
    /// libvirt URI of the other host.
    pub dst: String,
    /// `dst`'s address on the migration network: migrations to it stream there.
    pub migration_address: String,
    /// `src`'s address on the migration network, for migrations back
    /// (needed with more than one run).
    #[serde(default)]
    pub return_address: Option<String>,
    /// The running guest (libvirt domain name) to measure.
    pub domain: String,
    /// Where the probe, running where migbench runs, reaches the guest.
    pub guest_address: String,
    /// udp (needs migbench's agent in the guest) | icmp (any guest).
    #[serde(default)]
    pub probe: HostProbe,
}

impl HostsSpec {
    /// The checks of `[hosts]` against the runs it would make: (field, message).
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
        if self.domain.trim().is_empty() {
            return Err((
                "hosts.domain",
                "name the running guest (libvirt domain) to measure".into(),
            ));
        }
        Ok(())
    }
}
