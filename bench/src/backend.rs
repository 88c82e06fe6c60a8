//! Migration backends: implementations of the contract in
//! [`crate::migrate`]. [`qmp`] drives QEMU directly (the local lab);
//! [`libvirt`] goes through libvirt daemons (lab and real hosts).

#[cfg(feature = "libvirt")]
pub mod libvirt;
pub mod qmp;
