//! The model, fitted on every fixture, against configurations it has
//! never been fitted on (`fixtures/model/holdout/`: each within the
//! issue's targets), the cells it misses (`fixtures/model/misses/`:
//! held as the docs state them) and what explains check9's miss
//! (`fixtures/model/setup/`).

mod model_fixtures;

use migbench_model::RunRecord;
use migbench_predict::accuracy::check;
use model_fixtures::{cell, fitted, load, medians, print_row};

/// Configurations no fixture has (the issue's own: a 512 MiB guest over
/// 200 Mbit with a 200 ms limit, idle and 3 MB/s, with a working set of a
/// quarter of RAM as every fitted fixture has, and with the default
/// 64 MiB; a 384 MiB guest over 150 Mbit with a 250 ms limit, idle
/// and 2 MB/s; a 640 MiB guest over 400 Mbit with a 150 ms limit, idle
/// and 2 MB/s; a 576 MiB guest over 300 Mbit with a 200 ms limit, idle
/// and 4 MB/s, and a 704 MiB guest over 350 Mbit with a 180 ms limit,
/// idle and 3 MB/s, both run after the re-sync; a 448 MiB guest over
/// 180 Mbit with a 220 ms limit, idle and 3 MB/s, run after the top of
/// RAM's slope and predicted first; three runs each),
/// run here and never fitted on: each cell's median within the issue's
/// targets (total time 10 %, downtime 50 ms or 25 %).
#[test]
fn configurations_never_fitted_on_are_predicted_within_the_targets() {
    let c = fitted().constants;
    let held = load("holdout");
    assert_eq!(held.len(), 42);
    let mut cells: Vec<String> = held.iter().map(cell).collect();
    cells.sort();
    cells.dedup();
    for name in cells {
        let runs: Vec<&RunRecord> = held.iter().filter(|r| cell(r) == name).collect();
        let checked = check(&runs, &c);
        for k in &checked {
            print_row(k);
        }
        let p = checked[0].predicted;
        let (total, down) = medians(&runs);
        let pd = p.downtime_ms.unwrap();
        println!(
            "{name}: total {:.1} s predicted {:.1} s; downtime {down:.0} ms predicted {pd:.0} ms",
            total / 1e3,
            p.total_time_ms / 1e3
        );
        assert!(
            (p.total_time_ms - total).abs() <= 0.10 * total,
            "{name}: total {total} predicted {}",
            p.total_time_ms
        );
        assert!(
            (pd - down).abs() <= (0.25 * down).max(50.0),
            "{name}: downtime {down} predicted {pd}"
        );
    }
}

/// Configurations never fitted on that the model misses, each cell as
/// (RAM MiB, dirty rate MB/s, measured median total ms and downtime ms,
/// predicted total ms and downtime ms): the docs state these figures,
/// and a change of the model that moves them fails here until the docs
/// say so (a fix moves the check to holdout/).
///
/// - `check5` (an 896 MiB guest over 250 Mbit, a 250 ms limit; run after
///   the re-sync, then six more runs per cell in `check5-again`): the
///   busy cell's downtime, 153 ms of nine (105–207) measured, 238
///   predicted. The idle cell (139 ms of nine, 57–204, predicted 161)
///   and both total times meet the targets.
/// - `check9` (a 960 MiB guest over 600 Mbit, a 350 ms limit; run after
///   the top of RAM's slope, predicted before): both total times, 2.6
///   and 2.8 s measured, 3.0 and 3.1 predicted (QEMU's setup took
///   0.27–0.40 s, the model's line through the fixtures says 0.74), and
///   the idle cell's downtime, 289 ms measured (264–295), 199 predicted.
///   The busy cell's downtime (313 ms, 309–321; 263 predicted) meets its
///   target.
const MISSES: [(u64, u64, f64, f64, f64, f64); 4] = [
    (896, 0, 5987.0, 139.0, 6153.0, 161.0),
    (896, 5, 7052.0, 153.0, 7141.0, 238.0),
    (960, 0, 2624.0, 289.0, 3049.0, 199.0),
    (960, 4, 2780.0, 313.0, 3113.0, 263.0),
];

#[test]
fn the_documented_misses_are_what_the_docs_say() {
    let c = fitted().constants;
    let runs = load("misses");
    assert_eq!(runs.len(), 24);
    let mut missed = 0;
    for (ram, rate, total_ms, down_ms, pred_total_ms, pred_down_ms) in MISSES {
        let cell: Vec<&RunRecord> = runs
            .iter()
            .filter(|r| r.params.ram.0 == ram << 20 && r.params.dirty_rate.0 == rate * 1_000_000)
            .collect();
        let p = check(&cell, &c)[0].predicted;
        let (total, down) = medians(&cell);
        let pd = p.downtime_ms.unwrap();
        let pt = p.total_time_ms;
        println!("{ram} MiB {rate} MB/s: downtime {down:.0} ms predicted {pd:.0} ms; total {total:.0} ms predicted {pt:.0} ms");
        let what = format!("{ram} MiB, {rate} MB/s");
        assert!((down - down_ms).abs() < 0.5, "{what}: measured {down}");
        assert!((total - total_ms).abs() < 0.5, "{what}: measured {total}");
        assert!((pd - pred_down_ms).abs() <= 5.0, "{what}: predicted {pd}");
        assert!((pt - pred_total_ms).abs() <= 50.0, "{what}: predicted {pt}");
        let meets =
            (pd - down).abs() <= (0.25 * down).max(50.0) && (pt - total).abs() <= 0.10 * total;
        missed += usize::from(!meets);
    }
    // Each check holds at least one miss, and not every cell is one.
    assert_eq!(missed, 3);
}

/// What check9's total time missed on (`fixtures/model/setup/`, run after
/// it): QEMU's setup is no line in RAM. Snapshot-started idle guests took
/// 0.27–0.40 s at 896, 992 and 1056 MiB but 0.49–0.50 s at exactly
/// 1 GiB (and 0.51–0.68 s at 1152 MiB); check9's 960 MiB guest, booted
/// for each run instead of started from one saved state, took 0.50–0.88 s
/// where its restored runs took 0.27–0.29 s. The model's line through
/// the fixtures' medians says 0.74 s at 960 MiB.
#[test]
fn a_1_gib_guest_and_a_booted_guest_take_longer_to_set_up_as_the_docs_say() {
    let setup = |runs: &[RunRecord], mib: u64| -> Vec<f64> {
        runs.iter()
            .filter(|r| r.params.ram.0 == mib << 20 && r.params.dirty_rate.0 == 0)
            .filter_map(|r| r.qemu_setup_time_ms)
            .collect()
    };
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    };
    let scan = load("setup");
    let near: Vec<f64> = [896, 992, 1056]
        .iter()
        .flat_map(|&m| setup(&scan, m))
        .collect();
    let gib = setup(&scan, 1024);
    let (near_lo, near_hi) = range(&near);
    let (gib_lo, gib_hi) = range(&gib);
    println!("setup ms: 896-1056 MiB {near_lo}-{near_hi}, 1 GiB {gib_lo}-{gib_hi}");
    assert_eq!((near.len(), gib.len()), (6, 2));
    assert!(gib_lo > near_hi, "1 GiB {gib:?} against {near:?}");
    assert_eq!(
        (near_lo, near_hi, gib_lo, gib_hi),
        (269.0, 397.0, 490.0, 495.0)
    );
    // check9's idle cell: booted (in setup/) against restored (misses/).
    let booted = setup(&scan, 960);
    let restored = setup(&load("misses"), 960);
    let (b_lo, b_hi) = range(&booted);
    let (r_lo, r_hi) = range(&restored);
    println!("960 MiB setup ms: booted {b_lo}-{b_hi}, restored {r_lo}-{r_hi}");
    assert_eq!((booted.len(), restored.len()), (6, 3));
    assert!(b_lo > r_hi, "booted {booted:?} restored {restored:?}");
    assert_eq!((b_lo, b_hi, r_lo, r_hi), (495.0, 876.0, 268.0, 285.0));
    let c = fitted().constants;
    let line = c.setup_ms + c.setup_ms_per_gib * 960.0 / 1024.0;
    assert!((line - 740.0).abs() < 10.0, "{line}");
}
