//! One migration through any [`MigrationDriver`], once an environment has
//! booted the guest and started its workload and the prober: a baseline,
//! settings and storage plan handed to the driver, the watch loop with a
//! progress bar, the driver's finish, the aftermath, and the guest's
//! verdict. Returns the [`Timeline`] that [`super::record::assemble`]
//! turns into the run record.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use migbench_model::fault::{FaultAt, FaultRecord, GuestLocation};
use migbench_model::settings::StorageMode;
use migbench_model::{Integrity, ProgressSample, RunParams};
use migbench_probes::protocol::{Request, Response};

use super::fault::{FaultTarget, Injector, Strike};
use super::guest::{agent_request, sleep_or_cancel, GuestLink};
use super::policy::Policies;
use super::record::{DiskPhase, Timeline, Verdict};
use super::watch::{watch, End, WatchConfig};
use super::{DiskCopy, MigrationDriver, Status, StoragePlan};
use crate::control::{Cancel, Display};
use crate::recorder::write_jsonl;

/// What one migration needs from its environment.
pub struct RunContext<'a> {
    /// The run.
    pub params: &'a RunParams,
    /// Its raw-data directory.
    pub raw: &'a Path,
    /// The run's clock origin: every raw series counts from it.
    pub origin: Instant,
    /// Wall-clock time of `origin`, seconds since the Unix epoch.
    pub origin_unix: f64,
    /// Wall-clock start, seconds since the Unix epoch.
    pub started_at: f64,
    /// Time between progress readings.
    pub poll: Duration,
    /// Interruption flag.
    pub cancel: &'a Cancel,
    /// Progress display.
    pub display: &'a Display,
    /// How the guest is reached.
    pub guest: &'a GuestLink,
    /// Bytes sent so far on the migration link, if the environment can tell.
    pub link_tx: &'a (dyn Fn() -> Option<u64> + Sync),
    /// What the environment lets a fault break (runs with `[fault]`).
    pub faults: Option<std::sync::Arc<dyn FaultTarget>>,
    /// Stops the probes being sent once the window after has passed (the
    /// last replies land while the guest is verified).
    pub end_probing: &'a (dyn Fn() + Sync),
}

/// What [`migrate`] produced, even when it failed part-way.
#[derive(Debug, Default)]
pub struct Migrated {
    /// The migration, once it was watched.
    pub timeline: Option<Timeline>,
    /// Progress samples.
    pub samples: Vec<ProgressSample>,
    /// The guest's verdict, once it was asked.
    pub verdict: Option<Verdict>,
}

/// The storage plan of a run: block modes copy the disk.
fn storage_plan(p: &RunParams) -> StoragePlan {
    match p.storage_mode {
        StorageMode::Block | StorageMode::BlockIncremental => StoragePlan::Copy {
            ready_timeout: p.timeout.0,
            // Only the overlay moves in incremental mode: the backing image is on both hosts.
            top_only: p.storage_mode == StorageMode::BlockIncremental,
        },
        _ => StoragePlan::Shared,
    }
}

fn progress_bar(ctx: &RunContext) -> ProgressBar {
    let bar = ctx.display.multi.add(ProgressBar::new(ctx.params.ram.0));
    bar.set_style(
        ProgressStyle::with_template("{prefix:>8} [{bar:30}] {msg}")
            .expect("static template")
            .progress_chars("=> "),
    );
    bar.set_prefix(ctx.params.run_id());
    bar
}

fn show(bar: &ProgressBar, st: &Status) {
    let st = &st.progress;
    bar.set_length(st.total.max(1));
    bar.set_position(st.total.saturating_sub(st.remaining));
    let throttle = st
        .throttle_pct
        .filter(|t| *t > 0.0)
        .map(|t| format!(", throttle {t:.0}%"))
        .unwrap_or_default();
    bar.set_message(format!(
        "{} remaining {} MiB, {:.0} Mbit/s, pass {}{throttle}",
        st.status,
        st.remaining >> 20,
        st.mbps,
        st.passes
    ));
}

/// A disk copy the backend runs inside the migration call (libvirt's
/// copy-storage), seen in its samples: copying from the first sample that
/// counts disk bytes, in sync at the first that counts memory (or has
/// copied all), with the link counter read then.
#[derive(Default)]
struct InCallCopy {
    started: Option<Instant>,
    ready: Option<(Instant, u64, Option<u64>)>,
}

impl InCallCopy {
    fn observe(&mut self, st: &Status, link_tx: &dyn Fn() -> Option<u64>) {
        let Some(d) = st.disk else { return };
        let now = Instant::now();
        self.started.get_or_insert(now);
        if self.ready.is_none() && (st.progress.total > 0 || d.processed >= d.total) {
            self.ready = Some((now, d.processed, link_tx()));
        }
    }

    /// The copy and the link counter when it was in sync.
    fn copy(&self) -> Option<(DiskCopy, Option<u64>)> {
        let (ready, bytes, tx) = self.ready?;
        Some((
            DiskCopy {
                started: self.started?,
                ready,
                bytes,
            },
            tx,
        ))
    }
}

/// Migrate and verify; `out` keeps what was measured even on error.
pub async fn migrate<D: MigrationDriver>(
    ctx: &RunContext<'_>,
    driver: &mut D,
    out: &mut Migrated,
) -> Result<()> {
    let (p, cancel) = (ctx.params, ctx.cancel);
    sleep_or_cancel(p.probe_before.0, cancel).await?;
    let bar = progress_bar(ctx);
    let tx_before = (ctx.link_tx)();
    // Nova scales step delays by the guest's data: RAM, plus the disk when it is copied.
    let plan = storage_plan(p);
    let disk_gib = match plan {
        StoragePlan::Copy { .. } => p.disk_size.0 as f64,
        StoragePlan::Shared => 0.0,
    };
    let mut policies = Policies::new(p, (p.ram.0 as f64 + disk_gib) / (1u64 << 30) as f64);
    let mut settings = p.migration();
    settings.downtime_limit =
        migbench_model::units::Dur(Duration::from_millis(policies.initial_downtime_ms()));
    let copy = match driver.prepare(&settings, plan).await {
        Ok(copy) => copy,
        Err(e) => {
            // E.g. the destination died during the disk copy: say whether
            // the guest kept running on the source.
            bar.finish_and_clear();
            let alive = ctx
                .guest
                .wait(Duration::from_secs(10), cancel)
                .await
                .is_ok();
            let state = if alive {
                "the guest still answers on the source"
            } else {
                "the guest no longer answers"
            };
            return Err(
                anyhow::Error::new(e).context(format!("preparing the migration failed; {state}"))
            );
        }
    };
    let read_back = driver
        .settings()
        .await
        .context("reading back the migration settings")?;
    std::fs::write(
        ctx.raw.join("migration-settings.json"),
        serde_json::to_string_pretty(&read_back)?,
    )?;
    // With a disk copy, prepare returns when it is in sync: what the link
    // carried until now is the disk phase.
    let disk_wire = tx_before
        .zip((ctx.link_tx)())
        .map(|(a, b)| b.saturating_sub(a));
    let cfg = WatchConfig {
        origin: ctx.origin,
        poll: ctx.poll,
        timeout: p.timeout.0,
    };
    let mut injector = match (&ctx.faults, p.fault.is_some()) {
        (Some(target), true) => Some(Injector::new(
            p.fault,
            target.clone(),
            ctx.guest.agent().cloned(),
        )),
        (None, true) => bail!("this environment cannot inject faults"),
        _ => None,
    };
    if p.fault.is_some() && p.fault.at == FaultAt::Switchover {
        driver
            .hold_at_switchover()
            .await
            .context("pausing before switchover for the fault")?;
    }
    let mut in_call = InCallCopy::default();
    let watched = watch(
        driver,
        cfg,
        &mut policies,
        injector.as_mut(),
        || cancel.is_cancelled(),
        |st| {
            show(&bar, st);
            in_call.observe(st, ctx.link_tx);
        },
    )
    .await;
    bar.finish_and_clear();
    // Lift the fault before anything else: the link must carry a recovery
    // and the guest be reachable for its verdict.
    let strike = injector.map(Injector::finish);
    let w = watched?;
    let ms = |t: Instant| t.duration_since(ctx.origin).as_secs_f64() * 1e3;
    let end = w.watched.end.clone();
    let paused = w.watched.at.paused_ms.is_some();
    // The probing window after counts from the switchover (seen complete),
    // or from now when the migration ended otherwise.
    let after_until = w
        .watched
        .at
        .completed_ms
        .map(|ms| ctx.origin + Duration::from_secs_f64(ms / 1e3))
        .unwrap_or_else(Instant::now)
        + p.probe_after.0;
    let began_ms = copy
        .map(|c| ms(c.started))
        .unwrap_or(w.watched.at.started_ms);
    // A copy inside the migration call: its link bytes are those up to
    // the moment it was in sync.
    let (copy, disk_wire) = match (copy, in_call.copy()) {
        (None, Some((c, tx))) => (Some(c), tx.zip(tx_before).map(|(b, a)| b.saturating_sub(a))),
        _ => (copy, disk_wire),
    };
    out.timeline = Some(Timeline {
        started_at: ctx.started_at,
        origin_unix: Some(ctx.origin_unix),
        began_ms,
        watched: w.watched,
        // Bytes on the wire from `migrate` on (the disk phase was before).
        wire_bytes: (ctx.link_tx)()
            .zip(tx_before.zip(disk_wire))
            .map(|(end, (start, disk))| end.saturating_sub(start).saturating_sub(disk)),
        disk: copy.map(|c| DiskPhase {
            time_ms: c.ready.duration_since(c.started).as_secs_f64() * 1e3,
            job_bytes: c.bytes,
            wire_bytes: disk_wire,
        }),
        fault: None,
    });
    out.samples = w.samples;
    write_jsonl(&ctx.raw.join("events.jsonl"), &w.events).context("writing events")?;
    if end == End::Completed {
        let finished = driver
            .finish(paused)
            .await
            .context("finishing the migration on the destination");
        if strike.is_none() {
            finished?;
        }
    }
    if end == End::Interrupted {
        bail!("interrupted during migration");
    }
    sleep_or_cancel(
        after_until.saturating_duration_since(Instant::now()),
        cancel,
    )
    .await?;
    let Some(strike) = strike else {
        (ctx.end_probing)();
        out.verdict = Some(verify(ctx, end == End::Completed).await?);
        return Ok(());
    };
    // After a fault: where the guest is, whether it answers there, and its
    // integrity when it does.
    let location = driver.locate().await;
    let answers = ctx
        .guest
        .wait(Duration::from_secs(10), cancel)
        .await
        .is_ok();
    if answers {
        out.verdict = Some(verify(ctx, end == End::Completed).await?);
    }
    let timeline = out.timeline.as_mut().expect("set above");
    timeline.fault = Some(fault_record(
        p, ctx.origin, timeline, &strike, location, answers,
    ));
    Ok(())
}

/// The record of a fault from its strike and the migration's timeline
/// (times from `migrate`; the probe gap and leftovers come later).
fn fault_record(
    p: &RunParams,
    origin: Instant,
    t: &Timeline,
    strike: &Strike,
    location: Option<GuestLocation>,
    answers: bool,
) -> FaultRecord {
    let w = &t.watched;
    let rel = |at: Instant| at.duration_since(origin).as_secs_f64() * 1e3 - w.at.started_ms;
    let struck_ms = strike.at.map(rel);
    let end_ms =
        w.at.completed_ms
            .or(Some(w.last.progress.t_ms).filter(|t| *t > 0.0))
            .map(|e| e - w.at.started_ms);
    let guest = location.unwrap_or(match w.end {
        End::Completed => GuestLocation::Destination,
        _ => GuestLocation::Source,
    });
    FaultRecord {
        fault: p.fault,
        struck: strike.at.is_some(),
        struck_ms,
        phase: strike.phase.clone(),
        cleared_ms: strike.cleared.map(rel),
        guest,
        answers,
        to_end_ms: struck_ms.zip(end_ms).map(|(s, e)| (e - s).max(0.0)),
        to_recovery_ms: struck_ms
            .zip(w.at.recovered_ms)
            .map(|(s, r)| (r - w.at.started_ms - s).max(0.0)),
        recover_attempts: w.recover_attempts,
        probe_gap_ms: None,
        leftovers: None,
        errors: strike.errors.clone(),
    }
}

/// The guest must answer wherever it now runs (the destination after
/// completion, the source otherwise); then its memory and disk are checked.
async fn verify(ctx: &RunContext<'_>, completed: bool) -> Result<Verdict> {
    let side = if completed { "destination" } else { "source" };
    ctx.guest
        .wait(Duration::from_secs(10), ctx.cancel)
        .await
        .with_context(|| format!("guest not answering on the {side} after the migration"))?;
    let Some(agent) = ctx.guest.agent() else {
        // Answers, but without migbench's agent nothing can be checked.
        return Ok(Verdict {
            memory: Integrity::NotChecked,
            disk: Integrity::NotChecked,
        });
    };
    let _ = agent_request(agent, Request::Stop, Duration::from_secs(10)).await;
    match agent_request(agent, Request::Verify, Duration::from_secs(60)).await? {
        Response::Verified {
            bad_pages, disk, ..
        } => Ok(Verdict {
            memory: if bad_pages == 0 {
                Integrity::Ok
            } else {
                Integrity::BadPages(bad_pages)
            },
            disk: match disk {
                None => Integrity::NotChecked,
                Some(d) if d.bad_blocks == 0 => Integrity::Ok,
                Some(d) => Integrity::BadBlocks(d.bad_blocks),
            },
        }),
        other => Err(anyhow!("unexpected verify reply {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::DiskProgress;

    fn status(disk: Option<(u64, u64)>, mem_total: u64) -> Status {
        Status {
            progress: ProgressSample {
                total: mem_total,
                ..Default::default()
            },
            disk: disk.map(|(processed, total)| DiskProgress { processed, total }),
            ..Default::default()
        }
    }

    #[test]
    fn a_copy_inside_the_call_is_in_sync_when_memory_starts_moving() {
        let mut c = InCallCopy::default();
        let tx = std::cell::Cell::new(0u64);
        let counter = || Some(tx.get());
        c.observe(&status(None, 0), &counter);
        assert!(c.copy().is_none(), "no disk: no copy");
        for (sent, copied) in [(10, 10), (60, 60)] {
            tx.set(sent);
            c.observe(&status(Some((copied, 100)), 0), &counter);
        }
        assert!(c.copy().is_none(), "still copying");
        tx.set(105);
        c.observe(&status(Some((100, 104)), 5), &counter);
        tx.set(500);
        c.observe(&status(Some((104, 104)), 5), &counter);
        let (copy, at_sync) = c.copy().unwrap();
        assert_eq!((copy.bytes, at_sync), (100, Some(105)));
        assert!(copy.ready >= copy.started);
    }
}
