//! migbench-model: the types the driver writes and the analyzer reads —
//! the knob table ([`knobs`], expanded by [`dimension`]), scenario files
//! ([`scenario`]), quantities ([`units`]) apart from migration settings
//! ([`settings`]), the run matrix ([`matrix`]) and on-disk records
//! ([`record`], [`series`]), faults ([`fault`]) and what the services' clients saw
//! ([`service`]). No I/O beyond reading a scenario file, so both
//! sides depend on it without pulling in the other; the predictor
//! (`migbench-predict`) depends on it, not the reverse.

pub mod capability;
pub mod dimension;
pub mod eta;
pub mod fault;
pub mod knobs;
pub mod matrix;
pub mod nova;
pub mod record;
pub mod reference;
pub mod repeat;
pub mod scalar;
pub mod scenario;
pub mod series;
pub mod service;
pub mod settings;
pub mod stats;
pub mod units;

pub use knobs::{dimension, Dimension, MigrationKey, MigrationSettings, DIMENSIONS, KEYS};
pub use matrix::{expand, RunParams};
pub use record::{Integrity, Manifest, Outcome, RunRecord};
pub use scenario::{Scenario, ScenarioError};
pub use series::{ProbeEvent, ProgressSample, StreamChunk, WorkloadSample};
