//! Record assembly on real runs: every run of the checked-in results
//! (`fixtures/golden/`, recorded by the lab) is rebuilt from its raw
//! directory alone — timeline, progress, probes, workload — by the pure
//! [`assemble`], and must equal the line `runs.jsonl` holds for it.

use std::path::Path;

use migbench::migrate::record::{assemble, Measured, Timeline, Verdict};
use migbench::migrate::services::ServiceSeries;
use migbench_model::{ProgressSample, RunRecord, WorkloadSample};
use serde_json::Value;

fn jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Equal JSON: integers exactly, other numbers within 0.002 + 0.2 %
/// (probes.csv keeps times to 0.1 µs, which can move an RTT percentile
/// into the next bucket of the 3-significant-digit histogram, and
/// serde_json's float parsing is not exact to the last bit).
fn same(a: &Value, b: &Value, at: &str) -> Result<(), String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) if !(x.is_f64() || y.is_f64()) => {
            (x == y).then_some(()).ok_or(format!("{at}: {x} != {y}"))
        }
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            if (x - y).abs() <= 2e-3 + 2e-3 * x.abs().max(y.abs()) {
                Ok(())
            } else {
                Err(format!("{at}: {x} != {y}"))
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            if x.len() != y.len() {
                return Err(format!("{at}: fields differ"));
            }
            for (k, v) in x {
                let w = y.get(k).ok_or_else(|| format!("{at}.{k}: missing"))?;
                same(v, w, &format!("{at}.{k}"))?;
            }
            Ok(())
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .try_for_each(|(i, (v, w))| same(v, w, &format!("{at}[{i}]"))),
        _ if a == b => Ok(()),
        _ => Err(format!("{at}: {a} != {b}")),
    }
}

/// `want`'s record assembled anew from its raw directory `raw`.
fn rebuild(raw: &Path, want: &RunRecord) -> RunRecord {
    let timeline: Timeline =
        serde_json::from_str(&std::fs::read_to_string(raw.join("timeline.json")).unwrap()).unwrap();
    let samples: Vec<ProgressSample> = jsonl(&raw.join("progress.jsonl"));
    let workload: Vec<WorkloadSample> = jsonl(&raw.join("workload.jsonl"));
    let probes = migbench_model::record::read_probes_csv(
        &std::fs::read_to_string(raw.join("probes.csv")).unwrap(),
    )
    .unwrap();
    let services = ServiceSeries::read(raw).unwrap();
    let measured = Measured {
        timeline: &timeline,
        samples: &samples,
        probes: &probes,
        workload: &workload,
        verdict: Some(Verdict {
            memory: want.integrity,
            disk: want.disk_integrity,
        }),
        services: &services,
        buffers: &[],
    };
    assemble(&want.params, &want.accel, measured)
}

#[test]
fn every_recorded_run_is_rebuilt_from_its_raw_series() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/golden/results");
    let recs: Vec<RunRecord> = jsonl(&dir.join("runs.jsonl"));
    assert!(recs.len() >= 4);
    for want in &recs {
        let got = rebuild(&dir.join("runs").join(&want.run_id), want);
        let (got_v, want_v) = (
            serde_json::to_value(&got).unwrap(),
            serde_json::to_value(want).unwrap(),
        );
        if let Err(at) = same(&got_v, &want_v, "") {
            panic!("{}: {at}\nrebuilt {got_v}\nrecorded {want_v}", want.run_id);
        }
        // The derived fields are really derived: a probe outage shows.
        assert!(got.downtime_probe_ms.is_some(), "{}", want.run_id);
        assert!(got.passes.unwrap() >= 1);
    }
}

/// A libvirt run's switchover outage is the reply gap that began before
/// libvirt's own clock ended the migration (`fixtures/golden-libvirt`):
/// its call returned 1.4 s later, after the destination resumed the
/// guest, and the last gap before that return was 9 ms long; the
/// switchover's gap (23569 → 24039 ms) is 470 ms, as the probe's
/// longest gap said.
#[test]
fn a_libvirt_runs_switchover_outage_is_the_gap_before_libvirts_own_end() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/golden-libvirt");
    let recs: Vec<RunRecord> = jsonl(&dir.join("runs.jsonl"));
    let want = &recs[0];
    assert_eq!(want.params.backend.to_string(), "libvirt");
    let got = rebuild(&dir.join("run-0000"), want);
    let gap = 24039.4312 - 23569.0106 - 0.5;
    let switchover = got.switchover_probe_ms.unwrap();
    assert!((switchover - gap).abs() < 0.01, "{switchover} ms");
    // As the probe's longest gap said when the run was recorded (the
    // probes kept here skip 0.5-20 s, so it is not rebuilt).
    assert!((want.downtime_probe_ms.unwrap() - gap).abs() < 0.01);
    // libvirt's own downtime (413 ms) lies within it.
    assert!(got.downtime_libvirt_ms.unwrap() <= switchover);
}
