//! QEMU processes of the lab: the source (booting the guest, or loading a
//! saved state from its stdin) and the destination (`-incoming defer`),
//! each started inside its host namespace with a QMP socket and pid file
//! in the private run directory, stderr and the guest's serial console
//! logged to the run's results directory. The
//! QMP conversation itself belongs to the QMP backend
//! (`crate::backend::qmp::vm::QmpVm`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::lab::image::GuestImage;
use crate::lab::net::{GUEST_IP, GUEST_PREFIX};

/// The guest NIC's MAC address (same on both sides: it is one guest).
pub const GUEST_MAC: &str = "52:54:00:6d:62:01";

/// RAM padding under TCG. QEMU 7.2 (Debian 12) loses dirty pages under TCG:
/// the word-aligned fast path of `cpu_physical_memory_sync_dirty_bitmap`
/// clears migration dirty bits without re-arming the TCG TLB's not-dirty
/// trap, so later guest stores through cached TLB entries are never sent and
/// the destination guest crashes or holds stale pages (fixed upstream in
/// QEMU 9.0, "physmem: Fix migration dirty bitmap coherency with TCG memory
/// access"). A RAM size that is not a multiple of 64 pages makes QEMU take
/// its exact per-page path instead. 8 KiB is QEMU's RAM size granularity.
pub const TCG_RAM_PAD_KIB: u64 = 8;

/// `-m` argument for a spec (KiB, padded under TCG when asked).
pub fn ram_arg(spec: &QemuSpec) -> String {
    let kib = spec.ram_mib * 1024;
    if spec.tcg_dirty_workaround && spec.accel == "tcg" {
        format!("{}K", kib + TCG_RAM_PAD_KIB)
    } else {
        format!("{kib}K")
    }
}

/// Which side of the migration a QEMU is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The running guest.
    Source,
    /// Waits for the incoming migration.
    Destination,
}

impl Role {
    /// Short name used in file names.
    pub fn name(self) -> &'static str {
        match self {
            Role::Source => "src",
            Role::Destination => "dst",
        }
    }
}

/// How to start a guest.
#[derive(Debug, Clone)]
pub struct QemuSpec {
    /// Kernel and initramfs.
    pub image: GuestImage,
    /// RAM in MiB.
    pub ram_mib: u64,
    /// Add [`TCG_RAM_PAD_KIB`] to the RAM under TCG (see there).
    pub tcg_dirty_workaround: bool,
    /// vCPUs.
    pub vcpus: u32,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// The guest's disk images, if it has a disk.
    pub disks: Option<crate::lab::storage::Disks>,
    /// Bytes the agent maps at its start for the run's working set
    /// (`mb.reserve=`; 0: none), see [`kernel_cmdline`].
    pub reserve: u64,
}

/// A running QEMU; killed on drop.
pub struct QemuProcess {
    child: Child,
    /// Which side this is.
    pub role: Role,
    /// Its QMP socket (server, in the private run directory).
    pub qmp_socket: PathBuf,
    /// Its stderr log.
    pub log: PathBuf,
    pid_file: PathBuf,
}

/// Errors starting QEMU.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// The process could not be started.
    #[error("Cannot start qemu-system-x86_64 (apt-get install qemu-system-x86)")]
    Spawn(#[source] std::io::Error),
    /// QEMU exited or never opened its QMP socket; the log usually says why.
    #[error("QEMU ({role}) did not come up within 20s; see {log}")]
    NotUp {
        /// Side.
        role: &'static str,
        /// Its log file.
        log: String,
    },
}

/// The command line (program and arguments) for one side.
pub fn command_line(
    spec: &QemuSpec,
    role: Role,
    netns: Option<&str>,
    run_dir: &Path,
    log_dir: &Path,
) -> Vec<String> {
    let r = role.name();
    let mut v: Vec<String> = Vec::new();
    if let Some(ns) = netns {
        v.extend(["ip", "netns", "exec", ns].map(String::from));
    }
    v.push("qemu-system-x86_64".into());
    let s = |x: &str| x.to_string();
    v.extend([
        s("-name"),
        format!("migbench-{r}"),
        s("-accel"),
        if spec.accel == "tcg" {
            s("tcg,thread=single")
        } else {
            spec.accel.clone()
        },
        s("-m"),
        ram_arg(spec),
        s("-smp"),
        spec.vcpus.to_string(),
        s("-nodefaults"),
        s("-display"),
        s("none"),
        s("-no-reboot"),
        s("-kernel"),
        spec.image.kernel.display().to_string(),
        s("-initrd"),
        spec.image.initrd.display().to_string(),
        s("-append"),
        kernel_cmdline(spec.reserve),
        s("-serial"),
        format!("file:{}", log_dir.join(format!("guest-{r}.log")).display()),
        s("-qmp"),
        format!(
            "unix:{},server=on,wait=off",
            run_dir.join(format!("{r}.qmp")).display()
        ),
        s("-pidfile"),
        run_dir.join(format!("{r}.pid")).display().to_string(),
        s("-msg"),
        s("timestamp=on"),
    ]);
    if netns.is_some() {
        v.extend([
            s("-netdev"),
            s("tap,id=n0,ifname=tap0,script=no,downscript=no"),
            s("-device"),
            format!("virtio-net-pci,netdev=n0,mac={GUEST_MAC}"),
        ]);
    }
    // The disk as node `disk0` (the name the block mirror and NBD export use)
    // behind a virtio-blk device. cache=none: writes reach the image, as the
    // guest's O_DIRECT writes expect.
    if let Some(d) = &spec.disks {
        if d.mode == migbench_model::settings::StorageMode::SharedNbd {
            // Both hosts open the storage host's export.
            let (host, port) = (
                crate::lab::net::STORAGE_IP,
                crate::lab::net::STORAGE_NBD_PORT,
            );
            v.extend([
                s("-blockdev"),
                format!("driver=nbd,server.type=inet,server.host={host},server.port={port},export=disk0,node-name=disk0"),
            ]);
        } else {
            let img = d.image(role == Role::Source).display().to_string();
            v.extend([
                s("-blockdev"),
                format!("driver=file,filename={img},node-name=file0,cache.direct=on"),
                s("-blockdev"),
                format!("driver={},file=file0,node-name=disk0", d.format),
            ]);
        }
        v.extend([s("-device"), s("virtio-blk-pci,drive=disk0,id=vd0")]);
    }
    // Extra arguments for experiments (e.g. `-cpu max`), same on both sides.
    if let Ok(extra) = std::env::var("MIGBENCH_QEMU_EXTRA") {
        v.extend(extra.split_whitespace().map(String::from));
    }
    if role == Role::Destination {
        v.extend([s("-incoming"), s("defer")]);
    }
    v
}

/// The guest kernel's command line. `loglevel=5` keeps the console to
/// warnings and worse: quiet, but a guest that e.g. marks its TSC unstable
/// says so in `guest-src.log` (a snapshot-started guest keeps what its one
/// boot decided, so the saving run's log is where to look).
/// `mb.reserve=BYTES` has the agent map that much memory, zeroed, before
/// it says it is ready, and use it for a working set of exactly that size:
/// a snapshot-started guest then starts its workload without allocating
/// (the kernel's page allocation is most of a 64 MiB working set's start
/// under TCG), with the same pages and contents as an allocated one.
pub fn kernel_cmdline(reserve: u64) -> String {
    let mut c = format!("console=ttyS0 loglevel=5 panic=-1 mb.ip={GUEST_IP}/{GUEST_PREFIX}");
    if reserve > 0 {
        c.push_str(&format!(" mb.reserve={reserve}"));
    }
    c
}

impl QemuProcess {
    /// Start one side and connect to its QMP socket.
    pub async fn start(
        spec: &QemuSpec,
        role: Role,
        netns: Option<&str>,
        run_dir: &Path,
        log_dir: &Path,
    ) -> Result<QemuProcess, QemuError> {
        Self::spawn(
            command_line(spec, role, netns, run_dir, log_dir),
            Stdio::null(),
            role,
            run_dir,
            log_dir,
        )
        .await
    }

    /// Start the source loading the saved state in `state` instead of
    /// booting: a snapshot-started guest. The file is QEMU's standard
    /// input (`-incoming fd:0`): QEMU reads it directly, twice as fast as
    /// through a pipe from `exec:cat` (0.10 s against 0.2–0.4 s for a
    /// 256 MiB guest here). The guest stays paused once loaded.
    pub async fn start_restoring(
        spec: &QemuSpec,
        netns: Option<&str>,
        run_dir: &Path,
        log_dir: &Path,
        state: &Path,
    ) -> Result<QemuProcess, QemuError> {
        let mut argv = command_line(spec, Role::Source, netns, run_dir, log_dir);
        argv.extend(["-incoming".to_string(), "fd:0".to_string()]);
        let file = std::fs::File::open(state).map_err(QemuError::Spawn)?;
        Self::spawn(argv, Stdio::from(file), Role::Source, run_dir, log_dir).await
    }

    async fn spawn(
        argv: Vec<String>,
        stdin: Stdio,
        role: Role,
        run_dir: &Path,
        log_dir: &Path,
    ) -> Result<QemuProcess, QemuError> {
        let log_path = log_dir.join(format!("qemu-{}.log", role.name()));
        let log = std::fs::File::create(&log_path).map_err(QemuError::Spawn)?;
        let _ = std::fs::write(
            log_dir.join(format!("qemu-{}.cmdline", role.name())),
            argv.join(" ") + "\n",
        );
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(stdin)
            .stdout(log.try_clone().map_err(QemuError::Spawn)?)
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(QemuError::Spawn)?;
        let mut process = QemuProcess {
            child,
            role,
            qmp_socket: run_dir.join(format!("{}.qmp", role.name())),
            log: log_path,
            pid_file: run_dir.join(format!("{}.pid", role.name())),
        };
        // Up once its QMP socket exists (QEMU creates it after parsing
        // its command line); gone if the process exits first.
        let start = std::time::Instant::now();
        while !process.qmp_socket.exists() {
            let exited = matches!(process.child.try_wait(), Ok(Some(_)));
            if exited || start.elapsed() > Duration::from_secs(20) {
                return Err(QemuError::NotUp {
                    role: role.name(),
                    log: process.log.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(process)
    }

    /// Its process id (while it has not been reaped).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Stop QEMU (SIGTERM: it exits cleanly), then make sure it is gone.
    pub async fn shutdown(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if tokio::time::timeout(Duration::from_secs(3), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_file(&self.pid_file);
    }
}
