//! Loading results: truncated, corrupt and impossible records, series
//! files, duplicates.

use super::*;
use migbench_model::ProgressSample;

#[test]
fn records_with_and_without_a_schema_version_are_read() {
    let rec = RunRecord::pending(&migbench_model::matrix::sample_run(""), 0.0, "tcg");
    let new = serde_json::to_string(&rec).unwrap();
    assert!(new.contains("\"schema_version\":2"), "{new}");
    let old = new.replace("\"schema_version\":2,", "");
    let newer = new.replace("\"schema_version\":2", "\"schema_version\":99");
    let text = format!("{old}\n{new}\n{newer}\n");
    let (recs, warns) = parse_runs(Path::new("r/runs.jsonl"), &text);
    assert_eq!(recs.len(), 2);
    assert_eq!((recs[0].schema_version, recs[1].schema_version), (1, 2));
    assert_eq!(warns.len(), 1);
    assert!(warns[0].contains("newer"), "{warns:?}");
}

#[test]
fn a_truncated_last_line_is_a_warning_naming_the_line() {
    let good = r#"{"run_id":"run-0000"}"#; // not a full record either
    let text = format!("{good}\n{{\"run_id\":\"run-00");
    let (recs, warns) = parse_runs(Path::new("r/runs.jsonl"), &text);
    assert!(recs.is_empty());
    assert_eq!(warns.len(), 2);
    assert!(
        warns[0].starts_with("r/runs.jsonl:1: not a run record"),
        "{warns:?}"
    );
    assert!(
        warns[1].starts_with("r/runs.jsonl:2: truncated"),
        "{warns:?}"
    );
}

fn completed(i: usize) -> RunRecord {
    let mut p = migbench_model::matrix::sample_run("");
    p.index = i;
    let mut r = RunRecord::pending(&p, 0.0, "tcg");
    r.total_time_ms = Some(12_000.0);
    r.downtime_qemu_ms = Some(150.0);
    r.throughput_mbps = Some(94.0);
    r.transferred_bytes = Some(140 << 20);
    r
}

fn line(r: &RunRecord) -> String {
    serde_json::to_string(r).unwrap()
}

#[test]
fn absurd_values_skip_the_record_naming_line_field_and_value() {
    let good = completed(0);
    let mut cases: Vec<(RunRecord, &str, &str)> = Vec::new();
    let mut r = completed(1);
    r.total_time_ms = Some(1e200);
    cases.push((r, "total_time_ms = 1e200", "above 1e9 ms"));
    let mut r = completed(2);
    r.total_time_ms = Some(-5.0);
    cases.push((r, "total_time_ms = -5", "negative"));
    let mut r = completed(3);
    r.downtime_qemu_ms = Some(13_500.0);
    cases.push((
        r,
        "downtime_qemu_ms = 13500",
        "longer than the whole migration",
    ));
    let mut r = completed(4);
    r.throughput_mbps = Some(1e308);
    cases.push((r, "throughput_mbps = 1e308", "Mbit/s"));
    let mut r = completed(5);
    r.transferred_bytes = Some(u64::MAX);
    cases.push((r, "transferred_bytes = 18446744073709551615", "bytes"));
    let mut r = completed(6);
    r.params.ram = migbench_model::units::Size(0);
    cases.push((r, "params.ram = 0B", "divide"));
    let mut r = completed(7);
    r.run_id = "../../../escape".into();
    cases.push((r, "run_id = ../../../escape", "plain name"));
    let mut text = line(&good) + "\n";
    for (r, _, _) in &cases {
        text += &(line(r) + "\n");
    }
    let p = parse_runs_checked(Path::new("r/runs.jsonl"), &text);
    assert_eq!(p.records, vec![good]);
    assert_eq!(p.lines, vec![1]);
    assert_eq!(p.skipped.len(), cases.len());
    for (i, ((r, what, why), s)) in cases.iter().zip(&p.skipped).enumerate() {
        let w = s.warning();
        assert!(
            w.starts_with(&format!("r/runs.jsonl:{}: {}: ", i + 2, r.run_id)),
            "{w}"
        );
        assert!(w.contains(what) && w.contains(why), "{w}");
        assert_eq!(s.run_id.as_deref(), Some(r.run_id.as_str()));
    }
    // A downtime within a second of the total time stands (other clocks).
    let mut r = completed(8);
    r.downtime_probe_ms = Some(12_900.0);
    assert_eq!(check_record(&r), Ok(()));
}

#[test]
fn numbers_json_cannot_hold_are_lines_that_are_not_records() {
    let l = line(&completed(0));
    let text = [
        l.replace("\"total_time_ms\":12000.0", "\"total_time_ms\":1e400"),
        l.replace("\"passes\":null", "\"passes\":-3"),
        l.replace("\"passes\":null", "\"passes\":100000000000000000000000"),
    ]
    .join("\n")
        + "\n";
    let p = parse_runs_checked(Path::new("r/runs.jsonl"), &text);
    assert!(p.records.is_empty());
    assert_eq!(p.skipped.len(), 3, "{:?}", p.skipped);
    for s in &p.skipped {
        assert!(s.why.starts_with("not a run record"), "{s:?}");
        assert_eq!(s.run_id.as_deref(), Some("run-0000"), "{s:?}");
    }
}

fn set_at(dir: &Path, started: f64, recs: &[RunRecord]) -> ResultsSet {
    let text: String = recs.iter().map(|r| line(r) + "\n").collect();
    let p = parse_runs_checked(&dir.join("runs.jsonl"), &text);
    let mut m: Manifest = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/golden/results/manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    m.started_at = started;
    ResultsSet {
        dir: dir.to_owned(),
        name: "t".into(),
        manifest: m,
        records: p.records,
        lines: p.lines,
        skipped: Vec::new(),
        warnings: Vec::new(),
    }
}

#[test]
fn a_run_is_its_session_and_run_id() {
    let (a, b) = (completed(0), completed(1));
    let one = set_at(Path::new("x"), 1.0, &[a.clone(), b.clone()]);
    let copy = set_at(Path::new("y"), 1.0, std::slice::from_ref(&b));
    let other_session = set_at(Path::new("z"), 2.0, &[a.clone(), b.clone()]);
    assert!(duplicates(&[one.clone(), other_session.clone()]).is_empty());
    assert_eq!(refuse_duplicates(&[one.clone(), other_session]), Ok(()));
    let d = duplicates(&[one.clone(), copy.clone()]);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].id.run_id, b.run_id);
    assert_eq!(d[0].places, ["x/runs.jsonl:2", "y/runs.jsonl:1"]);
    let e = refuse_duplicates(&[one, copy]).unwrap_err().0;
    assert!(e.contains("x/runs.jsonl:2 and y/runs.jsonl:1"), "{e}");
    assert!(e.contains("--allow-duplicates"), "{e}");
    // A line copied within one file.
    let twice = set_at(Path::new("w"), 1.0, &[a.clone(), b, a]);
    let d = duplicates(&[twice]);
    assert_eq!(d[0].places, ["w/runs.jsonl:1", "w/runs.jsonl:3"]);
}

#[test]
fn series_files_that_cannot_be_used_say_which_line_and_why() {
    let tmp = tempfile::tempdir().unwrap();
    let f = |name: &str, body: &[u8]| {
        let p = tmp.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    let ok = f("ok.csv", b"seq,sent_ms,recv_ms\n0,1.5,2.0\n1,11.5,\n");
    assert_eq!(read_probes(&ok).unwrap().unwrap().len(), 2);
    assert_eq!(read_probes(&tmp.path().join("absent.csv")), Ok(None));
    for (name, body, line, why) in [
        (
            "bin.csv",
            &b"seq,sent_ms\xff\xfe,recv_ms\n"[..],
            1,
            "not text",
        ),
        ("empty.csv", b"", 1, "empty"),
        ("head.csv", b"a,b,c\n1,2,3\n", 1, "header"),
        (
            "cell.csv",
            b"seq,sent_ms,recv_ms\n0,1,2\n1,abc,3\n",
            3,
            "`1,abc,3`",
        ),
        (
            "huge.csv",
            b"seq,sent_ms,recv_ms\n0,1e300,2\n",
            2,
            "sent_ms = 1e300",
        ),
        (
            "inf.csv",
            b"seq,sent_ms,recv_ms\n0,1,inf\n",
            2,
            "recv_ms = inf",
        ),
    ] {
        let e = read_probes(&f(name, body)).unwrap_err();
        assert_eq!(e.line, Some(line), "{e}");
        assert!(e.to_string().contains(why), "{e}");
        assert!(e
            .to_string()
            .starts_with(&tmp.path().join(name).display().to_string()));
    }
}

#[test]
fn a_progress_series_with_a_bad_line_is_refused_but_a_torn_end_is_not() {
    let tmp = tempfile::tempdir().unwrap();
    let mut set = set_at(tmp.path(), 1.0, &[]);
    set.dir = tmp.path().to_owned();
    let run = set.run_dir("run-0000");
    std::fs::create_dir_all(&run).unwrap();
    let sample = |t: f64| {
        serde_json::to_string(&ProgressSample {
            t_ms: t,
            status: "active".into(),
            ..Default::default()
        })
        .unwrap()
    };
    let path = run.join("progress.jsonl");
    std::fs::write(
        &path,
        format!("{}\n{}\n{{\"t_ms\":", sample(1.0), sample(2.0)),
    )
    .unwrap();
    assert_eq!(read_progress(&set, "run-0000").unwrap().len(), 2);
    std::fs::write(
        &path,
        format!("{}\nnot json\n{}\n", sample(1.0), sample(2.0)),
    )
    .unwrap();
    let e = read_progress(&set, "run-0000").unwrap_err();
    assert_eq!(e.line, Some(2), "{e}");
    std::fs::write(&path, format!("{}\n{}\n", sample(1.0), sample(1e300))).unwrap();
    let e = read_progress(&set, "run-0000").unwrap_err();
    assert!(e.to_string().contains(":2: t_ms = 1e300"), "{e}");
    assert!(load_progress(&set, "run-0000").is_empty());
}
