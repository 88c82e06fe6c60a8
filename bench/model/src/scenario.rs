//! Scenario files: the TOML a user writes, deserialised and validated into a
//! typed [`Scenario`]. Every matrix field may be one value or a list of
//! values ([`Many`]); [`crate::matrix`] expands them into runs.
//!
//! Errors name the file, line, column and dotted field, and say what is
//! allowed ([`ScenarioError`]).

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::units::{
    Announce, AutoConverge, BandwidthCap, BitRate, ByteRate, Channels, CompletionAction,
    Compression, Count, DirtyLimit, DiskFormat, DiskPattern, Dur, Percent, Postcopy, ScalarField,
    Size, StorageMode, Xbzrle,
};

/// One scalar of a unit type, accepted from a TOML string or integer.
pub(crate) struct OneValue<T>(pub T);

struct OneVisitor<T>(PhantomData<T>);

impl<'de, T: ScalarField> Visitor<'de> for OneVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::parse_str(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        T::parse_int(v).map_err(E::custom)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        T::parse_int(v.min(i64::MAX as u64) as i64).map_err(E::custom)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        Err(E::custom(format!(
            "bare number {v} has no unit: expected {}",
            T::EXPECTING
        )))
    }
}

impl<'de, T: ScalarField> Deserialize<'de> for OneValue<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(OneVisitor(PhantomData)).map(OneValue)
    }
}

/// A matrix field: one value, or a list whose values each make their own runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Many<T>(pub Vec<T>);

impl<T: Clone> Many<T> {
    /// A field with a single value.
    pub fn one(v: T) -> Self {
        Many(vec![v])
    }
}

impl<T: Serialize> Serialize for Many<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.len() == 1 {
            self.0[0].serialize(s)
        } else {
            self.0.serialize(s)
        }
    }
}

struct ManyVisitor<T>(PhantomData<T>);

impl<'de, T: ScalarField + Deserialize<'de>> Visitor<'de> for ManyVisitor<T> {
    type Value = Many<T>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}, or a list of them", T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Many<T>, E> {
        OneVisitor::<T>(PhantomData).visit_str(v).map(Many::one)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Many<T>, E> {
        OneVisitor::<T>(PhantomData).visit_i64(v).map(Many::one)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Many<T>, E> {
        OneVisitor::<T>(PhantomData).visit_u64(v).map(Many::one)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Many<T>, E> {
        OneVisitor::<T>(PhantomData).visit_f64(v).map(Many::one)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Many<T>, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element::<T>()? {
            out.push(v);
        }
        if out.is_empty() {
            return Err(de::Error::custom(format!(
                "an empty list makes no runs: expected {}",
                T::EXPECTING
            )));
        }
        Ok(Many(out))
    }
}

impl<'de, T: ScalarField + Deserialize<'de>> Deserialize<'de> for Many<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ManyVisitor(PhantomData))
    }
}

/// Which accelerator QEMU uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    /// KVM if a timed test boot under KVM succeeds, else TCG.
    #[default]
    Auto,
    /// Hardware virtualisation; fails the run if the guest does not boot.
    Kvm,
    /// Software emulation: slow but works everywhere.
    Tcg,
}

/// The guest: its size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestSpec {
    /// Guest RAM (QEMU `-m`).
    pub ram: Many<Size>,
    /// Number of vCPUs (QEMU `-smp`).
    #[serde(default = "default_vcpus")]
    pub vcpus: Many<Count>,
}

fn default_vcpus() -> Many<Count> {
    Many::one(Count(1))
}

/// The workload the guest agent runs during migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSpec {
    /// Target rate at which the agent rewrites guest memory; 0 = idle guest.
    #[serde(default = "default_dirty_rate")]
    pub dirty_rate: Many<ByteRate>,
    /// Memory the dirtier cycles through.
    #[serde(default = "default_working_set")]
    pub working_set: Many<Size>,
    /// Share of each dirtied page that is a fixed filler (what compression
    /// and XBZRLE can save); the rest is hashed, incompressible data.
    #[serde(default = "zero_percent")]
    pub compressibility: Many<Percent>,
    /// Rate of checksummed block writes to the guest's disk (0 = none).
    #[serde(default = "default_dirty_rate")]
    pub disk_write_rate: Many<ByteRate>,
    /// Size of one disk write.
    #[serde(default = "default_disk_block")]
    pub disk_block_size: Many<Size>,
    /// Order of disk writes.
    #[serde(default = "default_disk_pattern")]
    pub disk_pattern: Many<DiskPattern>,
    /// Data written to the disk before migration starts (what a block
    /// migration must copy).
    #[serde(default = "default_disk_fill")]
    pub disk_fill: Many<Size>,
}

fn default_disk_block() -> Many<Size> {
    Many::one(Size(64 << 10))
}
fn default_disk_pattern() -> Many<DiskPattern> {
    Many::one(DiskPattern::Sequential)
}
fn default_disk_fill() -> Many<Size> {
    Many::one(Size(0))
}

fn default_dirty_rate() -> Many<ByteRate> {
    Many::one(ByteRate(0))
}
fn default_working_set() -> Many<Size> {
    Many::one(Size(64 << 20))
}

impl Default for WorkloadSpec {
    fn default() -> Self {
        WorkloadSpec {
            dirty_rate: default_dirty_rate(),
            working_set: default_working_set(),
            compressibility: zero_percent(),
            disk_write_rate: default_dirty_rate(),
            disk_block_size: default_disk_block(),
            disk_pattern: default_disk_pattern(),
            disk_fill: default_disk_fill(),
        }
    }
}

/// The migration link between the source and destination hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Link rate, enforced with a `tc` token bucket on both directions.
    pub rate: Many<BitRate>,
    /// One-way delay (needs the kernel's netem).
    #[serde(default = "zero_dur")]
    pub delay: Many<Dur>,
    /// Delay variation (needs netem).
    #[serde(default = "zero_dur")]
    pub jitter: Many<Dur>,
    /// Packet loss (needs netem).
    #[serde(default = "zero_percent")]
    pub loss: Many<Percent>,
}

fn zero_dur() -> Many<Dur> {
    Many::one(Dur(std::time::Duration::ZERO))
}
fn zero_percent() -> Many<Percent> {
    Many::one(Percent(0.0))
}

/// Migration settings and limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationSpec {
    /// QEMU `downtime-limit`: the longest pause QEMU may plan for switchover.
    #[serde(default = "default_downtime")]
    pub downtime_limit: Many<Dur>,
    /// QEMU `max-bandwidth`.
    #[serde(default = "default_bandwidth")]
    pub max_bandwidth: Many<BandwidthCap>,
    /// Give up (cancel, record `timed_out`) after this long.
    #[serde(default = "default_timeout")]
    pub timeout: Many<Dur>,
    /// How often `query-migrate` is sampled into the progress series.
    #[serde(default = "default_poll")]
    pub poll_interval: Dur,
    /// Multifd: "off" or a channel count.
    #[serde(default = "one_default")]
    pub multifd_channels: Many<Channels>,
    /// Multifd compression: none | zlib | zstd (| qpl | uadk on QEMU 9.0+).
    #[serde(default = "default_compression")]
    pub multifd_compression: Many<Compression>,
    /// zlib (1–9) or zstd (1–20) level.
    #[serde(default = "default_level")]
    pub multifd_compression_level: Many<Count>,
    /// XBZRLE delta compression: "off" or the page-cache size.
    #[serde(default = "one_default")]
    pub xbzrle_cache: Many<Xbzrle>,
    /// CPU throttling: "off", "on" or "initial/increment/max" percent.
    #[serde(default = "one_default")]
    pub auto_converge: Many<AutoConverge>,
    /// Post-copy: "off", "allowed", "after N passes", "after <duration>".
    #[serde(default = "one_default")]
    pub postcopy: Many<Postcopy>,
    /// Destination self-announce timing: "default" or
    /// "initial=..,max=..,rounds=..,step=..".
    #[serde(default = "one_default")]
    pub announce: Many<Announce>,
    /// QEMU 8.1+ dirty-limit convergence: "off" or a per-vCPU rate.
    #[serde(default = "one_default")]
    pub dirty_limit: Many<DirtyLimit>,
}

fn one_default<T: Default + Clone>() -> Many<T> {
    Many::one(T::default())
}
fn default_compression() -> Many<Compression> {
    Many::one(Compression::None)
}
fn default_level() -> Many<Count> {
    Many::one(Count(1))
}

fn default_downtime() -> Many<Dur> {
    Many::one(Dur(std::time::Duration::from_millis(300)))
}
fn default_bandwidth() -> Many<BandwidthCap> {
    Many::one(BandwidthCap::Unlimited)
}
fn default_timeout() -> Many<Dur> {
    Many::one(Dur(std::time::Duration::from_secs(300)))
}
fn default_poll() -> Dur {
    Dur(std::time::Duration::from_millis(100))
}

impl Default for MigrationSpec {
    fn default() -> Self {
        MigrationSpec {
            downtime_limit: default_downtime(),
            max_bandwidth: default_bandwidth(),
            timeout: default_timeout(),
            poll_interval: default_poll(),
            multifd_channels: one_default(),
            multifd_compression: default_compression(),
            multifd_compression_level: default_level(),
            xbzrle_cache: one_default(),
            auto_converge: one_default(),
            postcopy: one_default(),
            announce: one_default(),
            dirty_limit: one_default(),
        }
    }
}

/// What migbench does to a migration that does not converge, as
/// orchestrators do (OpenStack Nova's libvirt driver). Zero turns a policy off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    /// Nova's downtime stepping: raise `downtime-limit` from limit/steps up
    /// to `migration.downtime_limit` in this many steps (0 = off).
    #[serde(default = "zero_count")]
    pub downtime_steps: Many<u32>,
    /// Seconds between steps per GiB of guest data (Nova's
    /// `live_migration_downtime_delay`; guest data counts at least 2 GiB).
    #[serde(default = "default_step_delay")]
    pub downtime_delay: Many<Dur>,
    /// Act when the migration has not completed after this long (0 = off).
    #[serde(default = "zero_dur")]
    pub completion_timeout: Many<Dur>,
    /// What the completion timeout does: abort | force-complete.
    #[serde(default = "default_action")]
    pub completion_action: Many<CompletionAction>,
    /// Abort when remaining RAM has not reached a new low for this long (0 = off).
    #[serde(default = "zero_dur")]
    pub progress_timeout: Many<Dur>,
}

fn zero_count() -> Many<u32> {
    Many::one(0)
}
fn default_step_delay() -> Many<Dur> {
    Many::one(Dur(std::time::Duration::from_secs(75)))
}
fn default_action() -> Many<CompletionAction> {
    Many::one(CompletionAction::Abort)
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec {
            downtime_steps: zero_count(),
            downtime_delay: default_step_delay(),
            completion_timeout: zero_dur(),
            completion_action: default_action(),
            progress_timeout: zero_dur(),
        }
    }
}

/// One named set of migration settings and policies (`[[variant]]`): the
/// scenario's `[migration]` and `[policy]` with this variant's keys on top.
/// Variants compare remedies that are not a Cartesian product ("plain",
/// "auto-converge", "post-copy", ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variant {
    /// Name shown in tables and charts ("" when the scenario has no variants).
    pub name: String,
    /// Resolved migration settings.
    pub migration: MigrationSpec,
    /// Resolved policies.
    pub policy: PolicySpec,
}

/// A `[[variant]]` as written: its name and the keys it overrides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VariantText {
    /// Name (letters, digits, - and _).
    pub name: String,
    /// Keys replacing `[migration]`'s.
    #[serde(default)]
    pub migration: toml::Table,
    /// Keys replacing `[policy]`'s.
    #[serde(default)]
    pub policy: toml::Table,
}

/// The client-side probe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeSpec {
    /// Interval between UDP probes (0.1 ms – 100 ms).
    #[serde(default = "default_probe_interval")]
    pub interval: Many<Dur>,
}

fn default_probe_interval() -> Many<Dur> {
    Many::one(Dur(std::time::Duration::from_millis(1)))
}

impl Default for ProbeSpec {
    fn default() -> Self {
        ProbeSpec {
            interval: default_probe_interval(),
        }
    }
}

/// The guest's disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSpec {
    /// none | shared | block.
    #[serde(default = "default_storage_mode")]
    pub mode: Many<StorageMode>,
    /// Virtual disk size.
    #[serde(default = "default_disk_size")]
    pub disk_size: Many<Size>,
    /// Image format (block-incremental needs qcow2 for its overlays).
    #[serde(default = "default_disk_format")]
    pub format: Many<DiskFormat>,
    /// Data already on the disk when the guest boots (its "OS image"),
    /// written by migbench into the image; for block-incremental it is the
    /// shared backing image.
    #[serde(default = "default_disk_fill")]
    pub base_data: Many<Size>,
    /// Rate of the storage host's link (shared-nbd).
    #[serde(default = "default_storage_link")]
    pub link_rate: Many<BitRate>,
}

fn default_storage_link() -> Many<BitRate> {
    Many::one(BitRate(10_000_000_000))
}

fn default_storage_mode() -> Many<StorageMode> {
    Many::one(StorageMode::None)
}
fn default_disk_size() -> Many<Size> {
    Many::one(Size(256 << 20))
}
fn default_disk_format() -> Many<DiskFormat> {
    Many::one(DiskFormat::Qcow2)
}

impl Default for StorageSpec {
    fn default() -> Self {
        StorageSpec {
            mode: default_storage_mode(),
            disk_size: default_disk_size(),
            format: default_disk_format(),
            base_data: default_disk_fill(),
            link_rate: default_storage_link(),
        }
    }
}

/// Lab settings that apply to every run (not matrix dimensions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabSpec {
    /// Accelerator: auto (timed KVM test boot, else TCG), kvm, tcg.
    #[serde(default)]
    pub accel: Accel,
    /// Under TCG, pad guest RAM by 8 KiB so QEMU 7.2 tracks dirty pages
    /// exactly (its fast path loses stores; see the README). Set false to
    /// reproduce the bug: destination guests crash or fail integrity.
    #[serde(default = "yes")]
    pub tcg_dirty_workaround: bool,
}

fn yes() -> bool {
    true
}

impl Default for LabSpec {
    fn default() -> Self {
        LabSpec {
            accel: Accel::Auto,
            tcg_dirty_workaround: true,
        }
    }
}

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name used for the results directory; defaults to the file stem.
    #[serde(default)]
    pub name: String,
    /// Free text shown in reports.
    #[serde(default)]
    pub description: String,
    /// How many times each combination runs.
    #[serde(default = "default_reps")]
    pub repetitions: Count,
    /// The guest.
    pub guest: GuestSpec,
    /// The in-guest workload.
    #[serde(default)]
    pub workload: WorkloadSpec,
    /// The migration link.
    pub link: LinkSpec,
    /// Migration settings.
    #[serde(default)]
    pub migration: MigrationSpec,
    /// Policies for migrations that do not converge.
    #[serde(default)]
    pub policy: PolicySpec,
    /// Named variants of `[migration]` + `[policy]`, as written.
    #[serde(default, rename = "variant")]
    pub variant_text: Vec<VariantText>,
    /// The variants resolved (one unnamed variant when none are written).
    #[serde(skip)]
    pub variants: Vec<Variant>,
    /// The probe.
    #[serde(default)]
    pub probe: ProbeSpec,
    /// The guest's disk.
    #[serde(default)]
    pub storage: StorageSpec,
    /// Lab-wide settings.
    #[serde(default)]
    pub lab: LabSpec,
}

fn default_reps() -> Count {
    Count(1)
}

/// A scenario file that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("Cannot read scenario file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid: where and why.
    #[error("{path}:{line}:{column}: field `{field}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// Dotted field name, e.g. `guest.ram`.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
}

impl Scenario {
    /// Read, parse and validate a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parse and validate scenario text; `path` is used for names and errors.
    pub fn parse(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        let mut sc: Scenario = toml::from_str(text).map_err(|e| {
            let offset = e.span().map(|s| s.start).unwrap_or(0);
            let (line, column) = line_col(text, offset);
            let mut message = e.message().trim().to_string();
            if message.starts_with("unknown field") {
                message = format!("{message} (unknown fields are errors)");
            }
            ScenarioError::Invalid {
                path: path.to_owned(),
                line,
                column,
                field: field_at(text, offset),
                message,
            }
        })?;
        sc.variants = resolve_variants(&sc, text).map_err(|(field, message)| {
            let offset = locate_field(text, &field).unwrap_or(0);
            let (line, column) = line_col(text, offset);
            ScenarioError::Invalid {
                path: path.to_owned(),
                line,
                column,
                field,
                message,
            }
        })?;
        if sc.name.is_empty() {
            sc.name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "scenario".into());
        }
        if let Err((field, message)) = sc.validate() {
            let offset = locate_field(text, field).unwrap_or(0);
            let (line, column) = line_col(text, offset);
            return Err(ScenarioError::Invalid {
                path: path.to_owned(),
                line,
                column,
                field: field.to_string(),
                message,
            });
        }
        Ok(sc)
    }

    /// Check values that parse but make no sense; returns (field, message).
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !self
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err((
                "name",
                format!("`{}`: use letters, digits, - and _ only", self.name),
            ));
        }
        for ram in &self.guest.ram.0 {
            if ram.0 < (96 << 20) || ram.0 > (64 << 30) {
                return Err(("guest.ram", format!("{ram} is outside 96MiB – 64GiB")));
            }
            if ram.0 % (1 << 20) != 0 {
                return Err(("guest.ram", format!("{ram} is not a whole number of MiB")));
            }
            for ws in &self.workload.working_set.0 {
                if ws.0 + (64 << 20) > ram.0 {
                    return Err((
                        "workload.working_set",
                        format!("{ws} leaves less than 64MiB of the {ram} guest for its kernel"),
                    ));
                }
            }
        }
        for v in &self.guest.vcpus.0 {
            if v.0 > 64 {
                return Err(("guest.vcpus", format!("{v} is outside 1 – 64")));
            }
        }
        for ws in &self.workload.working_set.0 {
            if ws.0 < 4096 {
                return Err((
                    "workload.working_set",
                    format!("{ws} is smaller than one 4KiB page"),
                ));
            }
        }
        for d in &self.storage.disk_size.0 {
            if d.0 < (16 << 20) || d.0 % (1 << 20) != 0 {
                return Err((
                    "storage.disk_size",
                    format!("{d}: use a whole number of MiB, at least 16MiB"),
                ));
            }
            for f in &self.workload.disk_fill.0 {
                for b in &self.storage.base_data.0 {
                    if f.0 + b.0 > d.0 {
                        return Err((
                            "workload.disk_fill",
                            format!("{f} after {b} of base data does not fit the {d} disk"),
                        ));
                    }
                }
            }
        }
        for b in &self.workload.disk_block_size.0 {
            if b.0 < 4096 || b.0 % 4096 != 0 || b.0 > (16 << 20) {
                return Err((
                    "workload.disk_block_size",
                    format!("{b}: use a multiple of 4KiB up to 16MiB"),
                ));
            }
        }
        if self.storage.mode.0.contains(&StorageMode::BlockIncremental)
            && self.storage.format.0.contains(&DiskFormat::Raw)
        {
            return Err((
                "storage.format",
                "block-incremental mirrors qcow2 overlays: use format = \"qcow2\"".into(),
            ));
        }
        let disk_work = self.workload.disk_write_rate.0.iter().any(|r| r.0 > 0)
            || self.workload.disk_fill.0.iter().any(|f| f.0 > 0);
        if disk_work && self.storage.mode.0.contains(&StorageMode::None) {
            return Err((
                "workload.disk_write_rate",
                "a disk workload needs a disk: set storage.mode to shared or block".into(),
            ));
        }
        for i in &self.probe.interval.0 {
            let us = i.0.as_micros();
            if !(100..=100_000).contains(&us) {
                return Err(("probe.interval", format!("{i} is outside 0.1ms – 100ms")));
            }
        }
        for v in &self.variants {
            v.validate(&self.storage).map_err(|(f, m)| {
                let m = if v.name.is_empty() {
                    m
                } else {
                    format!("variant `{}`: {m}", v.name)
                };
                (f, m)
            })?;
        }
        let p = self.migration.poll_interval.0.as_millis();
        if !(10..=10_000).contains(&p) {
            return Err((
                "migration.poll_interval",
                format!("{} is outside 10ms – 10s", self.migration.poll_interval),
            ));
        }
        Ok(())
    }

    /// True when some run asks for delay, jitter or loss (which need netem).
    pub fn needs_netem(&self) -> bool {
        self.link.delay.0.iter().any(|d| !d.0.is_zero())
            || self.link.jitter.0.iter().any(|d| !d.0.is_zero())
            || self.link.loss.0.iter().any(|l| l.0 > 0.0)
    }
}

/// Each `[[variant]]`'s keys over `[migration]` and `[policy]`, checked
/// key by key so an error names the variant's key.
fn resolve_variants(sc: &Scenario, text: &str) -> Result<Vec<Variant>, (String, String)> {
    if sc.variant_text.is_empty() {
        return Ok(vec![Variant {
            name: String::new(),
            migration: sc.migration.clone(),
            policy: sc.policy.clone(),
        }]);
    }
    let doc: toml::Table = toml::from_str(text).map_err(|e| ("".into(), e.to_string()))?;
    let base = |t: &str| {
        doc.get(t)
            .and_then(toml::Value::as_table)
            .cloned()
            .unwrap_or_default()
    };
    let mut names = std::collections::HashSet::new();
    let mut out = Vec::new();
    for v in &sc.variant_text {
        let here = format!("variant `{}`", v.name);
        if v.name.is_empty()
            || !v
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err((
                "variant.name".into(),
                format!("{here}: use letters, digits, - and _ only"),
            ));
        }
        if !names.insert(v.name.clone()) {
            return Err(("variant.name".into(), format!("{here} appears twice")));
        }
        fn merge<T: serde::de::DeserializeOwned>(
            table: &str,
            base: toml::Table,
            over: &toml::Table,
            here: &str,
        ) -> Result<T, (String, String)> {
            let mut merged = base;
            for (k, val) in over {
                let mut alone = toml::Table::new();
                alone.insert(k.clone(), val.clone());
                if let Err(e) = toml::Value::Table(alone).try_into::<T>() {
                    return Err((
                        format!("{table}.{k}"),
                        format!("{here}: {}", e.message().trim()),
                    ));
                }
                merged.insert(k.clone(), val.clone());
            }
            toml::Value::Table(merged)
                .try_into::<T>()
                .map_err(|e| (table.to_string(), format!("{here}: {}", e.message().trim())))
        }
        out.push(Variant {
            name: v.name.clone(),
            migration: merge("migration", base("migration"), &v.migration, &here)?,
            policy: merge("policy", base("policy"), &v.policy, &here)?,
        });
    }
    Ok(out)
}

impl Variant {
    /// Check settings that parse but make no sense together.
    fn validate(&self, storage: &StorageSpec) -> Result<(), (&'static str, String)> {
        let m = &self.migration;
        let pol = &self.policy;
        for t in &m.timeout.0 {
            if t.0.as_secs_f64() < 1.0 {
                return Err(("migration.timeout", format!("{t} is shorter than 1s")));
            }
            for (field, list) in [
                ("policy.completion_timeout", &pol.completion_timeout),
                ("policy.progress_timeout", &pol.progress_timeout),
            ] {
                if let Some(c) = list.0.iter().find(|c| !c.0.is_zero() && c.0 >= t.0) {
                    return Err((
                        field,
                        format!("{c} is not shorter than migration.timeout {t}, so it never fires"),
                    ));
                }
            }
        }
        for d in &m.downtime_limit.0 {
            if d.0.as_millis() < 1 || d.0.as_secs() > 2000 {
                return Err((
                    "migration.downtime_limit",
                    format!("{d} is outside 1ms – 2000s (QEMU's range)"),
                ));
            }
        }
        for s in &pol.downtime_steps.0 {
            if *s > 100 {
                return Err(("policy.downtime_steps", format!("{s} is outside 0 – 100")));
            }
        }
        let multifd_off = m.multifd_channels.0.contains(&Channels::Off);
        for c in &m.multifd_compression.0 {
            if *c != Compression::None && multifd_off {
                return Err((
                    "migration.multifd_compression",
                    format!("{c} compresses multifd channels: set multifd_channels to a count (use a [[variant]] to compare with multifd off)"),
                ));
            }
            for l in &m.multifd_compression_level.0 {
                let max = match c {
                    Compression::Zlib => 9,
                    Compression::Zstd => 20,
                    _ => u32::MAX,
                };
                if l.0 > max {
                    return Err((
                        "migration.multifd_compression_level",
                        format!("{l} is outside {c}'s levels 1 – {max}"),
                    ));
                }
            }
        }
        let block = storage
            .mode
            .0
            .iter()
            .any(|s| matches!(s, StorageMode::Block | StorageMode::BlockIncremental));
        if block && m.postcopy.0.iter().any(|p| p.enabled()) {
            return Err((
                "migration.postcopy",
                "post-copy with block storage modes is not supported by migbench yet: use shared storage".into(),
            ));
        }
        let force = pol
            .completion_action
            .0
            .contains(&CompletionAction::ForceComplete)
            && pol.completion_timeout.0.iter().any(|c| !c.0.is_zero());
        if force
            && m.postcopy
                .0
                .iter()
                .any(|p| matches!(p, Postcopy::AfterPasses(_) | Postcopy::AfterTime(_)))
        {
            return Err((
                "policy.completion_action",
                "force-complete and a scheduled post-copy switch both switch to post-copy: use postcopy = \"allowed\" with force-complete".into(),
            ));
        }
        Ok(())
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, column)
}

/// The dotted name of the key on the line holding `offset`, with its table.
fn field_at(text: &str, offset: usize) -> String {
    let offset = offset.min(text.len());
    let mut table = String::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let end = pos + line.len();
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[').and_then(|h| h.split(']').next()) {
            table = h.trim().to_string();
        }
        if offset < end || end == text.len() {
            let key = t.split('=').next().unwrap_or("").trim();
            let key = if t.contains('=') && !t.starts_with('[') {
                key
            } else {
                ""
            };
            return match (table.is_empty(), key.is_empty()) {
                (true, _) => key.to_string(),
                (false, true) => table,
                (false, false) => format!("{table}.{key}"),
            };
        }
        pos = end;
    }
    String::new()
}

/// Byte offset of `table.key = ...` (or a top-level `key`) in the text.
fn locate_field(text: &str, dotted: &str) -> Option<usize> {
    let (table, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    let mut current = String::new();
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if let Some(h) = t.strip_prefix('[').and_then(|h| h.split(']').next()) {
            current = h.trim_start_matches('[').trim().to_string();
        } else if current == table {
            if let Some((k, _)) = t.split_once('=') {
                if k.trim() == key {
                    return Some(pos + line.find(t).unwrap_or(0));
                }
            }
        }
        pos += line.len();
    }
    // Not in its own table: a variant's dotted key (`migration.postcopy = ..`).
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if let Some((k, _)) = line.trim().split_once('=') {
            let k = k.trim();
            if k == dotted || k.ends_with(&format!(".{key}")) {
                return Some(pos + line.find(k).unwrap_or(0));
            }
        }
        pos += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
repetitions = 2
[guest]
ram = "256MiB"
[workload]
dirty_rate = ["0", "20MB/s"]
[link]
rate = ["100mbit", "1gbit"]
"#;

    fn parse(text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(Path::new("scenarios/t.toml"), text)
    }

    #[test]
    fn lists_and_scalars_both_parse() {
        let sc = parse(GOOD).unwrap();
        assert_eq!(sc.name, "t");
        assert_eq!(sc.link.rate.0.len(), 2);
        assert_eq!(sc.guest.ram.0, vec![Size(256 << 20)]);
        assert_eq!(sc.workload.dirty_rate.0[1], ByteRate(20_000_000));
    }

    fn invalid(text: &str) -> (usize, String, String) {
        match parse(text).unwrap_err() {
            ScenarioError::Invalid {
                line,
                field,
                message,
                ..
            } => (line, field, message),
            e => panic!("unexpected {e}"),
        }
    }

    #[test]
    fn unknown_field_names_line_and_field() {
        let (line, field, msg) =
            invalid("[guest]\nram = \"256MiB\"\nrma = 3\n[link]\nrate = \"1gbit\"\n");
        assert_eq!(line, 3);
        assert_eq!(field, "guest.rma");
        assert!(msg.contains("unknown field"), "{msg}");
    }

    #[test]
    fn bad_unit_names_line_and_field() {
        let (line, field, msg) =
            invalid("[guest]\nram = \"256MiB\"\n[link]\nrate = \"100furlongs\"\n");
        assert_eq!((line, field.as_str()), (4, "link.rate"));
        assert!(msg.contains("unknown rate unit"), "{msg}");
    }

    #[test]
    fn negative_size_in_a_list_is_an_error() {
        let (line, field, msg) =
            invalid("[guest]\nram = [\"256MiB\", \"-1MiB\"]\n[link]\nrate = \"1gbit\"\n");
        assert_eq!((line, field.as_str()), (2, "guest.ram"));
        assert!(msg.contains("negative"), "{msg}");
    }

    #[test]
    fn impossible_values_are_located() {
        let (line, field, msg) = invalid(
            "[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n[probe]\ninterval = \"1s\"\n",
        );
        assert_eq!((line, field.as_str()), (6, "probe.interval"));
        assert!(msg.contains("0.1ms"), "{msg}");
    }

    #[test]
    fn netem_need_is_detected() {
        assert!(!parse(GOOD).unwrap().needs_netem());
        let sc = parse("[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\ndelay = \"10ms\"\n")
            .unwrap();
        assert!(sc.needs_netem());
    }

    #[test]
    fn variants_override_migration_and_policy_keys() {
        let sc = parse(
            "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n[migration]\ndowntime_limit = \"300ms\"\ntimeout = \"60s\"\n[policy]\ncompletion_timeout = \"30s\"\n\n[[variant]]\nname = \"plain\"\n\n[[variant]]\nname = \"postcopy\"\nmigration.postcopy = \"after 2 passes\"\n\n[[variant]]\nname = \"steps\"\nmigration.downtime_limit = [\"1s\", \"2s\"]\npolicy.downtime_steps = 4\n",
        )
        .unwrap();
        assert_eq!(sc.variants.len(), 3);
        let v = &sc.variants[1];
        assert_eq!(v.migration.postcopy.0, vec![Postcopy::AfterPasses(2)]);
        assert_eq!(v.migration.downtime_limit, sc.migration.downtime_limit);
        assert_eq!(v.policy.completion_timeout, sc.policy.completion_timeout);
        assert_eq!(sc.variants[2].migration.downtime_limit.0.len(), 2);
        let runs = crate::expand(&sc);
        assert_eq!(runs.len(), 1 + 1 + 2);
        assert_eq!(runs[3].variant, "steps");
        assert_eq!(runs[3].downtime_steps, 4);
        assert_eq!(runs[0].postcopy, Postcopy::Off);
        let varying = crate::matrix::varying_dimensions(&sc);
        assert_eq!(
            varying,
            ["variant", "downtime_limit", "postcopy", "downtime_steps"]
        );
    }

    #[test]
    fn a_bad_variant_key_names_the_variant_line_and_key() {
        let (line, field, msg) = invalid(
            "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n[[variant]]\nname = \"pc\"\nmigration.postcopy = \"sometimes\"\n",
        );
        assert_eq!((line, field.as_str()), (7, "migration.postcopy"));
        assert!(
            msg.contains("variant `pc`") && msg.contains("after N passes"),
            "{msg}"
        );
        let (_, field, msg) = invalid(
            "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n[[variant]]\nname = \"x\"\nmigration.multifd = 4\n",
        );
        assert_eq!(field, "migration.multifd");
        assert!(msg.contains("unknown field"), "{msg}");
    }

    #[test]
    fn knobs_that_cannot_work_together_are_refused() {
        let base = "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n";
        let (_, field, msg) = invalid(&format!(
            "{base}[migration]\nmultifd_compression = \"zstd\"\n"
        ));
        assert_eq!(field, "migration.multifd_compression");
        assert!(msg.contains("multifd_channels"), "{msg}");
        let (_, field, _) = invalid(&format!(
            "{base}[migration]\nmultifd_channels = 2\nmultifd_compression = \"zlib\"\nmultifd_compression_level = 12\n"
        ));
        assert_eq!(field, "migration.multifd_compression_level");
        let (_, field, msg) = invalid(&format!(
            "{base}[migration]\ntimeout = \"30s\"\n[policy]\ncompletion_timeout = \"30s\"\n"
        ));
        assert_eq!(field, "policy.completion_timeout");
        assert!(msg.contains("never fires"), "{msg}");
        let (_, field, _) = invalid(&format!(
            "{base}[migration]\npostcopy = \"allowed\"\n[storage]\nmode = \"block\"\n"
        ));
        assert_eq!(field, "migration.postcopy");
    }
}
