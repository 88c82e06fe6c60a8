//! What a bandwidth cap below the link does to QEMU's downtime
//! (`fixtures/model/bandwidth.jsonl` and its re-run in `refit/`): QEMU
//! sends the last pages regardless of the cap, and its downtime ends once
//! they are written to the socket, which a capped stream likely left drained.

mod model_fixtures;

use migbench_model::RunRecord;
use migbench_predict::accuracy::check;
use migbench_predict::Constants;
use model_fixtures::{fixtures, load};

/// The bandwidth fixture's completed runs among `days` (256 MiB, 1 MB/s,
/// 100 Mbit).
fn completed<'a>(days: &[&'a [RunRecord]]) -> Vec<&'a RunRecord> {
    days.iter()
        .flat_map(|runs| runs.iter())
        .filter(|r| {
            r.params.ram.0 == 256 << 20
                && r.params.dirty_rate.0 == 1_000_000
                && r.params.link_rate.0 == 100_000_000
                && r.outcome == migbench_model::Outcome::Completed
        })
        .collect()
}

/// A run's bandwidth cap, bytes/s (`None`: none).
fn cap(r: &RunRecord) -> Option<f64> {
    migbench_predict::Inputs::of(&r.params).max_bandwidth
}

/// The bandwidth fixture's capped runs (256 MiB, 1 MB/s, 100 Mbit,
/// 300 ms limit), on both days, as (cap MB/s, QEMU's downtime ms, the
/// probe's outage ms): QEMU reported 27 and 3 ms under a 5 MB/s cap
/// (the probe 141 and 135 ms), 102 and 134 ms under 10 MB/s (287 and
/// 274), and 198–250 ms with a cap at or above the link or none (20,
/// 50 MB/s; uncapped 221 and 249, the probe 411 and 418). The shipped
/// model, whose socket takes 3.25 MB (all of it at half the link or less,
/// a third of it at 10 MB/s on this 12 MB/s link), predicts 4 and
/// 105 ms for the 5 and 10 MB/s caps: fitted on these very runs, so in
/// sample. It predicts QEMU's figure: the probe saw every completed run
/// of the fixture, capped or not, gone 105–243 ms longer.
#[test]
fn qemus_downtime_under_a_cap_below_the_link_and_the_probes_outage_are_as_the_guide_says() {
    assert_eq!(Constants::LAB.socket_bytes, 3.25e6);
    let (fix, again) = (fixtures(), load("refit"));
    for (cap_mbs, qemu, probe, predicted) in [
        (5.0, [27.0, 3.0], [141.0, 135.0], 4.0),
        (10.0, [102.0, 134.0], [287.0, 274.0], 105.0),
    ] {
        for (k, runs) in [&fix, &again].into_iter().enumerate() {
            let r: Vec<&RunRecord> = completed(&[runs])
                .into_iter()
                .filter(|r| cap(r) == Some(cap_mbs * 1e6))
                .collect();
            assert_eq!(r.len(), 1, "{cap_mbs} MB/s");
            let r = r[0];
            let q = r.downtime_qemu_ms.unwrap();
            let p = r.downtime_probe_ms.unwrap();
            println!("{cap_mbs} MB/s, day {k}: QEMU {q} ms, probe {p:.0} ms");
            assert_eq!(q, qemu[k], "{cap_mbs} MB/s");
            assert!((p - probe[k]).abs() < 0.5, "{cap_mbs} MB/s: probe {p}");
            let pd = check(&[r], &Constants::LAB)[0]
                .predicted
                .downtime_ms
                .unwrap();
            println!("  predicted {pd:.1} ms");
            assert!(
                (pd - predicted).abs() < 0.5,
                "{cap_mbs} MB/s: predicted {pd}"
            );
        }
    }
    // The probe's outage beyond QEMU's figure, every completed run of
    // the fixture on both days, capped or not.
    let both = completed(&[&fix, &again]);
    let gaps: Vec<f64> = both
        .iter()
        .map(|r| r.downtime_probe_ms.unwrap() - r.downtime_qemu_ms.unwrap())
        .collect();
    let (lo, hi) = model_fixtures::range(&gaps);
    println!(
        "probe beyond QEMU: {lo:.0}-{hi:.0} ms over {} runs",
        gaps.len()
    );
    assert_eq!(gaps.len(), 10);
    assert!(
        (lo - 105.0).abs() < 0.5 && (hi - 243.0).abs() < 0.5,
        "{gaps:?}"
    );
    // At or above the link, or uncapped: QEMU's downtime alike.
    let at_link: Vec<f64> = both
        .iter()
        .filter(|r| cap(r).is_none_or(|b| b >= 20e6))
        .map(|r| r.downtime_qemu_ms.unwrap())
        .collect();
    assert_eq!(at_link.len(), 6);
    assert_eq!(model_fixtures::range(&at_link), (198.0, 250.0));
    let uncapped: Vec<(f64, f64)> = both
        .iter()
        .filter(|r| cap(r).is_none())
        .map(|r| (r.downtime_qemu_ms.unwrap(), r.downtime_probe_ms.unwrap()))
        .collect();
    assert_eq!(uncapped.len(), 2);
    for ((q, p), (sq, sp)) in uncapped.iter().zip([(221.0, 411.6), (249.0, 417.8)]) {
        assert_eq!(*q, sq);
        assert!((p - sp).abs() < 0.05, "{p}");
    }
}
