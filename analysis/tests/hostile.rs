//! Hostile `runs.jsonl`: truncated, corrupt, unknown-field and reordered
//! lines never panic the loader; every line is either a record or a
//! warning that names the file and its line, and no intact record is lost.

mod common;
use common::{copy_dir, golden};
use std::path::Path;

use migbench_analysis::load::parse_runs;
use migbench_model::RunRecord;
use proptest::prelude::*;

fn record(i: usize) -> String {
    let mut p = migbench_model::matrix::sample_run("");
    p.index = i;
    serde_json::to_string(&RunRecord::pending(&p, i as f64, "tcg")).unwrap()
}

/// What can happen to one line.
#[derive(Debug, Clone)]
enum Harm {
    Intact,
    Truncate(usize),
    Garbage(String),
    UnknownField,
    FlipByte(usize),
}

fn harm() -> impl Strategy<Value = Harm> {
    prop_oneof![
        4 => Just(Harm::Intact),
        1 => (0usize..2000).prop_map(Harm::Truncate),
        1 => "\\PC{0,80}".prop_map(Harm::Garbage),
        1 => Just(Harm::UnknownField),
        1 => (0usize..2000).prop_map(Harm::FlipByte),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_line_is_a_record_or_a_warning_naming_it(
        harms in proptest::collection::vec(harm(), 1..12),
        order in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        newline_at_end in any::<bool>(),
    ) {
        let mut lines: Vec<(String, bool)> = harms
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let r = record(i);
                match h {
                    Harm::Intact => (r, true),
                    Harm::Truncate(n) => {
                        let cut = r.char_indices().map(|(i, _)| i).nth(n % r.len()).unwrap_or(0);
                        (r[..cut].to_string(), false)
                    }
                    Harm::Garbage(g) => (g.replace('\n', " "), false),
                    // Unknown fields are tolerated: newer writers add fields.
                    Harm::UnknownField => (r.replacen('{', "{\"from_the_future\":[1,2],", 1), true),
                    Harm::FlipByte(n) => {
                        let mut b = r.into_bytes();
                        let k = n % b.len();
                        b[k] = b'#';
                        (String::from_utf8_lossy(&b).into_owned(), false)
                    }
                }
            })
            .collect();
        // Reorder: runs.jsonl is in finishing order, not matrix order.
        let n = lines.len();
        for (k, idx) in order.iter().enumerate() {
            lines.swap(k % n, idx.index(n));
        }
        let mut text = lines.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join("\n");
        if newline_at_end {
            text.push('\n');
        }
        let (recs, warns) = parse_runs(Path::new("r/runs.jsonl"), &text);
        let nonblank = text.lines().filter(|l| !l.trim().is_empty()).count();
        prop_assert_eq!(recs.len() + warns.len(), nonblank);
        let intact = lines.iter().filter(|(_, ok)| *ok).count();
        prop_assert!(recs.len() >= intact, "{} records of {} intact lines", recs.len(), intact);
        for w in &warns {
            let line: usize = w
                .strip_prefix("r/runs.jsonl:")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            prop_assert!(line >= 1 && line <= text.lines().count(), "{}", w);
        }
    }
}

// ---------------------------------------------------------------------
// Hostile results directories: records with extreme numbers and raw
// series of garbage, through every library entry point and the binary.
// ---------------------------------------------------------------------

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use migbench_analysis::compare::{compare_sides, Side};
use migbench_analysis::load::{check_record, load_results};

/// Numeric fields of a record the analyzer reads.
const FIELDS: &[&str] = &[
    "total_time_ms",
    "downtime_qemu_ms",
    "downtime_probe_ms",
    "switchover_probe_ms",
    "throughput_mbps",
    "transferred_bytes",
    "zero_bytes",
    "wire_bytes",
    "passes",
    "wall_ms",
    "qemu_setup_time_ms",
    "qemu_total_time_ms",
    "link_rate_mbps",
    "disk_time_ms",
    "workload_slowdown_pct",
    "max_throttle_pct",
    "downtime_limit_final_ms",
    "started_at",
];

/// Values as JSON text: zeros, subnormals, the edges of f64 and u64,
/// past them (not representable: the line is not a record), negatives.
const VALUES: &[&str] = &[
    "0",
    "-0.0",
    "5e-324",
    "2.2250738585072014e-308",
    "1e-300",
    "1e-31",
    "1",
    "999999999",
    "1e9",
    "1e12",
    "1e200",
    "1e308",
    "-1e308",
    "-1",
    "1e400",
    "18446744073709551615",
    "100000000000000000000000",
    "null",
];

/// Raw series files a run has.
const SERIES: &[&str] = &[
    "probes.csv",
    "progress.jsonl",
    "workload.jsonl",
    "timeline.json",
];

/// A record's field set to a value: (record, [`FIELDS`], [`VALUES`]).
type Edit = (usize, usize, usize);
/// A run's series file overwritten: (run, [`SERIES`], bytes).
type Garbage = (usize, usize, Vec<u8>);

/// A copy of the golden results in `dir` with `edits` applied to
/// runs.jsonl and `garbage` written over raw series.
fn hostile_copy(dir: &Path, edits: &[Edit], garbage: &[Garbage]) {
    copy_dir(&golden(), dir);
    let text = std::fs::read_to_string(dir.join("runs.jsonl")).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for &(rec, field, value) in edits {
        let i = rec % lines.len();
        // A line an earlier edit made unparsable (1e400) stays so.
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&lines[i]) else {
            continue;
        };
        v[FIELDS[field % FIELDS.len()]] = "@@VALUE@@".into();
        lines[i] = v
            .to_string()
            .replace("\"@@VALUE@@\"", VALUES[value % VALUES.len()]);
    }
    std::fs::write(dir.join("runs.jsonl"), lines.join("\n") + "\n").unwrap();
    for (run, file, bytes) in garbage {
        let p = dir
            .join("runs")
            .join(format!("run-{:04}", run % 8))
            .join(SERIES[file % SERIES.len()]);
        std::fs::write(p, bytes).unwrap();
    }
}

/// Run `f` on a thread; fail if it takes longer than `secs` (a hang).
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(v) => v,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("still running after {secs} s"),
        Err(e) => panic!("the work panicked ({e})"),
    }
}

/// A field of [`FIELDS`], the first four (times, downtimes) most often.
fn field() -> impl Strategy<Value = usize> {
    prop_oneof![3 => 0usize..4, 1 => 0usize..FIELDS.len()]
}

fn garbage_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        // Text that is almost right: a header, then cells of anything.
        "seq,sent_ms,recv_ms\n[0-9a-z.,e+\\-]{0,200}".prop_map(String::into_bytes),
        "\\{\"t_ms\":[0-9e+\\-.]{1,12}[^}]{0,40}\\}\n".prop_map(String::into_bytes),
    ]
}

proptest! {
    // A hang costs 30 s per case tried: shrink little.
    #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 3, ..ProptestConfig::default() })]

    /// Every library entry point completes on records with extreme
    /// numbers and series of garbage: no panic, no hang; every record it
    /// keeps passes the checks and every line is kept or skipped.
    #[test]
    fn extreme_records_and_garbage_series_never_panic_or_hang(
        edits in proptest::collection::vec((0usize..8, field(), 0usize..64), 0..8),
        garbage in proptest::collection::vec((0usize..8, 0usize..4, garbage_bytes()), 0..4),
        probes in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("results");
        hostile_copy(&dir, &edits, &garbage);
        let reports = tmp.path().join("reports");
        within(30, move || {
            let set = load_results(&dir).unwrap();
            assert_eq!(set.records.len() + set.skipped.len(), 8, "{:?}", set.warnings);
            for r in &set.records {
                assert_eq!(check_record(r), Ok(()));
            }
            let sets = vec![set];
            let summary = migbench_analysis::summary::summarise(&sets, probes).unwrap();
            let n: usize = summary.rows.iter().map(|r| r.n).sum();
            assert_eq!(n, sets[0].records.len());
            let model = migbench_predict::Model::load(None).unwrap();
            let written = migbench_analysis::report::write_report(
                &sets, &summary, &model, &reports.join("r"), probes,
            )
            .unwrap();
            assert!(written.index.is_file());
            let side = |g: &str| Side { set: &sets[0], group: Some(g.to_string()) };
            let rows = compare_sides(&side("link_rate=100mbit"), &side("link_rate=1gbit"));
            assert!(!rows.is_empty());
            let runs = migbench_analysis::frame::all_runs(&sets);
            if let Ok(cmps) = migbench_analysis::by_dim::compare_by(&runs, "link_rate", None, None) {
                migbench_analysis::by_dim::write_page("t", &cmps, &reports.join("by")).unwrap();
            }
            let _ = migbench_analysis::by_dim::compare_by(&runs, "dirty_rate", Some("0"), None);
            let _ = migbench_analysis::compare::render_predicted(&sets[0], None, &model);
        });
    }
}

/// Run the analyzer binary; `None` if it had to be killed after `secs`.
fn analyze(args: &[&std::ffi::OsStr], secs: u64) -> Option<(i32, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_migbench-analyze"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            // A signal leaves no code: -1 fails the caller's check.
            return Some((status.code().unwrap_or(-1), err));
        }
        if start.elapsed() > Duration::from_secs(secs) {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The binary on a few hostile directories: every command ends, by
/// itself, with 0, 1 or 2 (never 101, a panic, or a signal).
#[test]
fn the_binary_ends_with_0_1_or_2_on_hostile_directories() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng as usize
    };
    let mut dirs = Vec::new();
    // The issue's cases, then random ones.
    let fixed: Vec<(Vec<Edit>, Vec<Garbage>)> = vec![
        (vec![(2, 0, 10)], vec![]),
        (vec![(1, 0, 13)], vec![(3, 0, vec![0xff, 0xfe, 0x00, 0x80])]),
        (
            vec![(0, 4, 11), (5, 1, 2)],
            vec![(1, 1, b"{\"t_ms\":1e300}\n".to_vec())],
        ),
    ];
    for (i, (edits, garbage)) in fixed.into_iter().enumerate() {
        let d = tmp.path().join(format!("fixed{i}"));
        hostile_copy(&d, &edits, &garbage);
        dirs.push(d);
    }
    for i in 0..3 {
        let edits: Vec<_> = (0..4).map(|_| (next(), next(), next())).collect();
        let garbage: Vec<_> = (0..2)
            .map(|_| {
                (
                    next(),
                    next(),
                    (0..next() % 300).map(|_| next() as u8).collect(),
                )
            })
            .collect();
        let d = tmp.path().join(format!("random{i}"));
        hostile_copy(&d, &edits, &garbage);
        dirs.push(d);
    }
    let reports = tmp.path().join("reports");
    for d in &dirs {
        let o = |s: &str| std::ffi::OsString::from(s);
        let runs = [
            vec![o("summary"), d.clone().into()],
            vec![o("summary"), d.clone().into(), o("--format"), o("json")],
            vec![
                o("report"),
                d.clone().into(),
                o("--reports"),
                reports.clone().into(),
            ],
            vec![
                o("report"),
                d.clone().into(),
                o("--no-probes"),
                o("--reports"),
                reports.clone().into(),
                o("--name"),
                o("np"),
            ],
            vec![
                o("compare"),
                d.clone().into(),
                d.clone().into(),
                o("--group-a"),
                o("link_rate=100mbit"),
                o("--group-b"),
                o("link_rate=1gbit"),
                o("--reports"),
                reports.clone().into(),
            ],
            vec![
                o("compare"),
                d.clone().into(),
                o("--by"),
                o("link_rate"),
                o("--reports"),
                reports.clone().into(),
            ],
            vec![o("compare"), d.clone().into(), o("--predicted")],
        ];
        for args in &runs {
            let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
            match analyze(&args, 60) {
                None => panic!("{args:?}: still running after 60 s"),
                Some((code, err)) => {
                    assert!(matches!(code, 0..=2), "{args:?}: exit {code}\n{err}");
                    assert!(!err.contains("panicked"), "{args:?}\n{err}");
                    assert!(!err.contains("You might want to try"), "{args:?}\n{err}");
                }
            }
        }
    }
}

/// The checked-in corpus (`tests/corpus/runs/`, the `runs` fuzz target's
/// seeds and the crashes it ever found): every file loads without a
/// panic, each non-empty line a record or a skipped line with a reason.
#[test]
fn the_runs_corpus_loads_each_line_as_a_record_or_a_reason() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/runs");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let text = String::from_utf8_lossy(&std::fs::read(e.path()).unwrap()).into_owned();
        let p = migbench_analysis::load::parse_runs_checked(&e.path(), &text);
        let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
        assert_eq!(
            p.records.len() + p.skipped.len(),
            lines,
            "{}: {} records, {} skipped",
            e.path().display(),
            p.records.len(),
            p.skipped.len()
        );
        n += 1;
    }
    assert!(n >= 3, "corpus of {n} files in {}", dir.display());
}
