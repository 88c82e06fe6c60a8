//! Block migration the way libvirt does it over QMP: the destination
//! exports its empty disk over NBD, the source mirrors its disk into it
//! until in sync ([`Mirror::start`]), the mirror is completed with the
//! guest paused before switchover ([`Mirror::complete`]), and the export
//! is removed after the migration ([`Mirror::release`]).
//!
//! The job is not auto-dismissed: a mirror that fails (its NBD target
//! gone, a write error) stays listed as `concluded` with QEMU's reason,
//! so the run's error says why instead of "job not found".

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::{
    BlockExportAdd, BlockExportDel, BlockJobCancel, BlockdevAdd, BlockdevMirror, JobDismiss,
    MigrateSetCapabilities, NbdServerStart, NbdServerStop, QmpError, QueryJobs,
};
use super::vm::QmpVm;
use crate::lab::net::DST_MIG_IP;
use crate::migrate::DiskCopy;

/// NBD port of the destination's disk export.
pub const NBD_PORT: u16 = 10809;
const JOB: &str = "mirror0";

/// A disk mirror in sync, waiting for switchover.
#[derive(Debug)]
pub struct Mirror {
    /// What the copy did to get in sync.
    pub copy: DiskCopy,
}

/// The job `id` on `q` (`query-jobs`: status, progress, error), if it exists.
async fn job(q: &QmpVm, id: &str) -> Result<Option<Value>, QmpError> {
    let jobs = q.qmp.execute(QueryJobs(json!({}))).await?;
    Ok(jobs
        .as_array()
        .and_then(|a| a.iter().find(|j| j["id"] == id).cloned()))
}

/// A concluded job's failure, if it failed: QEMU's reason.
fn job_error(j: &Value) -> Option<String> {
    (j["status"] == "concluded")
        .then(|| j["error"].as_str().map(String::from))
        .flatten()
}

fn failed(command: &'static str, message: String) -> QmpError {
    QmpError::Command { command, message }
}

impl Mirror {
    /// Export the destination's disk over NBD, mirror the source's into it
    /// (only the top image with `top_only`) and wait until it is in sync.
    pub async fn start(
        src: &QmpVm,
        dst: &QmpVm,
        ready_timeout: Duration,
        top_only: bool,
    ) -> Result<Mirror, QmpError> {
        let host = DST_MIG_IP.to_string();
        let port = NBD_PORT.to_string();
        dst.qmp
            .execute(NbdServerStart(
                json!({"addr": {"type": "inet", "data": {"host": host, "port": port}}}),
            ))
            .await?;
        dst.qmp
            .execute(BlockExportAdd(json!({"type": "nbd", "id": "export0", "node-name": "disk0", "name": "disk0", "writable": true})))
            .await?;
        src.qmp
            .execute(BlockdevAdd(json!({"driver": "nbd", "node-name": "mirror-target", "export": "disk0", "server": {"type": "inet", "host": host, "port": port}})))
            .await?;
        // Pause before switchover so the mirror is completed with the guest stopped.
        src.qmp
            .execute(MigrateSetCapabilities(
                json!({"capabilities": [{"capability": "pause-before-switchover", "state": true}]}),
            ))
            .await?;
        let started = Instant::now();
        src.qmp
            .execute(BlockdevMirror(json!({
                "job-id": JOB,
                "device": "disk0",
                "target": "mirror-target",
                "sync": if top_only { "top" } else { "full" },
                "auto-dismiss": false,
            })))
            .await?;
        loop {
            let j = job(src, JOB).await?.ok_or_else(|| {
                failed(
                    "blockdev-mirror",
                    "the mirror job disappeared before it was ready (destination gone?)".into(),
                )
            })?;
            if let Some(why) = job_error(&j) {
                return Err(failed(
                    "blockdev-mirror",
                    format!("the disk mirror failed: {why}"),
                ));
            }
            if j["status"] == "ready" {
                let copy = DiskCopy {
                    started,
                    ready: Instant::now(),
                    bytes: j["current-progress"].as_u64().unwrap_or(0),
                };
                return Ok(Mirror { copy });
            }
            if started.elapsed() > ready_timeout {
                let why = format!(
                    "the disk mirror was not in sync after {}s",
                    ready_timeout.as_secs()
                );
                return Err(failed("blockdev-mirror", why));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The guest is paused before switchover: complete the mirror without
    /// pivoting (a cancelled *ready* mirror finishes its copy first) — the
    /// order libvirt uses, so no disk write is lost.
    pub async fn complete(&self, src: &QmpVm) -> Result<(), QmpError> {
        let gone = || {
            let why = "the disk mirror job vanished before switchover".to_string();
            failed("block-job-cancel", why)
        };
        let j = job(src, JOB).await?.ok_or_else(gone)?;
        if let Some(why) = job_error(&j) {
            let why = format!("the disk mirror failed before switchover: {why}");
            return Err(failed("block-job-cancel", why));
        }
        src.qmp
            .execute(BlockJobCancel(json!({ "device": JOB })))
            .await?;
        let start = Instant::now();
        loop {
            let j = job(src, JOB).await?.ok_or_else(gone)?;
            if j["status"] == "concluded" {
                let _ = src.qmp.execute(JobDismiss(json!({ "id": JOB }))).await;
                return match job_error(&j) {
                    // A cancelled ready mirror reports no error when its copy finished.
                    None => Ok(()),
                    Some(why) => Err(failed(
                        "block-job-cancel",
                        format!("the disk mirror failed while completing: {why}"),
                    )),
                };
            }
            if start.elapsed() > Duration::from_secs(60) {
                let why = "the disk mirror did not finish within 60s of switchover".into();
                return Err(failed("block-job-cancel", why));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// After completion: stop exporting the destination's disk.
    pub async fn release(self, dst: &QmpVm) {
        let _ = dst
            .qmp
            .execute(BlockExportDel(json!({"id": "export0"})))
            .await;
        let _ = dst.qmp.execute(NbdServerStop(json!({}))).await;
    }
}
