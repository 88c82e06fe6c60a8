//! The QMP backend in the local lab: [`QmpLab`] builds a run's namespaces
//! and shaped link, private directory, disks (and a storage host for
//! shared-nbd), boots the source guest and starts an incoming destination,
//! both QEMUs driven over QMP; [`LabHosts`] hands the executor the agent,
//! the probe target, the link counter and a [`QmpDriver`].

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Result;
use migbench_model::settings::StorageMode;
use migbench_model::RunParams;
use migbench_probes::agent_client::AgentClient;

use super::{QmpDriver, QmpVm};
use crate::control::Cancel;
use crate::lab::boot::boot_source;
use crate::lab::image::GuestImage;
use crate::lab::net::{LabNet, Shaping};
use crate::lab::qemu::{QemuProcess, QemuSpec, Role};
use crate::lab::rundir::RunDir;
use crate::lab::storage::{prepare, serve_nbd};
use crate::migrate::env::{Environment, Hosts, LinkCounter};

/// The local lab, guests driven over QMP.
pub struct QmpLab {
    /// Guest image.
    pub image: GuestImage,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Pad guest RAM under TCG to dodge QEMU 7.2's lost-dirty-page bug.
    pub tcg_dirty_workaround: bool,
}

/// One run's lab. Fields drop in order: QEMUs, storage host, network,
/// private directory.
pub struct LabHosts {
    src: QmpVm,
    dst: QmpVm,
    agent: AgentClient,
    storage: Option<tokio::process::Child>,
    net: LabNet,
    _run_dir: RunDir,
}

impl Environment for QmpLab {
    type Hosts = LabHosts;

    async fn boot(&self, p: &RunParams, raw: &Path, cancel: &Cancel) -> Result<LabHosts> {
        let shaping = Shaping {
            rate: p.link_rate,
            delay: p.link_delay,
            jitter: p.link_jitter,
            loss: p.link_loss,
        };
        let mut net = LabNet::create(&shaping)?;
        let run_dir = RunDir::create("run")?;
        let block = p.disk_block_size.0.max(4096);
        let disks = prepare(
            run_dir.path(),
            p.storage_mode,
            p.disk_format,
            p.disk_size,
            p.base_data,
            block,
        )?;
        // shared-nbd: a storage host on its own link serves the image.
        let mut storage = None;
        if let (Some(d), StorageMode::SharedNbd) = (&disks, p.storage_mode) {
            net.add_storage_host(p.storage_link_rate)?;
            let ns = net.storage.clone().expect("storage host just added");
            storage = Some(serve_nbd(d, &ns, &net.src, run_dir.path(), raw).await?);
        }
        let spec = QemuSpec {
            image: self.image.clone(),
            ram_mib: p.ram.mib(),
            tcg_dirty_workaround: self.tcg_dirty_workaround,
            vcpus: p.vcpus.0,
            accel: self.accel.clone(),
            disks,
        };
        let (src, agent) = boot_source(&spec, &net, run_dir.path(), raw, cancel).await?;
        let src = QmpVm::connect(src).await?;
        let dst = QemuProcess::start(
            &spec,
            Role::Destination,
            Some(&net.dst),
            run_dir.path(),
            raw,
        )
        .await?;
        let dst = QmpVm::connect(dst).await?;
        Ok(LabHosts {
            src,
            dst,
            agent,
            storage,
            net,
            _run_dir: run_dir,
        })
    }

    async fn teardown(&self, hosts: LabHosts) {
        let LabHosts {
            src,
            dst,
            storage,
            mut net,
            _run_dir,
            ..
        } = hosts;
        src.shutdown().await;
        dst.shutdown().await;
        drop(storage);
        net.teardown();
    }
}

impl Hosts for LabHosts {
    type Driver<'a> = QmpDriver<'a>;

    fn agent(&self) -> AgentClient {
        self.agent.clone()
    }

    fn probe_target(&self) -> (Option<String>, SocketAddr) {
        (Some(self.net.client.clone()), self.net.guest_echo())
    }

    fn link_counter(&self) -> LinkCounter {
        Box::new(self.net.migration_tx_counter())
    }

    fn driver(&mut self) -> QmpDriver<'_> {
        QmpDriver::new(&mut self.src, &mut self.dst)
    }
}
