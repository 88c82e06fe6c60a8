//! QMP client over the `qapi` crate: typed commands where the crate's types
//! (generated from the QEMU 9.1 schema) match the installed QEMU, and
//! raw commands answering `serde_json::Value` where replies drift
//! between QEMU versions (query-migrate's statistics, for instance).

use std::path::Path;
use std::time::{Duration, Instant};

use qapi::futures::{QapiService, QmpStreamTokio};
use serde::Serialize;
use serde_json::Value;
use tokio::io::WriteHalf;
use tokio::net::UnixStream;
use tokio::sync::mpsc;

/// Errors talking to QEMU.
#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    /// The socket could not be reached in time.
    #[error("QMP socket {path} did not accept a connection within {secs}s")]
    Connect {
        /// Socket path.
        path: String,
        /// Seconds waited.
        secs: u64,
        /// Last cause.
        #[source]
        source: std::io::Error,
    },
    /// The peer did not answer in time.
    #[error("QMP socket {path}: no {what} within {secs}s (is it a QEMU monitor, and is QEMU responding?)")]
    Silent {
        /// Socket path.
        path: String,
        /// What was awaited: the greeting, or a command's reply.
        what: String,
        /// Seconds waited.
        secs: u64,
    },
    /// The connection closed under a command.
    #[error("QMP `{command}` failed: {source}")]
    Closed {
        /// The command name.
        command: &'static str,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A command failed.
    #[error("QMP `{command}` failed: {message}")]
    Command {
        /// The command name.
        command: &'static str,
        /// QEMU's error.
        message: String,
    },
}

type Service = QapiService<QmpStreamTokio<WriteHalf<UnixStream>>>;

/// A QMP event with the host time it arrived.
#[derive(Debug, Clone)]
pub struct TimedEvent {
    /// Arrival on the host.
    pub at: Instant,
    /// The event.
    pub event: qapi::qmp::Event,
}

/// How long QEMU may take to greet a new connection (it greets at once;
/// a peer that accepts and stays silent is not a QEMU monitor).
pub const GREETING_DEADLINE: Duration = Duration::from_secs(10);

/// How long any command's reply may take. QEMU answers within ms, but
/// holds its lock through a migration's last bitmap sync and device
/// state (seconds for large guests under TCG): generous, never endless.
pub const REPLY_DEADLINE: Duration = Duration::from_secs(60);

/// A negotiated QMP connection with an event channel.
pub struct Qmp {
    path: String,
    service: Service,
    events: mpsc::UnboundedReceiver<TimedEvent>,
    _pump: tokio::task::JoinHandle<()>,
}

macro_rules! raw_command {
    ($name:ident, $qmp:literal) => {
        #[doc = concat!("`", $qmp, "` with JSON arguments and reply.")]
        #[derive(Serialize)]
        #[serde(transparent)]
        pub struct $name(pub Value);
        impl qapi::Command for $name {
            type Ok = Value;
            const NAME: &'static str = $qmp;
            const ALLOW_OOB: bool = false;
        }
        impl qapi::qmp::QmpCommand for $name {}
    };
}

raw_command!(QueryMigrate, "query-migrate");
raw_command!(Migrate, "migrate");
raw_command!(MigrateIncoming, "migrate-incoming");
raw_command!(MigrateSetParameters, "migrate-set-parameters");
raw_command!(MigrateSetCapabilities, "migrate-set-capabilities");
raw_command!(QueryStatus, "query-status");
raw_command!(MigratePause, "migrate-pause");
raw_command!(MigrateRecover, "migrate-recover");
raw_command!(NbdServerStart, "nbd-server-start");
raw_command!(NbdServerStop, "nbd-server-stop");
raw_command!(BlockExportAdd, "block-export-add");
raw_command!(BlockExportDel, "block-export-del");
raw_command!(BlockdevAdd, "blockdev-add");
raw_command!(BlockdevMirror, "blockdev-mirror");
raw_command!(QueryJobs, "query-jobs");
raw_command!(JobDismiss, "job-dismiss");
raw_command!(BlockJobCancel, "block-job-cancel");
raw_command!(MigrateContinue, "migrate-continue");
raw_command!(MigrateStartPostcopy, "migrate-start-postcopy");
raw_command!(QueryMigrateCapabilities, "query-migrate-capabilities");
raw_command!(QueryMigrateParameters, "query-migrate-parameters");
raw_command!(QueryVersion, "query-version");
raw_command!(Stop, "stop");
raw_command!(Cont, "cont");
raw_command!(CalcDirtyRate, "calc-dirty-rate");
raw_command!(QueryDirtyRate, "query-dirty-rate");

impl Qmp {
    /// Connect (retrying while QEMU creates the socket) and negotiate.
    pub async fn connect(path: &Path, wait: Duration) -> Result<Qmp, QmpError> {
        let deadline = Instant::now() + wait;
        let name = path.display().to_string();
        let silent = |what: &str, secs: u64| QmpError::Silent {
            path: name.clone(),
            what: what.into(),
            secs,
        };
        let socket = loop {
            match UnixStream::connect(path).await {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return Err(QmpError::Connect {
                        path: path.display().to_string(),
                        secs: wait.as_secs(),
                        source: e,
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        // The greeting and the capabilities exchange: QEMU answers at once.
        let stream = tokio::time::timeout(GREETING_DEADLINE, async {
            QmpStreamTokio::open(socket).await?.negotiate().await
        })
        .await
        .map_err(|_| silent("greeting", GREETING_DEADLINE.as_secs()))?
        .map_err(|e| QmpError::Command {
            command: "qmp_capabilities",
            message: e.to_string(),
        })?;
        let (service, mut events) = stream.into_parts();
        let (tx, rx) = mpsc::unbounded_channel();
        let pump = tokio::spawn(async move {
            use futures_util::StreamExt;
            while let Some(ev) = events.next().await {
                match ev {
                    Ok(event) => {
                        let _ = tx.send(TimedEvent {
                            at: Instant::now(),
                            event,
                        });
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => continue,
                    Err(_) => break,
                }
            }
        });
        Ok(Qmp {
            path: name,
            service,
            events: rx,
            _pump: pump,
        })
    }

    /// Execute a command.
    pub async fn execute<C>(&self, cmd: C) -> Result<C::Ok, QmpError>
    where
        C: qapi::Command + qapi::qmp::QmpCommand,
    {
        tokio::time::timeout(REPLY_DEADLINE, self.service.execute(cmd))
            .await
            .map_err(|_| QmpError::Silent {
                path: self.path.clone(),
                what: format!("reply to `{}`", C::NAME),
                secs: REPLY_DEADLINE.as_secs(),
            })?
            .map_err(|e| match e {
                qapi::ExecuteError::Io(source) => QmpError::Closed {
                    command: C::NAME,
                    source,
                },
                e => QmpError::Command {
                    command: C::NAME,
                    message: e.to_string(),
                },
            })
    }

    /// Events received so far, oldest first.
    pub fn drain_events(&mut self) -> Vec<TimedEvent> {
        let mut v = Vec::new();
        while let Ok(e) = self.events.try_recv() {
            v.push(e);
        }
        v
    }
}
