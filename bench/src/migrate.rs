//! The backend-neutral migration core: the contract every backend meets
//! ([`MigrationDriver`], in migbench's own types: [`MigrationSettings`],
//! [`MigrationState`], [`Status`], [`BackendError`]), the loop that
//! watches a migration and applies the policies ([`watch`], [`policy`]),
//! and the pure assembly of a run record from what was measured
//! ([`record`]). Backends live in `crate::backend`; nothing here names a
//! hypervisor command.
#![allow(async_fn_in_trait)]

pub(crate) mod env;
pub(crate) mod fault;
pub(crate) mod guest;
pub(crate) mod handling;
pub(crate) mod policy;
pub mod record;
pub(crate) mod recovery;
pub(crate) mod run;
pub mod services;
pub(crate) mod watch;

use std::time::{Duration, Instant};

pub use migbench_model::MigrationSettings;
use migbench_model::ProgressSample;

/// Where a migration is, as every backend reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationState {
    /// Nothing started yet.
    #[default]
    None,
    /// Setting up.
    Setup,
    /// Copying (pre-copy passes).
    Active,
    /// Paused before switchover, waiting for [`MigrationDriver::switchover`].
    PreSwitchover,
    /// Sending the last device state.
    Device,
    /// Post-copy: running on the destination, pages still pulled.
    PostcopyActive,
    /// Post-copy stopped moving pages (its connection broke or was paused):
    /// it can be recovered over a new connection.
    PostcopyPaused,
    /// Post-copy reconnecting after a pause.
    PostcopyRecover,
    /// Done: the guest runs on the destination.
    Completed,
    /// Failed: the guest keeps running on the source.
    Failed,
    /// Being cancelled.
    Cancelling,
    /// Cancelled: the guest keeps running on the source.
    Cancelled,
    /// Any state this list does not know (kept for the record).
    Other,
}

impl MigrationState {
    /// The migration is over, one way or another.
    pub fn finished(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// One progress reading in migbench's terms.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// Where the migration is.
    pub state: MigrationState,
    /// The counters, as recorded in `progress.jsonl` (`t_ms` is set by
    /// [`watch::watch`]; `status` holds the backend's own name of the state).
    pub progress: ProgressSample,
    /// The backend's own timing.
    #[serde(flatten)]
    pub times: BackendTimes,
    /// Error description when failed.
    pub error: Option<String>,
    /// A disk copy the backend runs inside the migration itself (libvirt's
    /// copy-storage-all/-inc); `None` when there is none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskProgress>,
}

/// Progress of a disk copy inside the migration, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiskProgress {
    /// Copied so far.
    pub processed: u64,
    /// To copy (grows while the guest writes).
    pub total: u64,
}

/// What the backend reports of its own timing, ms.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BackendTimes {
    /// From `migrate` to the end.
    pub total_time_ms: Option<f64>,
    /// Setting up before the first byte.
    pub setup_time_ms: Option<f64>,
    /// QEMU's downtime: the guest paused for switchover (once completed).
    pub downtime_ms: Option<f64>,
    /// libvirt's downtime (see `RunRecord::downtime_libvirt_ms`).
    pub libvirt_downtime_ms: Option<f64>,
    /// libvirt's `downtime_net`.
    pub libvirt_downtime_net_ms: Option<f64>,
}

/// A pass or state event with its host arrival time.
#[derive(Debug, Clone, PartialEq)]
pub struct DriverEvent {
    /// Host arrival time.
    pub at: Instant,
    /// A new pass began: its number.
    pub pass: Option<u64>,
    /// A state was entered: the backend's name of it.
    pub status: Option<String>,
}

/// How the guest's disk moves with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StoragePlan {
    /// Nothing to copy (no disk, or storage both hosts reach).
    Shared,
    /// Copy the disk to the destination before switchover.
    Copy {
        /// Give up if the copy is not in sync by then.
        ready_timeout: Duration,
        /// Copy only the top image (incremental: the backing image is on both hosts).
        top_only: bool,
    },
}

/// What the disk copy did before the RAM migration started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DiskCopy {
    /// Copy started.
    pub started: Instant,
    /// Copy in sync.
    pub ready: Instant,
    /// Bytes copied to get in sync.
    pub bytes: u64,
}

/// The cause a backend's failure keeps.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A backend's failure, by what a caller can do about it; each keeps the
/// backend's own error (its message and source chain) as it was.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The backend or the hypervisor cannot do what was asked.
    #[error(transparent)]
    Unsupported(Cause),
    /// The hypervisor refused the request; its message says why.
    #[error(transparent)]
    Refused(Cause),
    /// The connection to the hypervisor is gone (its process, its socket).
    #[error(transparent)]
    ConnectionLost(Cause),
    /// The hypervisor did not answer in time.
    #[error(transparent)]
    Timeout(Cause),
    /// Anything else.
    #[error(transparent)]
    Other(Cause),
}

impl BackendError {
    /// A failure of this kind with this message.
    pub fn other(message: impl Into<String>) -> BackendError {
        BackendError::Other(message.into().into())
    }

    /// Its kind, as a word.
    pub fn kind(&self) -> &'static str {
        match self {
            BackendError::Unsupported(_) => "unsupported",
            BackendError::Refused(_) => "refused",
            BackendError::ConnectionLost(_) => "connection lost",
            BackendError::Timeout(_) => "timeout",
            BackendError::Other(_) => "other",
        }
    }
}

/// A setting a backend lacks, refuses or would ignore, found before any run.
#[derive(Debug, thiserror::Error)]
#[error("{field} = \"{value}\": {backend} {why}")]
pub struct Unsupported {
    /// Scenario field.
    pub field: String,
    /// Value as written.
    pub value: String,
    /// What the backend lacks or said.
    pub why: String,
    /// The backend and its version, e.g. "QEMU 7.2.22 (Debian ...)".
    pub backend: String,
}

/// What a backend can do, asked once before any run of a matrix.
pub trait Preflight {
    /// `Ok(Err(..))` names the first setting of `runs` the backend would
    /// refuse or ignore; `Err` when the backend could not be asked.
    async fn check(
        &self,
        runs: &[migbench_model::RunParams],
    ) -> anyhow::Result<Result<(), Unsupported>>;
}

/// A backend that can live-migrate one guest.
pub trait MigrationDriver {
    /// Apply `settings` to both ends, prepare the destination to receive
    /// and, with [`StoragePlan::Copy`], copy the disk until it is in sync.
    async fn prepare(
        &mut self,
        settings: &MigrationSettings,
        storage: StoragePlan,
    ) -> Result<Option<DiskCopy>, BackendError>;
    /// The migration settings both ends hold now, as the backend reports
    /// them (recorded as `migration-settings.json`).
    async fn settings(&mut self) -> Result<serde_json::Value, BackendError>;
    /// Start the migration.
    async fn start(&mut self) -> Result<(), BackendError>;
    /// Read the migration's progress.
    async fn status(&mut self) -> Result<Status, BackendError>;
    /// Cancel the migration in flight.
    async fn cancel(&mut self) -> Result<(), BackendError>;
    /// When the backend saw the migration complete (event time), if it knows.
    fn completed_at(&mut self) -> Option<Instant> {
        None
    }
    /// The migration paused before switchover: finish the disk copy, then
    /// let it switch over.
    async fn switchover(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
    /// After completion: release the disk copy's resources and, when a
    /// policy paused the guest (`paused`), resume it on the destination.
    async fn finish(&mut self, paused: bool) -> Result<(), BackendError>;
    /// Change the downtime limit of the migration in flight.
    async fn set_downtime_limit(&mut self, ms: u64) -> Result<(), BackendError>;
    /// Switch the migration in flight to post-copy.
    async fn start_postcopy(&mut self) -> Result<(), BackendError>;
    /// Pause the guest so the migration can finish.
    async fn pause_guest(&mut self) -> Result<(), BackendError>;
    /// Pass and state events seen since the last call.
    fn take_events(&mut self) -> Vec<DriverEvent> {
        Vec::new()
    }
    /// Pause before switchover (so a fault can strike there); the watch
    /// loop continues with [`MigrationDriver::switchover`].
    async fn hold_at_switchover(&mut self) -> Result<(), BackendError> {
        Err(unsupported("pausing before switchover"))
    }
    /// Post-copy stopped moving (a fault): pause it on both sides so it
    /// can be recovered; `Ok(false)` when the destination does not run the
    /// guest yet (nothing paused: pausing now would strand it).
    async fn pause_postcopy(&mut self) -> Result<bool, BackendError> {
        Err(unsupported("pausing post-copy"))
    }
    /// One attempt to resume a paused post-copy migration over a new
    /// connection: `Ok(true)` when it runs again, `Ok(false)` when it
    /// could not connect yet (try again), `Err` when it never will.
    async fn recover_postcopy(&mut self) -> Result<bool, BackendError> {
        Err(unsupported("post-copy recovery"))
    }
    /// Where the guest runs now that the migration has ended, if the
    /// backend can tell.
    async fn locate(&mut self) -> Option<migbench_model::fault::GuestLocation> {
        None
    }
}

/// What a backend cannot do.
pub fn unsupported(what: &str) -> BackendError {
    BackendError::Unsupported(format!("{what} is not supported by this backend").into())
}
