//! migbench: the driver. CLI ([`cli`], [`commands`]), the scheduler and its
//! executors ([`scheduler`], [`lab`]), the migration driver trait and its
//! QMP implementation ([`driver`], [`qmp`]), recording ([`recorder`],
//! [`manifest`]) and presentation ([`table`]).

pub mod calibrate;
pub mod cli;
pub mod commands;
pub mod driver;
pub mod lab;
pub mod manifest;
pub mod policy;
pub mod qmp;
pub mod recorder;
pub mod scheduler;
pub mod system;
pub mod table;
pub mod tuning;
