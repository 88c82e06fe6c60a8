//! The local lab, the environment only: guest image, accelerator choice,
//! network namespaces and shaped links, QEMU processes, disks, booting the
//! guest. The executor that runs a migration in them is `crate::executor`.

pub(crate) mod accel;
pub(crate) mod boot;
pub(crate) mod faults;
pub mod image;
pub(crate) mod libvirtd;
pub mod net;
pub(crate) mod netpool;
pub(crate) mod qemu;
pub mod rundir;
pub(crate) mod site;
pub mod sshd;
pub(crate) mod storage;
