//! migbench-model: the types the driver writes and the analyzer reads —
//! scenario files ([`scenario`]), units ([`units`]), the run matrix
//! ([`matrix`]) and on-disk records ([`record`]). No I/O beyond reading a
//! scenario file, so both sides depend on it without pulling in the other.

pub mod matrix;
pub mod record;
pub mod scenario;
pub mod units;

pub use matrix::{expand, RunParams};
pub use record::{
    Integrity, Manifest, Outcome, ProbeEvent, ProgressSample, RunRecord, WorkloadSample,
};
pub use scenario::{Scenario, ScenarioError};
