//! The analyzer end to end on synthetic results (the real-results report
//! test lives in bench/tests/lab.rs, after a real run): the binary writes a
//! report whose summary agrees with runs.jsonl, and a truncated last line
//! is reported with a warning naming it rather than failing the report.

use std::process::Command;

use migbench_model::{Outcome, RunRecord};

fn analyze() -> Command {
    Command::new(env!("CARGO_BIN_EXE_migbench-analyze"))
}

#[test]
fn report_summary_agrees_with_runs_and_survives_a_truncated_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("results/synthetic/20260101T000000Z");
    migbench_analysis::synth::generate(&dir, 24, 200, 7).unwrap();
    let runs_path = dir.join("runs.jsonl");
    let text = std::fs::read_to_string(&runs_path).unwrap();
    let recs: Vec<RunRecord> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // A crash mid-write: half a line at the end.
    let lines = text.lines().count();
    std::fs::write(
        &runs_path,
        format!("{text}{}", &text.lines().next().unwrap()[..40]),
    )
    .unwrap();

    let reports = tmp.path().join("reports");
    let out = analyze()
        .args([
            "report",
            dir.to_str().unwrap(),
            "--reports",
            reports.to_str().unwrap(),
            "--name",
            "syn",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("runs.jsonl:{}: truncated", lines + 1)),
        "{stderr}"
    );
    let rep = reports.join("syn");
    for f in [
        "index.html",
        "summary.csv",
        "summary.md",
        "summary.json",
        "total-time.svg",
        "total-time.png",
        "downtime.png",
        "convergence.svg",
        "total-time-vs-dirty-rate.svg",
    ] {
        assert!(rep.join(f).is_file(), "{f} missing");
    }
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    assert!(
        html.contains("truncated"),
        "the warning is shown in the report"
    );

    // Group means recomputed from runs.jsonl match summary.json.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("summary.json")).unwrap()).unwrap();
    for row in summary["rows"].as_array().unwrap() {
        let (link, dirty) = (
            row["dims"]["link_rate"].as_str().unwrap(),
            row["dims"]["dirty_rate"].as_str().unwrap(),
        );
        let members: Vec<&RunRecord> = recs
            .iter()
            .filter(|r| {
                r.params.link_rate.to_string() == link && r.params.dirty_rate.to_string() == dirty
            })
            .collect();
        assert_eq!(row["n"].as_u64().unwrap() as usize, members.len());
        let done: Vec<f64> = members
            .iter()
            .filter(|r| r.outcome == Outcome::Completed)
            .filter_map(|r| r.total_time_ms)
            .map(|t| t / 1e3)
            .collect();
        assert_eq!(row["completed"].as_u64().unwrap() as usize, done.len());
        if done.is_empty() {
            assert!(row["metrics"].get("total_time_s").is_none());
            assert_eq!(
                row["timed_out"].as_u64().unwrap() as usize,
                members.len(),
                "timed-out runs are counted"
            );
        } else {
            let mean = done.iter().sum::<f64>() / done.len() as f64;
            assert!((row["metrics"]["total_time_s"]["mean"].as_f64().unwrap() - mean).abs() < 1e-9);
        }
    }
}

#[test]
fn summary_formats_and_compare_work_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    migbench_analysis::synth::generate(&a, 16, 50, 1).unwrap();
    migbench_analysis::synth::generate(&b, 16, 50, 2).unwrap();
    for (fmt, needle) in [
        ("csv", "total_time_s_median"),
        ("json", "\"rows\""),
        ("markdown", "| dirty_rate |"),
    ] {
        let out = analyze()
            .args(["summary", a.to_str().unwrap(), "--format", fmt])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stdout).contains(needle),
            "{fmt}"
        );
    }
    let out = analyze()
        .args([
            "compare",
            a.to_str().unwrap(),
            a.to_str().unwrap(),
            "--group-a",
            "dirty_rate=0 link_rate=100mbit",
            "--group-b",
            "dirty_rate=0 link_rate=1gbit",
            "--reports",
        ])
        .arg(tmp.path().join("reports"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Welch"), "{stdout}");
    // 1 Gbit is much faster than 100 Mbit: a significant difference in total time.
    let line = stdout
        .lines()
        .find(|l| l.starts_with("total migration time"))
        .unwrap();
    assert!(line.contains("significant (p="), "{line}");
    assert!(!line.contains("not significant"), "{line}");
}

#[test]
fn an_outlier_run_is_named_in_the_table_and_marked_on_the_chart_but_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("results/synthetic/20260101T000000Z");
    migbench_analysis::synth::generate(&dir, 24, 50, 11).unwrap();
    let runs_path = dir.join("runs.jsonl");
    let mut recs: Vec<RunRecord> = std::fs::read_to_string(&runs_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // A completed run of an all-completed cell takes ten times as long.
    let odd = recs
        .iter()
        .position(|r| {
            let cell = |x: &RunRecord| (x.params.link_rate, x.params.dirty_rate);
            recs.iter()
                .filter(|x| cell(x) == cell(r))
                .all(|x| x.outcome == Outcome::Completed)
        })
        .expect("a cell whose runs all completed");
    let t = recs[odd].total_time_ms.unwrap();
    recs[odd].total_time_ms = Some(t * 10.0);
    let text: String = recs
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect();
    std::fs::write(&runs_path, text).unwrap();

    let reports = tmp.path().join("reports");
    let out = analyze()
        .args(["report", dir.to_str().unwrap(), "--reports"])
        .arg(&reports)
        .args(["--name", "odd"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rep = reports.join("odd");
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    let row = format!("<tr><td>{}</td>", recs[odd].run_id);
    assert!(html.contains(&row), "the outlier table names {row}");
    let svg = std::fs::read_to_string(rep.join("total-time.svg")).unwrap();
    assert!(svg.contains("outlier run"), "the chart marks it");
    // Kept: its cell's mean includes it.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(rep.join("summary.json")).unwrap()).unwrap();
    let cell = |r: &RunRecord| (r.params.link_rate, r.params.dirty_rate);
    let members: Vec<f64> = recs
        .iter()
        .filter(|r| cell(r) == cell(&recs[odd]))
        .map(|r| r.total_time_ms.unwrap() / 1e3)
        .collect();
    let mean = members.iter().sum::<f64>() / members.len() as f64;
    let found = summary["rows"].as_array().unwrap().iter().any(|row| {
        row["metrics"]["total_time_s"]["mean"]
            .as_f64()
            .is_some_and(|m| (m - mean).abs() < 1e-9)
    });
    assert!(found, "the outlier stays in its group's mean ({mean})");
}
