//! [`Site`]: what a run's lab is before any hypervisor starts, whatever
//! the backend: the namespaces and shaped link, the private directory, the
//! disks (and a storage host serving them for shared-nbd), and the
//! [`QemuSpec`] of the guest. Fields drop in order: storage host,
//! network, private directory.

use std::path::Path;

use anyhow::Result;
use migbench_model::settings::StorageMode;
use migbench_model::RunParams;
use migbench_probes::host::prober::ProbeTarget;

use crate::lab::image::GuestImage;
use crate::lab::net::{LabNet, Shaping};
use crate::lab::netpool::NetPool;
use crate::lab::qemu::QemuSpec;
use crate::lab::rundir::RunDir;
use crate::lab::storage::{prepare, serve_nbd};
use crate::migrate::env::LinkCounter;

/// One run's lab without its hypervisors.
pub struct Site {
    /// How to start the guest.
    pub spec: QemuSpec,
    /// The storage host's server (shared-nbd).
    pub storage: Option<tokio::process::Child>,
    /// The namespaces.
    pub net: LabNet,
    /// Private directory (sockets, pid files, disks).
    pub run_dir: RunDir,
}

impl Site {
    /// What the prober aims at: the guest's UDP echo, from the client
    /// namespace.
    pub fn probe_target(&self) -> (Option<String>, ProbeTarget) {
        let echo = self.net.guest_echo();
        (Some(self.net.client.clone()), ProbeTarget::Udp(echo))
    }

    /// Bytes the source host has sent on the migration link so far.
    pub fn link_counter(&self) -> LinkCounter {
        Box::new(self.net.migration_tx_counter())
    }

    /// Build the network, directory and disks of run `p` (logs go to
    /// `raw`); the network comes from `nets` when given.
    pub async fn build(
        p: &RunParams,
        image: &GuestImage,
        accel: &str,
        tcg_dirty_workaround: bool,
        raw: &Path,
        nets: Option<&NetPool>,
    ) -> Result<Site> {
        let shaping = Shaping {
            rate: p.link_rate,
            delay: p.link_delay,
            jitter: p.link_jitter,
            loss: p.link_loss,
        };
        let mut net = match nets {
            Some(pool) => pool.take(&shaping)?,
            None => LabNet::create(&shaping)?,
        };
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
            image: image.clone(),
            ram_mib: p.ram.mib(),
            tcg_dirty_workaround,
            vcpus: p.vcpus.0,
            accel: accel.to_string(),
            disks,
            reserve: p.working_set.0,
        };
        Ok(Site {
            spec,
            storage,
            net,
            run_dir,
        })
    }

    /// Stop the storage host, give the network back to `nets` or remove
    /// its namespaces (either way killing what still runs in them), and
    /// remove the private directory.
    pub fn teardown(self, nets: Option<&NetPool>) {
        let Site {
            storage,
            mut net,
            run_dir,
            ..
        } = self;
        drop(storage);
        match nets {
            Some(pool) => pool.put(net),
            None => net.teardown(),
        }
        drop(run_dir);
    }
}
