//! Talking to migbench's guest agent, whatever backend moves the guest:
//! one request off the async runtime ([`agent_request`]), waiting for it
//! to answer ([`wait_for_agent`]), sampling its workload ([`spawn_sampler`])
//! and cancellable sleeps ([`sleep_or_cancel`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use migbench_model::WorkloadSample;
use migbench_probes::agent_client::AgentClient;
use migbench_probes::protocol::{Request, Response};

use crate::control::Cancel;

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

/// Wait until the agent answers a ping.
pub async fn wait_for_agent(agent: &AgentClient, timeout: Duration, cancel: &Cancel) -> Result<()> {
    let start = Instant::now();
    loop {
        match agent_request(agent, Request::Ping, Duration::from_millis(500)).await {
            Ok(Response::Pong { .. }) => return Ok(()),
            _ if start.elapsed() > timeout => {
                bail!("guest agent did not answer within {}s", timeout.as_secs())
            }
            _ => sleep_or_cancel(Duration::from_millis(200), cancel).await?,
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
        loop {
            let done = stop.load(Ordering::Relaxed);
            // A paused or moving guest may not answer; its samples wait for the next fetch.
            if let Ok(Response::Samples { now_ms, samples }) =
                agent_request(&agent, Request::Samples, Duration::from_secs(2)).await
            {
                let host_now = origin.elapsed().as_secs_f64() * 1e3;
                out.extend(samples.iter().map(|s| WorkloadSample {
                    t_ms: host_now - (now_ms - s.end_ms),
                    window_ms: s.window_ms,
                    bytes: s.bytes,
                }));
            }
            if done {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        out
    })
}
