//! The analyzer against an adversary, through the binary, on copies of
//! the golden results (`fixtures/golden/`, 8 runs): runs given twice are
//! refused (exit 2) unless allowed, an absurd record is skipped and
//! listed, an unreadable probes.csv costs only its run's probe figures,
//! group filters are checked like `--by` (exit 2), and a report name
//! cannot leave the reports folder.

mod common;
use common::{analyze, copy_golden, golden, walk};
use std::path::Path;
use std::process::Command;

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Runs per row of `summary --format json`, summed.
fn runs_in(json: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["n"].as_u64().unwrap())
        .sum()
}

#[test]
fn runs_given_twice_are_refused_naming_both_places_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let g = s(&golden());
    // The same directory twice.
    let (code, _, err) = analyze(&["summary", &g, &g]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is given twice"), "{err}");
    assert!(
        err.contains("results/runs.jsonl:1 and ") && err.contains("--allow-duplicates"),
        "{err}"
    );
    let (code, out, err) = analyze(&["summary", &g, &g, "--allow-duplicates", "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(runs_in(&out), 16, "allowed: every copy counts");
    assert!(err.contains("counted more than once"), "{err}");
    // A copied directory.
    let copy = copy_golden(&tmp.path().join("copy"));
    let (code, _, err) = analyze(&["summary", &g, &s(&copy)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains(&format!("{}:4 and ", s(&golden().join("runs.jsonl"))))
            && err.contains(&format!("{}:4", s(&copy.join("runs.jsonl")))),
        "{err}"
    );
    let reports = tmp.path().join("reports");
    let (code, _, err) = analyze(&["report", &g, &s(&copy), "--reports", &s(&reports)]);
    assert_eq!(code, 2, "{err}");
    assert!(!reports.exists(), "nothing written");
    // A line copied within one file, on one side of a comparison.
    let text = std::fs::read_to_string(copy.join("runs.jsonl")).unwrap();
    let third = text.lines().nth(2).unwrap();
    std::fs::write(copy.join("runs.jsonl"), format!("{text}{third}\n")).unwrap();
    let (code, _, err) = analyze(&["compare", &s(&copy), &g, "--reports", &s(&reports)]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("runs.jsonl:3 and ") && err.contains("runs.jsonl:9"),
        "{err}"
    );
    // One directory as both sides, group against group, is no duplicate.
    let (code, _, err) = analyze(&[
        "compare",
        &g,
        &g,
        "--group-a",
        "link_rate=100mbit",
        "--group-b",
        "link_rate=1gbit",
        "--reports",
        &s(&reports),
    ]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn an_absurd_record_is_skipped_with_a_warning_and_listed_in_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_golden(&tmp.path().join("results"));
    let path = dir.join("runs.jsonl");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut v: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
    v["total_time_ms"] = 1e200.into();
    lines[2] = v.to_string();
    let mut v: serde_json::Value = serde_json::from_str(&lines[5]).unwrap();
    v["downtime_qemu_ms"] = (v["total_time_ms"].as_f64().unwrap() + 5000.0).into();
    lines[5] = v.to_string();
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();

    let (code, out, err) = analyze(&["summary", &s(&dir), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(runs_in(&out), 6, "the two records are in no statistic");
    let want = format!("warning: {}:3: run-0002: total_time_ms = 1e200: ", s(&path));
    assert!(err.contains(&want), "{err}");
    assert!(
        err.contains(":6: run-0005: downtime_qemu_ms = ")
            && err.contains("longer than the whole migration"),
        "{err}"
    );
    // compare panicked (exit 101) and report hung on it.
    let reports = tmp.path().join("reports");
    let (code, _, err) = analyze(&[
        "compare",
        &s(&dir),
        &s(&dir),
        "--group-a",
        "link_rate=100mbit",
        "--group-b",
        "link_rate=1gbit",
        "--reports",
        &s(&reports),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = analyze(&["report", &s(&dir), "--reports", &s(&reports), "--name", "r"]);
    assert_eq!(code, 0, "{err}");
    let html = std::fs::read_to_string(reports.join("r/index.html")).unwrap();
    let table = &html[html
        .find("<h2>Skipped records</h2>")
        .expect("a skipped table")..];
    for needle in [
        ":3</td>",
        "run-0002",
        "total_time_ms",
        "1e200",
        "above 1e9 ms",
    ] {
        assert!(table.contains(needle), "{needle}: {table}");
    }
    assert!(table.contains("run-0005") && table.contains("downtime_qemu_ms"));
}

#[test]
fn an_unreadable_probes_file_costs_only_its_runs_probe_figures() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = copy_golden(&tmp.path().join("results"));
    let probes = dir.join("runs/run-0003/probes.csv");
    let noise: Vec<u8> = (0..3000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    std::fs::write(&probes, &noise).unwrap();
    let (code, out, err) = analyze(&["summary", &s(&dir), "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains(&format!("warning: {}:", s(&probes))) && err.contains("not text"),
        "{err}"
    );
    assert!(err.contains("without probe metrics"), "{err}");
    // The other groups keep their probe columns.
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let with_rtt = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["rtt_p99_ms"].is_number())
        .count();
    assert_eq!(with_rtt, 4, "run-0003's group keeps its other run's probes");
    let reports = tmp.path().join("reports");
    let (code, _, err) = analyze(&["report", &s(&dir), "--reports", &s(&reports)]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(err.matches("probes.csv").count(), 1, "warned once: {err}");
    // --no-probes reads no probes.csv at all.
    let (code, _, err) = analyze(&[
        "report",
        &s(&dir),
        "--no-probes",
        "--reports",
        &s(&reports),
        "--name",
        "np",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("probes.csv"), "{err}");
    // A cell that is not a number: the line, in a plain sentence.
    let good = std::fs::read_to_string(golden().join("runs/run-0003/probes.csv")).unwrap();
    let bad: Vec<&str> = good
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 4 { "3,abc,12" } else { l })
        .collect();
    std::fs::write(&probes, bad.join("\n") + "\n").unwrap();
    let (code, _, err) = analyze(&["summary", &s(&dir)]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains(&format!("{}:5: ", s(&probes))), "{err}");
    assert!(err.contains("`3,abc,12`"), "{err}");
    assert!(
        !err.contains("You might want") && !err.contains("infer_schema"),
        "{err}"
    );
}

#[test]
fn group_filters_and_by_are_checked_with_exit_2_naming_what_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let g = s(&golden());
    let r = s(&tmp.path().join("reports"));
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["compare", &g, &g, "--group-a", "link_rate=10mbit"],
            &["--group-a", "link_rate=10mbit", "100mbit, 1gbit"],
        ),
        (
            &["compare", &g, &g, "--group-b", "link_ratee=1gbit"],
            &[
                "--group-b",
                "no dimension `link_ratee`",
                "dirty_rate, link_rate",
            ],
        ),
        (
            &["compare", &g, &g, "--group-a", "100mbit"],
            &["`100mbit` is not dimension=value"],
        ),
        (
            &["compare", &g, &g, "--group-a", "link_rate=100mbit ram=1GiB"],
            &["ram=1GiB", "ram here is 256MiB"],
        ),
        (
            &[
                "compare",
                &g,
                "--predicted",
                "--group-a",
                "dirty_rate=9MB/s",
            ],
            &["--group-a", "dirty_rate here is 0, 5MB/s"],
        ),
        (
            &["compare", &g, "--by", "link_ratee"],
            &["no such dimension"],
        ),
        (
            &["compare", &g, "--by", "link_rate", "--group-a", "10mbit"],
            &["100mbit, 1gbit"],
        ),
    ];
    for (args, needles) in cases {
        let mut a: Vec<&str> = args.to_vec();
        if a.contains(&"--by") || !a.contains(&"--predicted") {
            a.extend(["--reports", &r]);
        }
        let (code, _, err) = analyze(&a);
        assert_eq!(code, 2, "{args:?}: {err}");
        for n in *needles {
            assert!(err.contains(n), "{args:?}: {n:?} not in {err}");
        }
    }
    // A subset of the dimensions is a group; so is a full key.
    for g2 in ["link_rate=100mbit", "dirty_rate=0 link_rate=100mbit"] {
        let (code, _, err) = analyze(&["compare", &g, &g, "--group-a", g2, "--reports", &r]);
        assert_eq!(code, 0, "{g2}: {err}");
        let (code, _, err) = analyze(&["compare", &g, "--predicted", "--group-a", g2]);
        assert_eq!(code, 0, "{g2}: {err}");
    }
    // A runtime failure is not a usage error: a missing directory is 1.
    let (code, _, err) = analyze(&["summary", &s(&tmp.path().join("nowhere"))]);
    assert_eq!(code, 1, "{err}");
    // A directory with no runs summarises to an empty table; compare
    // has nothing to compare (1).
    let empty = copy_golden(&tmp.path().join("empty"));
    std::fs::write(empty.join("runs.jsonl"), "").unwrap();
    let (code, _, err) = analyze(&["summary", &s(&empty)]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = analyze(&["compare", &s(&empty), &s(&empty), "--reports", &r]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn report_names_stay_inside_the_reports_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let g = s(&golden());
    let reports = tmp.path().join("deep/reports");
    for name in ["../escape", "a/b", ".hidden", "..", "", "x\\y"] {
        let (code, _, err) = analyze(&["report", &g, "--reports", &s(&reports), "--name", name]);
        assert_eq!(code, 2, "{name:?}: {err}");
        assert!(err.contains("plain folder name"), "{err}");
    }
    assert!(!tmp.path().join("deep/escape").exists());
    assert!(!reports.exists(), "nothing written");
    // A name built from a manifest cannot leave either.
    let dir = copy_golden(&tmp.path().join("evil"));
    let m = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    std::fs::write(
        dir.join("manifest.json"),
        m.replace(
            "\"scenario_name\": \"golden\"",
            "\"scenario_name\": \"../../../x\"",
        ),
    )
    .unwrap();
    // So can a run_id (it names the run's folder and its timeline chart).
    let runs = std::fs::read_to_string(dir.join("runs.jsonl")).unwrap();
    std::fs::write(
        dir.join("runs.jsonl"),
        runs.replacen("\"run-0000\"", "\"../../../../../escaped\"", 1),
    )
    .unwrap();
    let (code, out, err) = analyze(&["report", &s(&dir), "--reports", &s(&reports)]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("runs.jsonl:1: ../../../../../escaped: run_id = ")
            && err.contains("not a plain name"),
        "{err}"
    );
    let index = out
        .lines()
        .find_map(|l| l.strip_prefix("report: "))
        .unwrap();
    let index = std::fs::canonicalize(index).unwrap();
    assert!(
        index.starts_with(std::fs::canonicalize(&reports).unwrap()),
        "{index:?}"
    );
    let outside: Vec<_> = walk(tmp.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("escaped"))
        .collect();
    assert!(outside.is_empty(), "{outside:?}");
}

#[test]
fn output_cut_short_by_a_closed_pipe_is_no_panic() {
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_migbench-analyze"))
        .args(["summary", &s(&golden()), "--format", "csv"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // `| head -0`
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
