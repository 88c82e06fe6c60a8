//! The guest side: what the agent (`migbench-agent`, a static binary in
//! the guest image) runs — the memory dirtier, the disk workload, the
//! services a client uses, the stall fault — and the loop they run in.
//! Nothing here runs on the host.

pub mod dirtier;
pub mod disk;
pub mod serve;
pub mod stall;
pub mod worker;
