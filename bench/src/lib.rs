//! migbench: the driver. CLI ([`cli`], [`commands`]); the scheduler
//! ([`scheduler`]) runs each run of a matrix through an executor; the lab
//! executor ([`executor`]) builds the environment ([`lab`]) and hands the migration to the
//! backend-neutral core ([`migrate`]: contract, watch loop, policies,
//! record assembly) driving a backend ([`backend`]); recording
//! ([`recorder`], [`manifest`]) and presentation ([`table`]).

pub mod advise;
pub(crate) mod backend;
pub mod calibrate;
pub mod cleanup;
pub mod cli;
pub mod commands;
pub(crate) mod control;
pub(crate) mod executor;
pub mod lab;
pub(crate) mod lab_executors;
pub(crate) mod lock;
pub(crate) mod manifest;
pub mod migrate;
pub mod predict;
pub(crate) mod recorder;
pub(crate) mod resources;
pub mod scheduler;
pub(crate) mod system;
pub(crate) mod table;
pub(crate) mod usage;
