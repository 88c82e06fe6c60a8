//! What moves between days: `fixtures/model/ram768.jsonl` (the fixtures'
//! day, 2026-12-05), its re-run (`refit/`) and the same scenario beside
//! a load on the host (`contention/`).

mod model_fixtures;

use migbench_model::RunRecord;
use model_fixtures::{load, range};

/// QEMU's setup, ms, over all of a file's runs, and its idle runs'
/// downtimes with the 300 ms limit, sorted.
fn setups_and_idle_pauses(runs: &[RunRecord]) -> ((f64, f64), Vec<f64>) {
    let setups: Vec<f64> = runs.iter().filter_map(|r| r.qemu_setup_time_ms).collect();
    let mut pauses: Vec<f64> = runs
        .iter()
        .filter(|r| r.params.dirty_rate.0 == 0 && r.params.downtime_limit.ms() == 300.0)
        .filter_map(|r| r.downtime_qemu_ms)
        .collect();
    pauses.sort_by(f64::total_cmp);
    (range(&setups), pauses)
}

/// Host load lengthens QEMU's setup of the 768 MiB guest but does not
/// make the fixtures' day: one busy loop 191–210 ms (idle pauses at
/// 300 ms: 238 and 269), two 239–390 ms (171, 178), a cargo build
/// 265–446 ms (191, 194); the re-run, unloaded, 188–299 ms (196, 261);
/// the fixtures' day 312–1046 ms with pauses of 53 and 134 ms, which no
/// load here reproduced. The cause of that day's figures is not known.
#[test]
fn host_load_lengthens_setup_but_does_not_reproduce_the_fixtures_day() {
    // The 768 MiB runs of a fixture directory: its ram768 runs.
    let ram768 = |dir: &str| -> Vec<RunRecord> {
        load(dir)
            .into_iter()
            .filter(|r| r.params.ram.0 == 768 << 20)
            .collect()
    };
    let one = |name: &str| -> Vec<RunRecord> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/model/contention")
            .join(name);
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    type Day = ((f64, f64), [f64; 2]);
    let cases: [(&str, Vec<RunRecord>, Day); 5] = [
        (
            "one busy loop",
            one("one-busy-loop.jsonl"),
            ((191.0, 210.0), [238.0, 269.0]),
        ),
        (
            "two busy loops",
            one("two-busy-loops.jsonl"),
            ((239.0, 390.0), [171.0, 178.0]),
        ),
        (
            "a cargo build",
            one("cargo-build.jsonl"),
            ((265.0, 446.0), [191.0, 194.0]),
        ),
        (
            "the re-run",
            ram768("refit"),
            ((188.0, 299.0), [196.0, 261.0]),
        ),
        (
            "the fixtures' day",
            ram768(""),
            ((312.0, 1046.0), [53.0, 134.0]),
        ),
    ];
    for (what, runs, (setup, pauses)) in cases {
        assert_eq!(runs.len(), 8, "{what}");
        let (s, p) = setups_and_idle_pauses(&runs);
        println!("{what}: setup {s:?} ms, idle pauses at 300 ms {p:?}");
        assert_eq!((s, p.as_slice()), (setup, &pauses[..]), "{what}");
    }
}
