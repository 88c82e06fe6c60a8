//! The local lab's executor for a whole matrix: each run goes to the
//! environment of its `[backend] kind` (the QMP lab or the libvirt lab),
//! so one matrix can compare both on identical conditions.

use std::path::Path;

use migbench_model::settings::Backend;
use migbench_model::{RunParams, RunRecord};

use crate::backend::qmp::qmp_lab::QmpLab;
use crate::executor::MigrationExecutor;
use crate::scheduler::Executor;

/// One executor per backend.
pub struct LabExecutors {
    /// Runs over QMP.
    pub qmp: MigrationExecutor<QmpLab>,
    /// Runs through libvirt.
    #[cfg(feature = "libvirt")]
    pub libvirt: MigrationExecutor<crate::backend::libvirt::libvirt_lab::LibvirtLab>,
}

impl LabExecutors {
    /// Both labs on the same image, accelerator and controls as `qmp`.
    pub fn new(qmp: MigrationExecutor<QmpLab>) -> Self {
        #[cfg(feature = "libvirt")]
        let libvirt = qmp.with_env(crate::backend::libvirt::libvirt_lab::LibvirtLab {
            image: qmp.env.image.clone(),
            accel: qmp.env.accel.clone(),
            disk_in_pool: false,
            tcg_dirty_workaround: qmp.env.tcg_dirty_workaround,
        });
        LabExecutors {
            qmp,
            #[cfg(feature = "libvirt")]
            libvirt,
        }
    }
}

impl Executor for LabExecutors {
    fn execute(&mut self, p: &RunParams, raw: &Path) -> RunRecord {
        match p.backend {
            Backend::Qmp => self.qmp.execute(p, raw),
            #[cfg(feature = "libvirt")]
            Backend::Libvirt => self.libvirt.execute(p, raw),
            #[cfg(not(feature = "libvirt"))]
            Backend::Libvirt => {
                let now = crate::recorder::unix_now();
                let mut rec = RunRecord::pending(p, now, &self.qmp.accel);
                rec.outcome = migbench_model::Outcome::Failed;
                rec.error = Some("migbench was built without the `libvirt` feature".into());
                rec
            }
        }
    }
}
