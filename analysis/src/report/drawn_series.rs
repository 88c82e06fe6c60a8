//! The raw per-run series the report draws (progress, workload, probes,
//! the services' CSVs), read once each through [`crate::load`]'s checked
//! readers. A file that cannot be used is left out of the charts with one
//! warning naming it and why; `--no-probes` reads no `probes.csv` at all.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use migbench_model::series::StreamChunk;
use migbench_model::{ProbeEvent, ProgressSample, WorkloadSample};

use crate::frame::RunRef;
use crate::load::{read_probes, read_progress, read_stream, read_workload, SeriesError};

/// Reads raw series for the report, remembering what it warned about.
pub struct Series {
    probes: bool,
    /// Warnings already given (the summary's): a file one of them names
    /// is not read again.
    said: Vec<String>,
    probe_cache: RefCell<HashMap<PathBuf, Option<Vec<ProbeEvent>>>>,
    warned: RefCell<HashSet<PathBuf>>,
    warnings: RefCell<Vec<String>>,
}

impl Series {
    /// A reader; `probes` false reads no `probes.csv`; a file that one of
    /// the warnings `said` names (`FILE:...`) is neither read nor warned
    /// about again.
    pub fn new(probes: bool, said: &[String]) -> Series {
        Series {
            probes,
            said: said.to_vec(),
            probe_cache: RefCell::default(),
            warned: RefCell::default(),
            warnings: RefCell::default(),
        }
    }

    /// The warnings so far (each file once).
    pub fn warnings(&self) -> Vec<String> {
        self.warnings.borrow().clone()
    }

    fn known_bad(&self, path: &Path) -> bool {
        let named = format!("{}:", path.display());
        self.said.iter().any(|w| w.starts_with(&named))
    }

    fn fail<T: Default>(&self, e: SeriesError, what: &str) -> T {
        if !self.known_bad(&e.path) && self.warned.borrow_mut().insert(e.path.clone()) {
            self.warnings
                .borrow_mut()
                .push(format!("{e}; the report is drawn without {what}"));
        }
        T::default()
    }

    /// A run's `query-migrate` samples (empty if absent or unusable).
    pub fn progress(&self, r: &RunRef) -> Vec<ProgressSample> {
        read_progress(r.set, &r.rec.run_id)
            .unwrap_or_else(|e| self.fail(e, "this run's migration progress"))
    }

    /// A run's workload samples (empty if absent or unusable).
    pub fn workload(&self, r: &RunRef) -> Vec<WorkloadSample> {
        read_workload(r.set, &r.rec.run_id)
            .unwrap_or_else(|e| self.fail(e, "this run's workload samples"))
    }

    /// A run's probes (`None` with `--no-probes`, or if absent or unusable).
    pub fn probes(&self, r: &RunRef) -> Option<Vec<ProbeEvent>> {
        if !self.probes {
            return None;
        }
        let path = r.set.run_dir(&r.rec.run_id).join("probes.csv");
        if self.known_bad(&path) {
            return None;
        }
        if let Some(v) = self.probe_cache.borrow().get(&path) {
            return v.clone();
        }
        let v = read_probes(&path).unwrap_or_else(|e| self.fail(e, "this run's probes"));
        self.probe_cache.borrow_mut().insert(path, v.clone());
        v
    }

    /// A service's probe-format CSV under the run's `service/` directory.
    pub fn service_probes(&self, r: &RunRef, name: &str) -> Option<Vec<ProbeEvent>> {
        let path = service_path(r, name);
        read_probes(&path).unwrap_or_else(|e| self.fail(e, "this service series"))
    }

    /// The run's TCP stream chunks (`service/stream.csv`).
    pub fn stream(&self, r: &RunRef) -> Option<Vec<StreamChunk>> {
        read_stream(&service_path(r, "stream.csv"))
            .unwrap_or_else(|e| self.fail(e, "this service series"))
    }
}

fn service_path(r: &RunRef, name: &str) -> PathBuf {
    Path::new(&r.set.run_dir(&r.rec.run_id))
        .join("service")
        .join(name)
}
