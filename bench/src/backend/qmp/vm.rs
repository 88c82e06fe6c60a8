//! [`QmpVm`]: a lab QEMU process with its QMP connection — what the QMP
//! backend drives — and the plain VM controls outside a migration: pause
//! and resume (calibration's reference pauses) and quit.

use std::time::Duration;

use anyhow::Context;

use super::client::{Qmp, QmpError};
use crate::lab::qemu::QemuProcess;

/// A QEMU process and its QMP connection.
pub struct QmpVm {
    /// The process.
    pub process: QemuProcess,
    /// Its QMP connection.
    pub qmp: Qmp,
}

impl QmpVm {
    /// Connect to a started QEMU's QMP socket.
    pub async fn connect(process: QemuProcess) -> anyhow::Result<QmpVm> {
        let qmp = Qmp::connect(&process.qmp_socket, Duration::from_secs(20))
            .await
            .with_context(|| {
                format!(
                    "QEMU ({}) did not answer on QMP; see {}",
                    process.role.name(),
                    process.log.display()
                )
            })?;
        Ok(QmpVm { process, qmp })
    }

    /// Pause the guest's vCPUs (`stop`).
    pub async fn pause(&self) -> Result<(), QmpError> {
        self.qmp.execute(qapi::qmp::stop {}).await?;
        Ok(())
    }

    /// Resume the guest's vCPUs (`cont`).
    pub async fn resume(&self) -> Result<(), QmpError> {
        self.qmp.execute(qapi::qmp::cont {}).await?;
        Ok(())
    }

    /// Ask QEMU to quit (`quit`), then make sure the process is gone.
    pub async fn shutdown(self) {
        let quit = self.qmp.execute(qapi::qmp::quit {});
        let _ = tokio::time::timeout(Duration::from_secs(2), quit).await;
        self.process.shutdown().await;
    }
}
