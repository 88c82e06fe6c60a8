//! Real hypervisor hosts reached by libvirt URIs (`[hosts]`): the guest the
//! user already runs is migrated from whichever host runs it to the other
//! (so repetitions ping-pong and the guest stays), probed from where
//! migbench runs. Nothing is started or removed on the hosts; the link is
//! the user's network. [`RemotePreflight`] checks everything it can before
//! any run: both URIs answer, versions, the domain runs on exactly one
//! host, the guest answers the probe, libvirt can express the settings.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use migbench_model::scenario::hosts::{HostProbe, HostsSpec};
use migbench_model::settings::Transport;
use migbench_model::units::Size;
use migbench_model::RunParams;
use migbench_probes::host::agent_client::AgentClient;
use migbench_probes::host::prober::ProbeTarget;
use migbench_probes::protocol::{CONTROL_PORT, ECHO_PORT};
use virt::connect::Connect;

use super::libvirt_preflight::LibvirtPreflight;
use super::libvirt_settings::{DiskMove, Endpoints};
use super::reach::Reach;
use super::{Ends, LibvirtDriver};
use crate::control::Cancel;
use crate::migrate::env::{Environment, Hosts, LinkCounter};
use crate::migrate::guest::GuestLink;
use crate::migrate::{Preflight, Unsupported};

/// Real hosts: one host pair.
#[derive(Debug, Clone)]
pub struct RemoteHosts {
    /// The scenario's `[hosts]`, or one pair of its `[[hosts.pair]]`.
    pub spec: HostsSpec,
    /// Namespace the probe runs in (`None`: where migbench runs).
    pub netns: Option<String>,
}

/// One run on real hosts: the connections, oriented from where the guest runs.
pub struct Remote {
    ends: Ends,
    guest: GuestLink,
    probe: (Option<String>, ProbeTarget),
}

/// A connection to `uri`, its error naming the scenario field.
pub(super) fn connect(field: &str, uri: &str) -> Result<Connect> {
    super::open_within(uri, super::CONNECT_DEADLINE).map_err(|e| {
        let e = e.to_string();
        let host = uri.split_once("://").map_or(uri, |(_, rest)| {
            rest.split(['/', '?']).next().unwrap_or(rest)
        });
        match ssh_fix(&e) {
            Some(fix) => anyhow!(
                "{field} = \"{uri}\": cannot connect to {host} over ssh: {fix} (ssh said: {e})"
            ),
            None => anyhow!("{field} = \"{uri}\": cannot connect: {e}"),
        }
    })
}

/// What to do about a failed ssh connection, from what ssh printed.
fn ssh_fix(ssh_said: &str) -> Option<&'static str> {
    const FIXES: [(&str, &str); 8] = [
        (
            "Permission denied (publickey",
            "the host refused the key: add its public key to the remote user's authorized_keys, or name another with ?keyfile=",
        ),
        (
            "libvirt-sock': Permission denied",
            "the remote user may not use libvirt's socket there: connect as root, or add the user to the libvirt group on that host",
        ),
        (
            "IDENTIFICATION HAS CHANGED",
            "the host's key differs from the one known_hosts holds: if the host was reinstalled, remove the old entry (ssh-keygen -R HOST); otherwise do not connect",
        ),
        (
            "host key is known",
            "the host's key is not in known_hosts: connect once with `ssh USER@HOST` from this machine, check the fingerprint and accept it",
        ),
        (
            "Host key verification failed",
            "the host's key is not in known_hosts: connect once with `ssh USER@HOST` from this machine, check the fingerprint and accept it",
        ),
        (
            "helper: not found",
            "the host lacks libvirt's ssh helper: install virt-ssh-helper (libvirt-clients) or netcat-openbsd there",
        ),
        (
            "nc: not found",
            "the host lacks libvirt's ssh helper: install virt-ssh-helper (libvirt-clients) or netcat-openbsd there",
        ),
        (
            "Could not resolve hostname",
            "this machine cannot resolve the host's name: use its address or fix DNS / /etc/hosts",
        ),
    ];
    FIXES
        .iter()
        .find(|(said, _)| ssh_said.contains(said))
        .map(|(_, fix)| *fix)
}

/// A migration call's error, with what it means when libvirt lost a
/// connection that runs over ssh ("End of file while reading data": the
/// ssh session ended, or the host went away, mid-call).
pub(super) fn connection_lost(libvirt_said: &str, uris: &[&str]) -> String {
    let over_ssh: Vec<&str> = uris
        .iter()
        .filter(|u| u.contains("+ssh://") || u.contains("+libssh"))
        .filter_map(|u| u.split_once("://")?.1.split(['/', '?']).next())
        .collect();
    if libvirt_said.contains("End of file while reading data") && !over_ssh.is_empty() {
        let mut hosts = over_ssh;
        hosts.sort_unstable();
        hosts.dedup();
        format!(
            "{libvirt_said} (the connection over ssh to {} closed during the migration: the ssh session ended, or the host or its libvirt daemon went away)",
            hosts.join(" or ")
        )
    } else {
        libvirt_said.to_string()
    }
}

/// libvirt's and the hypervisor's version on a connection, e.g.
/// "libvirt 9.0.0, QEMU 7.2.22".
fn versions(c: &Connect) -> Result<String> {
    let v = |n: u32| format!("{}.{}.{}", n / 1_000_000, n / 1000 % 1000, n % 1000);
    Ok(format!(
        "libvirt {}, QEMU {}",
        v(c.lib_version()?),
        v(c.hyp_version()?)
    ))
}

/// Whether `domain` runs on `c`.
fn runs_on(c: &Connect, domain: &str) -> bool {
    c.lookup_domain_by_name(domain)
        .and_then(|d| d.is_active())
        .unwrap_or(false)
}

impl RemoteHosts {
    fn guest_ip(&self) -> Ipv4Addr {
        self.spec
            .guest_address
            .parse()
            .expect("checked when the scenario was read")
    }

    /// How the guest is reached and probed.
    fn guest(&self) -> (GuestLink, (Option<String>, ProbeTarget)) {
        let ip = self.guest_ip();
        match self.spec.probe {
            HostProbe::Udp => (
                GuestLink::Agent(AgentClient::new(
                    self.netns.clone(),
                    SocketAddr::V4(SocketAddrV4::new(ip, CONTROL_PORT)),
                )),
                (
                    self.netns.clone(),
                    ProbeTarget::Udp(SocketAddr::V4(SocketAddrV4::new(ip, ECHO_PORT))),
                ),
            ),
            HostProbe::Icmp => (
                GuestLink::Icmp {
                    netns: self.netns.clone(),
                    ip,
                },
                (self.netns.clone(), ProbeTarget::Icmp(ip)),
            ),
        }
    }

    /// Connections oriented from the host that runs the guest to the other.
    fn orient(&self) -> Result<Ends> {
        let h = &self.spec;
        let a = connect("hosts.src", &h.src)?;
        let b = connect("hosts.dst", &h.dst)?;
        let (on_a, on_b) = (runs_on(&a, &h.domain), runs_on(&b, &h.domain));
        let (src_uri, dst_uri, src, dst, address) = match (on_a, on_b) {
            (true, false) => (&h.src, &h.dst, a, b, h.migration_address.clone()),
            (false, true) => {
                let back = h.return_address.clone().ok_or_else(|| {
                    anyhow!("hosts.domain = \"{}\" runs on hosts.dst; migrating it back needs hosts.return_address", h.domain)
                })?;
                (&h.dst, &h.src, b, a, back)
            }
            (false, false) => bail!(
                "hosts.domain = \"{}\": not running on {} nor on {}",
                h.domain,
                h.src,
                h.dst
            ),
            (true, true) => bail!(
                "hosts.domain = \"{}\": running on both hosts; migbench cannot tell which one is the guest",
                h.domain
            ),
        };
        Ok(Ends {
            src_uri: src_uri.clone(),
            dst_uri: dst_uri.clone(),
            // As `virsh migrate --p2p`: the source host opens it.
            peer_uri: dst_uri.clone(),
            src,
            dst,
            domain: h.domain.clone(),
            to: Endpoints {
                address,
                port: None,
                disks_port: None,
            },
            dest_xml: None,
            disks: DiskMove::default(),
            transport: Transport::Direct,
        })
    }
}

impl Environment for RemoteHosts {
    type Hosts = Remote;

    async fn boot(&self, p: &RunParams, _: &Path, cancel: &Cancel) -> Result<Remote> {
        virt::error::clear_error_callback();
        let ends = Ends {
            transport: p.transport,
            ..self.orient()?
        };
        let (guest, probe) = self.guest();
        guest
            .wait(Duration::from_secs(10), cancel)
            .await
            .with_context(|| {
                format!(
                    "guest {} is not answering before the run",
                    self.spec.guest_address
                )
            })?;
        Ok(Remote { ends, guest, probe })
    }

    /// The guest stays where the migration left it.
    async fn teardown(&self, _: Remote) {}
}

impl Hosts for Remote {
    type Driver<'a> = LibvirtDriver<'a>;

    fn guest(&self) -> GuestLink {
        self.guest.clone()
    }

    fn probe_target(&self) -> (Option<String>, ProbeTarget) {
        self.probe.clone()
    }

    /// The link is the user's: migbench cannot count its bytes.
    fn link_counter(&self) -> LinkCounter {
        Box::new(|| None)
    }

    fn driver(&mut self) -> LibvirtDriver<'_> {
        LibvirtDriver::new(&self.ends)
    }
}

/// Checks real hosts before any run.
pub struct RemotePreflight<'a> {
    /// The hosts.
    pub hosts: &'a RemoteHosts,
}

/// What the preflight found on the hosts.
#[derive(Debug, Clone)]
pub struct HostsFound {
    /// "src: libvirt 9.0.0, QEMU 7.2.22; dst: ..."
    pub versions: String,
    /// One line per migration direction: reached, or not checked and why.
    pub reach: Vec<String>,
    /// The domain's RAM (its maximum, from libvirt).
    pub ram: Size,
    /// The domain's vCPUs.
    pub vcpus: u32,
}

impl RemotePreflight<'_> {
    /// What the hosts are, or the first problem: a URI that does not
    /// answer, a domain not running on exactly one host, a migration
    /// address the sending host does not reach, a guest that does not
    /// answer the probe.
    pub async fn hosts(&self) -> Result<HostsFound> {
        virt::error::clear_error_callback();
        let h = &self.hosts.spec;
        let a = connect("hosts.src", &h.src)?;
        let b = connect("hosts.dst", &h.dst)?;
        let versions = format!("src: {}; dst: {}", versions(&a)?, versions(&b)?);
        drop((a, b));
        let ends = self.hosts.orient()?;
        let info = ends
            .src
            .lookup_domain_by_name(&h.domain)
            .and_then(|d| d.info())
            .map_err(|e| anyhow!("hosts.domain = \"{}\": {}", h.domain, e.message()))?;
        drop(ends);
        let mut reach = Vec::new();
        for (from, field, to) in [
            (
                "hosts.src",
                "hosts.migration_address",
                Some(&h.migration_address),
            ),
            (
                "hosts.dst",
                "hosts.return_address",
                h.return_address.as_ref(),
            ),
        ] {
            let Some(to) = to else { continue };
            let uri = if from == "hosts.src" { &h.src } else { &h.dst };
            match super::reach::reach(uri, to) {
                Ok(Reach::Reached(how)) => {
                    reach.push(format!("{from} reaches {field} {to} ({how})"))
                }
                Ok(Reach::NotChecked(why)) => {
                    reach.push(format!("{from} -> {field} {to}: not checked ({why})"))
                }
                Err(e) => bail!("{field} = \"{to}\": not reachable from {from} = \"{uri}\": {e}"),
            }
        }
        let (guest, _) = self.hosts.guest();
        let how = match h.probe {
            HostProbe::Udp => "migbench's agent (probe = \"udp\")",
            HostProbe::Icmp => "ICMP echo (probe = \"icmp\")",
        };
        guest
            .wait(Duration::from_secs(5), &Cancel::default())
            .await
            .map_err(|_| {
                anyhow!(
                    "hosts.guest_address = \"{}\": the guest does not answer {how} from here",
                    h.guest_address
                )
            })?;
        Ok(HostsFound {
            versions,
            reach,
            ram: Size(info.max_mem << 10),
            vcpus: info.nr_virt_cpu,
        })
    }
}

impl Preflight for RemotePreflight<'_> {
    async fn check(&self, runs: &[RunParams]) -> Result<Result<(), Unsupported>> {
        LibvirtPreflight.check(runs).await
    }
}

#[cfg(test)]
mod tests {
    use super::ssh_fix;

    #[test]
    fn a_connection_closed_over_ssh_is_said_and_others_are_kept() {
        let said = "End of file while reading data: : Input/output error";
        let ssh = "qemu+ssh://root@198.18.1.2/system?keyfile=/k";
        let got = super::connection_lost(said, &[ssh, ssh, "qemu+ssh://root@198.18.1.3/system"]);
        assert!(got.starts_with(said), "{got}");
        assert!(
            got.contains("the connection over ssh to root@198.18.1.2 or root@198.18.1.3 closed"),
            "{got}"
        );
        assert_eq!(super::connection_lost(said, &["qemu:///system"]), said);
        assert_eq!(
            super::connection_lost("operation failed: domain is not running", &[ssh]),
            "operation failed: domain is not running"
        );
    }

    #[test]
    fn what_ssh_prints_is_turned_into_what_to_fix() {
        for (said, fix) in [
            ("Cannot recv data: root@198.18.1.2: Permission denied (publickey).: Connection reset by peer", "refused the key"),
            ("No ED25519 host key is known for 198.18.1.2 and you have requested strict checking.\nHost key verification failed.", "not in known_hosts"),
            ("@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @", "differs from the one known_hosts holds"),
            ("sh: 1: nc: not found", "lacks libvirt's ssh helper"),
            ("Failed to connect socket to '/var/run/libvirt/libvirt-sock': Permission denied", "may not use libvirt's socket"),
            ("ssh: Could not resolve hostname hv-b: Name or service not known", "cannot resolve"),
        ] {
            assert!(ssh_fix(said).is_some_and(|f| f.contains(fix)), "{said}");
        }
        assert_eq!(
            ssh_fix("Domain not found: no domain with matching name"),
            None
        );
    }
}
