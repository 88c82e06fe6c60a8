//! A running guest's dirty rate as QEMU measures it (`calc-dirty-rate`,
//! page sampling, then `query-dirty-rate` until measured), for
//! `migbench advise --dirty-rate measure --qmp SOCKET`.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::json;

use super::client::{CalcDirtyRate, Qmp, QueryDirtyRate};

/// Sample the guest behind `socket` for `secs` seconds: its dirty rate
/// in MiB/s (QEMU's unit).
pub async fn measure(socket: &Path, secs: u64) -> Result<f64> {
    let qmp = Qmp::connect(socket, Duration::from_secs(2))
        .await
        .with_context(|| format!("--qmp {}", socket.display()))?;
    qmp.execute(CalcDirtyRate(json!({ "calc-time": secs })))
        .await
        .context("calc-dirty-rate")?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs + 10);
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let r = qmp.execute(QueryDirtyRate(json!({}))).await?;
        match r["status"].as_str() {
            Some("measured") => {
                return r["dirty-rate"]
                    .as_f64()
                    .with_context(|| format!("query-dirty-rate without a rate: {r}"));
            }
            Some("measuring") | Some("unstarted") if tokio::time::Instant::now() < deadline => {}
            _ => bail!("QEMU did not finish measuring the dirty rate: {r}"),
        }
    }
}
