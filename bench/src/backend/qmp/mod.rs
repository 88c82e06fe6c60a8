//! The QMP backend: migbench's own lab drives two QEMU processes over QMP.
//! [`client`] speaks QMP, [`settings`] maps migration settings to QEMU's
//! capabilities and parameters, [`preflight`] refuses settings the
//! installed QEMU lacks, [`status`] reads progress, [`mirror`] copies
//! disks for block migration, [`driver`] implements the migration
//! contract, [`vm`] the plain VM controls (pause, resume, quit) and
//! [`dirty_rate`] measures a running guest's dirty rate.

pub mod client;
pub mod dirty_rate;
pub mod driver;
pub mod lab;
pub mod mirror;
pub mod preflight;
pub mod settings;
pub mod snapshot;
pub mod status;
pub mod vm;

pub use driver::QmpDriver;
pub use vm::QmpVm;
