//! libvirt daemons of the lab: one `libvirtd` per hypervisor namespace,
//! each in a private mount namespace whose /run/libvirt, /var/lib/libvirt,
//! /var/log/libvirt and /etc/libvirt are bind mounts of directories in the
//! run's private directory, its UNIX socket beside them (outside the bind
//! mounts, so the host side reaches it). The QEMU capability cache
//! (/var/cache/libvirt) is shared through migbench's cache directory: the
//! first daemon probes QEMU for a few seconds, later ones start in ~0.2 s.
//! The daemon and the QEMUs it starts live in the host's network
//! namespace, so they die with it (`LabNet` teardown, leftover sweep).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};

use crate::lab::image::cache_dir;

/// Directories libvirtd uses that each daemon gets its own copy of.
const PRIVATE: [(&str, &str); 4] = [
    ("run", "/run/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("log", "/var/log/libvirt"),
    ("etc", "/etc/libvirt"),
];

/// How long a daemon may take to open its socket (a cold capability
/// cache costs a QEMU probe under TCG).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Errors starting a daemon.
#[derive(Debug, thiserror::Error)]
pub enum LibvirtdError {
    /// Files of the daemon's private directory.
    #[error("preparing libvirtd's directory {path}")]
    Io {
        /// The path.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// `libvirtd` is not installed.
    #[error("Cannot start libvirtd (apt-get install libvirt-daemon libvirt-daemon-driver-qemu libvirt-daemon-system)")]
    Spawn(#[source] std::io::Error),
    /// It exited or never opened its socket.
    #[error("libvirtd ({name}) did not open its socket within {secs}s; see {log}")]
    NotUp {
        /// Host name (src, dst).
        name: String,
        /// Timeout.
        secs: u64,
        /// Its log.
        log: String,
    },
}

/// A running lab libvirt daemon; killed on drop.
pub struct Libvirtd {
    child: Child,
    /// Host name (src, dst).
    pub name: String,
    /// The daemon's private directory.
    pub dir: PathBuf,
    /// Its log file.
    pub log: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LibvirtdError + '_ {
    move |source| LibvirtdError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// `libvirtd.conf` of a lab daemon: socket outside the bind mounts, no
/// authentication (the socket sits in a 0700 directory), log to a file;
/// TCP without authentication for the other daemon (peer-to-peer and
/// tunnelled migrations, over the lab's link), reachable only inside the
/// run's own namespaces.
pub fn libvirtd_conf(dir: &Path) -> String {
    format!(
        "unix_sock_dir = \"{sock}\"\nauth_unix_rw = \"none\"\nauth_unix_ro = \"none\"\n\
         listen_tls = 0\nlisten_tcp = 1\nauth_tcp = \"none\"\n\
         log_outputs = \"3:file:{log}\"\n",
        sock = dir.join("sock").display(),
        log = dir.join("libvirtd.log").display()
    )
}

/// `qemu.conf` of a lab daemon: QEMU runs as root without a security
/// driver (the lab's images belong to root), its stdio goes to a file
/// (no virtlogd).
pub const QEMU_CONF: &str = "user = \"root\"\ngroup = \"root\"\nremember_owner = 0\n\
security_driver = \"none\"\nstdio_handler = \"file\"\n";

impl Libvirtd {
    /// Start `libvirtd` for host `name` inside network namespace `netns`,
    /// its files under `parent/libvirt-<name>`; wait for its socket.
    pub async fn start(netns: &str, name: &str, parent: &Path) -> Result<Libvirtd, LibvirtdError> {
        let dir = parent.join(format!("libvirt-{name}"));
        for (sub, _) in PRIVATE {
            let p = dir.join(sub);
            std::fs::create_dir_all(&p).map_err(io(&p))?;
        }
        let etc = dir.join("etc");
        let sock = dir.join("sock");
        std::fs::create_dir_all(&sock).map_err(io(&sock))?;
        std::fs::write(etc.join("libvirtd.conf"), libvirtd_conf(&dir)).map_err(io(&etc))?;
        std::fs::write(etc.join("qemu.conf"), QEMU_CONF).map_err(io(&etc))?;
        let cache = cache_dir().join("libvirt-cache");
        std::fs::create_dir_all(&cache).map_err(io(&cache))?;
        let mut script = String::from("set -e\n");
        let mounts = PRIVATE
            .iter()
            .map(|(sub, target)| (dir.join(sub), *target))
            .chain([(cache.clone(), "/var/cache/libvirt")]);
        for (from, target) in mounts {
            script += &format!(
                "mkdir -p {target}\nmount --bind '{}' {target}\n",
                from.display()
            );
        }
        script += &format!(
            "exec libvirtd --listen --pid-file '{}'\n",
            dir.join("libvirtd.pid").display()
        );
        let log = dir.join("libvirtd.log");
        let out = std::fs::File::create(dir.join("libvirtd.stderr")).map_err(io(&dir))?;
        let child = Command::new("ip")
            .args(["netns", "exec", netns, "unshare", "-m", "--propagation"])
            .args(["private", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(out.try_clone().map_err(io(&dir))?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .map_err(LibvirtdError::Spawn)?;
        let mut d = Libvirtd {
            child,
            name: name.to_string(),
            dir,
            log,
        };
        let start = Instant::now();
        while !d.socket().exists() {
            let exited = matches!(d.child.try_wait(), Ok(Some(_)));
            if exited || start.elapsed() > START_TIMEOUT {
                let stderr =
                    std::fs::read_to_string(d.dir.join("libvirtd.stderr")).unwrap_or_default();
                return Err(LibvirtdError::NotUp {
                    name: format!("{name}{}", stderr_hint(&stderr)),
                    secs: START_TIMEOUT.as_secs(),
                    log: d.log.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(d)
    }

    /// The daemon's process id (its namespaces are the host's).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What the daemon sees as `/var/lib/libvirt`.
    pub fn lib_dir(&self) -> PathBuf {
        self.dir.join("lib")
    }

    /// What the daemon sees as `/run/libvirt`.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// The daemon's read-write socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("sock").join("libvirt-sock")
    }

    /// The URI that reaches this daemon.
    pub fn uri(&self) -> String {
        format!("qemu+unix:///system?socket={}", self.socket().display())
    }

    /// The URI another lab daemon reaches this one by over the lab's
    /// link, this daemon's namespace having `address` there.
    pub fn peer_uri(address: std::net::Ipv4Addr) -> String {
        format!("qemu+tcp://{address}/system")
    }

    /// The log libvirt keeps of a domain's QEMU.
    pub fn qemu_log(&self, domain: &str) -> PathBuf {
        self.dir
            .join("log")
            .join("qemu")
            .join(format!("{domain}.log"))
    }

    /// Stop the daemon (SIGTERM, then SIGKILL). QEMUs it started keep
    /// running: destroy domains first, or remove the namespace.
    pub async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

/// ": <first line>" of a failed start's stderr, if it said anything.
fn stderr_hint(stderr: &str) -> String {
    stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_puts_the_socket_outside_the_bind_mounts() {
        let conf = libvirtd_conf(Path::new("/tmp/x/libvirt-src"));
        assert!(conf.contains("unix_sock_dir = \"/tmp/x/libvirt-src/sock\""));
        for (sub, _) in PRIVATE {
            assert!(!conf.contains(&format!("/tmp/x/libvirt-src/{sub}\"")));
        }
        assert!(QEMU_CONF.contains("security_driver = \"none\""));
        assert!(conf.contains("listen_tcp = 1") && conf.contains("listen_tls = 0"));
    }

    #[test]
    fn a_failed_start_names_the_first_line_it_printed() {
        assert_eq!(
            stderr_hint("\nmount: /run/libvirt: oops\nmore"),
            ": mount: /run/libvirt: oops"
        );
        assert_eq!(stderr_hint(""), "");
    }
}
