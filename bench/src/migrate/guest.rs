//! Talking to the guest, whatever backend moves it: how migbench reaches
//! it ([`GuestLink`]: migbench's agent, or only ICMP echo), one agent
//! request off the async runtime ([`agent_request`]), waiting for it to
//! answer ([`wait_for_agent`]), sampling its workload ([`spawn_sampler`])
//! and cancellable sleeps ([`sleep_or_cancel`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use migbench_model::WorkloadSample;
use migbench_probes::host::agent_client::AgentClient;
use migbench_probes::protocol::{Request, Response};

use crate::control::Cancel;

/// How migbench reaches the guest.
#[derive(Debug, Clone)]
pub enum GuestLink {
    /// Through migbench's agent: workloads, samples, integrity checks.
    Agent(AgentClient),
    /// Only by ICMP echo (any guest on real hosts): idle, not checked.
    Icmp {
        /// Namespace to ping from.
        netns: Option<String>,
        /// The guest's address.
        ip: std::net::Ipv4Addr,
    },
}

impl GuestLink {
    /// The agent, when the guest runs one.
    pub fn agent(&self) -> Option<&AgentClient> {
        match self {
            GuestLink::Agent(a) => Some(a),
            GuestLink::Icmp { .. } => None,
        }
    }

    /// Wait until the guest answers (its agent, or an ICMP echo).
    pub async fn wait(&self, timeout: Duration, cancel: &Cancel) -> Result<()> {
        match self {
            GuestLink::Agent(a) => wait_for_agent(a, timeout, cancel).await,
            GuestLink::Icmp { netns, ip } => {
                let (netns, ip) = (netns.clone(), *ip);
                let start = Instant::now();
                while start.elapsed() < timeout {
                    let ns = netns.clone();
                    let step = Duration::from_secs(1);
                    let ok = tokio::task::spawn_blocking(move || {
                        migbench_probes::host::icmp::answers(ns.as_deref(), ip, step)
                    })
                    .await??;
                    if ok {
                        return Ok(());
                    }
                    if cancel.is_cancelled() {
                        bail!("interrupted");
                    }
                }
                bail!(
                    "guest {ip} did not answer ICMP echo within {}s",
                    timeout.as_secs()
                )
            }
        }
    }
}

/// Sleep `d`, returning early with an error if interrupted.
pub async fn sleep_or_cancel(d: Duration, cancel: &Cancel) -> Result<()> {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if cancel.is_cancelled() {
            bail!("interrupted");
        }
        tokio::time::sleep((end - Instant::now()).min(Duration::from_millis(50))).await;
    }
    Ok(())
}

/// One control request off the async runtime.
pub async fn agent_request(
    agent: &AgentClient,
    req: Request,
    timeout: Duration,
) -> Result<Response> {
    let a = agent.clone();
    Ok(tokio::task::spawn_blocking(move || a.request(&req, timeout)).await??)
}

/// Wait until the agent answers a ping. Asked often, each ping with a
/// short deadline: a restored guest answers within a few ms of resuming,
/// and a lost first connection attempt costs the next one, not a second.
pub async fn wait_for_agent(agent: &AgentClient, timeout: Duration, cancel: &Cancel) -> Result<()> {
    let start = Instant::now();
    loop {
        match agent_request(agent, Request::Ping, Duration::from_millis(250)).await {
            Ok(Response::Pong { .. }) => return Ok(()),
            _ if start.elapsed() > timeout => {
                bail!("guest agent did not answer within {}s", timeout.as_secs())
            }
            _ => sleep_or_cancel(Duration::from_millis(50), cancel).await?,
        }
    }
}

/// Fetches workload samples every second and maps guest times to host times.
pub fn spawn_sampler(
    agent: AgentClient,
    origin: Instant,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<WorkloadSample>> {
    tokio::spawn(async move {
        let mut out = Vec::new();
        // The end of the last sample fetched (guest ms, -1 before any; JSON
        // has no infinities): the agent keeps its samples, so a fetch that
        // times out is simply asked again.
        let mut after_ms = -1.0;
        loop {
            let done = stop.load(Ordering::Relaxed);
            // A paused or moving guest may not answer; its samples wait for the next fetch.
            if let Ok(Response::Samples { now_ms, samples }) = agent_request(
                &agent,
                Request::Samples { after_ms },
                Duration::from_secs(2),
            )
            .await
            {
                let host_now = origin.elapsed().as_secs_f64() * 1e3;
                if let Some(last) = samples.last() {
                    after_ms = last.end_ms;
                }
                out.extend(samples.iter().map(|s| WorkloadSample {
                    t_ms: host_now - (now_ms - s.end_ms),
                    window_ms: s.window_ms,
                    bytes: s.bytes,
                }));
            }
            if done {
                break;
            }
            // A second between fetches, cut short when the run ends (the
            // last fetch then follows at once instead of up to 1 s later).
            for _ in 0..100 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        out
    })
}
