//! The QMP backend in the local lab: [`QmpLab`] builds a run's [`Site`]
//! (namespaces, shaped link, disks), boots the source guest and starts an
//! incoming destination, both QEMUs driven over QMP; [`LabHosts`] hands the executor the agent,
//! the probe target, the link counter and a [`QmpDriver`].

use std::path::Path;

use std::sync::Arc;

use anyhow::{Context, Result};
use migbench_model::units::BitRate;
use migbench_model::RunParams;
use migbench_probes::host::agent_client::AgentClient;

use super::{QmpDriver, QmpVm};
use crate::control::Cancel;
use crate::lab::boot::{await_guest, boot_source};
use crate::lab::faults::LabFaults;
use crate::lab::faults::QemuPid;
use crate::lab::image::GuestImage;
use crate::lab::netpool::NetPool;
use crate::lab::qemu::{QemuProcess, Role};
use crate::lab::site::Site;
use crate::migrate::env::{Environment, Hosts, LinkCounter};
use crate::migrate::fault::FaultTarget;
use crate::migrate::guest::GuestLink;
use migbench_probes::host::prober::ProbeTarget;

/// The local lab, guests driven over QMP.
pub struct QmpLab {
    /// Guest image.
    pub image: GuestImage,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Pad guest RAM under TCG to dodge QEMU 7.2's lost-dirty-page bug.
    pub tcg_dirty_workaround: bool,
    /// Start guests from a saved state ([`super::snapshot`]).
    pub fast_start: bool,
    /// The network kept across runs.
    pub nets: NetPool,
}

impl QmpLab {
    /// A lab for guests booted from `image` under `accel`.
    pub fn new(
        image: GuestImage,
        accel: String,
        tcg_dirty_workaround: bool,
        fast_start: bool,
    ) -> Self {
        QmpLab {
            image,
            accel,
            tcg_dirty_workaround,
            fast_start,
            nets: NetPool::default(),
        }
    }
}

impl QmpLab {
    /// The source guest restored from `file`, saved first from one boot
    /// when there is none yet; a state that does not load is removed and
    /// the guest booted (the next run saves it again).
    async fn start_from(
        &self,
        site: &Site,
        file: &Path,
        raw: &Path,
        cancel: &Cancel,
    ) -> Result<(QmpVm, AgentClient)> {
        let run_dir = site.run_dir.path();
        if !file.exists() {
            let (src, _) = boot_source(&site.spec, &site.net, run_dir, raw, cancel).await?;
            let vm = QmpVm::connect(src).await?;
            let saved = super::snapshot::save(&vm, file).await;
            vm.shutdown().await;
            // The restored guest's console starts a new guest-src.log: the
            // boot every later run shares keeps its own.
            let _ = std::fs::rename(raw.join("guest-src.log"), raw.join("guest-boot.log"));
            saved?;
        }
        let restored: Result<QmpVm> = async {
            let src =
                QemuProcess::start_restoring(&site.spec, Some(&site.net.src), run_dir, raw, file)
                    .await?;
            let vm = QmpVm::connect(src).await?;
            match super::snapshot::resume_loaded(&vm, file).await {
                Ok(()) => Ok(vm),
                Err(e) => {
                    vm.shutdown().await;
                    Err(e)
                }
            }
        }
        .await;
        let vm = match restored {
            Ok(vm) => vm,
            Err(e) => {
                let _ = std::fs::remove_file(file);
                let (src, agent) = boot_source(&site.spec, &site.net, run_dir, raw, cancel)
                    .await
                    .with_context(|| {
                        format!("booting after a saved state failed to load ({e:#})")
                    })?;
                return Ok((QmpVm::connect(src).await?, agent));
            }
        };
        let agent = await_guest(&site.net, raw, cancel).await?;
        Ok((vm, agent))
    }
}

/// One run's lab: the two QEMUs on their site.
pub struct LabHosts {
    src: QmpVm,
    dst: QmpVm,
    agent: AgentClient,
    site: Site,
    rate: BitRate,
    /// Whether the network goes back to the pool.
    pooled: bool,
}

impl Environment for QmpLab {
    type Hosts = LabHosts;

    async fn boot(&self, p: &RunParams, raw: &Path, cancel: &Cancel) -> Result<LabHosts> {
        // A fault may leave the network in any state: its run has its own.
        let pooled = !p.fault.is_some();
        let nets = pooled.then_some(&self.nets);
        let site = Site::build(
            p,
            &self.image,
            &self.accel,
            self.tcg_dirty_workaround,
            raw,
            nets,
        )
        .await?;
        let snapshot = super::snapshot::path_for(&site.spec).filter(|_| self.fast_start);
        let source = async {
            match snapshot {
                Some(file) => self.start_from(&site, &file, raw, cancel).await,
                None => {
                    let (src, agent) =
                        boot_source(&site.spec, &site.net, site.run_dir.path(), raw, cancel)
                            .await?;
                    Ok((QmpVm::connect(src).await?, agent))
                }
            }
        };
        // The destination starts while the source boots or restores.
        let destination = async {
            let dst = QemuProcess::start(
                &site.spec,
                Role::Destination,
                Some(&site.net.dst),
                site.run_dir.path(),
                raw,
            )
            .await?;
            QmpVm::connect(dst).await
        };
        let (source, destination) = tokio::join!(source, destination);
        let ((src, agent), dst) = match (source, destination) {
            (Ok(s), Ok(d)) => (s, d),
            // Whichever side started stops with the site.
            (Err(e), d) => {
                if let Ok(d) = d {
                    d.shutdown().await;
                }
                site.teardown(nets);
                return Err(e);
            }
            (Ok((src, _)), Err(e)) => {
                src.shutdown().await;
                site.teardown(nets);
                return Err(e);
            }
        };
        Ok(LabHosts {
            src,
            dst,
            agent,
            site,
            rate: p.link_rate,
            pooled,
        })
    }

    async fn teardown(&self, hosts: LabHosts) {
        let LabHosts {
            src,
            dst,
            site,
            pooled,
            ..
        } = hosts;
        tokio::join!(src.shutdown(), dst.shutdown());
        site.teardown(pooled.then_some(&self.nets));
    }
}

impl Hosts for LabHosts {
    type Driver<'a> = QmpDriver<'a>;

    fn guest(&self) -> GuestLink {
        GuestLink::Agent(self.agent.clone())
    }

    fn probe_target(&self) -> (Option<String>, ProbeTarget) {
        self.site.probe_target()
    }

    fn link_counter(&self) -> LinkCounter {
        self.site.link_counter()
    }

    fn driver(&mut self) -> QmpDriver<'_> {
        QmpDriver::new(&mut self.src, &mut self.dst)
    }

    fn fault_target(&self) -> Option<Arc<dyn FaultTarget>> {
        Some(Arc::new(LabFaults::new(
            &self.site.net,
            self.rate,
            (
                QemuPid::Known(self.src.process.pid()),
                QemuPid::Known(self.dst.process.pid()),
            ),
            self.site.run_dir.path().to_owned(),
        )))
    }
}
