//! Private per-process run directory (mode 0700) for QMP sockets and pid
//! files, named after the owning pid so leftovers of a killed migbench are
//! recognised, and removed on drop.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::system::{owner_pid, pid_alive, OWNED_PREFIX};

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct RunDir {
    path: PathBuf,
}

impl RunDir {
    /// Create `/tmp/migbench-<pid>-<n>` with mode 0700.
    pub fn create(tag: &str) -> std::io::Result<RunDir> {
        let base = std::env::temp_dir();
        for n in 0..1000 {
            let path = base.join(format!("{OWNED_PREFIX}{}-{tag}{n}", std::process::id()));
            match fs::create_dir(&path) {
                Ok(()) => {
                    fs::set_permissions(&path, fs::Permissions::from_mode(0o700))?;
                    return Ok(RunDir { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
        Err(std::io::Error::other("no free run directory name"))
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for RunDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Remove run directories of migbench processes that no longer exist,
/// killing any QEMU whose pid file is inside. Returns what was removed.
pub fn sweep_leftovers() -> Vec<PathBuf> {
    sweep_where(|pid| !pid_alive(pid))
}

/// Remove this process's own run directories (forced exit).
pub fn remove_own() {
    let me = std::process::id();
    sweep_where(|pid| pid == me);
}

fn sweep_where(owner: impl Fn(u32) -> bool) -> Vec<PathBuf> {
    let mut gone = Vec::new();
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return gone;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if !owner(pid) {
            continue;
        }
        for f in fs::read_dir(e.path()).into_iter().flatten().flatten() {
            if f.path().extension().is_some_and(|x| x == "pid") {
                let qpid = fs::read_to_string(f.path())
                    .ok()
                    .and_then(|s| s.trim().parse::<i32>().ok());
                // Only a pid that is still a QEMU: pids get reused.
                let is_qemu = |p: i32| {
                    fs::read(format!("/proc/{p}/cmdline"))
                        .is_ok_and(|c| String::from_utf8_lossy(&c).contains("qemu-system"))
                };
                if let Some(qpid) = qpid.filter(|&p| is_qemu(p)) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(qpid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
        if fs::remove_dir_all(e.path()).is_ok() {
            gone.push(e.path());
        }
    }
    gone
}
