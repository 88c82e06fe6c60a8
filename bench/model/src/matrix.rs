//! The run matrix: the Cartesian product of a scenario's list fields, times
//! its repetitions. Each element is a [`RunParams`] with scalar values only.

use serde::{Deserialize, Serialize};

use crate::scenario::{Scenario, Variant};
use crate::units::{
    Announce, AutoConverge, BandwidthCap, BitRate, ByteRate, Channels, CompletionAction,
    Compression, DirtyLimit, DiskFormat, DiskPattern, Dur, Percent, Postcopy, Size, StorageMode,
    Xbzrle,
};

/// The parameters of one run: one value per scenario dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunParams {
    /// Position in the matrix, 0-based; also orders `runs.jsonl`.
    pub index: usize,
    /// Repetition number of this combination, 0-based.
    pub repetition: u32,
    /// The scenario variant this run belongs to ("" without variants).
    #[serde(default)]
    pub variant: String,
    /// Guest RAM.
    pub ram: Size,
    /// Guest vCPUs.
    pub vcpus: u32,
    /// Target dirty rate of the in-guest workload (0 = idle).
    pub dirty_rate: ByteRate,
    /// Memory the dirtier cycles through.
    pub working_set: Size,
    /// Compressible share of each dirtied page.
    #[serde(default = "zero_percent")]
    pub compressibility: Percent,
    /// Link rate between source and destination.
    pub link_rate: BitRate,
    /// One-way link delay.
    pub link_delay: Dur,
    /// Link delay variation.
    pub link_jitter: Dur,
    /// Link packet loss.
    pub link_loss: Percent,
    /// QEMU downtime-limit.
    pub downtime_limit: Dur,
    /// QEMU max-bandwidth.
    pub max_bandwidth: BandwidthCap,
    /// Timeout after which the migration is cancelled.
    pub timeout: Dur,
    /// Probe interval.
    pub probe_interval: Dur,
    /// Where the disk lives (`none` = no disk).
    #[serde(default = "no_storage")]
    pub storage_mode: StorageMode,
    /// Virtual disk size.
    #[serde(default = "zero_size")]
    pub disk_size: Size,
    /// Disk image format.
    #[serde(default = "qcow2")]
    pub disk_format: DiskFormat,
    /// Disk write rate of the guest workload.
    #[serde(default = "zero_rate")]
    pub disk_write_rate: ByteRate,
    /// Size of one disk write.
    #[serde(default = "zero_size")]
    pub disk_block_size: Size,
    /// Order of disk writes.
    #[serde(default = "sequential")]
    pub disk_pattern: DiskPattern,
    /// Data written to the disk before migration.
    #[serde(default = "zero_size")]
    pub disk_fill: Size,
    /// Data on the disk before the guest boots (backing image for block-incremental).
    #[serde(default = "zero_size")]
    pub base_data: Size,
    /// The storage host's link rate (shared-nbd).
    #[serde(default = "ten_gbit")]
    pub storage_link_rate: BitRate,
    /// Multifd channels.
    #[serde(default)]
    pub multifd_channels: Channels,
    /// Multifd compression.
    #[serde(default = "no_compression")]
    pub multifd_compression: Compression,
    /// Multifd compression level.
    #[serde(default = "level_one")]
    pub multifd_compression_level: u32,
    /// XBZRLE cache.
    #[serde(default)]
    pub xbzrle_cache: Xbzrle,
    /// Auto-converge throttling.
    #[serde(default)]
    pub auto_converge: AutoConverge,
    /// Post-copy.
    #[serde(default)]
    pub postcopy: Postcopy,
    /// Self-announce timing.
    #[serde(default)]
    pub announce: Announce,
    /// Dirty-limit (QEMU 8.1+).
    #[serde(default)]
    pub dirty_limit: DirtyLimit,
    /// Downtime stepping: number of steps (0 = off).
    #[serde(default)]
    pub downtime_steps: u32,
    /// Downtime stepping: delay per step per GiB of guest data.
    #[serde(default = "zero_dur")]
    pub downtime_delay: Dur,
    /// Completion timeout (0 = off).
    #[serde(default = "zero_dur")]
    pub completion_timeout: Dur,
    /// What the completion timeout does.
    #[serde(default = "abort")]
    pub completion_action: CompletionAction,
    /// No-progress timeout (0 = off).
    #[serde(default = "zero_dur")]
    pub progress_timeout: Dur,
}

fn zero_percent() -> Percent {
    Percent(0.0)
}
fn no_compression() -> Compression {
    Compression::None
}
fn level_one() -> u32 {
    1
}
fn zero_dur() -> Dur {
    Dur(std::time::Duration::ZERO)
}
fn abort() -> CompletionAction {
    CompletionAction::Abort
}

fn ten_gbit() -> BitRate {
    BitRate(10_000_000_000)
}

fn no_storage() -> StorageMode {
    StorageMode::None
}
fn zero_size() -> Size {
    Size(0)
}
fn qcow2() -> DiskFormat {
    DiskFormat::Qcow2
}
fn zero_rate() -> ByteRate {
    ByteRate(0)
}
fn sequential() -> DiskPattern {
    DiskPattern::Sequential
}

impl RunParams {
    /// Stable run identifier inside one results directory.
    pub fn run_id(&self) -> String {
        format!("run-{:04}", self.index)
    }

    /// A one-line description of the dimensions, e.g. for progress bars.
    pub fn label(&self) -> String {
        let storage = match self.storage_mode {
            StorageMode::None => String::new(),
            m => format!(" storage={m}"),
        };
        let variant = if self.variant.is_empty() {
            String::new()
        } else {
            format!("{} ", self.variant)
        };
        format!(
            "{variant}ram={} dirty={} link={} dl={} bw={}{storage} rep={}",
            self.ram,
            self.dirty_rate,
            self.link_rate,
            self.downtime_limit,
            self.max_bandwidth,
            self.repetition
        )
    }

    /// A rough duration for planning: boot and setup, plus the iterative
    /// pre-copy estimate RAM / (B − D) capped by the timeout.
    pub fn estimated_secs(&self) -> f64 {
        let setup = 25.0;
        let link = self.link_rate.0 as f64 / 8.0 * 0.95;
        let link = match self.max_bandwidth {
            BandwidthCap::Unlimited => link,
            BandwidthCap::Limit(r) => link.min(r.0 as f64),
        };
        let dirty = self.dirty_rate.0 as f64;
        let migrate = if dirty >= link * 0.9 {
            self.timeout.0.as_secs_f64()
        } else {
            (self.ram.0 as f64 / (link - dirty)).min(self.timeout.0.as_secs_f64())
        };
        setup + migrate
    }
}

/// Multiply the runs so far by one dimension's values.
fn times<T: Copy>(
    runs: Vec<RunParams>,
    values: &[T],
    set: impl Fn(&mut RunParams, T),
) -> Vec<RunParams> {
    let mut out = Vec::with_capacity(runs.len() * values.len());
    for r in runs {
        for v in values {
            let mut r = r.clone();
            set(&mut r, *v);
            out.push(r);
        }
    }
    out
}

/// Expand a scenario into its runs, in a stable order with repetitions
/// innermost, so one combination's runs sit together in the live table.
pub fn expand(sc: &Scenario) -> Vec<RunParams> {
    let base = RunParams {
        index: 0,
        repetition: 0,
        ram: sc.guest.ram.0[0],
        vcpus: sc.guest.vcpus.0[0].0,
        dirty_rate: ByteRate(0),
        working_set: sc.workload.working_set.0[0],
        compressibility: Percent(0.0),
        link_rate: sc.link.rate.0[0],
        link_delay: sc.link.delay.0[0],
        link_jitter: sc.link.jitter.0[0],
        link_loss: sc.link.loss.0[0],
        downtime_limit: sc.migration.downtime_limit.0[0],
        max_bandwidth: sc.migration.max_bandwidth.0[0],
        timeout: sc.migration.timeout.0[0],
        probe_interval: sc.probe.interval.0[0],
        storage_mode: StorageMode::None,
        disk_size: Size(0),
        disk_format: DiskFormat::Qcow2,
        disk_write_rate: ByteRate(0),
        disk_block_size: Size(0),
        disk_pattern: DiskPattern::Sequential,
        disk_fill: Size(0),
        base_data: Size(0),
        storage_link_rate: BitRate(10_000_000_000),
        variant: String::new(),
        multifd_channels: Channels::Off,
        multifd_compression: Compression::None,
        multifd_compression_level: 1,
        xbzrle_cache: Xbzrle::Off,
        auto_converge: AutoConverge::Off,
        postcopy: Postcopy::Off,
        announce: Announce::default(),
        dirty_limit: DirtyLimit::Off,
        downtime_steps: 0,
        downtime_delay: zero_dur(),
        completion_timeout: zero_dur(),
        completion_action: CompletionAction::Abort,
        progress_timeout: zero_dur(),
    };
    // Outermost first; repetitions innermost so one combination's runs sit
    // together in the live table.
    let mut runs = vec![base];
    runs = times(runs, &sc.guest.ram.0, |r, v| r.ram = v);
    runs = times(runs, &sc.guest.vcpus.0, |r, v| r.vcpus = v.0);
    runs = times(runs, &sc.storage.mode.0, |r, v| r.storage_mode = v);
    runs = times(runs, &sc.storage.disk_size.0, |r, v| r.disk_size = v);
    runs = times(runs, &sc.storage.format.0, |r, v| r.disk_format = v);
    runs = times(runs, &sc.storage.base_data.0, |r, v| r.base_data = v);
    runs = times(runs, &sc.storage.link_rate.0, |r, v| {
        r.storage_link_rate = v
    });
    runs = times(runs, &sc.workload.dirty_rate.0, |r, v| r.dirty_rate = v);
    runs = times(runs, &sc.workload.working_set.0, |r, v| r.working_set = v);
    runs = times(runs, &sc.workload.compressibility.0, |r, v| {
        r.compressibility = v
    });
    runs = times(runs, &sc.workload.disk_write_rate.0, |r, v| {
        r.disk_write_rate = v
    });
    runs = times(runs, &sc.workload.disk_block_size.0, |r, v| {
        r.disk_block_size = v
    });
    runs = times(runs, &sc.workload.disk_pattern.0, |r, v| r.disk_pattern = v);
    runs = times(runs, &sc.workload.disk_fill.0, |r, v| r.disk_fill = v);
    runs = times(runs, &sc.link.rate.0, |r, v| r.link_rate = v);
    runs = times(runs, &sc.link.delay.0, |r, v| r.link_delay = v);
    runs = times(runs, &sc.link.jitter.0, |r, v| r.link_jitter = v);
    runs = times(runs, &sc.link.loss.0, |r, v| r.link_loss = v);
    runs = runs
        .into_iter()
        .flat_map(|r| {
            sc.variants
                .iter()
                .flat_map(move |v| variant_runs(r.clone(), v))
        })
        .collect();
    runs = times(runs, &sc.probe.interval.0, |r, v| r.probe_interval = v);
    let reps: Vec<u32> = (0..sc.repetitions.0).collect();
    runs = times(runs, &reps, |r, v| r.repetition = v);
    for (i, r) in runs.iter_mut().enumerate() {
        r.index = i;
    }
    runs
}

/// The runs of one variant: its name, then the product of its migration
/// and policy values.
fn variant_runs(mut r: RunParams, v: &Variant) -> Vec<RunParams> {
    r.variant = v.name.clone();
    let (m, p) = (&v.migration, &v.policy);
    let mut runs = vec![r];
    runs = times(runs, &m.downtime_limit.0, |r, v| r.downtime_limit = v);
    runs = times(runs, &m.max_bandwidth.0, |r, v| r.max_bandwidth = v);
    runs = times(runs, &m.timeout.0, |r, v| r.timeout = v);
    runs = times(runs, &m.multifd_channels.0, |r, v| r.multifd_channels = v);
    runs = times(runs, &m.multifd_compression.0, |r, v| {
        r.multifd_compression = v
    });
    runs = times(runs, &m.multifd_compression_level.0, |r, v| {
        r.multifd_compression_level = v.0
    });
    runs = times(runs, &m.xbzrle_cache.0, |r, v| r.xbzrle_cache = v);
    runs = times(runs, &m.auto_converge.0, |r, v| r.auto_converge = v);
    runs = times(runs, &m.postcopy.0, |r, v| r.postcopy = v);
    runs = times(runs, &m.announce.0, |r, v| r.announce = v);
    runs = times(runs, &m.dirty_limit.0, |r, v| r.dirty_limit = v);
    runs = times(runs, &p.downtime_steps.0, |r, v| r.downtime_steps = v);
    runs = times(runs, &p.downtime_delay.0, |r, v| r.downtime_delay = v);
    runs = times(runs, &p.completion_timeout.0, |r, v| {
        r.completion_timeout = v
    });
    runs = times(runs, &p.completion_action.0, |r, v| r.completion_action = v);
    runs = times(runs, &p.progress_timeout.0, |r, v| r.progress_timeout = v);
    runs
}

/// Names of the dimensions that take more than one value in this
/// scenario's runs, in [`RunParams`] field order.
pub fn varying_dimensions(sc: &Scenario) -> Vec<String> {
    let runs: Vec<serde_json::Map<String, serde_json::Value>> = expand(sc)
        .iter()
        .filter_map(|r| match serde_json::to_value(r) {
            Ok(serde_json::Value::Object(m)) => Some(m),
            _ => None,
        })
        .collect();
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "index" | "repetition"))
        .filter(|(k, v)| runs.iter().any(|r| r.get(*k) != Some(v)))
        .map(|(k, _)| k.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn matrix_is_the_cartesian_product_times_repetitions() {
        let sc = Scenario::parse(
            Path::new("x.toml"),
            "repetitions = 3\n[guest]\nram = [\"256MiB\", \"512MiB\"]\n[workload]\ndirty_rate = [\"0\", \"1MB/s\", \"5MB/s\"]\n[link]\nrate = [\"100mbit\", \"1gbit\"]\n",
        )
        .unwrap();
        let runs = expand(&sc);
        assert_eq!(runs.len(), 2 * 3 * 2 * 3);
        assert!(runs.iter().enumerate().all(|(i, r)| r.index == i));
        let distinct: std::collections::HashSet<_> = runs
            .iter()
            .map(|r| (r.ram, r.dirty_rate, r.link_rate, r.repetition))
            .collect();
        assert_eq!(distinct.len(), runs.len());
        assert_eq!(
            varying_dimensions(&sc),
            vec!["ram", "dirty_rate", "link_rate"]
        );
    }

    #[test]
    fn estimate_grows_with_ram_and_hits_timeout_when_not_converging() {
        let sc = Scenario::parse(
            Path::new("x.toml"),
            "[guest]\nram = [\"256MiB\", \"1GiB\"]\n[workload]\ndirty_rate = [\"0\", \"50MB/s\"]\n[link]\nrate = \"100mbit\"\n[migration]\ntimeout = \"60s\"\n",
        )
        .unwrap();
        let runs = expand(&sc);
        assert!(runs[0].estimated_secs() < runs[2].estimated_secs());
        assert_eq!(runs[1].estimated_secs(), 25.0 + 60.0);
    }
}
