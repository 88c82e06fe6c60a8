//! The ssh lab: an `sshd` beside each lab libvirt daemon, so `[hosts]`
//! reaches the lab hosts by `qemu+ssh://root@ADDRESS/system` as users
//! reach theirs. Each sshd runs in its daemon's network and mount
//! namespaces, where `/run/libvirt/libvirt-sock` leads to the daemon (a
//! link in its private `/run/libvirt`), so libvirt's helper on the far
//! side finds the default socket. Keys are the lab's own: a client key
//! the sshds accept, their host keys in a known_hosts file of the lab;
//! ssh is pointed at them by a wrapper named in the URI's `command`
//! (libvirt's ssh transport passes no known_hosts of its own). Nothing
//! is written to the user's `~/.ssh`.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::process::{Child, Command};

/// How long an sshd may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A lab user libvirt's socket refuses (it is root's, mode 0700): what a
/// remote user outside the libvirt group meets.
pub const USER_WITHOUT_LIBVIRT: &str = "migbench-nolibvirt";

/// A lab user whose PATH has a shell but neither `virt-ssh-helper` nor
/// `nc`: what a host without libvirt's ssh helper gives.
pub const USER_WITHOUT_HELPER: &str = "migbench-nohelper";

/// The lab users' `/etc/passwd` and `/etc/shadow` lines (uid 64990 up).
fn lab_user_lines() -> (String, String) {
    let (mut passwd, mut shadow) = (String::new(), String::new());
    for (k, user) in [USER_WITHOUT_LIBVIRT, USER_WITHOUT_HELPER]
        .iter()
        .enumerate()
    {
        let id = 64990 + k;
        passwd += &format!("{user}:x:{id}:{id}:migbench lab:/nonexistent:/bin/sh\n");
        // `*`: no password, not locked (sshd refuses a `!` account).
        shadow += &format!("{user}:*:19000:0:99999:7:::\n");
    }
    (passwd, shadow)
}

/// The lab's ssh client side: its key, known hosts and ssh wrapper.
pub struct LabKeys {
    dir: PathBuf,
}

impl LabKeys {
    /// A client key pair and an empty known_hosts under `dir`.
    pub fn create(dir: &Path) -> Result<LabKeys> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let keys = LabKeys {
            dir: dir.to_path_buf(),
        };
        keygen(&keys.key(), "migbench-lab-client")?;
        std::fs::write(keys.known_hosts(), "")?;
        let wrapper = format!(
            "#!/bin/sh\n# ssh with the lab's known hosts only (written by migbench lab-hosts)\n\
             exec ssh -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null \
             -o StrictHostKeyChecking=yes \"$@\"\n",
            keys.known_hosts().display()
        );
        let ssh = keys.ssh();
        std::fs::write(&ssh, wrapper)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&ssh, std::fs::Permissions::from_mode(0o755))?;
        Ok(keys)
    }

    /// The client's private key.
    pub fn key(&self) -> PathBuf {
        self.dir.join("client_key")
    }

    /// The lab's known_hosts.
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }

    /// The ssh wrapper libvirt runs (`command=` in the URI).
    pub fn ssh(&self) -> PathBuf {
        self.dir.join("ssh")
    }

    /// The libvirt URI of a lab host at `address` over ssh.
    pub fn uri(&self, address: Ipv4Addr) -> String {
        format!(
            "qemu+ssh://root@{address}/system?keyfile={}&command={}",
            self.key().display(),
            self.ssh().display()
        )
    }
}

/// One lab host's sshd; killed on drop (and with its namespace).
pub struct LabSshd {
    _child: Child,
    /// This sshd made `/run/sshd` (the privilege-separation directory):
    /// removed again when it stops, if empty.
    made_privsep: bool,
}

/// sshd's privilege-separation directory.
const PRIVSEP: &str = "/run/sshd";

impl Drop for LabSshd {
    fn drop(&mut self) {
        if self.made_privsep {
            let _ = std::fs::remove_dir(PRIVSEP);
        }
    }
}

impl LabSshd {
    /// Start an sshd at `address` in the namespaces of the libvirt daemon
    /// `daemon_pid`, whose private `/run/libvirt` is `daemon_run` and
    /// socket `socket`; trust its host key in `keys`' known_hosts.
    pub async fn start(
        name: &str,
        address: Ipv4Addr,
        daemon_pid: u32,
        daemon_run: &Path,
        socket: &Path,
        keys: &LabKeys,
    ) -> Result<LabSshd> {
        let dir = keys.dir.join(format!("sshd-{name}"));
        std::fs::create_dir_all(&dir)?;
        let host_key = dir.join("host_key");
        keygen(&host_key, &format!("migbench-lab-{name}"))?;
        let public = std::fs::read_to_string(host_key.with_extension("pub"))?;
        let public: Vec<&str> = public.split_whitespace().take(2).collect();
        let mut known = std::fs::read_to_string(keys.known_hosts())?;
        known += &format!("{address} {}\n", public.join(" "));
        std::fs::write(keys.known_hosts(), known)?;
        let authorized = dir.join("authorized_keys");
        std::fs::copy(keys.key().with_extension("pub"), &authorized)?;
        // The default socket path, inside the daemon's mount namespace.
        let link = daemon_run.join("libvirt-sock");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(socket, &link)
            .with_context(|| format!("linking {}", link.display()))?;
        add_lab_users(daemon_pid, &dir)?;
        let helperless = helperless_path(&dir)?;
        let config = dir.join("sshd_config");
        std::fs::write(
            &config,
            format!(
                "ListenAddress {address}\nHostKey {}\nAuthorizedKeysFile {}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                 KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                 PidFile {}\nMatch User {USER_WITHOUT_HELPER}\n    SetEnv PATH={}\n",
                host_key.display(),
                authorized.display(),
                dir.join("sshd.pid").display(),
                helperless.display()
            ),
        )?;
        // sshd insists on its privilege-separation directory.
        let made_privsep = !Path::new(PRIVSEP).exists();
        std::fs::create_dir_all(PRIVSEP)?;
        let log = dir.join("sshd.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new("nsenter")
            .args(["-t", &daemon_pid.to_string(), "-m", "-n", "/usr/sbin/sshd"])
            .args(["-D", "-e", "-f"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .context(
                "starting sshd for the ssh lab (apt-get install openssh-server netcat-openbsd)",
            )?;
        let sshd = LabSshd {
            _child: child,
            made_privsep,
        };
        let start = Instant::now();
        loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("Server listening") {
                return Ok(sshd);
            }
            if start.elapsed() > START_TIMEOUT {
                bail!(
                    "sshd for the lab host {name} did not listen on {address}:22 within {}s: {}",
                    START_TIMEOUT.as_secs(),
                    text.lines().next().unwrap_or("(no output)")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Add the lab users to `/etc/passwd` and `/etc/shadow` inside the mount
/// namespace of the daemon `daemon_pid` only: copies with their lines
/// (readable by root alone from the start), bind-mounted over the
/// originals there and then unlinked, so no copy of the machine's shadow
/// stays on disk (the mounts go with the namespace; the machine's files
/// are untouched).
fn add_lab_users(daemon_pid: u32, dir: &Path) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (passwd, shadow) = lab_user_lines();
    let mut script = String::from("set -e\n");
    let mut copies = Vec::new();
    for (file, lines) in [("passwd", passwd), ("shadow", shadow)] {
        let copy = dir.join(file);
        let mut text = std::fs::read_to_string(format!("/etc/{file}"))
            .with_context(|| format!("reading /etc/{file}"))?;
        text += &lines;
        let _ = std::fs::remove_file(&copy);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&copy)
            .and_then(|mut f| f.write_all(text.as_bytes()))
            .with_context(|| format!("writing {}", copy.display()))?;
        script += &format!("mount --bind '{}' /etc/{file}\n", copy.display());
        copies.push(copy);
    }
    let out = std::process::Command::new("nsenter")
        .args(["-t", &daemon_pid.to_string(), "-m", "sh", "-c", &script])
        .output()
        .context("running nsenter");
    for copy in copies {
        let _ = std::fs::remove_file(copy);
    }
    let out = out?;
    if !out.status.success() {
        bail!(
            "adding the ssh lab's users in the daemon's mount namespace: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A directory holding what libvirt's remote command needs of a shell
/// (`sh`, `which`, `grep`) but neither `virt-ssh-helper` nor `nc`.
fn helperless_path(dir: &Path) -> Result<PathBuf> {
    let bin = dir.join("helperless-bin");
    std::fs::create_dir_all(&bin)?;
    for tool in ["sh", "which", "grep"] {
        let from = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.exists())
            .with_context(|| format!("{tool} not found in /usr/bin or /bin"))?;
        let link = bin.join(tool);
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(from, &link)?;
    }
    Ok(bin)
}

/// `ssh-keygen` an ed25519 key pair without a passphrase at `path`.
fn keygen(path: &Path, comment: &str) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let out = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .output()
        .context("running ssh-keygen (apt-get install openssh-client)")?;
    if !out.status.success() {
        bail!(
            "ssh-keygen for {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_names_the_labs_key_and_ssh_and_nothing_in_home() {
        let tmp = tempfile::tempdir().unwrap();
        let keys = LabKeys::create(tmp.path()).unwrap();
        let uri = keys.uri(Ipv4Addr::new(198, 18, 1, 3));
        assert!(uri.starts_with("qemu+ssh://root@198.18.1.3/system?keyfile="));
        assert!(uri.contains(&format!("command={}", keys.ssh().display())));
        let wrapper = std::fs::read_to_string(keys.ssh()).unwrap();
        assert!(wrapper.contains(&keys.known_hosts().display().to_string()));
        assert!(keys.key().is_file() && keys.key().with_extension("pub").is_file());
    }
}
