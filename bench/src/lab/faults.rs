//! The lab's [`FaultTarget`]: the migration link is the `mig0` veth pair
//! (taken down on both ends, or its token buckets re-rated), the
//! hypervisors are the two QEMU processes (SIGKILL; migbench's own, or
//! the ones a lab libvirt daemon started, found by their pid files), the
//! storage host is cut off by taking its ports down; afterwards it counts
//! what the run left behind (namespaces, QEMU processes, the private
//! directory).

use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::{Context, Result};
use migbench_model::units::BitRate;

use crate::lab::net::{namespace_exists, reshape, set_link, LabNet};
use crate::migrate::fault::{FaultTarget, Side};
use crate::system::{exited, pid_alive};

/// How a side's QEMU process is found.
#[derive(Debug)]
pub enum QemuPid {
    /// migbench started it (`None`: already reaped).
    Known(Option<u32>),
    /// A libvirt daemon started it and wrote its pid here; read when
    /// needed (the destination's exists only once the migration began)
    /// and remembered, so it is counted after the file is gone.
    File(PathBuf, Mutex<Option<u32>>),
}

impl QemuPid {
    /// A pid file's QEMU, read now if the file exists.
    pub fn file(path: PathBuf) -> QemuPid {
        let pid = QemuPid::File(path, Mutex::new(None));
        pid.get();
        pid
    }

    /// The pid, if known or written yet.
    fn get(&self) -> Option<u32> {
        match self {
            QemuPid::Known(p) => *p,
            QemuPid::File(path, seen) => {
                let mut seen = seen.lock().expect("pid lock");
                if let Some(p) = std::fs::read_to_string(path)
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                {
                    *seen = Some(p);
                }
                *seen
            }
        }
    }
}

/// One run's lab, as faults see it.
pub struct LabFaults {
    src: String,
    dst: String,
    namespaces: Vec<String>,
    storage: Option<String>,
    rate: BitRate,
    src_pid: QemuPid,
    dst_pid: QemuPid,
    run_dir: PathBuf,
}

impl LabFaults {
    /// The faults of the lab `net` (shaped to `rate`) with the QEMUs `pids`
    /// (source, destination) and private directory `run_dir`.
    pub fn new(net: &LabNet, rate: BitRate, pids: (QemuPid, QemuPid), run_dir: PathBuf) -> Self {
        LabFaults {
            src: net.src.clone(),
            dst: net.dst.clone(),
            namespaces: [&net.src, &net.dst, &net.client]
                .into_iter()
                .chain(net.storage.as_ref())
                .cloned()
                .collect(),
            storage: net.storage.clone(),
            rate,
            src_pid: pids.0,
            dst_pid: pids.1,
            run_dir,
        }
    }
}

impl FaultTarget for LabFaults {
    fn set_link(&self, up: bool) -> Result<()> {
        for ns in [&self.src, &self.dst] {
            set_link(ns, "mig0", up)?;
        }
        Ok(())
    }

    fn set_link_rate(&self, rate: Option<BitRate>) -> Result<()> {
        for ns in [&self.src, &self.dst] {
            reshape(ns, "mig0", rate.unwrap_or(self.rate))?;
        }
        Ok(())
    }

    fn kill(&self, side: Side) -> Result<()> {
        let pid = match side {
            Side::Source => &self.src_pid,
            Side::Destination => &self.dst_pid,
        }
        .get()
        .context("the QEMU process has no pid (already reaped, or not started yet)")?;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )
        .with_context(|| format!("SIGKILL to QEMU pid {pid}"))?;
        // Exited (a zombie's descriptors are closed), not merely signalled.
        let start = std::time::Instant::now();
        while !exited(pid) {
            if start.elapsed() > std::time::Duration::from_secs(5) {
                anyhow::bail!("QEMU pid {pid} still runs 5 s after SIGKILL");
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(())
    }

    fn set_storage(&self, up: bool) -> Result<()> {
        let ns = self
            .storage
            .as_ref()
            .context("this run has no storage host (storage.mode = \"shared-nbd\")")?;
        for port in ["s-src", "s-dst"] {
            set_link(ns, port, up)?;
        }
        Ok(())
    }

    fn leftovers(&self) -> u32 {
        let namespaces = self
            .namespaces
            .iter()
            .filter(|n| namespace_exists(n))
            .count();
        let processes = [&self.src_pid, &self.dst_pid]
            .into_iter()
            .filter_map(QemuPid::get)
            .filter(|p| pid_alive(*p))
            .count();
        (namespaces + processes + usize::from(self.run_dir.exists())) as u32
    }
}
