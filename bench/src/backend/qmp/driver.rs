//! [`QmpDriver`]: the local lab's [`MigrationDriver`], two QEMU processes
//! driven over QMP. Settings go out as capabilities and parameters
//! ([`super::settings`]), progress comes back from `query-migrate`
//! ([`super::status`]), a block storage plan is carried out as an NBD
//! mirror ([`super::mirror`]).

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::client::{
    Cont, Migrate, MigrateContinue, MigrateIncoming, MigrateSetCapabilities, MigrateSetParameters,
    MigrateStartPostcopy, QmpError, QueryMigrate, QueryMigrateCapabilities, QueryMigrateParameters,
    QueryStatus, Stop,
};
use super::mirror::Mirror;
use super::settings::{qmp_arguments, settings_knobs};
use super::vm::QmpVm;
use crate::lab::net::{DST_MIG_IP, MIGRATION_PORT};
use crate::migrate::{
    BackendError, DiskCopy, DriverEvent, MigrationDriver, MigrationSettings, Status, StoragePlan,
};

impl From<QmpError> for BackendError {
    fn from(e: QmpError) -> Self {
        BackendError::Backend(Box::new(e))
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
