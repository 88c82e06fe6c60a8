//! `migbench predict` and `migbench advise` end to end (no lab needed): a
//! table and JSON lines for a scenario's matrix, a non-converging run
//! named with what it needs, a fit stored and reused, what lies outside
//! it, ranked advice, the link a busy guest needs, and refusals naming
//! their flag.

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
    // Run where no stored model is found: this lab's constants.
    let out = migbench()
        .current_dir(tmp.path())
        .arg("predict")
        .arg(&sc)
        .output()
        .unwrap();
    assert!(shown(&out).status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("run-")).collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(
        rows[0].ends_with("converged") && rows[3].ends_with("converged"),
        "{text}"
    );
    assert!(
        rows[2].contains("timed_out: needs") && rows[2].contains("Mbit/s"),
        "{text}"
    );
    let json = migbench()
        .current_dir(tmp.path())
        .arg("predict")
        .arg(&sc)
        .arg("--json")
        .exits(EXIT_OK);
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
    let dir = link_speed_results(tmp.path());
    let fit = migbench()
        .current_dir(tmp.path())
        .arg("predict")
        .arg(&sc)
        .arg("--fit")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(shown(&fit).status.success());
    // Stored where later predictions look for it.
    assert!(String::from_utf8_lossy(&fit.stdout).contains("fitted on 24 runs, results/model.json"));
    assert!(tmp.path().join("results/model.json").is_file());
    // Nothing to fit on: refused as bad input (exit 2), not a panic.
    let none = migbench()
        .current_dir(tmp.path())
        .arg("predict")
        .arg(&sc)
        .arg("--fit")
        .arg(tmp.path())
        .exits(EXIT_REFUSED);
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("--fit"),
        "{none:?}"
    );
}

#[test]
fn predict_stores_a_fit_and_says_what_lies_outside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = link_speed_results(tmp.path());
    let sc = write_scenario(
        tmp.path(),
        "big",
        "[guest]\nram = \"8GiB\"\n[workload]\nworking_set = \"1GiB\"\ndirty_rate = \"5MB/s\"\n[link]\nrate = \"10gbit\"\n[migration]\nmultifd_channels = 4\n",
    );
    let model = tmp.path().join("model.json");
    let fit = migbench()
        .args(["predict", "--format", "json", "--model"])
        .arg(&model)
        .arg(&sc)
        .arg("--fit")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(shown(&fit).status.success());
    let stored: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(stored["envelope"]["runs"], 24, "{stored}");
    let row: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&fit.stdout).lines().next().unwrap()).unwrap();
    let outside: Vec<String> = serde_json::from_value(row["outside"].clone()).unwrap();
    // link-speed holds 1 GiB guests over 100 Mbit and 1 Gbit, no multifd.
    assert!(
        outside.iter().any(|o| o.starts_with("RAM 8192 MiB")),
        "{outside:?}"
    );
    assert!(
        outside.iter().any(|o| o.starts_with("link 10000 Mbit/s")),
        "{outside:?}"
    );
    assert!(
        outside.iter().any(|o| o.starts_with("multifd")),
        "{outside:?}"
    );
    // A later prediction with the stored model says so.
    let again = migbench()
        .args(["predict", "--model"])
        .arg(&model)
        .arg(&sc)
        .exits(EXIT_OK);
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(text.contains("fitted on 24 runs"), "{text}");
    assert!(text.contains("* run-0000: RAM 8192 MiB"), "{text}");
    let missing = migbench()
        .args(["predict", "--model", "/nonexistent/model.json"])
        .arg(&sc)
        .exits(EXIT_REFUSED);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--model /nonexistent/model.json"));
}

fn advise(args: &[&str]) -> std::process::Output {
    // Run where no stored model is found: this lab's constants.
    let tmp = tempfile::tempdir().unwrap();
    migbench()
        .current_dir(tmp.path())
        .arg("advise")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn advise_ranks_settings_and_names_the_link_a_busy_guest_needs() {
    let quiet = advise(&[
        "--ram",
        "1GiB",
        "--working-set",
        "256MiB",
        "--dirty-rate",
        "5MB/s",
        "--link",
        "1gbit",
        "--max-downtime",
        "300ms",
    ]);
    let text = String::from_utf8_lossy(&shown(&quiet).stdout).to_string();
    assert!(quiet.status.success());
    let first = text
        .lines()
        .find(|l| l.starts_with("1 "))
        .unwrap_or_else(|| panic!("{text}"));
    // Nothing but a downtime limit: no multifd, XBZRLE, throttle or post-copy.
    assert!(
        first.contains("downtime_limit")
            && !first.contains("auto_converge")
            && !first.contains("postcopy"),
        "{text}"
    );
    assert!(!text.contains("would need a link"), "{text}");
    let busy = advise(&[
        "--ram",
        "1GiB",
        "--working-set",
        "512MiB",
        "--dirty-rate",
        "200MB/s",
        "--link",
        "1gbit",
        "--max-downtime",
        "500ms",
        "--format",
        "json",
    ]);
    assert_exit(busy.status, EXIT_OK, "advise");
    let v: serde_json::Value = serde_json::from_slice(&shown(&busy).stdout).unwrap();
    let advice = v["advice"].as_array().unwrap();
    assert!(!advice.is_empty(), "{v}");
    assert!(advice[0]["intrusion"].as_u64().unwrap() > 0, "{v}");
    let need = v["link_needed_bps"].as_f64().unwrap();
    assert!(need > 1.6e9, "{v}");
}

#[test]
fn advise_refuses_impossible_input_naming_the_flag() {
    for (args, flag) in [
        (
            vec![
                "--ram",
                "1GiB",
                "--working-set",
                "2GiB",
                "--dirty-rate",
                "5MB/s",
                "--link",
                "1gbit",
                "--max-downtime",
                "300ms",
            ],
            "--working-set",
        ),
        (
            vec![
                "--ram",
                "1GiB",
                "--dirty-rate",
                "5MB/s",
                "--link",
                "0mbit",
                "--max-downtime",
                "300ms",
            ],
            "--link",
        ),
        (
            vec![
                "--ram",
                "1GiB",
                "--dirty-rate=-5MB/s",
                "--link",
                "1gbit",
                "--max-downtime",
                "300ms",
            ],
            "--dirty-rate",
        ),
        (
            vec![
                "--ram",
                "lots",
                "--dirty-rate",
                "5MB/s",
                "--link",
                "1gbit",
                "--max-downtime",
                "300ms",
            ],
            "--ram",
        ),
        (
            vec![
                "--ram",
                "1GiB",
                "--dirty-rate",
                "measure",
                "--link",
                "1gbit",
                "--max-downtime",
                "300ms",
            ],
            "--qmp",
        ),
        (
            vec![
                "--ram",
                "1GiB",
                "--dirty-rate",
                "5MB/s",
                "--link",
                "1gbit",
                "--max-downtime",
                "0ms",
            ],
            "--max-downtime",
        ),
    ] {
        let out = advise(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(flag), "{args:?}: {err}");
    }
}

// Lab tier: it starts QEMU.
#[cfg(feature = "lab")]
#[test]
fn advise_measures_a_running_guests_dirty_rate_over_qmp() {
    // A paused VM (no guest needed): QEMU's calc-dirty-rate samples its
    // memory and, nothing running, finds nothing dirtied.
    let tmp = tempfile::tempdir().unwrap();
    let sock = tmp.path().join("qmp.sock");
    let mut qemu = std::process::Command::new("qemu-system-x86_64")
        .args([
            "-M",
            "pc",
            "-m",
            "64M",
            "-nodefaults",
            "-display",
            "none",
            "-S",
            "-qmp",
        ])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        .spawn()
        .expect("qemu-system-x86_64");
    let out = advise(&[
        "--ram",
        "256MiB",
        "--dirty-rate",
        "measure",
        "--qmp",
        sock.to_str().unwrap(),
        "--link",
        "1gbit",
        "--max-downtime",
        "300ms",
        "--format",
        "json",
    ]);
    let _ = qemu.kill();
    let _ = qemu.wait();
    assert_exit(out.status, EXIT_OK, "advise --dirty-rate measure");
    let v: serde_json::Value = serde_json::from_slice(&shown(&out).stdout).unwrap();
    assert!(
        v["dirty_rate_source"]
            .as_str()
            .unwrap()
            .contains("calc-dirty-rate"),
        "{v}"
    );
    assert_eq!(v["dirty_rate_bytes_per_s"].as_f64(), Some(0.0), "{v}");
    // A socket nobody listens on: a clear error naming the flag.
    let dead = advise(&[
        "--ram",
        "256MiB",
        "--dirty-rate",
        "measure",
        "--qmp",
        "/nonexistent/qmp.sock",
        "--link",
        "1gbit",
        "--max-downtime",
        "300ms",
    ]);
    // Not bad input but a guest that cannot be reached: exit 1.
    assert_exit(dead.status, EXIT_FAILED, "advise --qmp on a dead socket");
    assert!(String::from_utf8_lossy(&dead.stderr).contains("--qmp /nonexistent/qmp.sock"));
}

/// A results directory under `tmp` holding this lab's link-speed runs
/// (the model's fitting fixture).
fn link_speed_results(tmp: &std::path::Path) -> std::path::PathBuf {
    let dir = tmp.join("fit");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/model/link-speed.jsonl"),
        dir.join("runs.jsonl"),
    )
    .unwrap();
    dir
}

#[test]
fn the_example_predicted_table_is_what_compare_prints_and_the_guide_quotes() {
    // The link-speed runs as the results directory they came from.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("link-speed/20261124T130353Z");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(
        root.join("fixtures/model/link-speed.jsonl"),
        dir.join("runs.jsonl"),
    )
    .unwrap();
    std::fs::copy(
        root.join("fixtures/model/link-speed.manifest.json"),
        dir.join("manifest.json"),
    )
    .unwrap();
    let out = migbench()
        .current_dir(tmp.path())
        .args(["compare", dir.to_str().unwrap(), "--predicted"])
        .exits(EXIT_OK);
    let shown = String::from_utf8_lossy(&out.stdout);
    let example =
        std::fs::read_to_string(root.join("reports/examples/link-speed/predicted.md")).unwrap();
    assert_eq!(
        shown, example,
        "regenerate reports/examples/link-speed/predicted.md (and the docs' figures) with this output"
    );
    // The guide quotes its summary line's two figures.
    let figure = |after: &str, unit: &str| {
        let rest = &shown[shown.find(after).expect(after) + after.len()..];
        rest[..rest.find(unit).expect(unit)].trim().to_string()
    };
    let quoted = format!(
        "`reports/examples/link-speed/predicted.md`: {} % and {} ms",
        figure("total time off by ", "%"),
        figure("downtime by ", "ms")
    );
    let guide = std::fs::read_to_string(root.join("docs/src/guide/predict.md")).unwrap();
    assert!(guide.contains(&quoted), "the guide should quote {quoted}");
}
