//! migbench-probes: the guest agent's parts ([`guest`]: dirtier, disk
//! workload, services, stall) and the host's ([`host`]: probers, stream
//! viewer, agent client, namespace sockets), apart, sharing only the wire
//! formats ([`protocol`], [`control`]), the run's clock ([`clock`]),
//! `/proc/meminfo` ([`meminfo`]) and TCP retransmission counts
//! ([`tcpinfo`]). Pure functions shared with the analyzer (generation
//! tags, outage analysis) live in `migbench-pure`.

pub mod clock;
pub mod control;
pub mod guest;
pub mod host;
pub mod meminfo;
pub mod protocol;
pub mod tcpinfo;
