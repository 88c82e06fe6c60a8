//! [`LibvirtDriver`]: a [`MigrationDriver`] over two libvirt daemons
//! ([`Ends`]). The migration is one `virDomainMigrate3` call (managed,
//! client-driven, as `virsh migrate --live` without `--p2p`) on a thread
//! of its own, with its own connections; progress is read from the job
//! statistics on a second connection; policies act through libvirt's
//! calls (downtime limit, post-copy switch, suspend, abort). libvirt copies
//! the disk itself (its NBD), so [`MigrationDriver::prepare`] returns no
//! separate disk phase.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use virt::connect::Connect;
use virt::domain::{Domain, DomainState};
use virt::error::Error;
use virt::sys;

use migbench_model::settings::Transport;

use super::calls::{abort_job, max_downtime, start_post_copy};
use super::libvirt_settings::{call_json, migrate_call, DiskMove, Endpoints, MigrateCall};
use super::stats::status_of;
use crate::migrate::{
    BackendError, DiskCopy, DriverEvent, MigrationDriver, MigrationSettings, MigrationState,
    Status, StoragePlan,
};

impl From<Error> for BackendError {
    fn from(e: Error) -> Self {
        use virt::error::ErrorNumber as N;
        let kind: fn(crate::migrate::Cause) -> BackendError = match e.code() {
            virt::enumutil::Enum::Known(n) => match n {
                N::NoSupport | N::OperationUnsupported | N::ArgumentUnsupported => {
                    BackendError::Unsupported
                }
                N::OperationInvalid | N::OperationFailed | N::AuthFailed | N::NoDomain => {
                    BackendError::Refused
                }
                N::NoConnect | N::SystemError | N::Rpc => BackendError::ConnectionLost,
                N::OperationTimeout => BackendError::Timeout,
                _ => BackendError::Other,
            },
            virt::enumutil::Enum::Unknown(_) => BackendError::Other,
        };
        kind(Box::new(e))
    }
}

/// The two hosts of one migration as libvirt sees them.
pub struct Ends {
    /// Source daemon URI.
    pub src_uri: String,
    /// Destination daemon URI.
    pub dst_uri: String,
    /// The destination daemon's URI as the source daemon reaches it
    /// (peer-to-peer and tunnelled transports).
    pub peer_uri: String,
    /// Connection to the source (progress, policies).
    pub src: Connect,
    /// Connection to the destination.
    pub dst: Connect,
    /// The domain's name (the same on both).
    pub domain: String,
    /// Where the streams go.
    pub to: Endpoints,
    /// The destination's domain XML, when it differs (its own disk image
    /// and serial log in the lab).
    pub dest_xml: Option<String>,
    /// How the disks move.
    pub disks: DiskMove,
    /// How libvirt carries the migration.
    pub transport: Transport,
}

/// How the migration call ended, and when it returned.
type Outcome = (Instant, Result<(), String>);

/// The lab's and real hosts' libvirt driver.
pub struct LibvirtDriver<'a> {
    ends: &'a Ends,
    call: Option<MigrateCall>,
    job: Option<mpsc::Receiver<Outcome>>,
    outcome: Option<Outcome>,
    last: Status,
    cancelled: bool,
    postcopy: bool,
    pass: u64,
    events: Vec<DriverEvent>,
}

impl<'a> LibvirtDriver<'a> {
    /// libvirt's error, saying which ssh connection closed when one did.
    fn explained(&self, e: Error) -> BackendError {
        let e_ = &self.ends;
        let said =
            super::remote::connection_lost(e.message(), &[&e_.src_uri, &e_.dst_uri, &e_.peer_uri]);
        if said == e.message() {
            e.into()
        } else {
            BackendError::ConnectionLost(said.into())
        }
    }

    /// Drive a migration between `ends`.
    pub fn new(ends: &'a Ends) -> Self {
        LibvirtDriver {
            ends,
            call: None,
            job: None,
            outcome: None,
            last: Status::default(),
            cancelled: false,
            postcopy: false,
            pass: 0,
            events: Vec::new(),
        }
    }

    fn src_domain(&self) -> Result<Domain, Error> {
        self.ends.src.lookup_domain_by_name(&self.ends.domain)
    }

    fn dst_domain(&self) -> Result<Domain, Error> {
        self.ends.dst.lookup_domain_by_name(&self.ends.domain)
    }

    /// Pick up the migration call's result, waiting up to `wait`.
    fn poll_job(&mut self, wait: Duration) {
        if self.outcome.is_some() {
            return;
        }
        if let Some(rx) = &self.job {
            match rx.recv_timeout(wait) {
                Ok(o) => self.outcome = Some(o),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.outcome = Some((Instant::now(), Err("migration thread died".into())))
                }
            }
        }
    }

    /// The status once the call returned.
    fn final_status(&self, ok: &Result<(), String>) -> Result<Status, BackendError> {
        match ok {
            Ok(()) => {
                // The destination holds the completed job's statistics,
                // libvirt's downtime among them.
                let j = self
                    .dst_domain()?
                    .job_stats(sys::VIR_DOMAIN_JOB_STATS_COMPLETED)?;
                let mut s = status_of(&j, false);
                s.state = MigrationState::Completed;
                s.progress.status = "completed".into();
                Ok(s)
            }
            Err(msg) => {
                let mut s = self.last.clone();
                s.state = if self.cancelled {
                    MigrationState::Cancelled
                } else {
                    MigrationState::Failed
                };
                s.progress.status = if self.cancelled {
                    "cancelled"
                } else {
                    "failed"
                }
                .into();
                s.error = Some(msg.clone());
                Ok(s)
            }
        }
    }
}

/// Run the migration call on its own connections; send how it ended.
fn spawn_migration(ends: &Ends, call: MigrateCall, tx: mpsc::Sender<Outcome>) {
    let (src_uri, dst_uri, peer_uri, name) = (
        ends.src_uri.clone(),
        ends.dst_uri.clone(),
        ends.peer_uri.clone(),
        ends.domain.clone(),
    );
    std::thread::spawn(move || {
        let run = || -> Result<(), Error> {
            let src = Connect::open(Some(&src_uri))?;
            let dom = src.lookup_domain_by_name(&name)?;
            if call.flags & sys::VIR_MIGRATE_PEER2PEER != 0 {
                // The source daemon opens the destination URI itself,
                // as `virsh migrate --p2p` has it.
                dom.migrate_to_uri3(Some(&peer_uri), call.params, call.flags)?;
            } else {
                let dst = Connect::open(Some(&dst_uri))?;
                dom.migrate3(&dst, call.params, call.flags)?;
            }
            Ok(())
        };
        let r = run().map_err(|e| {
            super::remote::connection_lost(e.message(), &[&src_uri, &dst_uri, &peer_uri])
        });
        let _ = tx.send((Instant::now(), r));
    });
}

impl MigrationDriver for LibvirtDriver<'_> {
    async fn prepare(
        &mut self,
        settings: &MigrationSettings,
        storage: StoragePlan,
    ) -> Result<Option<DiskCopy>, BackendError> {
        let dom = self.src_domain()?;
        dom.migrate_set_max_downtime(settings.downtime_limit.0.as_millis() as u64, 0)?;
        self.call = Some(migrate_call(
            settings,
            storage,
            &self.ends.disks,
            &self.ends.to,
            self.ends.dest_xml.clone(),
            self.ends.transport,
        ));
        Ok(None)
    }

    /// What libvirt holds for the domain and what the call carries.
    async fn settings(&mut self) -> Result<Value, BackendError> {
        let dom = self.src_domain()?;
        let call = self.call.clone().unwrap_or_default();
        Ok(json!({
            "downtime_limit_ms": max_downtime(&dom)?,
            "max_speed_mib_s": dom.migrate_max_speed(0)?,
            "call": call_json(&call),
        }))
    }

    async fn start(&mut self) -> Result<(), BackendError> {
        let call = self.call.clone().unwrap_or_default();
        let (tx, rx) = mpsc::channel();
        spawn_migration(self.ends, call, tx);
        self.job = Some(rx);
        Ok(())
    }

    async fn status(&mut self) -> Result<Status, BackendError> {
        self.poll_job(Duration::ZERO);
        if let Some((_, r)) = self.outcome.clone() {
            return self.final_status(&r);
        }
        let live = self.src_domain().and_then(|d| d.job_stats(0));
        let j = match live {
            Ok(j) => j,
            Err(e) => {
                // The source domain goes away as the call returns.
                self.poll_job(Duration::from_secs(10));
                return match self.outcome.clone() {
                    Some((_, r)) => self.final_status(&r),
                    None => Err(self.explained(e)),
                };
            }
        };
        let mut s = status_of(&j, self.postcopy);
        // Only the call's return says how it ended.
        if s.state.finished() || s.state == MigrationState::Other {
            s.state = MigrationState::Active;
        }
        if s.progress.passes > self.pass {
            self.pass = s.progress.passes;
            self.events.push(DriverEvent {
                at: Instant::now(),
                pass: Some(self.pass),
                status: None,
            });
        }
        self.last = s.clone();
        Ok(s)
    }

    async fn cancel(&mut self) -> Result<(), BackendError> {
        self.cancelled = true;
        match self.src_domain().and_then(|d| abort_job(&d)) {
            Ok(()) => Ok(()),
            Err(e) => {
                // Ended meanwhile: nothing to cancel.
                self.poll_job(Duration::from_secs(2));
                if self.outcome.is_some() {
                    Ok(())
                } else {
                    Err(e.into())
                }
            }
        }
    }

    fn completed_at(&mut self) -> Option<Instant> {
        match &self.outcome {
            Some((at, Ok(()))) => Some(*at),
            _ => None,
        }
    }

    async fn finish(&mut self, paused: bool) -> Result<(), BackendError> {
        if paused {
            let dom = self.dst_domain()?;
            if matches!(
                dom.state()?.0,
                virt::enumutil::Enum::Known(DomainState::Paused)
            ) {
                dom.resume()?;
            }
        }
        Ok(())
    }

    async fn set_downtime_limit(&mut self, ms: u64) -> Result<(), BackendError> {
        self.src_domain()?.migrate_set_max_downtime(ms, 0)?;
        Ok(())
    }

    async fn start_postcopy(&mut self) -> Result<(), BackendError> {
        start_post_copy(&self.src_domain()?)?;
        self.postcopy = true;
        Ok(())
    }

    async fn pause_guest(&mut self) -> Result<(), BackendError> {
        self.src_domain()?.suspend()?;
        Ok(())
    }

    fn take_events(&mut self) -> Vec<DriverEvent> {
        std::mem::take(&mut self.events)
    }

    /// Where the domain runs: the source if it runs there, else the
    /// destination if it does, else lost (a host's daemon that does not
    /// answer counts as not running it).
    async fn locate(&mut self) -> Option<migbench_model::fault::GuestLocation> {
        use migbench_model::fault::GuestLocation;
        let running = |c: &Connect| {
            c.lookup_domain_by_name(&self.ends.domain)
                .and_then(|d| d.state())
                .is_ok_and(|(s, _)| matches!(s, virt::enumutil::Enum::Known(DomainState::Running)))
        };
        Some(if running(&self.ends.src) {
            GuestLocation::Source
        } else if running(&self.ends.dst) {
            GuestLocation::Destination
        } else {
            GuestLocation::Lost
        })
    }
}
