//! migbench-probes: the guest agent's building blocks ([`dirtier`],
//! [`protocol`]) and the host side that talks to it ([`prober`],
//! [`agent_client`], [`netns`]) plus the pure analysis of probe events
//! ([`outage`]).

pub mod agent_client;
pub mod dirtier;
pub mod disk;
pub mod netns;
pub mod outage;
pub mod prober;
pub mod protocol;
