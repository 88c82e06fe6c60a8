//! The model, fitted on every fixture, against configurations it has
//! never been fitted on (`fixtures/model/holdout/`: each within the
//! issue's targets) and the cells it misses (`fixtures/model/misses/`:
//! held as the docs state them).

mod model_fixtures;

use migbench_model::RunRecord;
use migbench_predict::accuracy::check;
use migbench_predict::Constants;
use model_fixtures::{cell, fitted, load, medians, print_row, range};

/// Configurations no fixture has (the issue's own: a 512 MiB guest over
/// 200 Mbit with a 200 ms limit, idle and 3 MB/s, with a working set of a
/// quarter of RAM as every fitted fixture has, and with the default
/// 64 MiB; a 384 MiB guest over 150 Mbit with a 250 ms limit, idle
/// and 2 MB/s; a 640 MiB guest over 400 Mbit with a 150 ms limit, idle
/// and 2 MB/s; a 576 MiB guest over 300 Mbit with a 200 ms limit, idle
/// and 4 MB/s, and a 704 MiB guest over 350 Mbit with a 180 ms limit,
/// idle and 3 MB/s, both run after the re-sync; a 448 MiB guest over
/// 180 Mbit with a 220 ms limit, idle and 3 MB/s, run after the top of
/// RAM's slope and predicted first; a 512 MiB guest over 200 Mbit capped
/// at 8 MB/s with a 300 ms limit, idle and 1 MB/s, run after the socket
/// and predicted first (`check10`: 10 and 19 ms predicted by the first
/// form of the socket, 4 and 4 by the shipped one, 23 and 29 measured);
/// an 832 MiB guest over 160 Mbit with a 250 ms limit, idle and 4 MB/s
/// with the default working set, run after the first check's place was
/// averaged over its span and predicted first (`check11`: 153 and
/// 185 ms, 140 and 148 measured); a 672 MiB guest over 250 Mbit with a
/// 220 ms limit, idle and 3 MB/s over a quarter of its RAM, predicted
/// first the same way (`check12`: 132 and 167 ms, 152 and 192
/// measured); three runs each),
/// run here and never fitted on: each cell's median within the issue's
/// targets (total time 10 %, downtime 50 ms or 25 %) but the one the
/// docs name: none. Since capped runs' last pages leave at the link's
/// rate (tenth session) the busy 512 MiB cell with a 128 MiB
/// working set had missed (125 ms measured, 183 predicted); with the
/// first check taken anywhere in its span (eleventh session) it meets.
/// Every total time meets its target.
#[test]
fn configurations_never_fitted_on_meet_the_targets() {
    const MISSES: [(&str, f64, f64); 0] = [];
    let c = fitted().constants;
    let held = load("holdout");
    assert_eq!(held.len(), 60);
    let mut cells: Vec<String> = held.iter().map(cell).collect();
    cells.sort();
    cells.dedup();
    // The README's "21 of 24": these 20, and the misses' one that meets.
    assert_eq!(cells.len(), 20);
    let mut missed = Vec::new();
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
        if (pd - down).abs() > (0.25 * down).max(50.0) {
            missed.push((name, down, pd));
        }
    }
    // check10, check11 and check12, quoted with their ranges: (dirty rate,
    // measured total s and downtime ms with the downtime's range,
    // predicted total s and ms). check10's by the shipped fit (its file
    // holds what the first form of the socket predicted before it ran),
    // check11's and check12's as their files were written before they
    // ran (`migbench predict`: the shipped constants, rounded).
    let eight = |r: &&RunRecord| r.params.max_bandwidth.to_string() == "8MB/s";
    let check10 = [
        (0, 27.6, 23.0, 7.0, 24.0, 27.4, 3.6),
        (1_000_000, 31.5, 29.0, 21.0, 41.0, 31.3, 3.6),
    ];
    as_stated(&held, "check10", &eight, &check10, &c);
    let big = |r: &&RunRecord| r.params.ram.0 == 832 << 20;
    let check11 = [
        (0, 8.7, 140.0, 110.0, 176.0, 9.1, 153.0),
        (4_000_000, 11.0, 148.0, 133.0, 192.0, 11.2, 185.0),
    ];
    as_stated(&held, "check11", &big, &check11, &Constants::LAB);
    let quarter = |r: &&RunRecord| r.params.ram.0 == 672 << 20;
    let check12 = [
        (0, 9.3, 152.0, 98.0, 165.0, 9.4, 132.0),
        (3_000_000, 10.4, 192.0, 102.0, 194.0, 10.3, 167.0),
    ];
    as_stated(&held, "check12", &quarter, &check12, &Constants::LAB);
    assert_eq!(missed.len(), MISSES.len(), "{missed:?}");
    for ((name, down, pd), (stated, down_ms, pd_ms)) in missed.iter().zip(MISSES) {
        assert_eq!(name, stated);
        assert!((down - down_ms).abs() < 0.5, "{name}: measured {down}");
        assert!((pd - pd_ms).abs() <= 5.0, "{name}: predicted {pd}");
    }
}

/// Configurations never fitted on that the model misses, each cell as
/// (RAM MiB, dirty rate MB/s, measured median total ms and downtime ms,
/// predicted total ms and downtime ms, whether the total time and the
/// downtime meet the targets): the docs state these figures,
/// and a change of the model that moves them fails here until the docs
/// say so (a fix moves the check to holdout/).
///
/// - `check5` (an 896 MiB guest over 250 Mbit, a 250 ms limit; run after
///   the re-sync, then six more runs per cell in `check5-again`): the
///   busy cell's downtime, 153 ms of nine (105–207) measured, 212
///   predicted (242 before the eleventh session). The idle cell (139 ms
///   of nine, 57–204, predicted 162) and both total times meet the
///   targets.
/// - `check9` (a 960 MiB guest over 600 Mbit, a 350 ms limit; run after
///   the top of RAM's slope, predicted before): both total times, 2.6
///   and 2.8 s measured, 3.0 and 3.1 predicted, 16 % and 12 % off of
///   the measured (QEMU's setup took
///   0.27–0.40 s, the model's line through the fixtures says 0.74). The
///   downtimes meet their targets: idle 289 ms measured (264–295), 220
///   predicted (199, a miss, before the eleventh session); busy 313 ms
///   (309–321), 284 predicted.
type Miss = (u64, u64, f64, f64, f64, f64, bool, bool);
const MISSES: [Miss; 4] = [
    (896, 0, 5987.0, 139.0, 6149.0, 162.0, true, true),
    (896, 5, 7052.0, 153.0, 7142.0, 212.0, true, false),
    (960, 0, 2624.0, 289.0, 3045.0, 220.0, false, true),
    (960, 4, 2780.0, 313.0, 3109.0, 284.0, false, true),
];

#[test]
fn the_documented_misses_are_what_the_docs_say() {
    let c = fitted().constants;
    let runs = load("misses");
    assert_eq!(runs.len(), 24);
    for (ram, rate, total_ms, down_ms, pred_total_ms, pred_down_ms, time_meets, down_meets) in
        MISSES
    {
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
        let off_pct = (pt - total).abs() / total * 100.0;
        println!("{what}: total time {off_pct:.1} % off");
        assert_eq!(off_pct <= 10.0, time_meets, "{what}: total time");
        assert_eq!(
            (pd - down).abs() <= (0.25 * down).max(50.0),
            down_meets,
            "{what}: downtime"
        );
    }
}

/// A check's cell as its docs state it: (dirty rate, measured median
/// total s, downtime ms and the downtime's range, predicted total s and
/// downtime ms).
type Stated = (u64, f64, f64, f64, f64, f64, f64);

/// Each of a check's `cells` as stated, the prediction by `c`: three
/// runs of `held` that `pick` takes.
fn as_stated(
    held: &[RunRecord],
    name: &str,
    pick: &dyn Fn(&&RunRecord) -> bool,
    cells: &[Stated],
    c: &Constants,
) {
    for &(rate, total_s, down, lo, hi, pt_s, pd_ms) in cells {
        let runs: Vec<&RunRecord> = held
            .iter()
            .filter(pick)
            .filter(|r| r.params.dirty_rate.0 == rate)
            .collect();
        assert_eq!(runs.len(), 3, "{name} {rate}");
        let (t, d) = medians(&runs);
        let downs: Vec<f64> = runs.iter().filter_map(|r| r.downtime_qemu_ms).collect();
        assert_eq!((d, range(&downs)), (down, (lo, hi)), "{name} {rate}");
        assert!((t / 1e3 - total_s).abs() < 0.05, "{name} {rate}: {t}");
        let p = check(&runs, c)[0].predicted;
        assert!((p.total_time_ms / 1e3 - pt_s).abs() < 0.05, "{name}: {p:?}");
        assert!(
            (p.downtime_ms.unwrap() - pd_ms).abs() < 0.5,
            "{name}: {p:?}"
        );
    }
}
