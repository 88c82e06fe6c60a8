//! migbench-pure: pure functions shared by the guest agent, the driver and
//! the analyzer, with no I/O: generation tags of pages and disk blocks
//! ([`tags`]) and the outage analysis of probe events ([`outage`]). The
//! analyzer links this, not the agent.

pub mod outage;
pub mod tags;
