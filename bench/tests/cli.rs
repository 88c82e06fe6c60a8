//! `migbench`'s command line without the lab (the unit tier: no root, no
//! QEMU): scenarios refused with file, line, field and exit code 2 before
//! anything runs, and a good one's `--dry-run` plan.

mod common;

use common::*;

#[test]
fn a_bad_scenario_is_refused_with_file_line_field_and_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[guest]\nram = \"256MiB\"\nbogus = 1\n[link]\nrate = \"1gbit\"\n",
            3,
            "guest.bogus",
        ),
        (
            "[guest]\nram = \"256MiB\"\n[link]\nrate = \"100parsecs\"\n",
            4,
            "link.rate",
        ),
        (
            "[guest]\nram = \"-256MiB\"\n[link]\nrate = \"1gbit\"\n",
            2,
            "guest.ram",
        ),
    ];
    for (text, line, field) in cases {
        let sc = write_scenario(tmp.path(), "bad", text);
        let out = migbench()
            .args(["run", sc.to_str().unwrap(), "--dry-run"])
            .exits(EXIT_REFUSED);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("bad.toml:{line}:")), "{err}");
        assert!(err.contains(&format!("`{field}`")), "{err}");
    }
}

#[test]
fn a_dry_run_prints_the_plan_and_exits_0_without_root_or_qemu() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = write_scenario(
        tmp.path(),
        "plan",
        "repetitions = 2\n[guest]\nram = \"256MiB\"\n[link]\nrate = [\"100mbit\", \"1gbit\"]\n",
    );
    let out = migbench()
        .args(["run", sc.to_str().unwrap(), "--dry-run"])
        .arg("--results")
        .arg(tmp.path().join("results"))
        .exits(EXIT_OK);
    let plan = String::from_utf8_lossy(&out.stdout);
    assert_eq!(plan.matches("run-").count(), 4, "{plan}");
    assert!(
        !tmp.path().join("results").exists(),
        "a dry run wrote results"
    );
}

#[test]
fn every_commands_help_and_usage_errors_name_migbench_not_the_analyzer() {
    let subs = [
        "run",
        "image",
        "calibrate",
        "report",
        "compare",
        "summary",
        "export",
        "lab-hosts",
        "predict",
        "advise",
        "cleanup",
    ];
    for sub in subs {
        let out = migbench().args([sub, "--help"]).exits(EXIT_OK);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(
            help.contains(&format!("Usage: migbench {sub}")),
            "{sub}: {help}"
        );
        assert!(!help.contains("migbench-analyze"), "{sub}: {help}");
    }
    // A usage error of an analyzer command names the command typed.
    let out = migbench().args(["compare"]).exits(EXIT_REFUSED);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Usage: migbench compare"), "{err}");
    assert!(!err.contains("migbench-analyze"), "{err}");
}

#[test]
fn advise_format_json_prints_one_object_on_one_line() {
    let out = migbench()
        .args(["advise", "--ram", "1GiB", "--dirty-rate", "5MB/s"])
        .args([
            "--link",
            "1gbit",
            "--max-downtime",
            "300ms",
            "--format",
            "json",
        ])
        .exits(EXIT_OK);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert!(v["advice"].is_array(), "{v}");
}
