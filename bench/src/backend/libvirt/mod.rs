//! The libvirt backend: migrations the way the users run them, through
//! libvirt daemons and the `virt` crate. [`domain`] builds the guest's
//! domain XML, [`settings`] maps migration settings to libvirt's typed
//! parameters and flags (and refuses what libvirt cannot say),
//! [`stats`] reads job statistics, [`calls`] holds the calls the crate
//! lacks, [`driver`] implements the migration contract and [`lab`] runs
//! it in the local lab with a daemon per host namespace.

pub mod calls;
pub mod domain;
pub mod driver;
pub mod lab;
pub mod preflight;
pub mod provision;
pub mod reach;
pub mod remote;
pub mod settings;
pub mod stats;

pub use driver::{Ends, LibvirtDriver};
