//! The QMP backend: migbench's own lab drives two QEMU processes over QMP.
//! [`client`] speaks QMP, [`qmp_settings`] maps migration settings to QEMU's
//! capabilities and parameters, [`qmp_preflight`] refuses settings the
//! installed QEMU lacks, [`status`] reads progress, [`mirror`] copies
//! disks for block migration, [`qmp_driver`] implements the migration
//! contract, [`vm`] the plain VM controls (pause, resume, quit),
//! [`dirty_rate`] measures a running guest's dirty rate and
//! [`state_layout`] reads where a saved guest's non-zero memory lies.

pub mod client;
pub mod dirty_rate;
pub mod mirror;
pub mod qmp_driver;
pub mod qmp_lab;
pub mod qmp_preflight;
pub mod qmp_settings;
pub mod snapshot;
pub mod state_layout;
pub mod status;
pub mod vm;

pub use qmp_driver::QmpDriver;
pub use vm::QmpVm;
