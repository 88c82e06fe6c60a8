//! `migbench calibrate`: pause a running guest with QMP `stop` for known
//! durations, `cont`, and compare the probe-measured outage with the true
//! pause. This is how a user learns to trust the downtime numbers.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use migbench_model::units::{BitRate, Dur, Percent, Size};
use migbench_probes::prober::Prober;
use migbench_pure::outage::service_downtime_ms;
use serde::Serialize;

use crate::control::Cancel;
use crate::lab::boot::boot_source;
use crate::lab::image::GuestImage;
use crate::lab::net::{LabNet, Shaping};
use crate::lab::qemu::QemuSpec;
use crate::lab::rundir::RunDir;
use crate::migrate::guest::sleep_or_cancel;

/// One calibration pause and what the probe saw.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// Requested pause, ms.
    pub requested_ms: f64,
    /// True pause: midpoint of the `cont` exchange minus midpoint of the
    /// `stop` exchange (host clock), ms.
    pub true_pause_ms: f64,
    /// Probe-measured outage, ms.
    pub measured_ms: Option<f64>,
    /// measured − true, ms.
    pub error_ms: Option<f64>,
}

/// Boot a guest in a lab of its own and run the pauses.
pub async fn calibrate(
    image: &GuestImage,
    accel: &str,
    interval: Duration,
    pauses: &[Duration],
    repeat: u32,
    cancel: &Cancel,
    probes_out: Option<&std::path::Path>,
) -> Result<Vec<Calibration>> {
    let shaping = Shaping {
        rate: BitRate(1_000_000_000),
        delay: Dur(Duration::ZERO),
        jitter: Dur(Duration::ZERO),
        loss: Percent(0.0),
    };
    let mut net = LabNet::create(&shaping)?;
    let run_dir = RunDir::create("cal")?;
    let spec = QemuSpec {
        image: image.clone(),
        ram_mib: Size(256 << 20).mib(),
        tcg_dirty_workaround: true,
        disks: None,
        vcpus: 1,
        accel: accel.into(),
    };
    let result = async {
        let (qemu, _agent) =
            boot_source(&spec, &net, run_dir.path(), run_dir.path(), cancel).await?;
        let qemu = crate::backend::qmp::QmpVm::connect(qemu).await?;
        let origin = Instant::now();
        let prober = Prober::start(Some(&net.client), net.guest_echo(), interval, origin)
            .context("starting the prober")?;
        let ms = |t: Instant| t.duration_since(origin).as_secs_f64() * 1e3;
        let mut marks = Vec::new();
        let mut failure = None;
        'outer: for &pause in pauses {
            for _ in 0..repeat {
                if let Err(e) = sleep_or_cancel(Duration::from_millis(500), cancel).await {
                    failure = Some(e);
                    break 'outer;
                }
                let a = Instant::now();
                qemu.pause().await?;
                let b = Instant::now();
                let stop_mid = (ms(a) + ms(b)) / 2.0;
                tokio::time::sleep_until((b + pause).into()).await;
                let c = Instant::now();
                qemu.resume().await?;
                let d = Instant::now();
                marks.push((pause, stop_mid, (ms(c) + ms(d)) / 2.0));
            }
        }
        sleep_or_cancel(Duration::from_millis(500), cancel)
            .await
            .ok();
        let events =
            tokio::task::spawn_blocking(move || prober.finish(Duration::from_millis(200))).await?;
        qemu.shutdown().await;
        if let Some(path) = probes_out {
            let f = std::io::BufWriter::new(std::fs::File::create(path)?);
            migbench_model::record::write_probes_csv(f, &events)?;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let interval_ms = interval.as_secs_f64() * 1e3;
        Ok(marks
            .into_iter()
            .map(|(req, s, c)| {
                let measured = service_downtime_ms(&events, interval_ms, s, c);
                Calibration {
                    requested_ms: req.as_secs_f64() * 1e3,
                    true_pause_ms: c - s,
                    measured_ms: measured,
                    error_ms: measured.map(|m| m - (c - s)),
                }
            })
            .collect())
    }
    .await;
    net.teardown();
    result
}

/// Text table of calibration results.
pub fn render(rows: &[Calibration]) -> String {
    let mut s = format!(
        "{:>10} {:>10} {:>10} {:>9}\n",
        "requested", "true ms", "probe ms", "error ms"
    );
    for r in rows {
        let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
        s.push_str(&format!(
            "{:>10.0} {:>10.2} {:>10} {:>9}\n",
            r.requested_ms,
            r.true_pause_ms,
            f(r.measured_ms),
            f(r.error_ms)
        ));
    }
    s
}
