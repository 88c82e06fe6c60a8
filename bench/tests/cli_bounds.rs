//! Bounded work and quantities at the command line (unit tier: no root,
//! no QEMU): `run`, `run --dry-run` and `predict` refuse a matrix above
//! the limits with exit code 2 before expanding it, and a quantity out of
//! range is refused with exit code 2 in the user's own notation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn migbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_migbench"))
        .args(args)
        .output()
        .expect("migbench starts")
}

fn scenario(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn a_billion_repetitions_exit_2_naming_the_factors_in_run_dry_run_and_predict() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = scenario(
        tmp.path(),
        "big",
        "repetitions = 1000000000\n[guest]\nram = \"256MiB\"\n[link]\nrate = [\"100mbit\", \"1gbit\"]\n",
    );
    let sc = sc.to_str().unwrap();
    let results = tmp.path().join("results");
    let results = results.to_str().unwrap();
    for args in [
        vec!["run", sc, "--dry-run"],
        vec!["run", sc, "--results", results],
        vec!["predict", sc],
    ] {
        let out = migbench(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains("big.toml: the matrix has 2000000000 runs"),
            "{err}"
        );
        assert!(
            err.contains("link.rate 2 × repetitions 1000000000 = 2000000000"),
            "{err}"
        );
        assert!(err.contains("`--max-runs 2000000000`"), "{err}");
        assert!(!err.contains("memory allocation"), "{err}");
    }
}

#[test]
fn a_large_accepted_dry_run_says_its_size_and_duration_first() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = scenario(
        tmp.path(),
        "wide",
        "repetitions = 6000\n[guest]\nram = \"256MiB\"\n[link]\nrate = [\"100mbit\", \"1gbit\"]\n",
    );
    let sc = sc.to_str().unwrap();
    let refused = migbench(&["run", sc, "--dry-run"]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("12000 runs, more than the limit of 10000"),
        "{err}"
    );
    let out = migbench(&["run", sc, "--dry-run", "--max-runs", "12000"]);
    assert_eq!(out.status.code(), Some(0));
    let plan = String::from_utf8_lossy(&out.stdout);
    let first = plan.lines().next().unwrap();
    assert!(
        first.starts_with("matrix: 12000 runs, estimated "),
        "{first}"
    );
    assert!(first.ends_with(" h"), "{first}");
    let tight = migbench(&[
        "run",
        sc,
        "--dry-run",
        "--max-runs",
        "12000",
        "--max-duration",
        "1h",
    ]);
    assert_eq!(tight.status.code(), Some(2));
    let err = String::from_utf8_lossy(&tight.stderr);
    assert!(err.contains("`--max-duration "), "{err}");
}

#[test]
fn a_quantity_out_of_range_exits_2_naming_the_flag_or_field_and_the_range() {
    let out = migbench(&[
        "advise",
        "--ram",
        "1GiB",
        "--dirty-rate",
        "10MB/s",
        "--link",
        "99999999999gbit",
        "--max-downtime",
        "300ms",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--link"), "{err}");
    assert!(
        err.contains("`99999999999gbit` is out of range: a link rate is at most 18446744073gbit"),
        "{err}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let sc = scenario(
        tmp.path(),
        "huge",
        "[guest]\nram = \"256MiB\"\n[workload]\ndirty_rate = \"1e30MB/s\"\n[link]\nrate = \"1gbit\"\n",
    );
    for cmd in ["run", "predict"] {
        let mut args = vec![cmd, sc.to_str().unwrap()];
        if cmd == "run" {
            args.push("--dry-run");
        }
        let out = migbench(&args);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("huge.toml:4:"), "{err}");
        assert!(err.contains("field `workload.dirty_rate`"), "{err}");
        assert!(
            err.contains("a byte rate is at most 18446744073709MB/s"),
            "{err}"
        );
    }
}

#[test]
fn qemus_1g_is_a_size_and_a_bare_duration_asks_for_a_unit() {
    let advise = |ram: &str, downtime: &str| {
        migbench(&[
            "advise",
            "--ram",
            ram,
            "--dirty-rate",
            "10MB/s",
            "--link",
            "1gbit",
            "--max-downtime",
            downtime,
        ])
    };
    let out = advise("1G", "300ms");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = advise("1G", "300");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--max-downtime"), "{err}");
    assert!(
        err.contains("`300` has no unit: add a unit: 300ms"),
        "{err}"
    );
    let out = advise("1PiB", "300ms");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the largest is TiB"), "{err}");
}

#[test]
fn a_scenario_that_is_a_pipe_a_device_or_a_directory_exits_2_at_once() {
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("scenario.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let dir = tmp.path().to_str().unwrap().to_string();
    for (path, kind) in [
        (fifo.to_str().unwrap(), "is a named pipe"),
        ("/dev/zero", "is a device"),
        (dir.as_str(), "is a directory"),
    ] {
        for args in [vec!["run", path, "--dry-run"], vec!["predict", path]] {
            // Opening a FIFO with no writer blocks: the refusal must come
            // from looking at it, not from reading it.
            let start = std::time::Instant::now();
            let out = migbench(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(err.contains(&format!("{path}: {kind}")), "{err}");
            assert!(err.contains("regular file"), "{err}");
            assert!(start.elapsed() < std::time::Duration::from_secs(5));
        }
    }
    // Too large for a scenario: refused naming its size.
    let big = tmp.path().join("big.toml");
    std::fs::write(&big, "#".repeat(2 << 20)).unwrap();
    let out = migbench(&["run", big.to_str().unwrap(), "--dry-run"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("is 2097152 bytes: a scenario is at most 1048576 bytes"),
        "{err}"
    );
}
