//! `migbench calibrate`: pause a running guest with QMP `stop` for known
//! durations, `cont`, and compare the probe-measured outage with the true
//! pause. This is how a user learns to trust the downtime numbers. With
//! services (`--service`), the same pauses also show what a kernel echo
//! (ICMP), a TCP stream and TCP requests saw: how a pause becomes a stall
//! (retransmission timers, playout), measured rather than assumed.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use migbench_model::settings::Services;
use migbench_model::units::{BitRate, Dur, Percent, Size};
use migbench_model::{RunParams, StreamChunk};
use migbench_probes::clock::Origin;
use migbench_probes::host::prober::Prober;
use migbench_probes::host::stream_client::CHUNK_INTERVAL;
use migbench_pure::outage::service_downtime_ms;
use migbench_pure::service::stream_summary;
use serde::Serialize;

use crate::cleanup::sweep;
use crate::commands::{guest_image, parse_dur, preflight};
use crate::control::{Cancel, Display};
use crate::lab::accel;
use crate::lab::boot::boot_source;
use crate::lab::image::GuestImage;
use crate::lab::net::{LabNet, Shaping};
use crate::lab::qemu::QemuSpec;
use crate::lab::rundir::RunDir;
use crate::migrate::guest::sleep_or_cancel;
use crate::migrate::services::{ServiceClients, ServiceSeries};
use crate::usage::UsageError;
use migbench_model::scalar::ScalarField;
use migbench_model::scenario::Accel;

/// One calibration pause and what the probe saw.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// Requested pause, ms.
    pub requested_ms: f64,
    /// True pause: midpoint of the `cont` exchange minus midpoint of the
    /// `stop` exchange (host clock), ms.
    pub true_pause_ms: f64,
    /// How long the `stop` and the `cont` exchanges took, ms: the true
    /// pause is known to within half of each.
    pub stop_exchange_ms: f64,
    /// See `stop_exchange_ms`.
    pub cont_exchange_ms: f64,
    /// Probe-measured outage, ms.
    pub measured_ms: Option<f64>,
    /// measured − true, ms.
    pub error_ms: Option<f64>,
    /// What the services saw of the pause (with `--service`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub services: Option<PauseSeen>,
}

/// What the services saw of one pause.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PauseSeen {
    /// ICMP echo outage, ms.
    pub icmp_ms: Option<f64>,
    /// The longest gap between stream chunks arriving, ms.
    pub stream_gap_ms: Option<f64>,
    /// Stall of a viewer with no buffer, ms.
    pub stream_stall_ms: Option<f64>,
    /// Segments the guest's stream socket retransmitted.
    pub stream_retransmits: Option<u64>,
    /// The slowest request sent during the pause, ms.
    pub rr_max_ms: Option<f64>,
    /// Segments the client's request socket retransmitted over the whole
    /// calibration (the socket's counter is read at the end).
    pub rr_retransmits: Option<u64>,
}

/// How long after a pause the services are watched for its effect (a
/// 1 s pause under TCP's doubling RTO can stall for twice that).
const AFTER_PAUSE: Duration = Duration::from_secs(3);

/// What to calibrate.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Probe interval.
    pub interval: Duration,
    /// Pause lengths.
    pub pauses: Vec<Duration>,
    /// Repetitions of each pause.
    pub repeat: u32,
    /// Services watched beside the UDP probe.
    pub services: Services,
}

/// Boot a guest in a lab of its own and run the pauses.
pub async fn calibrate(
    image: &GuestImage,
    accel: &str,
    plan: &Plan,
    cancel: &Cancel,
    probes_out: Option<&std::path::Path>,
) -> Result<Vec<Calibration>> {
    let Plan {
        interval,
        ref pauses,
        repeat,
        services,
    } = *plan;
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
        reserve: 0,
        vcpus: 1,
        accel: accel.into(),
    };
    let result = async {
        let (qemu, _agent) =
            boot_source(&spec, &net, run_dir.path(), run_dir.path(), cancel).await?;
        let qemu = crate::backend::qmp::QmpVm::connect(qemu).await?;
        let clock = Origin::now();
        let origin = clock.at;
        let params = RunParams {
            services,
            probe_interval: Dur(interval),
            ..RunParams::default()
        };
        let ip = match net.guest_echo().ip() {
            std::net::IpAddr::V4(ip) => ip,
            std::net::IpAddr::V6(_) => anyhow::bail!("the lab guest has no IPv4 address"),
        };
        let clients = ServiceClients::start(
            &params,
            &[Duration::ZERO],
            Some(net.client.clone()),
            ip,
            clock,
            cancel,
        )
        .await?;
        let prober = Prober::start(Some(&net.client), net.guest_echo(), interval, clock)
            .context("starting the prober")?;
        // A pause's effect on TCP outlasts it: leave room before the next.
        let between = if services.needs_agent() {
            AFTER_PAUSE
        } else {
            Duration::from_millis(500)
        };
        let ms = |t: Instant| t.duration_since(origin).as_secs_f64() * 1e3;
        let mut marks = Vec::new();
        let mut failure = None;
        'outer: for &pause in pauses {
            for _ in 0..repeat {
                if let Err(e) = sleep_or_cancel(between, cancel).await {
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
                let spans = (ms(b) - ms(a), ms(d) - ms(c));
                marks.push((pause, stop_mid, (ms(c) + ms(d)) / 2.0, spans));
            }
        }
        sleep_or_cancel(between, cancel).await.ok();
        let grace = Duration::from_millis(200);
        let (events, seen) = tokio::task::spawn_blocking(move || {
            std::thread::scope(|sc| {
                let s = sc.spawn(move || clients.finish(grace));
                (prober.finish(grace), s.join().unwrap_or_default())
            })
        })
        .await?;
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
            .map(|(req, s, c, (stop_span, cont_span))| {
                let measured = service_downtime_ms(&events, interval_ms, s, c);
                Calibration {
                    requested_ms: req.as_secs_f64() * 1e3,
                    true_pause_ms: c - s,
                    stop_exchange_ms: stop_span,
                    cont_exchange_ms: cont_span,
                    measured_ms: measured,
                    error_ms: measured.map(|m| m - (c - s)),
                    services: (services != Services::default())
                        .then(|| pause_seen(&seen, interval_ms, s, c)),
                }
            })
            .collect())
    }
    .await;
    net.teardown();
    result
}

/// What the services saw of the pause `[s, c]` ms.
fn pause_seen(seen: &ServiceSeries, interval_ms: f64, s: f64, c: f64) -> PauseSeen {
    let until = c + AFTER_PAUSE.as_secs_f64() * 1e3 - 500.0;
    let stream = seen.stream.as_ref().map(|r| {
        let near: Vec<StreamChunk> = r
            .chunks
            .iter()
            .filter(|k| k.recv_ms >= s - 500.0 && k.recv_ms <= until)
            .copied()
            .collect();
        let bitrate = near
            .first()
            .map_or(1.0, |k| k.bytes as f64 * 8.0 / CHUNK_INTERVAL.as_secs_f64());
        stream_summary(&near, bitrate, &[0.0], None)
    });
    PauseSeen {
        icmp_ms: seen
            .icmp
            .as_ref()
            .and_then(|e| service_downtime_ms(e, interval_ms, s, c)),
        stream_gap_ms: stream.as_ref().map(|x| x.longest_gap_ms),
        stream_stall_ms: stream
            .as_ref()
            .and_then(|x| x.tightest().map(|p| p.stall_ms)),
        stream_retransmits: stream.as_ref().map(|x| x.retransmits),
        rr_max_ms: seen.rr.as_ref().and_then(|r| {
            r.events
                .iter()
                .filter(|e| e.sent_ms >= s - 50.0 && e.sent_ms <= c)
                .map(|e| e.recv_ms.map_or(f64::INFINITY, |t| t - e.sent_ms))
                .reduce(f64::max)
        }),
        rr_retransmits: seen
            .rr
            .as_ref()
            .and_then(|r| r.retransmits.map(|t| u64::from(t.total))),
    }
}

/// Text table of calibration results.
pub fn render(rows: &[Calibration]) -> String {
    let with = rows.iter().any(|r| r.services.is_some());
    let mut s = format!(
        "{:>10} {:>10} {:>10} {:>9}",
        "requested", "true ms", "probe ms", "error ms"
    );
    if with {
        s.push_str(&format!(
            " {:>8} {:>10} {:>10} {:>8} {:>10}",
            "icmp ms", "stream gap", "stall ms", "retrans", "rr max ms"
        ));
    }
    s.push('\n');
    let f = |v: Option<f64>| v.map(|x| format!("{x:.2}")).unwrap_or_else(|| "-".into());
    for r in rows {
        s.push_str(&format!(
            "{:>10.0} {:>10.2} {:>10} {:>9}",
            r.requested_ms,
            r.true_pause_ms,
            f(r.measured_ms),
            f(r.error_ms)
        ));
        if let Some(v) = &r.services {
            s.push_str(&format!(
                " {:>8} {:>10} {:>10} {:>8} {:>10}",
                f(v.icmp_ms),
                f(v.stream_gap_ms),
                f(v.stream_stall_ms),
                v.stream_retransmits
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "-".into()),
                f(v.rr_max_ms)
            ));
        }
        s.push('\n');
    }
    s
}

/// `migbench calibrate`.
pub fn command(
    rt: &tokio::runtime::Runtime,
    cancel: &Cancel,
    args: crate::cli::CalibrateArgs,
) -> Result<i32> {
    let crate::cli::CalibrateArgs {
        pauses,
        interval,
        repeat,
        service,
        accel: accel_s,
        agent,
        json,
        allow_concurrent,
    } = args;
    let services = migbench_model::settings::Services::parse_str(&service)
        .map_err(|e| UsageError(format!("--service {service}: {e}")))?;
    let (pauses, interval, accel_s) = (&pauses, &interval, accel_s.as_str());
    let interval = parse_dur("--interval", interval)?;
    if !(Duration::from_micros(100)..=Duration::from_millis(100)).contains(&interval) {
        bail!(UsageError("--interval must be within 0.1ms – 100ms".into()));
    }
    let pauses = pauses
        .iter()
        .map(|p| parse_dur("--pauses", p))
        .collect::<Result<Vec<_>>>()?;
    let accel_choice = match accel_s {
        "auto" => Accel::Auto,
        "kvm" => Accel::Kvm,
        "tcg" => Accel::Tcg,
        other => bail!(UsageError(format!(
            "--accel {other}: expected auto, kvm or tcg"
        ))),
    };
    preflight()?;
    let _lock = crate::lock::for_measuring(allow_concurrent)?;
    let display = Display::new();
    sweep(&display);
    let img = guest_image(agent.as_deref(), &display)?;
    let accel = rt.block_on(accel::resolve(accel_choice, &img));
    let probes_out = json.as_ref().map(|j| j.with_extension("probes.csv"));
    let plan = Plan {
        interval,
        pauses,
        repeat,
        services,
    };
    let rows = rt.block_on(calibrate(
        &img,
        &accel,
        &plan,
        cancel,
        probes_out.as_deref(),
    ))?;
    println!(
        "probe interval {} ms, accelerator {accel}",
        interval.as_secs_f64() * 1e3
    );
    print!("{}", render(&rows));
    if let Some(path) = json {
        crate::recorder::write_json(&path, &rows)?;
    }
    Ok(0)
}
