//! What the analyzer groups by and what it measures: scenario dimensions
//! ([`DIMS`], with a label and a numeric value per run) and per-run metrics
//! ([`METRICS`], with their units), plus the physical bound on total time.

use migbench_model::units::{AutoConverge, BandwidthCap, Channels, Postcopy, Xbzrle};
use migbench_model::{RunParams, RunRecord};

/// A scenario dimension.
pub struct Dim {
    /// Field name in `RunParams` (and in manifests' `varying`).
    pub name: &'static str,
    /// Axis title with unit.
    pub axis: &'static str,
    /// Human label of a run's value (`"100mbit"`).
    pub label: fn(&RunParams) -> String,
    /// Numeric value for axes and sorting.
    pub value: fn(&RunParams) -> f64,
}

/// Every dimension, in the matrix's order.
pub const DIMS: &[Dim] = &[
    Dim {
        name: "variant",
        axis: "variant",
        label: |p| p.variant.clone(),
        // Variants have no order of their own: keep the matrix's.
        value: |p| p.index as f64,
    },
    Dim {
        name: "ram",
        axis: "guest RAM (MiB)",
        label: |p| p.ram.to_string(),
        value: |p| p.ram.0 as f64 / 1048576.0,
    },
    Dim {
        name: "vcpus",
        axis: "vCPUs",
        label: |p| p.vcpus.to_string(),
        value: |p| p.vcpus as f64,
    },
    Dim {
        name: "dirty_rate",
        axis: "dirty rate (MB/s)",
        label: |p| p.dirty_rate.to_string(),
        value: |p| p.dirty_rate.0 as f64 / 1e6,
    },
    Dim {
        name: "working_set",
        axis: "working set (MiB)",
        label: |p| p.working_set.to_string(),
        value: |p| p.working_set.0 as f64 / 1048576.0,
    },
    Dim {
        name: "link_rate",
        axis: "link rate (Mbit/s)",
        label: |p| p.link_rate.to_string(),
        value: |p| p.link_rate.mbps(),
    },
    Dim {
        name: "link_delay",
        axis: "link delay (ms)",
        label: |p| p.link_delay.to_string(),
        value: |p| p.link_delay.ms(),
    },
    Dim {
        name: "link_jitter",
        axis: "link jitter (ms)",
        label: |p| p.link_jitter.to_string(),
        value: |p| p.link_jitter.ms(),
    },
    Dim {
        name: "link_loss",
        axis: "link loss (%)",
        label: |p| p.link_loss.to_string(),
        value: |p| p.link_loss.0,
    },
    Dim {
        name: "downtime_limit",
        axis: "downtime limit (ms)",
        label: |p| p.downtime_limit.to_string(),
        value: |p| p.downtime_limit.ms(),
    },
    Dim {
        name: "max_bandwidth",
        axis: "max bandwidth (MB/s)",
        label: |p| p.max_bandwidth.to_string(),
        value: |p| bandwidth_mbs(p),
    },
    Dim {
        name: "multifd_channels",
        axis: "multifd channels",
        label: |p| p.multifd_channels.to_string(),
        value: |p| match p.multifd_channels {
            Channels::Off => 0.0,
            Channels::On(n) => n as f64,
        },
    },
    Dim {
        name: "multifd_compression",
        axis: "multifd compression",
        label: |p| p.multifd_compression.to_string(),
        value: |p| p.multifd_compression as u8 as f64,
    },
    Dim {
        name: "multifd_compression_level",
        axis: "compression level",
        label: |p| p.multifd_compression_level.to_string(),
        value: |p| p.multifd_compression_level as f64,
    },
    Dim {
        name: "xbzrle_cache",
        axis: "XBZRLE cache (MiB)",
        label: |p| p.xbzrle_cache.to_string(),
        value: |p| match p.xbzrle_cache {
            Xbzrle::Off => 0.0,
            Xbzrle::Cache(s) => s.0 as f64 / 1048576.0,
        },
    },
    Dim {
        name: "auto_converge",
        axis: "auto-converge (initial/increment/max %)",
        label: |p| p.auto_converge.to_string(),
        value: |p| match p.auto_converge {
            AutoConverge::Off => 0.0,
            AutoConverge::On { initial, .. } => initial as f64,
        },
    },
    Dim {
        name: "postcopy",
        axis: "post-copy",
        label: |p| p.postcopy.to_string(),
        value: |p| match p.postcopy {
            Postcopy::Off => 0.0,
            Postcopy::Allowed => 1.0,
            Postcopy::AfterPasses(n) => 1.0 + n as f64,
            Postcopy::AfterTime(d) => 1000.0 + d.ms(),
        },
    },
    Dim {
        name: "announce",
        axis: "self-announce timing",
        label: |p| p.announce.to_string(),
        value: |p| p.announce.initial.map(|d| d.ms()).unwrap_or(50.0),
    },
    Dim {
        name: "compressibility",
        axis: "compressible share of dirtied pages (%)",
        label: |p| p.compressibility.to_string(),
        value: |p| p.compressibility.0,
    },
    Dim {
        name: "downtime_steps",
        axis: "downtime steps",
        label: |p| p.downtime_steps.to_string(),
        value: |p| p.downtime_steps as f64,
    },
    Dim {
        name: "downtime_delay",
        axis: "downtime step delay per GiB (s)",
        label: |p| p.downtime_delay.to_string(),
        value: |p| p.downtime_delay.ms() / 1e3,
    },
    Dim {
        name: "completion_timeout",
        axis: "completion timeout (s)",
        label: |p| p.completion_timeout.to_string(),
        value: |p| p.completion_timeout.ms() / 1e3,
    },
    Dim {
        name: "completion_action",
        axis: "completion action",
        label: |p| p.completion_action.to_string(),
        value: |p| p.completion_action as u8 as f64,
    },
    Dim {
        name: "progress_timeout",
        axis: "no-progress timeout (s)",
        label: |p| p.progress_timeout.to_string(),
        value: |p| p.progress_timeout.ms() / 1e3,
    },
    Dim {
        name: "timeout",
        axis: "timeout (s)",
        label: |p| p.timeout.to_string(),
        value: |p| p.timeout.ms() / 1e3,
    },
    Dim {
        name: "probe_interval",
        axis: "probe interval (ms)",
        label: |p| p.probe_interval.to_string(),
        value: |p| p.probe_interval.ms(),
    },
    Dim {
        name: "storage_mode",
        axis: "storage mode",
        label: |p| p.storage_mode.to_string(),
        value: |p| p.storage_mode as u8 as f64,
    },
    Dim {
        name: "disk_size",
        axis: "disk size (MiB)",
        label: |p| p.disk_size.to_string(),
        value: |p| p.disk_size.0 as f64 / 1048576.0,
    },
    Dim {
        name: "disk_format",
        axis: "disk format",
        label: |p| p.disk_format.to_string(),
        value: |p| p.disk_format as u8 as f64,
    },
    Dim {
        name: "disk_write_rate",
        axis: "disk write rate (MB/s)",
        label: |p| p.disk_write_rate.to_string(),
        value: |p| p.disk_write_rate.0 as f64 / 1e6,
    },
    Dim {
        name: "disk_block_size",
        axis: "disk block size (KiB)",
        label: |p| p.disk_block_size.to_string(),
        value: |p| p.disk_block_size.0 as f64 / 1024.0,
    },
    Dim {
        name: "disk_pattern",
        axis: "disk write pattern",
        label: |p| p.disk_pattern.to_string(),
        value: |p| p.disk_pattern as u8 as f64,
    },
    Dim {
        name: "storage_link_rate",
        axis: "storage link rate (Mbit/s)",
        label: |p| p.storage_link_rate.to_string(),
        value: |p| p.storage_link_rate.mbps(),
    },
    Dim {
        name: "base_data",
        axis: "base data on the disk (MiB)",
        label: |p| p.base_data.to_string(),
        value: |p| p.base_data.0 as f64 / 1048576.0,
    },
    Dim {
        name: "disk_fill",
        axis: "disk data written before migration (MiB)",
        label: |p| p.disk_fill.to_string(),
        value: |p| p.disk_fill.0 as f64 / 1048576.0,
    },
];

/// Look a dimension up by name.
pub fn dim(name: &str) -> Option<&'static Dim> {
    DIMS.iter().find(|d| d.name == name)
}

/// The bandwidth a migration may use, MB/s: the cap, or the link if uncapped.
pub fn bandwidth_mbs(p: &RunParams) -> f64 {
    let link = p.link_rate.0 as f64 / 8.0 / 1e6;
    match p.max_bandwidth {
        BandwidthCap::Unlimited => link,
        BandwidthCap::Limit(r) => (r.0 as f64 / 1e6).min(link),
    }
}

/// A per-run measure.
pub struct Metric {
    /// Column name.
    pub name: &'static str,
    /// Title with unit.
    pub title: &'static str,
    /// The value for a completed run.
    pub value: fn(&RunRecord) -> Option<f64>,
}

/// Every metric summarised per group (over completed runs).
pub const METRICS: &[Metric] = &[
    Metric {
        name: "total_time_s",
        title: "total migration time (s)",
        value: |r| r.total_time_ms.map(|t| t / 1e3),
    },
    Metric {
        name: "downtime_qemu_ms",
        title: "QEMU-reported downtime (ms)",
        value: |r| r.downtime_qemu_ms,
    },
    Metric {
        name: "downtime_probe_ms",
        title: "probe-measured downtime (ms)",
        value: |r| r.downtime_probe_ms,
    },
    Metric {
        name: "throughput_mbps",
        title: "throughput (Mbit/s)",
        value: |r| r.throughput_mbps,
    },
    Metric {
        name: "link_utilisation",
        title: "link utilisation (throughput / link rate)",
        value: |r| r.throughput_mbps.map(|t| t / r.link_rate_mbps),
    },
    Metric {
        name: "bytes_over_ram",
        title: "bytes transferred / guest RAM",
        value: |r| {
            r.transferred_bytes
                .map(|b| b as f64 / r.params.ram.0 as f64)
        },
    },
    Metric {
        name: "passes",
        title: "dirty-sync passes",
        value: |r| r.passes.map(|p| p as f64),
    },
    Metric {
        name: "disk_time_s",
        title: "disk phase: mirror start to in sync (s)",
        value: |r| r.disk_time_ms.map(|t| t / 1e3),
    },
    Metric {
        name: "disk_mib",
        title: "disk phase bytes on the link (MiB)",
        value: |r| r.disk_bytes.map(|b| b as f64 / 1048576.0),
    },
    Metric {
        name: "disk_throughput_mbps",
        title: "disk phase throughput (Mbit/s)",
        value: |r| r.disk_throughput_mbps,
    },
    Metric {
        name: "ram_phase_s",
        title: "RAM phase: migrate to completion (s)",
        value: |r| Some(r.total_time_ms? / 1e3 - r.disk_time_ms.unwrap_or(0.0) / 1e3),
    },
    Metric {
        name: "workload_slowdown_pct",
        title: "workload slowdown while migrating (%)",
        value: |r| r.workload_slowdown_pct,
    },
    Metric {
        name: "postcopy_time_s",
        title: "time in post-copy (s)",
        value: |r| r.postcopy_time_ms.map(|t| t / 1e3),
    },
    Metric {
        name: "max_throttle_pct",
        title: "highest auto-converge throttle (%)",
        value: |r| r.max_throttle_pct,
    },
    Metric {
        name: "downtime_limit_final_ms",
        title: "downtime limit at the end (ms)",
        value: |r| r.downtime_limit_final_ms,
    },
    Metric {
        name: "compression_ratio",
        title: "compression ratio (bytes QEMU transferred / bytes on the wire)",
        value: |r| {
            let wire = r.wire_bytes? as f64;
            let sent = r.transferred_bytes? as f64;
            (wire > 0.0).then(|| sent / wire)
        },
    },
    Metric {
        name: "bound_s",
        title: "physical bound on total time (s)",
        value: bound_s,
    },
    Metric {
        name: "time_over_bound",
        title: "total time / physical bound",
        value: |r| Some(r.total_time_ms? / 1e3 / bound_s(r)?),
    },
];

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

/// Value of a metric for a run, only for completed runs.
pub fn completed_value(m: &Metric, r: &RunRecord) -> Option<f64> {
    (r.outcome == migbench_model::Outcome::Completed)
        .then(|| (m.value)(r))
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use migbench_model::{expand, Scenario};

    #[test]
    fn bound_is_nonzero_ram_over_the_link() {
        let sc = Scenario::parse(
            std::path::Path::new("b.toml"),
            "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n",
        )
        .unwrap();
        let p = &expand(&sc)[0];
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
