//! The QMP backend in the local lab: [`QmpLab`] builds a run's [`Site`]
//! (namespaces, shaped link, disks), boots the source guest and starts an
//! incoming destination, both QEMUs driven over QMP; [`LabHosts`] hands the executor the agent,
//! the probe target, the link counter and a [`QmpDriver`].

use std::path::Path;

use std::sync::Arc;

use anyhow::Result;
use migbench_model::units::BitRate;
use migbench_model::RunParams;
use migbench_probes::agent_client::AgentClient;

use super::{QmpDriver, QmpVm};
use crate::control::Cancel;
use crate::lab::boot::boot_source;
use crate::lab::faults::LabFaults;
use crate::lab::image::GuestImage;
use crate::lab::qemu::{QemuProcess, Role};
use crate::lab::site::Site;
use crate::migrate::env::{Environment, Hosts, LinkCounter};
use crate::migrate::fault::FaultTarget;
use crate::migrate::guest::GuestLink;
use migbench_probes::prober::ProbeTarget;

/// The local lab, guests driven over QMP.
pub struct QmpLab {
    /// Guest image.
    pub image: GuestImage,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Pad guest RAM under TCG to dodge QEMU 7.2's lost-dirty-page bug.
    pub tcg_dirty_workaround: bool,
}

/// One run's lab: the two QEMUs on their site.
pub struct LabHosts {
    src: QmpVm,
    dst: QmpVm,
    agent: AgentClient,
    site: Site,
    rate: BitRate,
}

impl Environment for QmpLab {
    type Hosts = LabHosts;

    async fn boot(&self, p: &RunParams, raw: &Path, cancel: &Cancel) -> Result<LabHosts> {
        let site = Site::build(p, &self.image, &self.accel, self.tcg_dirty_workaround, raw).await?;
        let (src, agent) =
            boot_source(&site.spec, &site.net, site.run_dir.path(), raw, cancel).await?;
        let src = QmpVm::connect(src).await?;
        let dst = QemuProcess::start(
            &site.spec,
            Role::Destination,
            Some(&site.net.dst),
            site.run_dir.path(),
            raw,
        )
        .await?;
        let dst = QmpVm::connect(dst).await?;
        Ok(LabHosts {
            src,
            dst,
            agent,
            site,
            rate: p.link_rate,
        })
    }

    async fn teardown(&self, hosts: LabHosts) {
        let LabHosts { src, dst, site, .. } = hosts;
        src.shutdown().await;
        dst.shutdown().await;
        site.teardown();
    }
}

impl Hosts for LabHosts {
    type Driver<'a> = QmpDriver<'a>;

    fn guest(&self) -> GuestLink {
        GuestLink::Agent(self.agent.clone())
    }

    fn probe_target(&self) -> (Option<String>, ProbeTarget) {
        let echo = self.site.net.guest_echo();
        (Some(self.site.net.client.clone()), ProbeTarget::Udp(echo))
    }

    fn link_counter(&self) -> LinkCounter {
        Box::new(self.site.net.migration_tx_counter())
    }

    fn driver(&mut self) -> QmpDriver<'_> {
        QmpDriver::new(&mut self.src, &mut self.dst)
    }

    fn fault_target(&self) -> Option<Arc<dyn FaultTarget>> {
        Some(Arc::new(LabFaults::new(
            &self.site.net,
            self.rate,
            (self.src.process.pid(), self.dst.process.pid()),
            self.site.run_dir.path().to_owned(),
        )))
    }
}
