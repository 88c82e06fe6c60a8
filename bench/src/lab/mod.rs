//! The local lab, the environment only: guest image, accelerator choice,
//! network namespaces and shaped links, QEMU processes, disks, booting the
//! guest. The executor that runs a migration in them is `crate::executor`.

pub mod accel;
pub mod boot;
pub mod faults;
pub mod image;
pub mod libvirtd;
pub mod net;
pub mod netpool;
pub mod qemu;
pub mod rundir;
pub mod site;
pub mod storage;
