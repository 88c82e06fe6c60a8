//! `[backend]`'s settings as scenario files spell them: what drives the
//! migration ([`Backend`]) and how libvirt carries it ([`Transport`]).

use std::fmt;

use crate::scalar::{string_serde, ScalarField};

choice!(
    /// What drives the migration.
    Backend {
        /// migbench drives both QEMUs over QMP itself.
        Qmp = "qmp",
        /// libvirt drives them (what `virsh migrate --live`, virt-manager
        /// and OpenStack Nova use), one libvirt daemon per host.
        Libvirt = "libvirt",
    }
);

choice!(
    /// How libvirt carries the migration (`virsh migrate` spells these
    /// `--p2p` and `--tunnelled`).
    Transport {
        /// migbench's client connects to both daemons and drives the
        /// migration (virsh's default); QEMU streams straight to the
        /// destination.
        Direct = "direct",
        /// The source daemon connects to the destination's itself, by
        /// the destination URI as the source host resolves it; QEMU
        /// still streams straight across.
        P2p = "p2p",
        /// Peer-to-peer, and the data goes through the daemons'
        /// connection instead of QEMU's own socket (one stream: no
        /// multifd).
        Tunnelled = "tunnelled",
    }
);
