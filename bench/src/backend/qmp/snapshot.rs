//! Snapshot-started guests (`[lab] fast_start = true`): the guest is
//! booted once per distinct configuration (image, RAM, vCPUs,
//! accelerator), its state saved once its agent answers (QEMU migrates it
//! to a file, `exec:cat >`), and every later run's source QEMU starts
//! from that file (`-incoming defer`, `migrate-incoming exec:cat`, `cont`)
//! instead of booting: well under a second instead of ~5 s under TCG.
//! Guests with a disk boot as before (the disk's state is the run's own).
//! The workload allocates and tags its working set after the start, so a
//! restored guest's memory is checked exactly like a booted one's.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::client::{MigrateIncoming, QueryMigrate};
use super::QmpVm;
use crate::lab::qemu::{ram_arg, QemuSpec};

/// Where the saved state of guests like `spec` lives, or `None` when its
/// guest has a disk (its state belongs to the run).
pub fn path_for(spec: &QemuSpec) -> Option<PathBuf> {
    if spec.disks.is_some() {
        return None;
    }
    // Everything that shapes the guest's state and the device model.
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for f in [&spec.image.kernel, &spec.image.initrd] {
        f.hash(&mut h);
        std::fs::metadata(f)
            .and_then(|m| m.modified())
            .ok()
            .hash(&mut h);
    }
    (
        ram_arg(spec),
        spec.vcpus,
        &spec.accel,
        std::env::var("MIGBENCH_QEMU_EXTRA").ok(),
        env!("CARGO_PKG_VERSION"),
        // The lab's guest LAN as the saved guest knows it (its neighbour
        // cache holds the client's fixed MAC).
        crate::lab::net::CLIENT_MAC,
        crate::lab::qemu::kernel_cmdline(),
    )
        .hash(&mut h);
    let dir = crate::lab::image::cache_dir().join("snapshots");
    Some(dir.join(format!("guest-{:016x}.state", h.finish())))
}

/// Wait until the migration QEMU runs reaches `completed`.
async fn completed(vm: &QmpVm, what: &str) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let st = vm.qmp.execute(QueryMigrate(json!({}))).await?;
        match st["status"].as_str() {
            Some("completed") => return Ok(()),
            Some("failed") | Some("cancelled") => {
                bail!(
                    "{what} failed: {}",
                    st["error-desc"].as_str().unwrap_or("no reason given")
                )
            }
            _ if Instant::now() > deadline => bail!("{what} did not finish within 120 s"),
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// Save the state of the booted, paused-for-it guest in `vm` to `file`
/// (written beside it, then renamed: a half-written state is never used).
pub async fn save(vm: &QmpVm, file: &Path) -> Result<()> {
    let dir = file.parent().expect("a file in the cache dir");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    vm.pause().await?;
    vm.qmp
        .execute(super::client::Migrate(
            json!({ "uri": format!("exec:cat > {}", tmp.display()) }),
        ))
        .await?;
    completed(vm, "saving the guest's state").await?;
    std::fs::rename(&tmp, file).with_context(|| format!("storing {}", file.display()))?;
    Ok(())
}

/// Load the saved state into `vm` (started with `-incoming defer`) and run it.
pub async fn restore(vm: &QmpVm, file: &Path) -> Result<()> {
    vm.qmp
        .execute(MigrateIncoming(
            json!({ "uri": format!("exec:cat {}", file.display()) }),
        ))
        .await?;
    completed(vm, &format!("restoring {}", file.display())).await?;
    vm.resume().await?;
    Ok(())
}
