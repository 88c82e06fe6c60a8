//! Record assembly: one pure function ([`assemble`]) from what a run
//! measured — the migration's [`Timeline`] (written as `timeline.json`),
//! its progress samples, probe events, workload samples and the guest's
//! verdict — to the [`RunRecord`] of `runs.jsonl`. No clock, no I/O: a
//! run's raw directory is enough to rebuild its record.

use serde::{Deserialize, Serialize};

use migbench_model::record::RttSummary;
use migbench_model::WorkloadSample;
use migbench_model::{Integrity, Outcome, ProbeEvent, ProgressSample, RunParams, RunRecord};
use migbench_pure::outage::{
    outage_threshold_ms, outage_windows, rtt_percentiles, service_downtime_ms, switchover_outage_ms,
};

use super::policy::classify;
use super::services::{summarise, ServiceSeries};
use super::watch::{End, Watched};

/// What the migration did, times in ms since the run's clock origin: the
/// watch loop's summary and what the environment measured around it.
/// Written per run as `timeline.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Wall-clock start of the run, seconds since the Unix epoch.
    pub started_at: f64,
    /// Wall-clock time of the clock origin, seconds since the Unix epoch
    /// (µs precision; absent before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_unix: Option<f64>,
    /// The migration began: the disk copy's start with block storage, else `migrate`.
    pub began_ms: f64,
    /// What the watch loop saw.
    #[serde(flatten)]
    pub watched: Watched,
    /// Bytes on the migration link from `migrate` on.
    pub wire_bytes: Option<u64>,
    /// The disk copy before `migrate`.
    pub disk: Option<DiskPhase>,
    /// What an injected fault did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<migbench_model::fault::FaultRecord>,
}

/// What the guest agent said after the migration: memory and disk.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Memory pages.
    pub memory: Integrity,
    /// Disk blocks.
    pub disk: Integrity,
}

/// Everything a run measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured<'a> {
    /// The migration.
    pub timeline: &'a Timeline,
    /// `query-migrate`-style samples.
    pub samples: &'a [ProgressSample],
    /// Probe events.
    pub probes: &'a [ProbeEvent],
    /// Workload samples.
    pub workload: &'a [WorkloadSample],
    /// The guest's verdict, if it was asked.
    pub verdict: Option<Verdict>,
    /// What the service clients saw.
    pub services: &'a ServiceSeries,
    /// The playout buffers the stream is evaluated with.
    pub buffers: &'a [std::time::Duration],
}

/// The disk copy of a block migration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiskPhase {
    /// Copy start to in sync, ms.
    pub time_ms: f64,
    /// Bytes the copy job reported.
    pub job_bytes: u64,
    /// Bytes on the migration link during the copy.
    pub wire_bytes: Option<u64>,
}

/// Mean rate (MB/s, 10^6) of samples ending in `[from, to)`.
fn mean_rate_mbs(samples: &[WorkloadSample], from_ms: f64, to_ms: f64) -> Option<f64> {
    let (bytes, ms) = samples
        .iter()
        .filter(|s| s.t_ms >= from_ms && s.t_ms < to_ms)
        .fold((0u64, 0.0), |(b, m), s| (b + s.bytes, m + s.window_ms));
    (ms > 0.0).then(|| bytes as f64 / (ms / 1e3) / 1e6)
}

/// Probes sent and lost (also for a run that never reached a migration).
pub fn count_probes(rec: &mut RunRecord, probes: &[ProbeEvent]) {
    rec.probes_sent = probes.len() as u64;
    rec.probes_lost = probes.iter().filter(|e| e.recv_ms.is_none()).count() as u64;
}

/// Fill the probe-derived fields for a migration window `[t0, t1]` (ms).
fn derive_probe_metrics(
    rec: &mut RunRecord,
    probes: &[ProbeEvent],
    interval_ms: f64,
    t0: f64,
    t1: f64,
) {
    // Re-convergence happens after the backend says completed: look a second past it.
    let to = t1 + 1000.0;
    rec.downtime_probe_ms = service_downtime_ms(probes, interval_ms, t0, to);
    rec.switchover_probe_ms = switchover_outage_ms(probes, interval_ms, t1);
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

/// The record of a run of `p` on accelerator `accel` from what it measured.
pub fn assemble(p: &RunParams, accel: &str, m: Measured) -> RunRecord {
    let mut rec = RunRecord::pending(p, m.timeline.started_at, accel);
    rec.origin_unix = m.timeline.origin_unix;
    migration_fields(&mut rec, m.timeline, m.samples);
    rec.wire_bytes = m.timeline.wire_bytes;
    if let Some(d) = m.timeline.disk {
        rec.mirror_progress_bytes = Some(d.job_bytes);
        rec.disk_bytes = d.wire_bytes;
        rec.disk_time_ms = Some(d.time_ms);
        rec.disk_throughput_mbps = d
            .wire_bytes
            .filter(|_| d.time_ms > 0.0)
            .map(|b| b as f64 * 8.0 / (d.time_ms / 1e3) / 1e6);
    }
    let t = &m.timeline.watched;
    let aborted = match &t.end {
        End::Aborted(reason) => Some(reason.as_str()),
        _ => None,
    };
    (rec.outcome_detail, rec.finished_by) = classify(
        p,
        rec.outcome == Outcome::Completed,
        aborted,
        &t.interventions,
        t.forced,
        t.downtime_limit_ms,
        rec.max_throttle_pct,
    );
    if let Some(v) = m.verdict {
        rec.integrity = v.memory;
        rec.disk_integrity = v.disk;
    }
    // The probe and workload windows of a run the guest answered after: a
    // switchover's, or what migbench tried before it gave up. A switchover
    // ends where the backend's own clock says the migration ended (the
    // start plus the total time it reports), if sooner than migbench saw
    // it: libvirt's call returns after the destination resumed the guest
    // and the source confirmed (1.4 s later in a run of
    // faults-libvirt.toml, a 9 ms reply gap between), and the switchover
    // gap is the last that began before the end.
    let window = match (&t.end, t.at.completed_ms) {
        _ if m.verdict.is_none() => None,
        (End::Completed, Some(done)) => Some((t.at.started_ms, switch_end(&rec, t, done), true)),
        (End::TimedOut | End::Aborted(_), _) => {
            let end = m.samples.last().map(|s| s.t_ms).unwrap_or(t.at.started_ms);
            Some((t.at.started_ms, end, false))
        }
        _ => None,
    };
    if let Some((t0, t1, switched)) = window {
        if switched {
            derive_probe_metrics(&mut rec, m.probes, p.probe_interval.ms(), t0, t1);
        }
        rec.workload_rate_before_mbs = mean_rate_mbs(m.workload, 0.0, t0);
        rec.workload_rate_during_mbs = mean_rate_mbs(m.workload, t0, t1);
        rec.workload_slowdown_pct = rec
            .workload_rate_before_mbs
            .zip(rec.workload_rate_during_mbs)
            .filter(|(before, _)| *before > 0.0)
            .map(|(before, during)| (1.0 - during / before) * 100.0);
    }
    summarise(&mut rec, p, m.buffers, m.services, window);
    count_probes(&mut rec, m.probes);
    if let Some(f) = &m.timeline.fault {
        fault_fields(&mut rec, f, t, m.probes, p.probe_interval.ms());
    }
    rec
}

/// Where a completed migration's switchover ends (see `assemble`): at
/// `done`, when migbench saw it complete, unless the backend's own clock
/// (the start plus the total time it reports, if above 0) ends it more
/// than [`LATE_RETURN_MS`] sooner. QMP's completion is seen within ms of
/// QEMU's end (its whole-ms total and a start taken before `migrate` is
/// sent could put that end before a short pause began); libvirt's call
/// returns a second or more after.
fn switch_end(rec: &RunRecord, t: &Watched, done: f64) -> f64 {
    rec.qemu_total_time_ms
        .filter(|total| *total > 0.0)
        .map(|total| t.at.started_ms + total)
        .filter(|own| done - own > LATE_RETURN_MS)
        .unwrap_or(done)
}

/// How much later than the backend's own end of a migration migbench may
/// see it complete before the backend's end is taken (see [`switch_end`]).
const LATE_RETURN_MS: f64 = 100.0;

/// A fault's part of the record: a completed migration that needed a
/// post-copy recovery is `recovered`; the probe's longest gap that
/// overlapped the fault (from the strike to its lifting, or to the
/// migration's end) says what a client felt of it.
fn fault_fields(
    rec: &mut RunRecord,
    f: &migbench_model::fault::FaultRecord,
    t: &Watched,
    probes: &[ProbeEvent],
    interval_ms: f64,
) {
    let mut f = f.clone();
    if rec.outcome == Outcome::Completed && t.at.recovered_ms.is_some() {
        rec.outcome = Outcome::Recovered;
    }
    if let Some(struck) = f.struck_ms {
        let from = t.at.started_ms + struck;
        let until = t.at.started_ms
            + f.cleared_ms
                .or(f.to_end_ms.map(|e| struck + e))
                .unwrap_or(struck);
        f.probe_gap_ms = outage_windows(probes, outage_threshold_ms(interval_ms))
            .iter()
            .filter(|w| w.end_ms >= from && w.start_ms <= until)
            .map(|w| w.end_ms - w.start_ms)
            .fold(0.0, f64::max)
            .into();
    }
    if !f.errors.is_empty() && rec.error.is_none() {
        rec.error = Some(format!("fault injection: {}", f.errors.join("; ")));
    }
    rec.fault = Some(f);
}

/// The fields from the migration's own counters and ending.
fn migration_fields(rec: &mut RunRecord, timeline: &Timeline, samples: &[ProgressSample]) {
    let t = &timeline.watched;
    let last = &t.last.progress;
    let times = t.last.times;
    rec.qemu_total_time_ms = times.total_time_ms;
    rec.qemu_setup_time_ms = times.setup_time_ms;
    // A cancelled migration's final status has no RAM counters: keep the
    // furthest the migration got.
    let furthest =
        |f: fn(&ProgressSample) -> u64| samples.iter().map(f).max().map(|m| m.max(f(last)));
    rec.transferred_bytes = furthest(|s| s.transferred);
    rec.passes = furthest(|s| s.passes);
    // Zero pages are counted as scanned; pages are 4 KiB on x86.
    rec.zero_bytes = furthest(|s| s.zero_pages).map(|z| z * 4096);
    rec.multifd_bytes = furthest(|s| s.multifd_bytes).filter(|b| *b > 0);
    rec.normal_bytes = furthest(|s| s.normal_bytes);
    rec.postcopy_requests =
        furthest(|s| s.postcopy_requests).filter(|_| t.at.postcopy_ms.is_some());
    rec.xbzrle = samples.iter().rev().find_map(|s| s.xbzrle).or(last.xbzrle);
    rec.max_throttle_pct = samples
        .iter()
        .filter_map(|s| s.throttle_pct)
        .fold(None, |m: Option<f64>, t| Some(m.map_or(t, |m| m.max(t))));
    rec.downtime_limit_final_ms = Some(t.downtime_limit_ms as f64);
    rec.interventions = t.interventions.clone();
    match (&t.end, t.at.completed_ms) {
        (End::Completed, Some(done)) => {
            rec.outcome = Outcome::Completed;
            rec.total_time_ms = Some(done - timeline.began_ms);
            rec.downtime_qemu_ms = times.downtime_ms;
            rec.downtime_libvirt_ms = times.libvirt_downtime_ms;
            rec.downtime_libvirt_net_ms = times.libvirt_downtime_net_ms;
            if let (Some(total), Some(setup)) = (times.total_time_ms, times.setup_time_ms) {
                let flowing = (total - setup).max(1.0);
                rec.throughput_mbps = Some(last.transferred as f64 * 8.0 / (flowing / 1e3) / 1e6);
            }
            rec.postcopy_time_ms = t.at.postcopy_ms.map(|pc| (done - pc).max(0.0));
            rec.paused_ms = t.at.paused_ms.map(|ps| (done - ps).max(0.0));
        }
        (End::Completed, None) => rec.outcome = Outcome::Completed,
        (End::Aborted(_), _) => rec.outcome = Outcome::Aborted,
        (End::Failed(reason), _) => {
            rec.outcome = Outcome::Failed;
            rec.error = Some(reason.clone());
        }
        (End::TimedOut, _) => rec.outcome = Outcome::TimedOut,
        (End::Interrupted, _) => rec.outcome = Outcome::Interrupted,
    }
}
