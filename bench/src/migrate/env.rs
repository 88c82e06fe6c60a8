//! Where a migration runs, as the generic executor sees it: an
//! [`Environment`] builds the hosts for a run and boots the guest on the
//! source; the [`Hosts`] it returns give the way to the guest, where to probe
//! it from, the migration link's byte counter and the driver that moves
//! the guest. The local lab over QMP is one (`crate::backend::qmp::qmp_lab`).
#![allow(async_fn_in_trait)]

use std::path::Path;

use migbench_model::RunParams;
use migbench_probes::host::prober::ProbeTarget;

use super::guest::GuestLink;
use super::MigrationDriver;
use crate::control::Cancel;

/// Bytes sent so far on the migration link, if the environment can tell.
pub type LinkCounter = Box<dyn Fn() -> Option<u64> + Send + Sync>;

/// A booted guest on its source host, a destination ready to receive, and
/// the network between them and the client.
pub trait Hosts {
    /// The driver that moves this guest.
    type Driver<'a>: MigrationDriver
    where
        Self: 'a;
    /// How the guest is reached (its agent, or only ICMP echo).
    fn guest(&self) -> GuestLink;
    /// Where the prober runs (a network namespace, if any) and what it
    /// probes.
    fn probe_target(&self) -> (Option<String>, ProbeTarget);
    /// The migration link's sent-bytes counter.
    fn link_counter(&self) -> LinkCounter;
    /// The driver, borrowing the hosts for one migration.
    fn driver(&mut self) -> Self::Driver<'_>;
    /// What a fault can break here (`None`: no fault injection).
    fn fault_target(&self) -> Option<std::sync::Arc<dyn super::fault::FaultTarget>> {
        None
    }
}

/// Builds and removes the hosts of each run.
pub trait Environment {
    /// The hosts of one run.
    type Hosts: Hosts;
    /// Build the hosts for run `p`, boot the guest (logs go to `raw`) and
    /// start the destination; whatever fails is removed again.
    async fn boot(&self, p: &RunParams, raw: &Path, cancel: &Cancel)
        -> anyhow::Result<Self::Hosts>;
    /// Stop the guest's processes and remove the hosts.
    async fn teardown(&self, hosts: Self::Hosts);
}
