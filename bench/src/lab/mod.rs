//! The local lab: guest image, accelerator choice, network namespaces,
//! QEMU processes and the executor that runs one migration in them.

pub mod accel;
pub mod executor;
pub mod image;
pub mod net;
pub mod qemu;
pub mod rundir;
pub mod storage;
