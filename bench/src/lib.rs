//! migbench: the driver. CLI ([`cli`], [`commands`]); the scheduler
//! ([`scheduler`]) runs each run of a matrix through an executor; the lab
//! executor ([`executor`]) builds the environment ([`lab`]) and hands the migration to the
//! backend-neutral core ([`migrate`]: contract, watch loop, policies,
//! record assembly) driving a backend ([`backend`]); recording
//! ([`recorder`], [`manifest`]) and presentation ([`table`]).

pub mod advise;
pub mod backend;
pub mod calibrate;
pub mod cleanup;
pub mod cli;
pub mod commands;
pub mod control;
pub mod executor;
pub mod lab;
pub mod lab_executors;
pub mod lock;
pub mod manifest;
pub mod migrate;
pub mod predict;
pub mod recorder;
pub mod resources;
pub mod scheduler;
pub mod system;
pub mod table;
pub mod usage;
