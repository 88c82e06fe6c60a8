//! The model, fitted on every fixture, against configurations it has
//! never been fitted on (`fixtures/model/holdout/`: each within the
//! issue's targets) and the one it misses (`fixtures/model/misses/`:
//! held as the docs state it).

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
/// idle and 3 MB/s, both run after the model's last change; three runs
/// each),
/// run here and never fitted on: each cell's median within the issue's
/// targets (total time 10 %, downtime 50 ms or 25 %).
#[test]
fn configurations_never_fitted_on_are_predicted_within_the_targets() {
    let c = fitted().constants;
    let held = load("holdout");
    assert_eq!(held.len(), 36);
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

/// A configuration never fitted on whose downtime the model misses
/// (`fixtures/model/misses/check5`: an 896 MiB guest over 250 Mbit, a
/// 250 ms limit, 5 MB/s; run after the model's last change, then six
/// more runs per cell in `check5-again`): measured median 153 ms of nine
/// (105–207), predicted 238 ms, beyond the 50 ms or 25 %; the
/// idle cell (139 ms of nine, 57–204, predicted 161) and both total
/// times meet the targets. The docs state these figures; a change of the
/// model that moves them fails here until the docs say so (and a fix
/// moves the check to holdout/).
#[test]
fn the_documented_miss_is_what_the_docs_say() {
    let c = fitted().constants;
    let runs = load("misses");
    assert_eq!(runs.len(), 18);
    // (dirty rate MB/s, measured median ms, predicted ms, meets the target)
    for (rate, measured, predicted, meets) in [(0, 139.0, 161.0, true), (5, 153.0, 238.0, false)] {
        let cell: Vec<&RunRecord> = runs
            .iter()
            .filter(|r| r.params.dirty_rate.0 == rate * 1_000_000)
            .collect();
        let p = check(&cell, &c)[0].predicted;
        let (total, down) = medians(&cell);
        let pd = p.downtime_ms.unwrap();
        println!("{rate} MB/s: downtime {down:.0} ms predicted {pd:.0} ms; total {total:.0} ms predicted {:.0} ms", p.total_time_ms);
        assert!(
            (down - measured).abs() < 0.5,
            "{rate} MB/s: measured {down}"
        );
        assert!((pd - predicted).abs() <= 5.0, "{rate} MB/s: predicted {pd}");
        assert_eq!(
            (pd - down).abs() <= (0.25 * down).max(50.0),
            meets,
            "{rate} MB/s"
        );
        assert!((p.total_time_ms - total).abs() <= 0.10 * total);
    }
}
