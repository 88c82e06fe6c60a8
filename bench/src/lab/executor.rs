//! The local lab's [`Executor`]: one real migration per run. Builds the
//! namespaces and shaped link, boots the source guest and an incoming
//! destination, starts the workload and the prober, migrates through
//! [`QmpDriver`], verifies memory, derives the run record, writes the raw
//! series and tears everything down — whatever happened.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use migbench_model::record::RttSummary;
use migbench_model::{Integrity, Outcome, ProbeEvent, RunParams, RunRecord, WorkloadSample};
use migbench_probes::agent_client::AgentClient;
use migbench_probes::disk::DiskRequest;
use migbench_probes::outage::{
    outage_threshold_ms, outage_windows, rtt_percentiles, service_downtime_ms,
};
use migbench_probes::prober::Prober;
use migbench_probes::protocol::{Request, Response};

use crate::driver::{watch, Ending, MigrationDriver, MirrorPlan, QmpDriver};
use crate::lab::image::GuestImage;
use crate::lab::net::{LabNet, Shaping};
use crate::lab::qemu::{QemuProcess, QemuSpec, Role};
use crate::lab::rundir::RunDir;
use crate::policy::{classify, Policies};
use crate::recorder::{unix_now, write_jsonl};
use crate::scheduler::{Cancel, Display, Executor};
use migbench_model::units::{DiskPattern, StorageMode};

/// Probing before `migrate` (the "before" RTT phase).
const BASELINE: Duration = Duration::from_secs(2);
/// Probing after completion (re-convergence and the "after" phase).
const AFTERMATH: Duration = Duration::from_secs(2);
/// How long the guest may take to answer after QEMU starts.
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs migrations in the local lab.
pub struct LabExecutor {
    /// Guest image.
    pub image: GuestImage,
    /// `kvm` or `tcg`.
    pub accel: String,
    /// Tokio runtime the async parts run on.
    pub rt: tokio::runtime::Handle,
    /// Interruption flag.
    pub cancel: Cancel,
    /// How often `query-migrate` is sampled.
    pub poll_interval: Duration,
    /// Pad guest RAM under TCG to dodge QEMU 7.2's lost-dirty-page bug.
    pub tcg_dirty_workaround: bool,
    /// Progress display.
    pub display: Display,
}

impl Executor for LabExecutor {
    fn execute(&mut self, p: &RunParams, raw: &Path) -> RunRecord {
        let started_at = unix_now();
        let mut rec = RunRecord::pending(p, started_at, &self.accel);
        let result = self.rt.block_on(self.run(p, raw, &mut rec));
        if let Err(e) = result {
            if rec.outcome == Outcome::Completed {
                rec.outcome = if self.cancel.is_cancelled() {
                    Outcome::Interrupted
                } else {
                    Outcome::Failed
                };
            }
            rec.error = Some(format!("{e:#}"));
        }
        rec
    }
}

/// Sleep `d`, returning early with an error if interrupted.
pub async fn sleep_or_cancel(d: Duration, cancel: &Cancel) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if cancel.is_cancelled() {
            bail!("interrupted");
        }
        tokio::time::sleep((end - Instant::now()).min(Duration::from_millis(50))).await;
    }
    Ok(())
}

/// One control request off the async runtime.
pub async fn agent_request(
    agent: &AgentClient,
    req: Request,
    timeout: Duration,
) -> Result<Response> {
    let a = agent.clone();
    Ok(tokio::task::spawn_blocking(move || a.request(&req, timeout)).await??)
}

/// Wait until the agent answers a ping.
pub async fn wait_for_agent(agent: &AgentClient, timeout: Duration, cancel: &Cancel) -> Result<()> {
    let start = Instant::now();
    loop {
        match agent_request(agent, Request::Ping, Duration::from_millis(500)).await {
            Ok(Response::Pong { .. }) => return Ok(()),
            _ if start.elapsed() > timeout => {
                bail!("guest agent did not answer within {}s", timeout.as_secs())
            }
            _ => sleep_or_cancel(Duration::from_millis(200), cancel).await?,
        }
    }
}

/// Boot a guest on the source host of `net` and wait for its agent.
pub async fn boot_source(
    spec: &QemuSpec,
    net: &LabNet,
    run_dir: &Path,
    raw: &Path,
    cancel: &Cancel,
) -> Result<(QemuProcess, AgentClient)> {
    let src = QemuProcess::start(spec, Role::Source, Some(&net.src), run_dir, raw).await?;
    let agent = AgentClient::new(Some(net.client.clone()), net.guest_control());
    wait_for_agent(&agent, BOOT_TIMEOUT, cancel)
        .await
        .with_context(|| {
            format!(
                "guest did not boot; see {}",
                raw.join("guest-src.log").display()
            )
        })?;
    Ok((src, agent))
}

/// Fetches workload samples every second and maps guest times to host times.
fn spawn_sampler(
    agent: AgentClient,
    origin: Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<Vec<WorkloadSample>> {
    tokio::spawn(async move {
        let mut out = Vec::new();
        loop {
            let done = stop.load(std::sync::atomic::Ordering::Relaxed);
            // A paused or moving guest may not answer; its samples wait for the next fetch.
            if let Ok(Response::Samples { now_ms, samples }) =
                agent_request(&agent, Request::Samples, Duration::from_secs(2)).await
            {
                let host_now = origin.elapsed().as_secs_f64() * 1e3;
                out.extend(samples.iter().map(|s| WorkloadSample {
                    t_ms: host_now - (now_ms - s.end_ms),
                    window_ms: s.window_ms,
                    bytes: s.bytes,
                }));
            }
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        out
    })
}

/// Mean rate (MB/s, 10^6) of samples ending in `[from, to)`.
pub fn mean_rate_mbs(samples: &[WorkloadSample], from_ms: f64, to_ms: f64) -> Option<f64> {
    let (bytes, ms) = samples
        .iter()
        .filter(|s| s.t_ms >= from_ms && s.t_ms < to_ms)
        .fold((0u64, 0.0), |(b, m), s| (b + s.bytes, m + s.window_ms));
    (ms > 0.0).then(|| bytes as f64 / (ms / 1e3) / 1e6)
}

impl LabExecutor {
    async fn run(&self, p: &RunParams, raw: &Path, rec: &mut RunRecord) -> Result<()> {
        let origin = Instant::now();
        let shaping = Shaping {
            rate: p.link_rate,
            delay: p.link_delay,
            jitter: p.link_jitter,
            loss: p.link_loss,
        };
        let mut net = LabNet::create(&shaping)?;
        let run_dir = RunDir::create("run")?;
        let disks = crate::lab::storage::prepare(
            run_dir.path(),
            p.storage_mode,
            p.disk_format,
            p.disk_size,
            p.base_data,
            p.disk_block_size.0.max(4096),
        )?;
        // shared-nbd: a storage host on its own link serves the image.
        let mut storage_daemon = None;
        if let (Some(d), StorageMode::SharedNbd) = (&disks, p.storage_mode) {
            net.add_storage_host(p.storage_link_rate)?;
            let ns = net.storage.clone().expect("storage host just added");
            storage_daemon =
                Some(crate::lab::storage::serve_nbd(d, &ns, &net.src, run_dir.path(), raw).await?);
        }
        let spec = QemuSpec {
            image: self.image.clone(),
            ram_mib: p.ram.mib(),
            tcg_dirty_workaround: self.tcg_dirty_workaround,
            vcpus: p.vcpus,
            accel: self.accel.clone(),
            disks,
        };
        let result = self
            .migrate(p, raw, rec, origin, &net, run_dir.path(), &spec)
            .await;
        drop(storage_daemon);
        net.teardown();
        drop(run_dir);
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn migrate(
        &self,
        p: &RunParams,
        raw: &Path,
        rec: &mut RunRecord,
        origin: Instant,
        net: &LabNet,
        run_dir: &Path,
        spec: &QemuSpec,
    ) -> Result<()> {
        let cancel = &self.cancel;
        let (mut src, agent) = boot_source(spec, net, run_dir, raw, cancel).await?;
        let mut dst =
            QemuProcess::start(spec, Role::Destination, Some(&net.dst), run_dir, raw).await?;
        let fill_timeout =
            Duration::from_secs(30 + p.working_set.mib() / 4 + p.disk_fill.mib() / 2);
        let disk = (p.storage_mode != StorageMode::None).then(|| DiskRequest {
            device: "/dev/vda".into(),
            rate: p.disk_write_rate.0,
            block_size: p.disk_block_size.0,
            random: p.disk_pattern == DiskPattern::Random,
            fill: p.disk_fill.0,
            base: p.base_data.0,
        });
        agent_request(
            &agent,
            Request::Start {
                rate: p.dirty_rate.0,
                working_set: p.working_set.0,
                compressible: p.compressibility.0 / 100.0,
                disk,
            },
            fill_timeout,
        )
        .await
        .context("starting the workload")?;
        let prober = Prober::start(
            Some(&net.client),
            net.guest_echo(),
            p.probe_interval.0,
            origin,
        )
        .context("starting the prober")?;
        let stop_sampler = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sampler = spawn_sampler(agent.clone(), origin, stop_sampler.clone());
        let outcome = self
            .migrate_inner(p, raw, rec, origin, &mut src, &mut dst, &agent, net)
            .await;
        stop_sampler.store(true, std::sync::atomic::Ordering::Relaxed);
        let workload = sampler.await.unwrap_or_default();
        let probes =
            tokio::task::spawn_blocking(move || prober.finish(Duration::from_millis(300))).await?;
        let write = || -> std::io::Result<()> {
            let f = std::io::BufWriter::new(std::fs::File::create(raw.join("probes.csv"))?);
            migbench_model::record::write_probes_csv(f, &probes)?;
            write_jsonl(&raw.join("workload.jsonl"), &workload)
        };
        write().context("writing raw series")?;
        if let Some((t0, t1, switched)) = outcome.as_ref().ok().copied().flatten() {
            if switched {
                derive_probe_metrics(rec, &probes, p.probe_interval.ms(), t0, t1);
            }
            rec.workload_rate_before_mbs = mean_rate_mbs(&workload, 0.0, t0);
            rec.workload_rate_during_mbs = mean_rate_mbs(&workload, t0, t1);
            rec.workload_slowdown_pct = rec
                .workload_rate_before_mbs
                .zip(rec.workload_rate_during_mbs)
                .filter(|(before, _)| *before > 0.0)
                .map(|(before, during)| (1.0 - during / before) * 100.0);
        }
        rec.probes_sent = probes.len() as u64;
        rec.probes_lost = probes.iter().filter(|e| e.recv_ms.is_none()).count() as u64;
        src.shutdown().await;
        dst.shutdown().await;
        outcome.map(|_| ())
    }

    /// Migrate and verify; returns the migration window (ms since origin)
    /// and whether a switchover happened (so the probe metrics apply).
    #[allow(clippy::too_many_arguments)]
    async fn migrate_inner(
        &self,
        p: &RunParams,
        raw: &Path,
        rec: &mut RunRecord,
        origin: Instant,
        src: &mut QemuProcess,
        dst: &mut QemuProcess,
        agent: &AgentClient,
        net: &LabNet,
    ) -> Result<Option<(f64, f64, bool)>> {
        let cancel = &self.cancel;
        sleep_or_cancel(BASELINE, cancel).await?;
        let bar = self.display.multi.add(ProgressBar::new(p.ram.0));
        bar.set_style(
            ProgressStyle::with_template("{prefix:>8} [{bar:30}] {msg}")
                .expect("static template")
                .progress_chars("=> "),
        );
        bar.set_prefix(p.run_id());
        let tx_before = net.migration_tx_bytes();
        let mut driver = QmpDriver::new(src, dst);
        if matches!(
            p.storage_mode,
            StorageMode::Block | StorageMode::BlockIncremental
        ) {
            driver.mirror = Some(MirrorPlan {
                ready_timeout: p.timeout.0,
                // Only the overlay moves in incremental mode: the backing image is on both hosts.
                top_only: p.storage_mode == StorageMode::BlockIncremental,
            });
        }
        // Nova scales step delays by the guest's data: RAM, plus the disk
        // when it is copied.
        let disk_gib = match p.storage_mode {
            StorageMode::Block | StorageMode::BlockIncremental => p.disk_size.0 as f64,
            _ => 0.0,
        };
        let mut policies = Policies::new(p, (p.ram.0 as f64 + disk_gib) / (1u64 << 30) as f64);
        let knobs = crate::tuning::knobs(p, policies.initial_downtime_ms());
        let prepared = driver.prepare(&knobs).await;
        if let Err(e) = prepared {
            // E.g. the destination died during the disk mirror: say whether
            // the guest kept running on the source.
            bar.finish_and_clear();
            let alive = wait_for_agent(agent, Duration::from_secs(10), cancel)
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
        let settings = driver
            .settings()
            .await
            .context("reading back the migration settings")?;
        std::fs::write(
            raw.join("migration-settings.json"),
            serde_json::to_string_pretty(&settings)?,
        )?;
        // With a mirror, prepare returns when the disk is in sync: what the
        // link carried until now is the disk phase.
        let disk_wire = tx_before
            .zip(net.migration_tx_bytes())
            .map(|(a, b)| b.saturating_sub(a));
        let watched = watch(
            &mut driver,
            origin,
            self.poll_interval,
            p.timeout.0,
            &mut policies,
            || cancel.is_cancelled(),
            |st| {
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
            },
        )
        .await;
        bar.finish_and_clear();
        let watched = watched?;
        // Bytes on the wire from `migrate` on (the disk phase was before).
        rec.wire_bytes = net
            .migration_tx_bytes()
            .zip(tx_before.zip(disk_wire))
            .map(|(end, (start, disk))| end.saturating_sub(start).saturating_sub(disk));
        let mirrored = driver.mirrored;
        if let Some(m) = mirrored {
            let secs = m.ready.duration_since(m.started).as_secs_f64();
            rec.mirror_progress_bytes = Some(m.bytes);
            rec.disk_bytes = disk_wire;
            rec.disk_time_ms = Some(secs * 1e3);
            rec.disk_throughput_mbps = disk_wire
                .filter(|_| secs > 0.0)
                .map(|b| b as f64 * 8.0 / secs / 1e6);
        }
        if matches!(watched.ending, Ending::Completed(_)) {
            driver.finish_storage().await;
            if watched.paused_at.is_some() {
                driver
                    .resume_destination()
                    .await
                    .context("resuming the guest on the destination after a forced pause")?;
            }
        }
        let ms = |t: Instant| t.duration_since(origin).as_secs_f64() * 1e3;
        let t0 = ms(watched.started);
        let last = &watched.last;
        rec.qemu_total_time_ms = last.total_time_ms;
        rec.qemu_setup_time_ms = last.setup_time_ms;
        // A cancelled migration's final status has no RAM counters: keep the
        // furthest the migration got.
        let furthest = |f: fn(&migbench_model::ProgressSample) -> u64| {
            watched
                .samples
                .iter()
                .map(f)
                .max()
                .map(|m| m.max(f(&last.progress)))
        };
        rec.transferred_bytes = furthest(|s| s.transferred);
        rec.passes = furthest(|s| s.passes);
        // QEMU counts zero pages as it scans; pages are 4 KiB on x86.
        rec.zero_bytes = furthest(|s| s.zero_pages).map(|z| z * 4096);
        rec.multifd_bytes = furthest(|s| s.multifd_bytes).filter(|b| *b > 0);
        rec.normal_bytes = furthest(|s| s.normal_bytes);
        rec.postcopy_requests =
            furthest(|s| s.postcopy_requests).filter(|_| watched.postcopy_at.is_some());
        rec.xbzrle = watched
            .samples
            .iter()
            .rev()
            .find_map(|s| s.xbzrle)
            .or(last.progress.xbzrle);
        rec.max_throttle_pct = watched
            .samples
            .iter()
            .filter_map(|s| s.throttle_pct)
            .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
        rec.downtime_limit_final_ms = Some(watched.downtime_limit_ms as f64);
        rec.interventions = watched.interventions.clone();
        write_jsonl(&raw.join("events.jsonl"), &watched.events).context("writing events")?;
        let samples = watched.samples.clone();
        let mut window = None;
        match watched.ending.clone() {
            Ending::Completed(at) => {
                rec.outcome = Outcome::Completed;
                // With a disk mirror the migration began when the mirror did.
                let began = mirrored.map(|m| m.started).unwrap_or(watched.started);
                rec.total_time_ms = Some(at.duration_since(began).as_secs_f64() * 1e3);
                rec.downtime_qemu_ms = last.downtime_ms;
                if let (Some(total), Some(setup)) = (last.total_time_ms, last.setup_time_ms) {
                    let flowing = (total - setup).max(1.0);
                    rec.throughput_mbps =
                        Some(last.progress.transferred as f64 * 8.0 / (flowing / 1e3) / 1e6);
                }
                window = Some((t0, ms(at)));
                if let Some(pc) = watched.postcopy_at {
                    rec.postcopy_time_ms =
                        Some(at.saturating_duration_since(pc).as_secs_f64() * 1e3);
                }
                if let Some(paused) = watched.paused_at {
                    rec.paused_ms = Some(at.saturating_duration_since(paused).as_secs_f64() * 1e3);
                }
            }
            Ending::Aborted(_) => rec.outcome = Outcome::Aborted,
            Ending::Failed(reason) => {
                rec.outcome = Outcome::Failed;
                rec.error = Some(reason);
            }
            Ending::TimedOut => rec.outcome = Outcome::TimedOut,
            Ending::Interrupted => rec.outcome = Outcome::Interrupted,
        }
        let aborted = match &watched.ending {
            Ending::Aborted(reason) => Some(reason.as_str()),
            _ => None,
        };
        (rec.outcome_detail, rec.finished_by) = classify(
            p,
            rec.outcome == Outcome::Completed,
            aborted,
            &watched.interventions,
            watched.downtime_limit_ms,
            rec.max_throttle_pct,
        );
        write_jsonl(&raw.join("progress.jsonl"), &samples).context("writing progress series")?;
        if rec.outcome == Outcome::Interrupted {
            bail!("interrupted during migration");
        }
        sleep_or_cancel(AFTERMATH, cancel).await?;
        // The guest must answer wherever it now runs: on the destination
        // after completion, on the source after a cancelled migration.
        let side = if rec.outcome == Outcome::Completed {
            "destination"
        } else {
            "source"
        };
        wait_for_agent(agent, Duration::from_secs(10), cancel)
            .await
            .with_context(|| format!("guest not answering on the {side} after the migration"))?;
        let _ = agent_request(agent, Request::Stop, Duration::from_secs(10)).await;
        match agent_request(agent, Request::Verify, Duration::from_secs(60)).await? {
            Response::Verified {
                bad_pages, disk, ..
            } => {
                rec.integrity = if bad_pages == 0 {
                    Integrity::Ok
                } else {
                    Integrity::BadPages(bad_pages)
                };
                if let Some(d) = disk {
                    rec.disk_integrity = if d.bad_blocks == 0 {
                        Integrity::Ok
                    } else {
                        Integrity::BadBlocks(d.bad_blocks)
                    };
                }
            }
            other => return Err(anyhow!("unexpected verify reply {other:?}")),
        }
        if matches!(rec.outcome, Outcome::TimedOut | Outcome::Aborted) {
            // Probe outage metrics are for switchovers; none happened. The
            // workload's rate while migbench tried still counts.
            let end = watched.samples.last().map(|s| s.t_ms).unwrap_or(t0);
            return Ok(Some((t0, end, false)));
        }
        Ok(window.map(|(a, b)| (a, b, true)))
    }
}

/// Fill the probe-derived fields for a migration window `[t0, t1]` (ms).
pub fn derive_probe_metrics(
    rec: &mut RunRecord,
    probes: &[ProbeEvent],
    interval_ms: f64,
    t0: f64,
    t1: f64,
) {
    // Re-convergence happens after QEMU says completed: look a second past it.
    let to = t1 + 1000.0;
    rec.downtime_probe_ms = service_downtime_ms(probes, interval_ms, t0, to);
    rec.outage_windows = outage_windows(probes, outage_threshold_ms(interval_ms))
        .iter()
        .filter(|w| w.end_ms >= t0 && w.start_ms <= to)
        .count() as u32;
    rec.rtt = RttSummary {
        before: rtt_percentiles(probes, 0.0, t0),
        during: rtt_percentiles(probes, t0, t1),
        after: rtt_percentiles(probes, t1, f64::INFINITY),
    };
}
