//! What the analyzer groups by and what it measures: scenario dimensions
//! (the model's knob table, [`DIMS`], with a label and a numeric value per
//! run) and per-run metrics ([`METRICS`], with their units), plus the
//! physical bound on total time.

use migbench_model::RunRecord;

/// A scenario dimension: the model's knob table ([`migbench_model::DIMENSIONS`]).
pub use migbench_model::Dimension as Dim;
pub use migbench_model::{dimension as dim, DIMENSIONS as DIMS};

/// A per-run measure.
pub struct Metric {
    /// Column name.
    pub name: &'static str,
    /// Title with unit.
    pub title: &'static str,
    /// The value for a completed run.
    pub value: fn(&RunRecord) -> Option<f64>,
}

/// `name => "title with unit", |r| value;` per line.
macro_rules! metrics {
    ($($name:literal => $title:literal, $value:expr;)*) => {
        &[$(Metric { name: $name, title: $title, value: $value }),*]
    };
}

/// Every metric summarised per group (over completed runs).
pub const METRICS: &[Metric] = metrics! {
    "total_time_s" => "total migration time (s)", |r| r.total_time_ms.map(|t| t / 1e3);
    "downtime_qemu_ms" => "QEMU-reported downtime (ms)", |r| r.downtime_qemu_ms;
    "downtime_probe_ms" => "probe-measured downtime (ms)", |r| r.downtime_probe_ms;
    "downtime_libvirt_ms" => "libvirt-reported downtime (ms)", |r| r.downtime_libvirt_ms;
    "downtime_libvirt_net_ms" => "libvirt downtime without clock offset (ms)", |r| r.downtime_libvirt_net_ms;
    "throughput_mbps" => "throughput (Mbit/s)", |r| r.throughput_mbps;
    "link_utilisation" => "link utilisation (throughput / link rate)",
        |r| r.throughput_mbps.map(|t| t / r.link_rate_mbps);
    "bytes_over_ram" => "bytes transferred / guest RAM", |r| r.transferred_bytes.map(|b| b as f64 / r.params.ram.0 as f64);
    "passes" => "dirty-sync passes", |r| r.passes.map(|p| p as f64);
    "disk_time_s" => "disk phase: mirror start to in sync (s)", |r| r.disk_time_ms.map(|t| t / 1e3);
    "disk_mib" => "disk phase bytes on the link (MiB)", |r| r.disk_bytes.map(|b| b as f64 / 1048576.0);
    "disk_throughput_mbps" => "disk phase throughput (Mbit/s)", |r| r.disk_throughput_mbps;
    "ram_phase_s" => "RAM phase: migrate to completion (s)",
        |r| Some(r.total_time_ms? / 1e3 - r.disk_time_ms.unwrap_or(0.0) / 1e3);
    "workload_slowdown_pct" => "workload slowdown while migrating (%)", |r| r.workload_slowdown_pct;
    "postcopy_time_s" => "time in post-copy (s)", |r| r.postcopy_time_ms.map(|t| t / 1e3);
    "max_throttle_pct" => "highest auto-converge throttle (%)", |r| r.max_throttle_pct;
    "downtime_limit_final_ms" => "downtime limit at the end (ms)", |r| r.downtime_limit_final_ms;
    "compression_ratio" => "compression ratio (bytes QEMU transferred / bytes on the wire)",
        compression_ratio;
    "switchover_probe_ms" => "UDP probe outage at switchover (ms)", |r| r.switchover_probe_ms;
    "downtime_icmp_ms" => "ICMP echo outage at switchover: the network (ms)", |r| r.downtime_icmp_ms;
    "app_resume_ms" => "UDP − ICMP outage at switchover: the agent resuming in user space (ms)",
        |r| Some(r.switchover_probe_ms? - r.downtime_icmp_ms?);
    "stall_stream_ms" => "TCP stream: gap between chunks at switchover (ms)",
        |r| r.stream.as_ref()?.switchover_gap_ms;
    "stall_rr_ms" => "TCP requests: gap between responses at switchover (ms)",
        |r| r.rr.as_ref()?.switchover_gap_ms;
    "stream_stall_ms" => "stream viewer with the smallest buffer: total stall (ms)",
        |r| r.stream.as_ref()?.tightest().map(|p| p.stall_ms);
    "stream_stalls" => "stream viewer with the smallest buffer: stalls",
        |r| r.stream.as_ref()?.tightest().map(|p| f64::from(p.stalls));
    "stream_retransmits" => "TCP stream: segments the guest retransmitted",
        |r| r.stream.as_ref().map(|s| s.retransmits as f64);
    "rr_p99_during_ms" => "requests sent while migrating: p99 latency (ms)",
        |r| r.rr.as_ref()?.during.map(|l| l.p99);
    "rr_max_during_ms" => "requests sent while migrating: slowest (ms)",
        |r| r.rr.as_ref()?.during.map(|l| l.max);
    "rr_over_deadline" => "requests over the deadline or unanswered",
        |r| r.rr.as_ref().map(|x| x.over_deadline as f64);
    "rr_retransmits" => "requests: segments the client retransmitted",
        |r| r.rr.as_ref().map(|x| x.retransmits as f64);
    "overhead_s" => "per-run overhead: the whole run less the migration (s)",
        |r| Some((r.wall_ms? - r.total_time_ms?) / 1e3);
    "bound_s" => "physical bound on total time (s)", bound_s;
    "time_over_bound" => "total time / physical bound", |r| Some(r.total_time_ms? / 1e3 / bound_s(r)?);
};

/// Bytes QEMU transferred per byte on the wire (above 1: compressed).
fn compression_ratio(r: &RunRecord) -> Option<f64> {
    let wire = r.wire_bytes? as f64;
    let sent = r.transferred_bytes? as f64;
    (wire > 0.0).then(|| sent / wire)
}

/// Look a metric up by name.
pub fn metric(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// The lower bound on total time: the guest RAM that had to cross the link
/// at least once (RAM minus the zero pages QEMU skipped, divided by the
/// run's compression ratio on the wire), plus for block storage the disk
/// data the mirror sent, over the link rate. `None` for
/// records without the zero-page count.
pub fn bound_s(r: &RunRecord) -> Option<f64> {
    let ram = r.params.ram.0.saturating_sub(r.zero_bytes?) as f64;
    // Compressed streams (multifd zlib/zstd) put less on the wire than
    // QEMU transferred: the RAM that must cross shrinks by that ratio.
    let ratio = match (r.transferred_bytes, r.wire_bytes) {
        (Some(t), Some(w)) if w > 0 => (t as f64 / w as f64).max(1.0),
        _ => 1.0,
    };
    let must_send = ram / ratio + r.disk_bytes.unwrap_or(0) as f64;
    Some(must_send * 8.0 / r.params.link_rate.0 as f64)
}

/// Value of a metric for a run, only for completed runs, and only when
/// finite (a ratio over a zero, e.g. a physical bound of 0 s, has none).
pub fn completed_value(m: &Metric, r: &RunRecord) -> Option<f64> {
    (r.outcome == migbench_model::Outcome::Completed)
        .then(|| (m.value)(r))
        .flatten()
        .filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bound_is_nonzero_ram_over_the_link() {
        let p = &migbench_model::matrix::sample_run("");
        let mut r = RunRecord::pending(p, 0.0, "tcg");
        assert_eq!(bound_s(&r), None);
        r.zero_bytes = Some(128 << 20);
        // 128 MiB = 134217728 B = 1073741824 bit over 1e8 bit/s = 10.737 s.
        assert!((bound_s(&r).unwrap() - 10.737418).abs() < 1e-5);
        r.total_time_ms = Some(21_474.836);
        assert!((metric("time_over_bound").unwrap().value)(&r).unwrap() - 2.0 < 1e-6);
        // A stream compressed 4:1 on the wire needs a quarter of the time.
        r.transferred_bytes = Some(400 << 20);
        r.wire_bytes = Some(100 << 20);
        assert!((bound_s(&r).unwrap() - 10.737418 / 4.0).abs() < 1e-5);
        // Protocol overhead (wire > transferred) does not raise the bound.
        r.wire_bytes = Some(410 << 20);
        assert!((bound_s(&r).unwrap() - 10.737418).abs() < 1e-5);
    }
}
