//! `migbench predict` end to end (no lab needed): a table and JSON lines
//! for a scenario's matrix, a non-converging run named with what it needs,
//! a fit from results, and refusals.

mod common;

use common::*;

#[test]
fn predict_prints_each_run_and_says_what_a_stuck_one_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write_scenario(
        tmp.path(),
        "p",
        "[guest]\nram = \"1GiB\"\n[workload]\nworking_set = \"256MiB\"\ndirty_rate = [\"0\", \"20MB/s\"]\n[link]\nrate = [\"100mbit\", \"1gbit\"]\n",
    );
    let out = migbench().arg("predict").arg(&sc).output().unwrap();
    assert!(shown(&out).status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("run-")).collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(
        rows[0].ends_with("yes") && rows[3].ends_with("yes"),
        "{text}"
    );
    assert!(
        rows[2].contains("no: needs") && rows[2].contains("Mbit/s"),
        "{text}"
    );
    let json = migbench()
        .arg("predict")
        .arg(&sc)
        .arg("--json")
        .output()
        .unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);
    let idle_slow = lines[0]["predicted_total_time_ms"].as_f64().unwrap();
    let idle_fast = lines[1]["predicted_total_time_ms"].as_f64().unwrap();
    assert!(idle_slow > 5.0 * idle_fast, "{lines:?}");
    assert_eq!(lines[2]["converges"], false);
    assert_eq!(lines[2]["params"]["dirty_rate"], "20MB/s");
    // Fitted from this lab's link-speed fixture.
    let dir = tmp.path().join("fit");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/model/link-speed.jsonl"),
        dir.join("runs.jsonl"),
    )
    .unwrap();
    let fit = migbench()
        .arg("predict")
        .arg(&sc)
        .arg("--fit")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(shown(&fit).status.success());
    assert!(String::from_utf8_lossy(&fit.stdout).contains("(fitted)"));
    let none = migbench()
        .arg("predict")
        .arg(&sc)
        .arg("--fit")
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_ne!(none.status.code(), Some(0));
}
