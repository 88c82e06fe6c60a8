//! The migration driver: what any backend (the local QMP lab now, libvirt
//! later) must do to move a guest, and [`watch`], the backend-neutral loop
//! that starts a migration, samples its progress and enforces the timeout.
//! [`QmpDriver`] is the local lab's implementation.
#![allow(async_fn_in_trait)]

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use migbench_model::record::{Action, Intervention, MigrationEvent, XbzrleStats};
use migbench_model::ProgressSample;

use crate::lab::net::{DST_MIG_IP, MIGRATION_PORT};
use crate::lab::qemu::QemuProcess;
use crate::policy::Policies;
use crate::qmp::{
    BlockExportAdd, BlockExportDel, BlockJobCancel, BlockdevAdd, BlockdevMirror, Cont, Migrate,
    MigrateContinue, MigrateIncoming, MigrateSetCapabilities, MigrateSetParameters,
    MigrateStartPostcopy, NbdServerStart, NbdServerStop, QmpError, QueryBlockJobs, QueryMigrate,
    QueryMigrateCapabilities, QueryMigrateParameters, QueryStatus, Stop,
};
use crate::tuning::{qmp_arguments, Knob};

/// A QMP event the watcher records: a new pass or a state change.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverEvent {
    /// Host arrival time.
    pub at: Instant,
    /// `MIGRATION_PASS`: the pass number.
    pub pass: Option<u64>,
    /// `MIGRATION`: the state entered.
    pub status: Option<String>,
}

/// One progress reading, parsed from the backend's statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// The counters, as recorded in `progress.jsonl` (`t_ms` is set by [`watch`]).
    pub progress: ProgressSample,
    /// Backend total time, ms.
    pub total_time_ms: Option<f64>,
    /// Backend setup time, ms.
    pub setup_time_ms: Option<f64>,
    /// Backend-reported downtime, ms (once completed).
    pub downtime_ms: Option<f64>,
    /// Error description when failed.
    pub error: Option<String>,
}

impl Status {
    /// `setup`, `active`, `device`, `completed`, `failed`, `cancelled`, ...
    pub fn state(&self) -> &str {
        &self.progress.status
    }

    /// The migration is over, one way or another.
    pub fn finished(&self) -> bool {
        matches!(self.state(), "completed" | "failed" | "cancelled")
    }
}

/// Parse a `query-migrate` reply. Fields absent in a QEMU version stay
/// zero/None rather than failing (replies drift between versions).
pub fn parse_query_migrate(v: &Value) -> Status {
    let u = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    let f = |p: &str| v.pointer(p).and_then(Value::as_f64);
    Status {
        progress: ProgressSample {
            t_ms: 0.0,
            status: v
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_string(),
            transferred: u("/ram/transferred"),
            remaining: u("/ram/remaining"),
            total: u("/ram/total"),
            passes: u("/ram/dirty-sync-count"),
            zero_pages: u("/ram/duplicate"),
            dirty_pages_rate: u("/ram/dirty-pages-rate"),
            mbps: f("/ram/mbps").unwrap_or(0.0),
            expected_downtime_ms: f("/expected-downtime"),
            throttle_pct: f("/cpu-throttle-percentage"),
            multifd_bytes: u("/ram/multifd-bytes"),
            normal_bytes: u("/ram/normal-bytes"),
            postcopy_requests: u("/ram/postcopy-requests"),
            xbzrle: v.get("xbzrle-cache").map(|_| XbzrleStats {
                bytes: u("/xbzrle-cache/bytes"),
                pages: u("/xbzrle-cache/pages"),
                cache_miss: u("/xbzrle-cache/cache-miss"),
                cache_miss_rate: f("/xbzrle-cache/cache-miss-rate").unwrap_or(0.0),
                overflow: u("/xbzrle-cache/overflow"),
                encoding_rate: f("/xbzrle-cache/encoding-rate").unwrap_or(0.0),
            }),
        },
        total_time_ms: f("/total-time"),
        setup_time_ms: f("/setup-time"),
        downtime_ms: f("/downtime"),
        error: v
            .get("error-desc")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// A backend that can live-migrate one guest.
pub trait MigrationDriver {
    /// Apply settings to both ends and prepare the destination to receive.
    async fn prepare(&mut self, knobs: &[Knob]) -> Result<(), QmpError>;
    /// Start the migration.
    async fn start(&mut self) -> Result<(), QmpError>;
    /// Read the migration's progress.
    async fn status(&mut self) -> Result<Status, QmpError>;
    /// Cancel the migration in flight.
    async fn cancel(&mut self) -> Result<(), QmpError>;
    /// When the backend saw the migration complete (event time), if it knows.
    fn completed_at(&mut self) -> Option<Instant> {
        None
    }
    /// Called when the migration pauses before switchover (backends that
    /// asked for the pause finish their storage copy here, then continue).
    async fn switchover(&mut self) -> Result<(), QmpError> {
        Ok(())
    }
    /// Change the downtime limit of the migration in flight.
    async fn set_downtime_limit(&mut self, ms: u64) -> Result<(), QmpError>;
    /// Switch the migration in flight to post-copy.
    async fn start_postcopy(&mut self) -> Result<(), QmpError>;
    /// Pause the guest so the migration can finish.
    async fn pause_guest(&mut self) -> Result<(), QmpError>;
    /// Pass and state events seen since the last call.
    fn take_events(&mut self) -> Vec<DriverEvent> {
        Vec::new()
    }
}

/// How [`watch`] ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// Completed: host time it was seen complete.
    Completed(Instant),
    /// The backend reported failure.
    Failed(String),
    /// Timed out and was cancelled (or could not be).
    TimedOut,
    /// A policy cancelled it: why.
    Aborted(String),
    /// Interrupted by the operator.
    Interrupted,
}

/// The result of [`watch`].
#[derive(Debug, Clone)]
pub struct Watched {
    /// Host time `start` was issued.
    pub started: Instant,
    /// How it ended.
    pub ending: Ending,
    /// The last status read.
    pub last: Status,
    /// Every progress sample.
    pub samples: Vec<ProgressSample>,
    /// What the policies did.
    pub interventions: Vec<Intervention>,
    /// Pass and state events, times in ms since the run's origin.
    pub events: Vec<MigrationEvent>,
    /// When post-copy was started.
    pub postcopy_at: Option<Instant>,
    /// When a force-complete policy paused the guest.
    pub paused_at: Option<Instant>,
    /// The downtime limit in force at the end, ms.
    pub downtime_limit_ms: u64,
}

/// Start a migration and watch it: poll every `poll`, let `policies` act
/// on each sample (recording every intervention), call `on_sample` for
/// progress bars, give up after `timeout` (cancel, then wait for the
/// backend to confirm), stop early when `interrupted()` turns true.
#[allow(clippy::too_many_arguments)]
pub async fn watch<D: MigrationDriver>(
    d: &mut D,
    origin: Instant,
    poll: Duration,
    timeout: Duration,
    policies: &mut Policies,
    interrupted: impl Fn() -> bool,
    mut on_sample: impl FnMut(&Status),
) -> Result<Watched, QmpError> {
    let started = Instant::now();
    let since = |t: Instant| t.duration_since(origin).as_secs_f64() * 1e3;
    d.start().await?;
    let mut w = Watched {
        started,
        ending: Ending::Interrupted,
        last: Status::default(),
        samples: Vec::new(),
        interventions: Vec::new(),
        events: Vec::new(),
        postcopy_at: None,
        paused_at: None,
        downtime_limit_ms: policies.initial_downtime_ms(),
    };
    let mut next = started;
    let mut abort: Option<String> = None;
    let ending = loop {
        let mut st = d.status().await?;
        st.progress.t_ms = since(Instant::now());
        w.samples.push(st.progress.clone());
        on_sample(&st);
        w.last = st;
        match w.last.state() {
            "completed" => {
                let at = d.completed_at().unwrap_or_else(Instant::now);
                // QEMU sets `completed` a moment before it fills in total-time
                // and downtime: re-read until they appear.
                let settle = Instant::now();
                while w.last.total_time_ms.unwrap_or(0.0) <= 0.0
                    && settle.elapsed() < Duration::from_secs(2)
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    w.last = d.status().await?;
                }
                break Ending::Completed(at);
            }
            "failed" => {
                break Ending::Failed(
                    w.last
                        .error
                        .clone()
                        .unwrap_or_else(|| "migration failed".into()),
                )
            }
            "cancelled" => break Ending::Failed("migration cancelled by QEMU".into()),
            "pre-switchover" => {
                d.switchover().await?;
                continue;
            }
            _ => {}
        }
        for dec in policies.decide(started.elapsed(), &w.last.progress) {
            let t = Instant::now();
            match dec.action {
                Action::SetDowntimeLimit => {
                    let ms = dec.value.unwrap_or(0.0) as u64;
                    d.set_downtime_limit(ms).await?;
                    w.downtime_limit_ms = ms;
                }
                Action::StartPostcopy => {
                    d.start_postcopy().await?;
                    w.postcopy_at = Some(t);
                }
                Action::PauseGuest => {
                    d.pause_guest().await?;
                    w.paused_at = Some(t);
                }
                Action::Abort => abort = Some(dec.reason.clone()),
            }
            w.interventions.push(Intervention {
                t_ms: t.duration_since(started).as_secs_f64() * 1e3,
                action: dec.action,
                value: dec.value,
                reason: dec.reason,
                state: w.last.progress.clone(),
            });
        }
        let over_time = started.elapsed() >= timeout;
        if over_time || abort.is_some() || interrupted() {
            d.cancel().await?;
            // Wait for the backend to settle so the guest is known to run on.
            let settle = Instant::now();
            while settle.elapsed() < Duration::from_secs(30) {
                let st = d.status().await?;
                if st.finished() {
                    w.last = st;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if w.last.state() == "completed" {
                // It slipped through before the cancel landed.
                break Ending::Completed(d.completed_at().unwrap_or_else(Instant::now));
            }
            break match abort.take() {
                Some(reason) => Ending::Aborted(reason),
                None if over_time => Ending::TimedOut,
                None => Ending::Interrupted,
            };
        }
        next += poll;
        let now = Instant::now();
        if next > now {
            tokio::time::sleep(next - now).await;
        } else {
            next = now;
        }
    };
    w.ending = ending;
    w.events = d
        .take_events()
        .into_iter()
        .map(|e| MigrationEvent {
            t_ms: since(e.at),
            pass: e.pass,
            status: e.status,
        })
        .collect();
    Ok(w)
}

/// The local lab's driver: two QEMU processes over QMP.
pub struct QmpDriver<'a> {
    /// Source QEMU.
    pub src: &'a mut QemuProcess,
    /// Destination QEMU.
    pub dst: &'a mut QemuProcess,
    completed: Option<Instant>,
    events: Vec<DriverEvent>,
    /// Mirror the disk over NBD before switchover (block storage).
    pub mirror: Option<MirrorPlan>,
    /// What the mirror did, once it ran.
    pub mirrored: Option<Mirrored>,
}

/// How to mirror the disk.
#[derive(Debug, Clone, Copy)]
pub struct MirrorPlan {
    /// Give up if the mirror is not in sync by then.
    pub ready_timeout: Duration,
    /// Mirror only the top image (`sync: top`, block-incremental).
    pub top_only: bool,
}

/// What the disk mirror did.
#[derive(Debug, Clone, Copy)]
pub struct Mirrored {
    /// Mirror started.
    pub started: Instant,
    /// Mirror in sync (ready).
    pub ready: Instant,
    /// Bytes copied to get in sync.
    pub bytes: u64,
}

/// NBD port of the destination's disk export.
pub const NBD_PORT: u16 = 10809;

impl<'a> QmpDriver<'a> {
    /// Drive a migration from `src` to `dst`.
    pub fn new(src: &'a mut QemuProcess, dst: &'a mut QemuProcess) -> Self {
        QmpDriver {
            src,
            dst,
            completed: None,
            events: Vec::new(),
            mirror: None,
            mirrored: None,
        }
    }

    fn uri() -> String {
        format!("tcp:{DST_MIG_IP}:{MIGRATION_PORT}")
    }

    fn scan_events(&mut self) {
        for e in self.src.qmp.drain_events() {
            match &e.event {
                qapi::qmp::Event::MIGRATION { data, .. } => {
                    if matches!(data.status, qapi::qmp::MigrationStatus::completed) {
                        self.completed.get_or_insert(e.at);
                    }
                    self.events.push(DriverEvent {
                        at: e.at,
                        pass: None,
                        status: serde_json::to_value(data.status)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string)),
                    });
                }
                qapi::qmp::Event::MIGRATION_PASS { data, .. } => self.events.push(DriverEvent {
                    at: e.at,
                    pass: Some(data.pass.max(0) as u64),
                    status: None,
                }),
                _ => {}
            }
        }
    }

    /// The migration capabilities and parameters both QEMUs hold now, as
    /// they report them: what a run really ran with.
    pub async fn settings(&self) -> Result<Value, QmpError> {
        let mut out = serde_json::Map::new();
        for (name, q) in [("source", &*self.src), ("destination", &*self.dst)] {
            let caps = q.qmp.execute(QueryMigrateCapabilities(json!({}))).await?;
            let on: Vec<Value> = caps
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter(|c| c["state"] == true)
                        .map(|c| c["capability"].clone())
                        .collect()
                })
                .unwrap_or_default();
            let params = q.qmp.execute(QueryMigrateParameters(json!({}))).await?;
            out.insert(
                name.into(),
                json!({"capabilities": on, "parameters": params}),
            );
        }
        Ok(Value::Object(out))
    }

    /// After a force-complete pause: the destination inherits the paused
    /// state, so resume the guest there once it has loaded the last state
    /// (what libvirt does). A `cont` while it is still `inmigrate` would be
    /// overridden by the paused state arriving with the stream.
    pub async fn resume_destination(&mut self) -> Result<(), QmpError> {
        let start = Instant::now();
        loop {
            let st = self.dst.qmp.execute(QueryStatus(json!({}))).await?;
            match st["status"].as_str() {
                Some("running") => return Ok(()),
                Some("inmigrate") if start.elapsed() < Duration::from_secs(30) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => break,
            }
        }
        self.dst.qmp.execute(Cont(json!({}))).await?;
        Ok(())
    }
}

impl MigrationDriver for QmpDriver<'_> {
    async fn prepare(&mut self, knobs: &[Knob]) -> Result<(), QmpError> {
        // `events` makes QEMU emit MIGRATION and MIGRATION_PASS events,
        // timing passes and completion exactly.
        self.src
            .qmp
            .execute(MigrateSetCapabilities(
                json!({"capabilities": [{"capability": "events", "state": true}]}),
            ))
            .await?;
        for (qemu, source) in [(&*self.src, true), (&*self.dst, false)] {
            let (caps, params) = qmp_arguments(knobs, source);
            if caps["capabilities"]
                .as_array()
                .is_some_and(|a| !a.is_empty())
            {
                qemu.qmp.execute(MigrateSetCapabilities(caps)).await?;
            }
            if params.as_object().is_some_and(|o| !o.is_empty()) {
                qemu.qmp.execute(MigrateSetParameters(params)).await?;
            }
        }
        self.dst
            .qmp
            .execute(MigrateIncoming(json!({"uri": Self::uri()})))
            .await?;
        if let Some(plan) = self.mirror {
            self.start_mirror(plan).await?;
        }
        Ok(())
    }

    async fn start(&mut self) -> Result<(), QmpError> {
        self.src
            .qmp
            .execute(Migrate(json!({"uri": Self::uri()})))
            .await?;
        Ok(())
    }

    async fn status(&mut self) -> Result<Status, QmpError> {
        let v = self.src.qmp.execute(QueryMigrate(json!({}))).await?;
        self.scan_events();
        Ok(parse_query_migrate(&v))
    }

    async fn cancel(&mut self) -> Result<(), QmpError> {
        self.src.qmp.execute(qapi::qmp::migrate_cancel {}).await?;
        Ok(())
    }

    fn completed_at(&mut self) -> Option<Instant> {
        self.scan_events();
        self.completed
    }

    async fn set_downtime_limit(&mut self, ms: u64) -> Result<(), QmpError> {
        self.src
            .qmp
            .execute(MigrateSetParameters(json!({ "downtime-limit": ms })))
            .await?;
        Ok(())
    }

    async fn start_postcopy(&mut self) -> Result<(), QmpError> {
        self.src
            .qmp
            .execute(MigrateStartPostcopy(json!({})))
            .await?;
        Ok(())
    }

    async fn pause_guest(&mut self) -> Result<(), QmpError> {
        self.src.qmp.execute(Stop(json!({}))).await?;
        Ok(())
    }

    fn take_events(&mut self) -> Vec<DriverEvent> {
        self.scan_events();
        std::mem::take(&mut self.events)
    }

    async fn switchover(&mut self) -> Result<(), QmpError> {
        if self.mirror.is_some() {
            // The guest is paused: complete the mirror without pivoting (a
            // cancelled *ready* mirror finishes its copy first), then let
            // the migration switch over — the order libvirt uses, so no
            // disk write is lost.
            self.src
                .qmp
                .execute(BlockJobCancel(json!({"device": "mirror0"})))
                .await?;
            let start = Instant::now();
            while self.job("mirror0").await?.is_some() {
                if start.elapsed() > Duration::from_secs(60) {
                    return Err(QmpError::Command {
                        command: "block-job-cancel",
                        message: "the disk mirror did not finish within 60s of switchover".into(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        self.src
            .qmp
            .execute(MigrateContinue(json!({"state": "pre-switchover"})))
            .await?;
        Ok(())
    }
}

impl QmpDriver<'_> {
    /// The block job `id` on the source, if it exists.
    async fn job(&self, id: &str) -> Result<Option<Value>, QmpError> {
        let jobs = self.src.qmp.execute(QueryBlockJobs(json!({}))).await?;
        Ok(jobs
            .as_array()
            .and_then(|a| a.iter().find(|j| j["device"] == id).cloned()))
    }

    /// Export the destination's disk over NBD, mirror the source's into it
    /// and wait until the mirror is in sync.
    async fn start_mirror(&mut self, plan: MirrorPlan) -> Result<(), QmpError> {
        let host = DST_MIG_IP.to_string();
        let port = NBD_PORT.to_string();
        self.dst
            .qmp
            .execute(NbdServerStart(
                json!({"addr": {"type": "inet", "data": {"host": host, "port": port}}}),
            ))
            .await?;
        self.dst
            .qmp
            .execute(BlockExportAdd(json!({"type": "nbd", "id": "export0", "node-name": "disk0", "name": "disk0", "writable": true})))
            .await?;
        self.src
            .qmp
            .execute(BlockdevAdd(json!({"driver": "nbd", "node-name": "mirror-target", "export": "disk0", "server": {"type": "inet", "host": host, "port": port}})))
            .await?;
        // Pause before switchover so the mirror is completed with the guest stopped.
        self.src
            .qmp
            .execute(MigrateSetCapabilities(
                json!({"capabilities": [{"capability": "pause-before-switchover", "state": true}]}),
            ))
            .await?;
        let started = Instant::now();
        self.src
            .qmp
            .execute(BlockdevMirror(json!({
                "job-id": "mirror0",
                "device": "disk0",
                "target": "mirror-target",
                "sync": if plan.top_only { "top" } else { "full" },
            })))
            .await?;
        loop {
            let job = self
                .job("mirror0")
                .await?
                .ok_or_else(|| QmpError::Command {
                    command: "blockdev-mirror",
                    message: "the mirror job disappeared before it was ready (destination gone?)"
                        .into(),
                })?;
            if job["ready"] == true {
                self.mirrored = Some(Mirrored {
                    started,
                    ready: Instant::now(),
                    bytes: job["offset"].as_u64().unwrap_or(0),
                });
                return Ok(());
            }
            if started.elapsed() > plan.ready_timeout {
                return Err(QmpError::Command {
                    command: "blockdev-mirror",
                    message: format!(
                        "the disk mirror was not in sync after {}s",
                        plan.ready_timeout.as_secs()
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// After completion: stop exporting the destination's disk.
    pub async fn finish_storage(&mut self) {
        if self.mirror.is_some() {
            let _ = self
                .dst
                .qmp
                .execute(BlockExportDel(json!({"id": "export0"})))
                .await;
            let _ = self.dst.qmp.execute(NbdServerStop(json!({}))).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_qemu_7_2_completed_reply() {
        let v: Value = serde_json::from_str(
            r#"{"status":"completed","setup-time":2,"downtime":155,"total-time":8123,
               "ram":{"transferred":97000000,"remaining":0,"total":285212672,"duplicate":45000,
                      "skipped":0,"normal":23000,"normal-bytes":94208000,"dirty-sync-count":3,
                      "page-size":4096,"mbps":95.4,"pages-per-second":2900,"precopy-bytes":97000000,
                      "downtime-bytes":12000,"postcopy-bytes":0,"dirty-pages-rate":0,"multifd-bytes":0,
                      "postcopy-requests":0}}"#,
        )
        .unwrap();
        let s = parse_query_migrate(&v);
        assert_eq!(s.state(), "completed");
        assert!(s.finished());
        assert_eq!(s.progress.transferred, 97_000_000);
        assert_eq!(s.progress.passes, 3);
        assert_eq!(s.downtime_ms, Some(155.0));
        assert_eq!(s.total_time_ms, Some(8123.0));
    }

    #[test]
    fn missing_fields_do_not_fail() {
        let s = parse_query_migrate(&serde_json::json!({"status": "setup"}));
        assert_eq!(s.state(), "setup");
        assert!(!s.finished());
        assert_eq!(s.progress.transferred, 0);
    }

    /// A fake backend that completes after `n` polls, for the watcher.
    #[derive(Default)]
    struct Fake {
        polls: u32,
        complete_after: Option<u32>,
        cancelled: bool,
        postcopy: bool,
        limits: Vec<u64>,
    }

    impl MigrationDriver for Fake {
        async fn prepare(&mut self, _: &[Knob]) -> Result<(), QmpError> {
            Ok(())
        }
        async fn set_downtime_limit(&mut self, ms: u64) -> Result<(), QmpError> {
            self.limits.push(ms);
            Ok(())
        }
        async fn start_postcopy(&mut self) -> Result<(), QmpError> {
            self.postcopy = true;
            Ok(())
        }
        async fn pause_guest(&mut self) -> Result<(), QmpError> {
            Ok(())
        }
        async fn start(&mut self) -> Result<(), QmpError> {
            Ok(())
        }
        async fn status(&mut self) -> Result<Status, QmpError> {
            self.polls += 1;
            let status = if self.cancelled {
                "cancelled"
            } else if self.complete_after.is_some_and(|n| self.polls >= n) {
                "completed"
            } else if self.postcopy {
                "postcopy-active"
            } else {
                "active"
            };
            let mut st = Status::default();
            st.progress.status = status.into();
            st.progress.passes = self.polls as u64;
            Ok(st)
        }
        async fn cancel(&mut self) -> Result<(), QmpError> {
            self.cancelled = true;
            Ok(())
        }
    }

    fn policies(text: &str) -> Policies {
        let sc = migbench_model::Scenario::parse(
            std::path::Path::new("w.toml"),
            &format!("[guest]\nram = \"256MiB\"\n[link]\nrate = \"100mbit\"\n{text}"),
        )
        .unwrap();
        Policies::new(&migbench_model::expand(&sc)[0], 0.25)
    }

    async fn run(f: &mut Fake, timeout_ms: u64, pol: &mut Policies) -> Watched {
        watch(
            f,
            Instant::now(),
            Duration::from_millis(5),
            Duration::from_millis(timeout_ms),
            pol,
            || false,
            |_| {},
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn watch_returns_completed_with_every_sample() {
        let mut f = Fake {
            complete_after: Some(3),
            ..Fake::default()
        };
        let w = run(&mut f, 5000, &mut policies("")).await;
        assert!(matches!(w.ending, Ending::Completed(_)));
        assert_eq!(w.samples.len(), 3);
        assert!(w.interventions.is_empty());
    }

    #[tokio::test]
    async fn watch_cancels_at_the_timeout() {
        let mut f = Fake::default();
        let w = run(&mut f, 30, &mut policies("")).await;
        assert_eq!(w.ending, Ending::TimedOut);
        assert!(f.cancelled);
        assert_eq!(w.last.state(), "cancelled");
    }

    #[tokio::test]
    async fn a_policy_abort_cancels_and_is_recorded() {
        let mut f = Fake::default();
        let mut pol =
            policies("[migration]\ntimeout = \"60s\"\n[policy]\nprogress_timeout = \"10ms\"\n");
        let w = run(&mut f, 5000, &mut pol).await;
        assert!(
            matches!(w.ending, Ending::Aborted(ref r) if r.contains("no progress")),
            "{:?}",
            w.ending
        );
        assert!(f.cancelled);
        assert_eq!(w.interventions.len(), 1);
        assert_eq!(w.interventions[0].action, Action::Abort);
        assert_eq!(w.interventions[0].state.status, "active");
    }

    #[tokio::test]
    async fn scheduled_postcopy_reaches_the_driver() {
        let mut f = Fake {
            complete_after: Some(6),
            ..Fake::default()
        };
        let mut pol = policies("[migration]\npostcopy = \"after 2 passes\"\n");
        let w = run(&mut f, 5000, &mut pol).await;
        assert!(matches!(w.ending, Ending::Completed(_)));
        assert!(f.postcopy);
        assert!(w.postcopy_at.is_some());
        assert_eq!(w.interventions.len(), 1);
        assert_eq!(w.interventions[0].state.passes, 2);
        assert!(w.samples.iter().any(|s| s.status == "postcopy-active"));
    }
}
