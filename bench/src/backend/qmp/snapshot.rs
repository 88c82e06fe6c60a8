//! Snapshot-started guests (`[lab] fast_start = true`): the guest is
//! booted once per distinct configuration (image, RAM, vCPUs,
//! accelerator, the working-set size its agent maps ahead), its state
//! saved once its agent answers (QEMU migrates it
//! to a file, `exec:cat >`), and every later run's source QEMU starts
//! from that file (its standard input, `-incoming fd:0`, then `cont`)
//! instead of booting: about 0.1 s instead of 2–5 s under TCG.
//! Guests with a disk boot as before (the disk's state is the run's own).
//! The workload allocates and tags its working set after the start, so a
//! restored guest's memory is checked exactly like a booted one's.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::client::QueryMigrate;
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
        crate::lab::qemu::kernel_cmdline(spec.reserve),
    )
        .hash(&mut h);
    Some(cache().join(format!("guest-{:016x}.{STATE}", h.finish())))
}

/// The extension of a saved state; one being written is `tmp<pid>`.
const STATE: &str = "state";

/// Where saved states live: `snapshots/` in migbench's cache.
pub fn cache() -> PathBuf {
    crate::lab::image::cache_dir().join("snapshots")
}

/// The saved states in the cache, with their sizes.
pub fn saved() -> Vec<(PathBuf, u64)> {
    saved_in(&cache())
}

fn saved_in(dir: &Path) -> Vec<(PathBuf, u64)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, u64)> = entries
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == STATE))
        .map(|e| (e.path(), e.metadata().map(|m| m.len()).unwrap_or(0)))
        .collect();
    found.sort();
    found
}

/// Remove half-written states whose writer is gone (a run killed while
/// saving); the files removed.
pub fn sweep_partial() -> Vec<PathBuf> {
    sweep_partial_in(&cache())
}

fn sweep_partial_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut gone = Vec::new();
    for e in entries.flatten() {
        let path = e.path();
        let writer = path
            .extension()
            .and_then(|x| x.to_str())
            .and_then(|x| x.strip_prefix("tmp"))
            .and_then(|pid| pid.parse::<u32>().ok());
        if writer.is_some_and(|pid| !crate::system::pid_alive(pid))
            && std::fs::remove_file(&path).is_ok()
        {
            gone.push(path);
        }
    }
    gone
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
    let written = async {
        vm.pause().await?;
        vm.qmp
            .execute(super::client::Migrate(
                json!({ "uri": format!("exec:cat > {}", tmp.display()) }),
            ))
            .await?;
        completed(vm, "saving the guest's state").await
    }
    .await;
    let stored = written.and_then(|()| {
        std::fs::rename(&tmp, file).with_context(|| format!("storing {}", file.display()))
    });
    if stored.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    stored
}

/// Wait until `vm` (started loading `file`, see
/// [`QemuProcess::start_restoring`](crate::lab::qemu::QemuProcess::start_restoring))
/// has loaded it, and run the guest.
pub async fn resume_loaded(vm: &QmpVm, file: &Path) -> Result<()> {
    completed(vm, &format!("restoring {}", file.display())).await?;
    vm.resume().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_partial_states_of_dead_writers_are_swept() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = dir.path();
        let dead = snaps.join("guest-1.tmp4194305"); // above pid_max's default
        let live = snaps.join(format!("guest-2.tmp{}", std::process::id()));
        let kept = snaps.join("guest-3.state");
        for f in [&dead, &live, &kept] {
            std::fs::write(f, b"x").unwrap();
        }
        assert_eq!(sweep_partial_in(snaps), vec![dead.clone()]);
        assert!(!dead.exists() && live.exists() && kept.exists());
        assert_eq!(saved_in(snaps), vec![(kept, 1)]);
    }
}
