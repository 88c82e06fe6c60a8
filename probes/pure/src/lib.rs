//! migbench-pure: pure functions shared by the guest agent, the driver and
//! the analyzer, with no I/O: generation tags of pages and disk blocks
//! ([`tags`]), the outage analysis of probe events ([`outage`]) and what a
//! service's client saw ([`service`]). The
//! analyzer links this, not the agent.

pub mod outage;
pub mod service;
pub mod tags;
