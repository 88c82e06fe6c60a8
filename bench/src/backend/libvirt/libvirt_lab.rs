//! The libvirt backend in the local lab: [`LibvirtLab`] builds the same
//! [`Site`] as the QMP lab (namespaces, shaped link, disks), starts a
//! libvirt daemon in each hypervisor namespace ([`Libvirtd`]), creates
//! the guest as a transient domain on the source and waits for its agent;
//! [`LibvirtHosts`] hands the executor a [`LibvirtDriver`] over both
//! daemons. Teardown destroys the domains, keeps libvirt's QEMU logs with
//! the run's results, stops the daemons and removes the site.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use migbench_model::settings::{StorageMode, Transport};
use migbench_model::units::BitRate;
use migbench_model::RunParams;
use migbench_probes::host::agent_client::AgentClient;
use virt::connect::Connect;

use super::domain::{domain_xml, new_uuid, tcg_pad_emulator, DISK_TARGET, DOMAIN};
use super::libvirt_settings::{DiskMove, Endpoints};
use super::{Ends, LibvirtDriver};
use crate::control::Cancel;
use crate::lab::boot::await_guest;
use crate::lab::faults::{LabFaults, QemuPid};
use crate::lab::image::GuestImage;
use crate::lab::libvirtd::Libvirtd;
use crate::lab::net::{DST_MIG_IP, GUEST_IP, GUEST_PREFIX, MIGRATION_PORT, SRC_MIG_IP};
use crate::lab::qemu::{QemuSpec, Role};
use crate::lab::site::Site;
use crate::lab::sshd::{LabKeys, LabSshd};
use crate::migrate::env::{Environment, Hosts, LinkCounter};
use crate::migrate::fault::FaultTarget;
use crate::migrate::guest::GuestLink;
use migbench_probes::host::prober::ProbeTarget;

/// The local lab, guests run and migrated by libvirt daemons.
pub struct LibvirtLab {
    /// Guest image.
    pub image: GuestImage,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Pad guest RAM under TCG (through [`tcg_pad_emulator`]).
    pub tcg_dirty_workaround: bool,
    /// Keep a block-mode guest's source image in the source host's pool
    /// directory (`/var/lib/libvirt/images`, private to each host), as a
    /// real host's would be, rather than in the run's directory both
    /// hosts see (`migbench lab-hosts --disk`).
    pub disk_in_pool: bool,
}

/// One run's lab with its two daemons.
pub struct LibvirtHosts {
    ends: Ends,
    agent: AgentClient,
    daemons: Vec<Libvirtd>,
    raw: PathBuf,
    site: Site,
    /// The ssh lab's keys and sshds ([`LibvirtHosts::serve_ssh`]).
    ssh: Option<(LabKeys, Vec<LabSshd>)>,
    /// The migration link's rate as shaped.
    rate: BitRate,
}

/// The hosts' addresses on the guest LAN in the ssh lab, where their
/// sshds listen (reached from the client and from each other).
pub const SSH_IPS: [Ipv4Addr; 2] = [Ipv4Addr::new(198, 18, 1, 2), Ipv4Addr::new(198, 18, 1, 3)];

/// Start the daemons of `site`'s hosts, stopping the first if the second fails.
async fn start_daemons(site: &Site) -> Result<(Libvirtd, Libvirtd)> {
    let dir = site.run_dir.path();
    let src = Libvirtd::start(&site.net.src, "src", dir).await?;
    match Libvirtd::start(&site.net.dst, "dst", dir).await {
        Ok(dst) => Ok((src, dst)),
        Err(e) => {
            src.stop().await;
            Err(e.into())
        }
    }
}

fn open(d: &Libvirtd) -> Result<Connect> {
    super::open_within(&d.uri(), super::CONNECT_DEADLINE).map_err(|e| {
        anyhow::anyhow!(
            "connecting to the {} libvirt daemon: {e}; see {}",
            d.name,
            d.log.display()
        )
    })
}

impl LibvirtLab {
    /// The daemons' connections and the guest, created on the source.
    async fn guest(
        &self,
        site: &Site,
        daemons: &[Libvirtd],
        raw: &Path,
        transport: Transport,
        cancel: &Cancel,
    ) -> Result<(Ends, AgentClient)> {
        let emulator = if self.tcg_dirty_workaround && self.accel == "tcg" {
            Some(tcg_pad_emulator().context("writing the TCG RAM padding wrapper")?)
        } else {
            None
        };
        let uuid = new_uuid();
        let spec = if self.disk_in_pool {
            source_image_in_pool(&site.spec, &daemons[0])?
        } else {
            site.spec.clone()
        };
        let xml = |role| domain_xml(&spec, role, &uuid, raw, emulator.as_deref());
        let (src_xml, dst_xml) = (xml(Role::Source), xml(Role::Destination));
        let _ = std::fs::write(raw.join("domain-src.xml"), &src_xml);
        let ends = Ends {
            src_uri: daemons[0].uri(),
            dst_uri: daemons[1].uri(),
            peer_uri: Libvirtd::peer_uri(DST_MIG_IP),
            src: open(&daemons[0])?,
            dst: open(&daemons[1])?,
            domain: DOMAIN.to_string(),
            to: Endpoints {
                address: DST_MIG_IP.to_string(),
                port: Some(MIGRATION_PORT),
                disks_port: Some(MIGRATION_PORT + 1),
            },
            dest_xml: Some(dst_xml),
            disks: DiskMove {
                shared: site.spec.disks.as_ref().is_some_and(|d| {
                    matches!(d.mode, StorageMode::Shared | StorageMode::SharedNbd)
                }),
                targets: vec![DISK_TARGET.to_string()],
            },
            transport,
        };
        ends.src.create_domain_xml(&src_xml, 0).with_context(|| {
            format!(
                "libvirt could not start the guest; see {}",
                daemons[0].qemu_log(DOMAIN).display()
            )
        })?;
        let agent = await_guest(&site.net, raw, cancel).await?;
        Ok((ends, agent))
    }
}

impl Environment for LibvirtLab {
    type Hosts = LibvirtHosts;

    async fn boot(&self, p: &RunParams, raw: &Path, cancel: &Cancel) -> Result<LibvirtHosts> {
        // Errors are returned and recorded, not printed by libvirt itself.
        virt::error::clear_error_callback();
        let site = Site::build(
            p,
            &self.image,
            &self.accel,
            self.tcg_dirty_workaround,
            raw,
            None,
        )
        .await?;
        let (src, dst) = match start_daemons(&site).await {
            Ok(d) => d,
            Err(e) => {
                site.teardown(None);
                return Err(e);
            }
        };
        let daemons = vec![src, dst];
        match self.guest(&site, &daemons, raw, p.transport, cancel).await {
            Ok((ends, agent)) => Ok(LibvirtHosts {
                ends,
                agent,
                daemons,
                raw: raw.to_path_buf(),
                site,
                ssh: None,
                rate: p.link_rate,
            }),
            Err(e) => {
                keep_logs(&daemons, raw);
                for d in daemons {
                    d.stop().await;
                }
                site.teardown(None);
                Err(e)
            }
        }
    }

    async fn teardown(&self, hosts: LibvirtHosts) {
        let LibvirtHosts {
            ends,
            daemons,
            raw,
            site,
            ..
        } = hosts;
        for conn in [&ends.src, &ends.dst] {
            if let Ok(d) = conn.lookup_domain_by_name(&ends.domain) {
                let _ = d.destroy();
            }
        }
        drop(ends);
        keep_logs(&daemons, &raw);
        for d in daemons {
            d.stop().await;
        }
        site.teardown(None);
    }
}

impl LibvirtHosts {
    /// The `[hosts]` table that reaches these hosts as if they were real
    /// ones, and where to run migbench for the probe to reach the guest.
    pub fn describe(&self) -> String {
        let net = &self.site.net;
        let (src, dst, users) = match &self.ssh {
            Some((keys, _)) => (
                keys.uri(SSH_IPS[0]),
                keys.uri(SSH_IPS[1]),
                format!(
                    "# to see ssh's failures: user {} has no libvirt access, {} no ssh helper (same key)\n",
                    crate::lab::sshd::USER_WITHOUT_LIBVIRT,
                    crate::lab::sshd::USER_WITHOUT_HELPER
                ),
            ),
            None => (
                self.ends.src_uri.clone(),
                self.ends.dst_uri.clone(),
                String::new(),
            ),
        };
        let disk = if self.site.spec.disks.is_some() {
            "# the guest has a disk in the source's pool `default`: every run needs [storage] mode = \"block\"\n"
        } else {
            ""
        };
        format!(
            "# run migbench inside the client namespace: ip netns exec {client} migbench run SCENARIO\n{users}{disk}\
             # to let migbench boot its own guest beside this one instead: domain = \"migbench-own\",\n\
             # guest_address = \"{own_ip}\", [hosts.provision] bridge = \"br0\" (pool \"{IMAGE_POOL}\" is ready),\n\
             # [guest] ram = \"128MiB\", [lab] accel = \"tcg\"\n\
             [hosts]\nsrc = \"{src}\"\ndst = \"{dst}\"\nmigration_address = \"{DST_MIG_IP}\"\n\
             return_address = \"{SRC_MIG_IP}\"\ndomain = \"{DOMAIN}\"\nguest_address = \"{GUEST_IP}\"",
            client = net.client,
            own_ip = PROVISION_IP,
        )
    }

    /// The ssh lab: an sshd beside each daemon at [`SSH_IPS`] on the
    /// guest LAN, with keys of the lab's own under `dir`; [`describe`]
    /// then names the hosts by `qemu+ssh://` URIs.
    ///
    /// [`describe`]: LibvirtHosts::describe
    pub async fn serve_ssh(&mut self, dir: &Path) -> Result<()> {
        let keys = LabKeys::create(dir)?;
        let mut sshds = Vec::new();
        let net = &self.site.net;
        for ((d, ns), ip) in self.daemons.iter().zip([&net.src, &net.dst]).zip(SSH_IPS) {
            crate::system::run(
                "ip",
                &[
                    "-n",
                    ns,
                    "addr",
                    "add",
                    &format!("{ip}/{GUEST_PREFIX}"),
                    "dev",
                    "br0",
                ],
            )?;
            let pid = d
                .pid()
                .ok_or_else(|| anyhow::anyhow!("the {} libvirt daemon has exited", d.name))?;
            sshds.push(LabSshd::start(&d.name, ip, pid, &d.run_dir(), &d.socket(), &keys).await?);
        }
        self.ssh = Some((keys, sshds));
        Ok(())
    }

    /// A storage pool on both hosts as `[hosts.provision]` expects of real
    /// hosts: a directory at the same path, `/var/lib/libvirt/images`,
    /// which each daemon's own mount namespace keeps apart.
    pub fn add_image_pools(&self) -> Result<()> {
        let xml = format!(
            "<pool type='dir'><name>{IMAGE_POOL}</name>\
             <target><path>/var/lib/libvirt/images</path></target></pool>"
        );
        for (name, c) in [("src", &self.ends.src), ("dst", &self.ends.dst)] {
            c.create_storage_pool_xml(&xml, virt::sys::VIR_STORAGE_POOL_CREATE_WITH_BUILD)
                .map_err(|e| anyhow::anyhow!("storage pool on {name}: {}", e.message()))?;
        }
        Ok(())
    }
}

/// `spec` with its block-mode source image moved into the pool directory
/// of the source host `d`, named as that host's QEMU sees it.
fn source_image_in_pool(spec: &QemuSpec, d: &Libvirtd) -> Result<QemuSpec> {
    let mut spec = spec.clone();
    if let Some(disks) = spec.disks.as_mut().filter(|d| d.mode == StorageMode::Block) {
        let dir = d.lib_dir().join("images");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = format!("{DOMAIN}.{}", disks.format);
        std::fs::rename(&disks.src, dir.join(&name))
            .with_context(|| format!("moving {} into {}", disks.src.display(), dir.display()))?;
        disks.src = Path::new("/var/lib/libvirt/images").join(name);
    }
    Ok(spec)
}

/// The lab hosts' storage pool for a provisioned guest's image.
pub const IMAGE_POOL: &str = "default";
/// A second guest address on the lab's guest LAN (for a provisioned guest).
pub const PROVISION_IP: &str = "198.18.1.11";

/// Copy libvirt's logs of the guest's QEMUs and of the daemons to the
/// run's results (`qemu-src.log`, `libvirtd-src.log`, ...).
fn keep_logs(daemons: &[Libvirtd], raw: &Path) {
    for d in daemons {
        let _ = std::fs::copy(d.qemu_log(DOMAIN), raw.join(format!("qemu-{}.log", d.name)));
        let _ = std::fs::copy(&d.log, raw.join(format!("libvirtd-{}.log", d.name)));
    }
}

impl Hosts for LibvirtHosts {
    type Driver<'a> = LibvirtDriver<'a>;

    fn guest(&self) -> GuestLink {
        GuestLink::Agent(self.agent.clone())
    }

    fn probe_target(&self) -> (Option<String>, ProbeTarget) {
        self.site.probe_target()
    }

    fn link_counter(&self) -> LinkCounter {
        self.site.link_counter()
    }

    fn driver(&mut self) -> LibvirtDriver<'_> {
        LibvirtDriver::new(&self.ends)
    }

    /// The lab's faults, the QEMUs being the daemons' (found by the pid
    /// files libvirt writes in each daemon's `/run/libvirt/qemu`).
    fn fault_target(&self) -> Option<Arc<dyn FaultTarget>> {
        let pid = |d: &Libvirtd| {
            QemuPid::file(
                d.run_dir().join("qemu").join(format!("{DOMAIN}.pid")),
                DOMAIN,
            )
        };
        Some(Arc::new(LabFaults::new(
            &self.site.net,
            self.rate,
            (pid(&self.daemons[0]), pid(&self.daemons[1])),
            self.site.run_dir.path().to_owned(),
        )))
    }
}
