//! Migration backends: implementations of the contract in
//! [`crate::migrate`]. [`qmp`] drives QEMU directly (the local lab).

pub mod qmp;
