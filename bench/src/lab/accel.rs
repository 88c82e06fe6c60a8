//! Accelerator choice. `/dev/kvm` existing proves nothing (on the project's
//! machines a KVM guest hangs after the firmware), so `auto` boots the real
//! guest image under KVM and waits for the agent's ready line on the serial
//! console; if it does not come in time, TCG is used. The verdict is cached
//! per host boot and image.

use std::path::Path;
use std::time::{Duration, Instant};

use migbench_model::scenario::Accel;

use crate::lab::image::{cache_dir, GuestImage};
use crate::lab::qemu::{QemuProcess, QemuSpec, Role};
use crate::lab::rundir::RunDir;

/// How long a KVM test boot may take before KVM is declared unusable.
pub const KVM_BOOT_TIMEOUT: Duration = Duration::from_secs(20);

/// Resolve the scenario's accelerator to `kvm` or `tcg`.
pub async fn resolve(accel: Accel, image: &GuestImage) -> String {
    match accel {
        Accel::Kvm => "kvm".into(),
        Accel::Tcg => "tcg".into(),
        Accel::Auto => {
            if !Path::new("/dev/kvm").exists() {
                return "tcg".into();
            }
            let boot_id =
                std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
            let cache = cache_dir().join(format!("accel-{}-{}", boot_id.trim(), image.id));
            if let Ok(v) = std::fs::read_to_string(&cache) {
                return v.trim().to_string();
            }
            let verdict = if test_boot("kvm", image, KVM_BOOT_TIMEOUT).await.is_some() {
                "kvm"
            } else {
                "tcg"
            };
            let _ = std::fs::create_dir_all(cache_dir());
            let _ = std::fs::write(&cache, verdict);
            verdict.into()
        }
    }
}

/// Boot the image once without a network; return the time to the agent's
/// ready line, or `None` if it did not appear within `timeout`.
pub async fn test_boot(accel: &str, image: &GuestImage, timeout: Duration) -> Option<Duration> {
    let dir = RunDir::create("accel").ok()?;
    let spec = QemuSpec {
        image: image.clone(),
        ram_mib: 128,
        tcg_dirty_workaround: true,
        disks: None,
        reserve: 0,
        vcpus: 1,
        accel: accel.into(),
    };
    let start = Instant::now();
    let qemu = QemuProcess::start(&spec, Role::Source, None, dir.path(), dir.path())
        .await
        .ok()?;
    let serial = dir.path().join("guest-src.log");
    let mut ready = None;
    while start.elapsed() < timeout {
        if std::fs::read_to_string(&serial).is_ok_and(|s| s.contains("migbench-agent ready")) {
            ready = Some(start.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    qemu.shutdown().await;
    ready
}
