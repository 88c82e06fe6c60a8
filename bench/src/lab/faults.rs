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
    /// A libvirt daemon started it and wrote its pid to the file; read
    /// when needed (the destination's exists only once the migration
    /// began) and remembered, so it is counted after the file is gone.
    /// Only a process whose command line names the domain (the `String`)
    /// is taken: a pid file with garbage, or a pid reused since, is not.
    File(PathBuf, String, Mutex<Option<u32>>),
}

impl QemuPid {
    /// The QEMU of libvirt domain `domain` whose pid file is `path`,
    /// read now if the file exists.
    pub fn file(path: PathBuf, domain: &str) -> QemuPid {
        let pid = QemuPid::File(path, domain.to_string(), Mutex::new(None));
        pid.get();
        pid
    }

    /// The pid, if known or written yet (and, from a pid file, still the
    /// domain's QEMU).
    fn get(&self) -> Option<u32> {
        match self {
            QemuPid::Known(p) => *p,
            QemuPid::File(path, domain, seen) => {
                let mut seen = seen.lock().expect("pid lock");
                let read = std::fs::read_to_string(path)
                    .ok()
                    .and_then(|t| t.trim().parse::<i32>().ok())
                    .filter(|p| *p > 1)
                    .map(|p| p as u32);
                if let Some(p) = read {
                    *seen = Some(p);
                }
                seen.filter(|p| runs_domain(*p, domain))
            }
        }
    }

    /// Whether its process still runs (a remembered pid reused since by
    /// another process does not count).
    fn alive(&self) -> bool {
        self.get().is_some_and(pid_alive)
    }
}

/// Whether process `pid` is a QEMU of libvirt domain `domain` (libvirt
/// names it in `-name guest=DOMAIN,…`).
fn runs_domain(pid: u32, domain: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&format!("guest={domain},")))
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

    fn remember(&self) {
        self.src_pid.get();
        self.dst_pid.get();
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
            .filter(|p| p.alive())
            .count();
        (namespaces + processes + usize::from(self.run_dir.exists())) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pid_file_is_trusted_only_for_the_domains_qemu() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("guest.pid");
        let pid = QemuPid::file(file.clone(), "migbench-guest");
        // Not written yet; then garbage, every process, our group, init.
        assert_eq!(pid.get(), None);
        for text in ["", "x\n", "4294967295\n", "-1\n", "0\n", "1\n"] {
            std::fs::write(&file, text).unwrap();
            assert_eq!(pid.get(), None, "{text:?}");
        }
        // A live process that is not the domain's QEMU (this test).
        std::fs::write(&file, format!("{}\n", std::process::id())).unwrap();
        assert_eq!(pid.get(), None);
        assert!(!pid.alive());
    }
}
