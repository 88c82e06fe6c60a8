//! What a run leaves on disk: the results-directory manifest and one
//! [`RunRecord`] per line of `runs.jsonl` (the raw series are in
//! [`crate::series`]). These formats are read by the analyzer: change them
//! with care, and raise [`SCHEMA_VERSION`] when a field changes meaning.

use serde::{Deserialize, Serialize};

use crate::knobs::RunParams;
pub use crate::series::{
    read_probes_csv, write_probes_csv, MigrationEvent, ProbeEvent, ProgressSample, WorkloadSample,
    XbzrleStats,
};
pub use crate::service::{Latency, Playout, RrSummary, StreamSummary};

/// The `runs.jsonl` format written now. Records without the field are
/// version 1 (written before it existed; read the same way).
pub const SCHEMA_VERSION: u32 = 2;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// QEMU reported `completed` and the guest answers on the destination.
    Completed,
    /// Something went wrong; `error` in the record says what.
    Failed,
    /// The migration did not complete within the scenario timeout and was
    /// cancelled; the guest keeps running on the source.
    TimedOut,
    /// The operator interrupted the run (Ctrl-C / SIGTERM).
    Interrupted,
    /// A policy (completion or no-progress timeout) cancelled the
    /// migration; the guest keeps running on the source.
    Aborted,
    /// A fault paused a post-copy migration and migbench recovered it
    /// (`migrate-recover` + resume): it completed on the destination.
    Recovered,
}

/// How a completed (or aborted) migration got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeDetail {
    /// Pre-copy converged under the settings it started with.
    Converged,
    /// Converged after downtime stepping raised the limit.
    Stepped,
    /// A scheduled post-copy switch finished it.
    Postcopy,
    /// The completion timeout forced it (post-copy or paused guest).
    Forced,
    /// A policy gave up and cancelled it.
    Aborted,
}

impl std::fmt::Display for OutcomeDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OutcomeDetail::Converged => "converged",
            OutcomeDetail::Stepped => "stepped",
            OutcomeDetail::Postcopy => "postcopy",
            OutcomeDetail::Forced => "forced",
            OutcomeDetail::Aborted => "aborted",
        })
    }
}

/// What a policy did to a running migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Set `downtime-limit` (value: ms).
    SetDowntimeLimit,
    /// `migrate-start-postcopy`.
    StartPostcopy,
    /// Paused the guest so the migration could finish (`stop`).
    PauseGuest,
    /// Cancelled the migration (`migrate_cancel`).
    Abort,
}

/// One policy intervention: when, what, why, and the migration state it
/// acted on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervention {
    /// Time since `migrate`, ms.
    pub t_ms: f64,
    /// What was done.
    pub action: Action,
    /// The action's value (downtime limit in ms), if it has one.
    pub value: Option<f64>,
    /// Which policy and why, e.g. "downtime step 2/5".
    pub reason: String,
    /// The last `query-migrate` sample before the action.
    pub state: ProgressSample,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Completed => "completed",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::Interrupted => "interrupted",
            Outcome::Aborted => "aborted",
            Outcome::Recovered => "recovered",
        })
    }
}

/// The memory-integrity verdict of the guest agent after migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Integrity {
    /// Every page the dirtier wrote holds what it wrote.
    Ok,
    /// This many pages held something else.
    BadPages(u64),
    /// This many disk blocks did not read back as written.
    BadBlocks(u64),
    /// Verification did not run (failed run, or nothing to verify).
    NotChecked,
}

impl std::fmt::Display for Integrity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Integrity::Ok => f.write_str("ok"),
            Integrity::BadPages(n) => write!(f, "{n} bad pages"),
            Integrity::BadBlocks(n) => write!(f, "{n} bad blocks"),
            Integrity::NotChecked => f.write_str("not_checked"),
        }
    }
}

/// One line of `runs.jsonl`: the summary of one finished run.
/// Times are milliseconds, sizes bytes, rates megabits per second (10^6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Format of this record ([`SCHEMA_VERSION`]); 1 when absent.
    #[serde(default = "version_one")]
    pub schema_version: u32,
    /// Identifier; also the name of the run's raw-data directory.
    pub run_id: String,
    /// The run's parameters (one value per scenario dimension).
    pub params: RunParams,
    /// How the run ended.
    pub outcome: Outcome,
    /// Why a run failed, if it did.
    pub error: Option<String>,
    /// Wall-clock start, seconds since the Unix epoch.
    pub started_at: f64,
    /// Wall-clock time of the run's clock origin, seconds since the Unix
    /// epoch, µs precision: every raw series (`events.jsonl`,
    /// `progress.jsonl`, `probes.csv`, `workload.jsonl`, `service/`) counts
    /// its ms from it, so a sample at `t_ms` happened at
    /// `origin_unix + t_ms / 1000`. Absent in records made before it was
    /// recorded (their series cannot be placed closer than `started_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_unix: Option<f64>,
    /// The whole run on the host's clock, ms: boot, probing windows,
    /// migration, verification and teardown (`wall_ms − total_time_ms` is
    /// the per-run overhead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_ms: Option<f64>,
    /// Host clock from the `migrate` command to the completed state being
    /// seen (includes up to one poll interval of detection delay).
    pub total_time_ms: Option<f64>,
    /// QEMU's own `total-time` (libvirt backend: the job's elapsed time).
    pub qemu_total_time_ms: Option<f64>,
    /// QEMU's `setup-time` (libvirt backend: libvirt's `setup_time`).
    pub qemu_setup_time_ms: Option<f64>,
    /// QEMU's reported `downtime` (vCPUs paused on the source until the
    /// migration stream ended). Does not include network re-convergence.
    pub downtime_qemu_ms: Option<f64>,
    /// libvirt's downtime (libvirt backend): from libvirt seeing the
    /// guest's vCPUs stop on the source to libvirt resuming it on the
    /// destination, measured by libvirt across both hosts' clocks. libvirt
    /// reports this in place of QEMU's own figure.
    pub downtime_libvirt_ms: Option<f64>,
    /// libvirt's `downtime_net`: its downtime less the clock difference it
    /// measured between the hosts.
    pub downtime_libvirt_net_ms: Option<f64>,
    /// The longest gap between probe replies around switchover, less half a
    /// probe interval (midpoint estimate): the outage a client saw.
    pub downtime_probe_ms: Option<f64>,
    /// Probes never answered during the whole run.
    pub probes_lost: u64,
    /// Probes sent during the whole run.
    pub probes_sent: u64,
    /// Number of outage windows (gaps above the outage threshold) during migration.
    pub outage_windows: u32,
    /// RAM bytes QEMU sent (`ram.transferred`).
    pub transferred_bytes: Option<u64>,
    /// Migration throughput: transferred bytes over QEMU's total time less
    /// its setup time (the time the stream was actually flowing).
    pub throughput_mbps: Option<f64>,
    /// The configured link rate.
    pub link_rate_mbps: f64,
    /// Dirty-memory sync passes (`ram.dirty-sync-count`).
    pub passes: Option<u64>,
    /// Guest RAM QEMU found to be zero pages (`ram.duplicate` × page size):
    /// RAM minus this is what had to cross the link at least once.
    #[serde(default)]
    pub zero_bytes: Option<u64>,
    /// Workload rate achieved before migration (MB/s, 10^6), from agent samples.
    pub workload_rate_before_mbs: Option<f64>,
    /// Workload rate achieved while migrating (MB/s).
    pub workload_rate_during_mbs: Option<f64>,
    /// Probe RTT percentiles before / during / after migration (ms).
    pub rtt: RttSummary,
    /// Memory integrity after migration.
    pub integrity: Integrity,
    /// Bytes that crossed the migration link during the disk phase (block
    /// storage only; L2 interface counter, so protocol headers included).
    #[serde(default)]
    pub disk_bytes: Option<u64>,
    /// Virtual-disk bytes the mirror job processed, zero regions included
    /// (QEMU's job progress).
    #[serde(default)]
    pub mirror_progress_bytes: Option<u64>,
    /// Disk phase: mirror start until the mirror was in sync (ms).
    #[serde(default)]
    pub disk_time_ms: Option<f64>,
    /// Disk phase throughput, Mbit/s (10^6).
    #[serde(default)]
    pub disk_throughput_mbps: Option<f64>,
    /// Disk integrity after migration: every block the guest wrote, read
    /// back (O_DIRECT) from the disk it now runs on.
    #[serde(default = "not_checked")]
    pub disk_integrity: Integrity,
    /// The accelerator QEMU ran with.
    pub accel: String,
    /// How the migration finished (completed or aborted runs).
    #[serde(default)]
    pub outcome_detail: Option<OutcomeDetail>,
    /// The setting or intervention that finished it, in words.
    #[serde(default)]
    pub finished_by: Option<String>,
    /// Every policy intervention, in order.
    #[serde(default)]
    pub interventions: Vec<Intervention>,
    /// `downtime-limit` in force at the end, ms.
    #[serde(default)]
    pub downtime_limit_final_ms: Option<f64>,
    /// Highest auto-converge CPU throttle seen, %.
    #[serde(default)]
    pub max_throttle_pct: Option<f64>,
    /// Time spent in post-copy (switch until completed), ms.
    #[serde(default)]
    pub postcopy_time_ms: Option<f64>,
    /// Pages the destination requested during post-copy (page faults
    /// served over the link).
    #[serde(default)]
    pub postcopy_requests: Option<u64>,
    /// Bytes sent over multifd channels (after compression).
    #[serde(default)]
    pub multifd_bytes: Option<u64>,
    /// Page bytes sent whole (`ram.normal-bytes`, before compression).
    #[serde(default)]
    pub normal_bytes: Option<u64>,
    /// Bytes that crossed the migration link from `migrate` to the end
    /// (L2 interface counter): after compression, so `transferred_bytes /
    /// wire_bytes` is what compression saved.
    #[serde(default)]
    pub wire_bytes: Option<u64>,
    /// XBZRLE cache statistics at the end.
    #[serde(default)]
    pub xbzrle: Option<XbzrleStats>,
    /// Time the guest was paused by a force-complete policy before the
    /// migration completed, ms (through libvirt: to the migration call's
    /// return, after the destination resumed; `downtime_libvirt_ms` is
    /// the pause itself).
    #[serde(default)]
    pub paused_ms: Option<f64>,
    /// Workload slowdown while migrating: 1 − rate during / rate before, %.
    #[serde(default)]
    pub workload_slowdown_pct: Option<f64>,
    /// The switchover's gap between UDP probe replies: the last reply gap
    /// (above the outage threshold) that began before the migration was
    /// seen complete, less half a probe interval. Unlike
    /// `downtime_probe_ms` (the longest gap of the whole migration) it
    /// never picks the migration's setup stall.
    #[serde(default)]
    pub switchover_probe_ms: Option<f64>,
    /// The switchover's gap between ICMP echo replies (service `icmp`),
    /// measured as `switchover_probe_ms`: the guest's kernel answers, so
    /// this is the network outage; the UDP figure adds the agent resuming
    /// in user space.
    #[serde(default)]
    pub downtime_icmp_ms: Option<f64>,
    /// What a viewer of the guest's TCP stream saw (service `tcp-stream`).
    #[serde(default)]
    pub stream: Option<StreamSummary>,
    /// What a request/response client saw (service `tcp-rr`).
    #[serde(default)]
    pub rr: Option<RrSummary>,
    /// What an injected fault did (`[fault]`); absent without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<crate::fault::FaultRecord>,
}

fn version_one() -> u32 {
    1
}

fn not_checked() -> Integrity {
    Integrity::NotChecked
}

impl RunRecord {
    /// A record for `params` with no measurements yet (outcome `completed`
    /// until something says otherwise, integrity `not_checked`).
    pub fn pending(params: &RunParams, started_at: f64, accel: &str) -> RunRecord {
        RunRecord {
            schema_version: SCHEMA_VERSION,
            run_id: params.run_id(),
            params: params.clone(),
            outcome: Outcome::Completed,
            error: None,
            started_at,
            origin_unix: None,
            wall_ms: None,
            total_time_ms: None,
            qemu_total_time_ms: None,
            qemu_setup_time_ms: None,
            downtime_qemu_ms: None,
            downtime_libvirt_ms: None,
            downtime_libvirt_net_ms: None,
            downtime_probe_ms: None,
            probes_lost: 0,
            probes_sent: 0,
            outage_windows: 0,
            transferred_bytes: None,
            throughput_mbps: None,
            link_rate_mbps: params.link_rate.mbps(),
            passes: None,
            zero_bytes: None,
            workload_rate_before_mbs: None,
            workload_rate_during_mbs: None,
            rtt: RttSummary::default(),
            integrity: Integrity::NotChecked,
            disk_bytes: None,
            mirror_progress_bytes: None,
            disk_time_ms: None,
            disk_throughput_mbps: None,
            disk_integrity: Integrity::NotChecked,
            accel: accel.to_string(),
            outcome_detail: None,
            finished_by: None,
            interventions: Vec::new(),
            downtime_limit_final_ms: None,
            max_throttle_pct: None,
            postcopy_time_ms: None,
            postcopy_requests: None,
            multifd_bytes: None,
            normal_bytes: None,
            wire_bytes: None,
            xbzrle: None,
            paused_ms: None,
            workload_slowdown_pct: None,
            switchover_probe_ms: None,
            downtime_icmp_ms: None,
            stream: None,
            rr: None,
            fault: None,
        }
    }
}

/// RTT percentiles of answered probes per migration phase, in milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RttSummary {
    /// Before `migrate` was issued.
    pub before: Option<Percentiles>,
    /// From `migrate` to completion.
    pub during: Option<Percentiles>,
    /// After completion.
    pub after: Option<Percentiles>,
}

/// Selected percentiles of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub n: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// `manifest.json` at the top of a results directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// Scenario name.
    pub scenario_name: String,
    /// Path of the scenario file as given.
    pub scenario_path: String,
    /// The scenario file's text, verbatim.
    pub scenario_text: String,
    /// SHA-256 of the scenario text.
    pub scenario_sha256: String,
    /// Every run of the matrix, in order.
    pub matrix: Vec<RunParams>,
    /// Dimensions that vary in this scenario (for grouping).
    pub varying: Vec<String>,
    /// Host kernel (`uname -r`).
    pub host_kernel: String,
    /// Host name.
    pub host_name: String,
    /// `qemu-system-x86_64 --version`, first line.
    pub qemu_version: String,
    /// Accelerator in use.
    pub accel: String,
    /// Guest image identifier (content hash).
    pub guest_image: String,
    /// KiB added to guest RAM under TCG to dodge QEMU 7.2's lost-dirty-page
    /// bug (0 when not applied).
    pub qemu_ram_padding_kib: u64,
    /// `git describe --always --dirty` of the migbench checkout, if any.
    pub git_revision: String,
    /// migbench version.
    pub migbench_version: String,
    /// Wall-clock start, seconds since the Unix epoch.
    pub started_at: f64,
}
