//! The host side: what migbench runs in the client namespace to see the
//! guest as a client does — the UDP and ICMP probers, the stream viewer,
//! the agent's control client — and the namespace sockets they use.
//! Nothing here runs in the guest.

pub mod agent_client;
pub mod icmp;
pub mod netns;
pub mod prober;
pub mod stream_client;
