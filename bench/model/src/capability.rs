//! What each backend can do ([`Capability`], [`Backend::capabilities`]),
//! declared once: scenario validation asks it, and a refusal names the
//! capability and the backends that have it.

use crate::settings::Backend;

/// What a backend can do, declared once ([`Backend::capabilities`]):
/// scenario validation reads it, and a refusal names the capability.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Faults injected into the lab's environment during a migration:
    /// the link, the hypervisor processes, the storage host, the guest.
    Faults,
    /// Holding a migration just before switchover so a fault strikes
    /// there (QEMU's `pause-before-switchover`; libvirt 9.0 has no such
    /// hold).
    SwitchoverHold,
    /// Pausing a post-copy migration a fault stalled and resuming it over
    /// a new connection (QEMU's `migrate-pause` and `migrate -r`, driven
    /// over QMP).
    PostcopyRecovery,
    /// Migrating between real hosts (`[hosts]`) reached over a URI.
    RealHosts,
    /// Block migration: the disk copied to the destination.
    BlockMigration,
    /// Measuring a running guest's dirty rate (`advise --dirty-rate
    /// measure`: QEMU's `calc-dirty-rate` over QMP, or libvirt's).
    DirtyRateMeasurement,
    /// Migrating through the source daemon's own connection to the
    /// destination (`--p2p`), or with the data tunnelled through it
    /// (`--tunnelled`): libvirt's transports.
    DaemonTransports,
}

impl Capability {
    /// Its name in a refusal.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Faults => "fault injection",
            Capability::SwitchoverHold => "holding before switchover",
            Capability::PostcopyRecovery => "post-copy recovery",
            Capability::RealHosts => "real hosts",
            Capability::BlockMigration => "block migration",
            Capability::DirtyRateMeasurement => "dirty-rate measurement",
            Capability::DaemonTransports => "peer-to-peer and tunnelled transports",
        }
    }
}

impl Backend {
    /// Everything this backend can do.
    pub fn capabilities(self) -> &'static [Capability] {
        use Capability as C;
        match self {
            Backend::Qmp => &[
                C::Faults,
                C::SwitchoverHold,
                C::PostcopyRecovery,
                C::BlockMigration,
                C::DirtyRateMeasurement,
            ],
            Backend::Libvirt => &[
                C::Faults,
                C::RealHosts,
                C::BlockMigration,
                C::DirtyRateMeasurement,
                C::DaemonTransports,
            ],
        }
    }

    /// Whether it can do `c`.
    pub fn can(self, c: Capability) -> bool {
        self.capabilities().contains(&c)
    }

    /// The backends that can do `c`.
    pub fn able(c: Capability) -> Vec<Backend> {
        Backend::ALL.iter().copied().filter(|b| b.can(c)).collect()
    }
}
