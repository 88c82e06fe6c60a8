//! Booting the lab's guest: the source QEMU in the `src` namespace, ready
//! once migbench's agent answers ([`await_guest`], whoever started it).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use migbench_probes::host::agent_client::AgentClient;

use crate::control::Cancel;
use crate::lab::net::LabNet;
use crate::lab::qemu::{QemuProcess, QemuSpec, Role};
use crate::migrate::guest::wait_for_agent;

/// How long the guest may take to answer after QEMU starts.
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(90);

/// Boot a guest on the source host of `net` and wait for its agent.
pub async fn boot_source(
    spec: &QemuSpec,
    net: &LabNet,
    run_dir: &Path,
    raw: &Path,
    cancel: &Cancel,
) -> Result<(QemuProcess, AgentClient)> {
    let src = QemuProcess::start(spec, Role::Source, Some(&net.src), run_dir, raw).await?;
    Ok((src, await_guest(net, raw, cancel).await?))
}

/// Wait until the guest booting on the source answers on its agent.
pub async fn await_guest(net: &LabNet, raw: &Path, cancel: &Cancel) -> Result<AgentClient> {
    let agent = AgentClient::new(Some(net.client.clone()), net.guest_control());
    wait_for_agent(&agent, BOOT_TIMEOUT, cancel)
        .await
        .with_context(|| {
            format!(
                "guest did not boot; see {}",
                raw.join("guest-src.log").display()
            )
        })?;
    Ok(agent)
}
