//! migbench-probes: the guest agent's building blocks ([`dirtier`],
//! [`protocol`]) and the host side that talks to it ([`prober`],
//! [`agent_client`], [`netns`], the run's clock [`clock::Origin`]). Pure
//! functions shared with the analyzer (generation tags, outage analysis)
//! live in `migbench-pure`.

pub mod agent_client;
pub mod clock;
pub mod control;
pub mod dirtier;
pub mod disk;
pub mod icmp;
pub mod meminfo;
pub mod netns;
pub mod prober;
pub mod protocol;
pub mod serve;
pub mod stall;
pub mod stream_client;
pub mod tcpinfo;
pub mod worker;
