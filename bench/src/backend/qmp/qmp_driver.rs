//! [`QmpDriver`]: the local lab's [`MigrationDriver`], two QEMU processes
//! driven over QMP. Settings go out as capabilities and parameters
//! ([`super::qmp_settings`]), progress comes back from `query-migrate`
//! ([`super::status`]), a block storage plan is carried out as an NBD
//! mirror ([`super::mirror`]).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::{
    Cont, Migrate, MigrateContinue, MigrateIncoming, MigratePause, MigrateRecover,
    MigrateSetCapabilities, MigrateSetParameters, MigrateStartPostcopy, QmpError, QueryMigrate,
    QueryMigrateCapabilities, QueryMigrateParameters, QueryStatus, Stop,
};
use super::mirror::Mirror;
use super::qmp_settings::{qmp_arguments, settings_knobs};
use super::vm::QmpVm;
use crate::lab::net::{DST_MIG_IP, MIGRATION_PORT};
use migbench_model::fault::GuestLocation;

use crate::migrate::{
    BackendError, DiskCopy, DriverEvent, MigrationDriver, MigrationSettings, Status, StoragePlan,
};

impl From<QmpError> for BackendError {
    fn from(e: QmpError) -> Self {
        match e {
            QmpError::Connect { .. } | QmpError::Closed { .. } => {
                BackendError::ConnectionLost(Box::new(e))
            }
            QmpError::Silent { .. } => BackendError::Timeout(Box::new(e)),
            QmpError::Command { .. } => BackendError::Refused(Box::new(e)),
        }
    }
}

/// The local lab's driver: two QEMU processes over QMP.
pub struct QmpDriver<'a> {
    /// Source QEMU.
    pub src: &'a mut QmpVm,
    /// Destination QEMU.
    pub dst: &'a mut QmpVm,
    completed: Option<Instant>,
    events: Vec<DriverEvent>,
    mirror: Option<Mirror>,
}

impl<'a> QmpDriver<'a> {
    /// Drive a migration from `src` to `dst`.
    pub fn new(src: &'a mut QmpVm, dst: &'a mut QmpVm) -> Self {
        QmpDriver {
            src,
            dst,
            completed: None,
            events: Vec::new(),
            mirror: None,
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

    /// After a force-complete pause: the destination inherits the paused
    /// state, so resume the guest there once it has loaded the last state
    /// (what libvirt does). A `cont` while it is still `inmigrate` would be
    /// overridden by the paused state arriving with the stream.
    async fn resume_destination(&mut self) -> Result<(), QmpError> {
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

/// A QMP command that must answer within 5 s (a QEMU whose peer vanished
/// must not hang the run).
async fn within<T>(
    f: impl std::future::Future<Output = Result<T, QmpError>>,
    what: &'static str,
) -> Result<T, BackendError> {
    match tokio::time::timeout(Duration::from_secs(5), f).await {
        Ok(r) => Ok(r?),
        Err(_) => Err(BackendError::Timeout(
            format!("QMP `{what}` did not answer within 5s").into(),
        )),
    }
}

/// A QEMU's run state (`running`, `paused`, `postmigrate`, ...), `None`
/// when it does not answer.
async fn run_state(q: &QmpVm) -> Option<String> {
    let v = within(q.qmp.execute(QueryStatus(json!({}))), "query-status")
        .await
        .ok()?;
    v["status"].as_str().map(str::to_string)
}

/// The destination did not answer: say what that means for post-copy.
fn gone(e: BackendError) -> BackendError {
    BackendError::ConnectionLost(
        format!("the destination QEMU is gone ({e}): post-copy cannot resume, the pages it held are lost").into(),
    )
}

/// A QEMU's migration state, by QEMU's name.
async fn migration_state(q: &QmpVm) -> Result<String, BackendError> {
    let v = within(q.qmp.execute(QueryMigrate(json!({}))), "query-migrate").await?;
    Ok(v["status"].as_str().unwrap_or("none").to_string())
}

impl MigrationDriver for QmpDriver<'_> {
    async fn prepare(
        &mut self,
        settings: &MigrationSettings,
        storage: StoragePlan,
    ) -> Result<Option<DiskCopy>, BackendError> {
        // `events` makes QEMU emit MIGRATION and MIGRATION_PASS events,
        // timing passes and completion exactly.
        self.src
            .qmp
            .execute(MigrateSetCapabilities(
                json!({"capabilities": [{"capability": "events", "state": true}]}),
            ))
            .await?;
        let knobs = settings_knobs(settings);
        for (qemu, source) in [(&*self.src, true), (&*self.dst, false)] {
            let (caps, params) = qmp_arguments(&knobs, source);
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
        let StoragePlan::Copy {
            ready_timeout,
            top_only,
        } = storage
        else {
            return Ok(None);
        };
        let mirror = Mirror::start(self.src, self.dst, ready_timeout, top_only).await?;
        let copy = mirror.copy;
        self.mirror = Some(mirror);
        Ok(Some(copy))
    }

    /// The migration capabilities and parameters both QEMUs hold now, as
    /// they report them: what a run really ran with.
    async fn settings(&mut self) -> Result<Value, BackendError> {
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

    async fn start(&mut self) -> Result<(), BackendError> {
        self.src
            .qmp
            .execute(Migrate(json!({"uri": Self::uri()})))
            .await?;
        Ok(())
    }

    async fn status(&mut self) -> Result<Status, BackendError> {
        let v = self.src.qmp.execute(QueryMigrate(json!({}))).await?;
        self.scan_events();
        Ok(super::status::parse_query_migrate(&v))
    }

    async fn cancel(&mut self) -> Result<(), BackendError> {
        self.src.qmp.execute(qapi::qmp::migrate_cancel {}).await?;
        Ok(())
    }

    fn completed_at(&mut self) -> Option<Instant> {
        self.scan_events();
        self.completed
    }

    async fn set_downtime_limit(&mut self, ms: u64) -> Result<(), BackendError> {
        self.src
            .qmp
            .execute(MigrateSetParameters(json!({ "downtime-limit": ms })))
            .await?;
        Ok(())
    }

    async fn start_postcopy(&mut self) -> Result<(), BackendError> {
        self.src
            .qmp
            .execute(MigrateStartPostcopy(json!({})))
            .await?;
        Ok(())
    }

    async fn pause_guest(&mut self) -> Result<(), BackendError> {
        self.src.qmp.execute(Stop(json!({}))).await?;
        Ok(())
    }

    fn take_events(&mut self) -> Vec<DriverEvent> {
        self.scan_events();
        std::mem::take(&mut self.events)
    }

    async fn switchover(&mut self) -> Result<(), BackendError> {
        if let Some(m) = &self.mirror {
            m.complete(self.src).await?;
        }
        self.src
            .qmp
            .execute(MigrateContinue(json!({"state": "pre-switchover"})))
            .await?;
        Ok(())
    }

    async fn hold_at_switchover(&mut self) -> Result<(), BackendError> {
        self.src
            .qmp
            .execute(MigrateSetCapabilities(json!({"capabilities": [
                {"capability": "pause-before-switchover", "state": true}
            ]})))
            .await?;
        Ok(())
    }

    async fn pause_postcopy(&mut self) -> Result<bool, BackendError> {
        // Only once the destination runs the guest: before that, the
        // switch's device state is still on its way and pausing the source
        // would strand the guest between the hosts (TCP carries a short
        // outage through by itself).
        if migration_state(self.dst).await.map_err(gone)? != "postcopy-active" {
            return Ok(false);
        }
        // Both sides: the source stops sending, the destination stops
        // waiting on a connection that no longer carries anything.
        for q in [&*self.src, &*self.dst] {
            if migration_state(q).await? == "postcopy-active" {
                within(q.qmp.execute(MigratePause(json!({}))), "migrate-pause").await?;
            }
        }
        Ok(true)
    }

    async fn recover_postcopy(&mut self) -> Result<bool, BackendError> {
        // The destination listens again (once; it stays in postcopy-recover
        // while the source cannot reach it), then the source reconnects.
        match migration_state(self.dst).await.map_err(gone)?.as_str() {
            "postcopy-paused" => {
                within(
                    self.dst
                        .qmp
                        .execute(MigrateRecover(json!({"uri": Self::uri()}))),
                    "migrate-recover",
                )
                .await?;
            }
            "postcopy-active" => {
                within(
                    self.dst.qmp.execute(MigratePause(json!({}))),
                    "migrate-pause",
                )
                .await?;
                return Ok(false);
            }
            "postcopy-recover" => {}
            other => {
                return Err(BackendError::other(format!(
                    "the destination's migration is {other}, not recoverable"
                )))
            }
        }
        if migration_state(self.src).await? != "postcopy-paused" {
            return Ok(false);
        }
        let resumed = within(
            self.src
                .qmp
                .execute(Migrate(json!({"uri": Self::uri(), "resume": true}))),
            "migrate resume",
        )
        .await;
        // The command returns before the connection is made: give it a moment.
        tokio::time::sleep(Duration::from_millis(200)).await;
        Ok(resumed.is_ok()
            && matches!(
                migration_state(self.src).await?.as_str(),
                "postcopy-active" | "postcopy-recover" | "completed"
            ))
    }

    async fn locate(&mut self) -> Option<GuestLocation> {
        let src = run_state(self.src).await;
        let dst = run_state(self.dst).await;
        // A destination still waiting for post-copy pages cannot run on.
        let dst_waiting = matches!(
            migration_state(self.dst).await.ok().as_deref(),
            Some("postcopy-paused" | "postcopy-recover")
        );
        Some(match (src.as_deref(), dst.as_deref()) {
            (Some("running"), _) => GuestLocation::Source,
            (_, Some("running")) if !dst_waiting => GuestLocation::Destination,
            _ => GuestLocation::Lost,
        })
    }

    async fn finish(&mut self, paused: bool) -> Result<(), BackendError> {
        if let Some(m) = self.mirror.take() {
            m.release(self.dst).await;
        }
        if paused {
            self.resume_destination().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod error_tests {
    use super::*;

    #[test]
    fn qmp_failures_say_their_kind_and_keep_their_message_and_source() {
        let cases = [
            (
                QmpError::Silent {
                    path: "/run/q".into(),
                    what: "greeting".into(),
                    secs: 10,
                },
                "timeout",
            ),
            (
                QmpError::Command {
                    command: "migrate",
                    message: "no migration".into(),
                },
                "refused",
            ),
            (
                QmpError::Closed {
                    command: "query-migrate",
                    source: std::io::Error::from(std::io::ErrorKind::BrokenPipe),
                },
                "connection lost",
            ),
        ];
        for (e, kind) in cases {
            let text = e.to_string();
            let has_source = std::error::Error::source(&e).is_some();
            let b = BackendError::from(e);
            assert_eq!(b.kind(), kind, "{text}");
            assert_eq!(b.to_string(), text);
            assert_eq!(
                std::error::Error::source(&b).is_some(),
                has_source,
                "{text}"
            );
        }
    }
}
