//! Real lab tests (the lab tier: `cargo test --features lab`): real QEMU
//! guests, network namespaces and tc-shaped links, driven through the
//! `migbench` binary exactly as a user runs it. They need root,
//! qemu-system-x86 and the guest agent (`.ci/run` provides all three).
//! They measure timing, so they run one at a time (a shared lock).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use migbench_model::{Integrity, Outcome};
#[test]
fn idle_guest_over_100mbit_fills_the_link_and_the_probe_sees_at_least_the_pause() {
    let _g = lab_lock();
    let (_tmp, recs, dir) = run_scenario("idle100", EXIT_OK);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.outcome, Outcome::Completed, "{r:?}");
    assert_eq!(r.integrity, Integrity::Ok);
    let util = r.throughput_mbps.unwrap() / r.link_rate_mbps;
    assert!(util >= 0.90, "link utilisation {util:.3}");
    assert!(util <= 1.0, "throughput above the link rate: {util:.3}");
    let (q, p) = (r.downtime_qemu_ms.unwrap(), r.downtime_probe_ms.unwrap());
    assert!(q > 0.0, "QEMU reported no downtime");
    assert!(p >= q - 1.0, "probe downtime {p} below QEMU's {q}");
    for f in [
        "progress.jsonl",
        "probes.csv",
        "workload.jsonl",
        "qemu-src.log",
        "guest-src.log",
    ] {
        assert!(dir.join("runs/run-0000").join(f).is_file(), "{f} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["qemu_version"].as_str().unwrap().contains("QEMU"));
}

#[test]
fn a_guest_that_cannot_converge_times_out_and_keeps_answering_on_the_source() {
    let _g = lab_lock();
    // 30 MB/s of dirtying over a 100 Mbit (12 MB/s) link with a 10 ms limit
    // never converges; a timed-out run is not a failed one (exit 0).
    let (_tmp, recs, dir) = run_scenario("stuck", EXIT_OK);
    let r = &recs[0];
    assert_eq!(r.outcome, Outcome::TimedOut, "{r:?}");
    assert_eq!(
        r.integrity,
        Integrity::Ok,
        "memory verified on the source after the cancel"
    );
    let total = r.total_time_ms;
    assert!(
        total.is_none(),
        "a timed-out run has no total time: {total:?}"
    );
    // Probes kept being answered after the cancel (the guest runs on the source).
    let text = std::fs::read_to_string(dir.join("runs/run-0000/probes.csv")).unwrap();
    let probes = migbench_model::record::read_probes_csv(&text).unwrap();
    let last_sent = probes.last().unwrap().sent_ms;
    let answered_late = probes
        .iter()
        .filter(|e| e.sent_ms > last_sent - 1000.0 && e.recv_ms.is_some())
        .count();
    assert!(
        answered_late > 100,
        "only {answered_late} probes answered in the last second"
    );
}

#[test]
fn calibrating_200ms_pauses_none_short_median_under_2_5ms_one_at_most_over_25ms() {
    let _g = lab_lock();
    let (_, rows) = calibrate_json(&[
        "--pauses",
        "200ms",
        "--repeat",
        "11",
        "--interval",
        "1ms",
        "--service",
        "udp",
    ]);
    assert_eq!(rows.len(), 11);
    // The error (probe outage − true pause) is the sum of the half-interval
    // estimate's quantisation (±0.5 ms), the uncertainty of the true pause
    // (half of each QMP exchange) and the guest's latency in answering
    // once resumed, which is part of what a client sees. That latency has
    // a tail from the guest's user-space agent: measured 2026-12-05 here
    // (TCG, 2 cores), 300 pauses of `calibrate --pauses 200ms --interval
    // 1ms`: UDP p50 +1.39 / +0.79 / +1.58, max +11.18 / +2.98 / +5.48 ms
    // (quiet / beside a busy loop / with ICMP); in the last run ICMP,
    // answered by the guest's kernel, saw the same pauses at p50 +0.90,
    // max +2.07 ms. So one pause's error is no claim (this test once
    // asserted ±3 ms each; CI saw +3.50); the median of 11 is: P(error >
    // 2.5 ms) = 0.063 over the 300, so P(median > 2.5 ms) ≈ 2e-5.
    let mut errors = Vec::new();
    for r in &rows {
        let e = r["error_ms"].as_f64().expect("a measured outage");
        let spans =
            r["stop_exchange_ms"].as_f64().unwrap() + r["cont_exchange_ms"].as_f64().unwrap();
        // Replies cannot stop later than the stop or resume before the
        // cont, so only quantisation and the marks' uncertainty (and
        // 0.25 ms for a reply already leaving QEMU) make it short.
        let floor = -(0.5 + spans / 2.0 + 0.25);
        assert!(
            e >= floor,
            "calibration error {e:+.2} ms below {floor:+.2}: {rows:?}"
        );
        errors.push(e);
    }
    errors.sort_by(f64::total_cmp);
    // A gross bound: the guest answers within 25 ms of resuming, but for
    // at most one pause of the 11. The worst of the 300 above was +11.18
    // ms and of 60 more beside two host busy loops (2026-12-06) +7.99 ms
    // (p50 +2.16); then CI, on a shared host, saw +32.25 ms once among
    // ten under +2.1 ms. The prober's threads are SCHED_FIFO and stamp
    // replies in the kernel, so the late answer is the guest's (its vCPU
    // thread left unscheduled on a busy host, or the guest's own
    // scheduling), and a client would see it too. This bound asserted
    // each pause until then. With one such tail in 371 pauses, two in 11
    // has P ≈ 4e-4.
    let second_worst = errors[errors.len() - 2];
    assert!(
        second_worst <= 25.0,
        "two calibration errors over 25 ms: {errors:?}"
    );
    let median = errors[errors.len() / 2];
    assert!(
        median <= 2.5,
        "median calibration error {median:+.2} ms: {errors:?}"
    );
}

#[test]
fn interrupting_a_migration_keeps_finished_runs_and_leaves_nothing_behind() {
    let _g = lab_lock();
    // Run 0 finishes quickly; run 1 cannot converge and is interrupted mid-migration.
    let (_tmp, root, child) = start_run("intr", "[guest]\nram = \"256MiB\"\n[workload]\ndirty_rate = [\"0\", \"30MB/s\"]\n[link]\nrate = \"100mbit\"\n[migration]\ndowntime_limit = \"10ms\"\ntimeout = \"120s\"\n");
    let pid = child.id();
    let start = Instant::now();
    // Wait for run 0's record; run 1 starts right after it.
    let dir = first_run_recorded(&root, "intr");
    // Boot (~3 s), fill, baseline (2 s), then migration; interrupt well inside it.
    std::thread::sleep(Duration::from_secs(12));
    signal(pid as i32, nix::sys::signal::Signal::SIGINT);
    child.wait_exit_within(
        EXIT_INTERRUPTED,
        Duration::from_secs(300).saturating_sub(start.elapsed()),
    );
    let recs = records(&dir);
    assert_eq!(recs[0].outcome, Outcome::Completed);
    assert_eq!(recs.len(), 2, "the interrupted run is recorded too");
    assert_eq!(recs[1].outcome, Outcome::Interrupted);
    assert_nothing_left(pid);
}

#[test]
fn a_killed_matrix_resumes_where_it_stopped_and_ends_as_if_run_in_one_go() {
    let _g = lab_lock();
    // Three quick runs at 1 Gbit; migbench is SIGKILLed during the second.
    let text = "repetitions = 3\n[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n";
    let (tmp, root, child) = start_run("resume", text);
    let pid = child.id();
    let dir = first_run_recorded(&root, "resume");
    std::thread::sleep(Duration::from_secs(4));
    child.kill_and_wait();
    let scenario = tmp.path().join("resume.toml");
    // A changed scenario is refused, naming the line, before anything runs.
    let changed = tmp.path().join("changed.toml");
    std::fs::write(&changed, text.replace("1gbit", "100mbit")).unwrap();
    let out = resume(&changed, &root, &dir, EXIT_REFUSED);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 5") && err.contains("100mbit"), "{err}");
    // The same scenario resumes: the killed run is swept and redone.
    resume(&scenario, &root, &dir, EXIT_OK);
    let recs = records(&dir);
    let ids: Vec<usize> = recs.iter().map(|r| r.params.index).collect();
    assert_eq!(ids, vec![0, 1, 2], "each run once, in matrix order");
    assert_all_completed(&recs);
    assert!(dir.join("runs/run-0001/probes.csv").is_file());
    assert_nothing_left(pid);
}

#[test]
fn a_second_run_on_the_host_is_refused_with_the_first_ones_pid() {
    let _g = lab_lock();
    let (_tmp, root, first) = start_run(
        "first",
        "[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n",
    );
    // Wait until the first holds the lock (its results directory exists).
    let start = Instant::now();
    while !root.join("first").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the first run never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let tmp2 = tempfile::tempdir().unwrap();
    let sc = write_scenario(
        tmp2.path(),
        "second",
        "[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n",
    );
    let out = run_cmd(&sc, &tmp2.path().join("results")).exits(EXIT_REFUSED);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("pid {}", first.id())) && err.contains("--allow-concurrent"),
        "{err}"
    );
    assert!(!tmp2.path().join("results").exists(), "nothing was started");
    first.wait_exit(EXIT_OK);
}

#[test]
fn the_quick_scenario_completes_and_its_report_renders_with_matching_numbers() {
    let _g = lab_lock();
    let tmp = tempfile::tempdir().unwrap();
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/quick.toml");
    let root = tmp.path().join("results");
    run_cmd(&scenario, &root).exits(EXIT_OK);
    let dir = results_dir(&root, "quick");
    let recs = records(&dir);
    assert_eq!(recs.len(), 4);
    for r in &recs {
        assert_eq!(
            (r.outcome, r.integrity),
            (Outcome::Completed, Integrity::Ok),
            "{}",
            r.run_id
        );
        assert!(
            r.downtime_probe_ms.unwrap() >= r.downtime_qemu_ms.unwrap() - 1.0,
            "{r:?}"
        );
    }
    let rep = report(&dir, &tmp.path().join("reports"), "q");
    // Link rate and dirty rate vary; downtime limit does not.
    for chart in [
        "total-time",
        "downtime",
        "throughput",
        "link-utilisation",
        "total-time-vs-dirty-rate",
        "convergence",
        "rtt-cdf",
    ] {
        for ext in ["svg", "png"] {
            assert!(
                rep.join(format!("{chart}.{ext}")).is_file(),
                "{chart}.{ext} missing"
            );
        }
    }
    assert!(
        !rep.join("downtime-vs-limit.svg").exists(),
        "a chart for a dimension that did not vary"
    );
    let timelines = std::fs::read_dir(&rep)
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name().to_string_lossy().starts_with("timeline-")
                && e.file_name().to_string_lossy().ends_with(".svg")
        })
        .count();
    assert_eq!(timelines, 4);
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    // Self-contained: no scripts and nothing fetched (the SVG namespace URI is not a fetch).
    for external in [
        "<script",
        "src=",
        "href=\"http",
        "url(http",
        "@import",
        "@font-face",
    ] {
        assert!(
            !html.contains(external),
            "report must be self-contained: found {external}"
        );
    }
    // Numbers match runs.jsonl: one run per group, so the median is the run's value.
    let csv = std::fs::read_to_string(rep.join("summary.csv")).unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 4);
    for r in &recs {
        let row = rows
            .iter()
            .find(|row| {
                row[col("link_rate")] == r.params.link_rate.to_string()
                    && row[col("dirty_rate")] == r.params.dirty_rate.to_string()
            })
            .expect("a summary row per run");
        let median = |m: &str| row[col(&format!("{m}_median"))].parse::<f64>().unwrap();
        assert!((median("total_time_s") - r.total_time_ms.unwrap() / 1e3).abs() < 1e-9);
        assert!((median("downtime_probe_ms") - r.downtime_probe_ms.unwrap()).abs() < 1e-9);
        assert!((median("throughput_mbps") - r.throughput_mbps.unwrap()).abs() < 1e-9);
        assert_eq!(row[col("completed")], "1");
    }
    let ink = screenshot_ink(&rep.join("index.html"), &tmp.path().join("shot.png"));
    assert!(
        ink > 0.02,
        "the rendered report looks blank ({ink:.4} of pixels inked)"
    );
}

/// A tmpfs mounted for one test, unmounted on drop.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_disk_that_fills_during_a_matrix_fails_cleanly_and_keeps_the_runs_before_it() {
    let _g = lab_lock();
    let tmp = tempfile::tempdir().unwrap();
    // Results on a small disk of their own; a results disk too small for
    // the matrix is refused before anything starts.
    let mnt = tmp.path().join("disk");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=300m", "tmpfs"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a tmpfs");
    let _disk = Tmpfs(mnt.clone());
    let text = "repetitions = 3\n[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n";
    let sc = write_scenario(tmp.path(), "full", text);
    let big = write_scenario(
        tmp.path(),
        "huge",
        &text.replace("repetitions = 3", "repetitions = 3000"),
    );
    let out = run_cmd(&big, &mnt).exits(EXIT_REFUSED);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("results disk") && err.contains("MiB free"),
        "{err}"
    );
    // The disk fills once the first run is recorded.
    let child = spawn_run(&sc, &mnt);
    let pid = child.id();
    let dir = first_run_recorded(&mnt, "full");
    let mut filler = std::fs::File::create(mnt.join("filler")).unwrap();
    let chunk = vec![0u8; 1 << 20];
    while std::io::Write::write_all(&mut filler, &chunk).is_ok() {}
    drop(filler);
    // A full disk is a failure, whether the runs after the first were
    // recorded failed or one could not be recorded at all (docs/src/guide/results.md,
    // exit 1, `--resume` redoes it).
    child.wait_exit(EXIT_FAILED);
    // Every line of runs.jsonl is a whole record, the first one completed;
    // whatever came after it failed.
    let recs = records(&dir);
    assert_eq!(recs[0].outcome, Outcome::Completed);
    for r in &recs[1..] {
        assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    }
    let tmp_files: Vec<_> = walk(&dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(tmp_files.is_empty(), "partial files left: {tmp_files:?}");
    assert_nothing_left(pid);
    // The runs not recorded are run once there is room; the failed ones
    // are kept (a finished run is not redone) and still make it exit 1.
    std::fs::remove_file(mnt.join("filler")).unwrap();
    let want = if recs.len() > 1 { EXIT_FAILED } else { EXIT_OK };
    resume(&sc, &mnt, &dir, want);
    let after = records(&dir);
    assert_eq!(after.len(), 3, "{after:?}");
    for (i, r) in after.iter().enumerate() {
        let kept = recs.get(i).map_or(Outcome::Completed, |r| r.outcome);
        assert_eq!(r.outcome, kept, "{after:?}");
    }
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn auto_repetitions_run_cells_in_turn_until_each_is_precise() {
    let _g = lab_lock();
    let (tmp, recs, dir) = run_scenario("auto", EXIT_OK);
    let sc = migbench_model::Scenario::load(&tmp.path().join("auto.toml")).unwrap();
    let migbench_model::repeat::Repetitions::Auto(a) = sc.repetitions else {
        panic!("auto scenario")
    };
    // Recorded in the order they ran: round-robin, repetition by repetition.
    let order: Vec<(u32, usize)> = recs
        .iter()
        .map(|r| (r.params.repetition, r.params.index))
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "cells interleaved: {order:?}");
    for cell in 0..2 {
        let runs: Vec<&migbench_model::RunRecord> =
            recs.iter().filter(|r| r.params.index / 4 == cell).collect();
        let n = runs.len();
        assert!((2..=4).contains(&n), "cell {cell}: {n} runs");
        assert!(
            runs.iter().all(|r| r.outcome == Outcome::Completed),
            "{runs:?}"
        );
        // The stopping rule: stopped at the first count that was precise
        // enough, or at the maximum.
        if n < 4 {
            assert_eq!(a.reached(&runs), Some(true), "cell {cell} stopped early");
        }
        if n > 2 {
            assert_eq!(
                a.reached(&runs[..n - 1]),
                Some(false),
                "cell {cell} ran one too many"
            );
        }
    }
    let page = report(&dir, &tmp.path().join("reports"), "auto").join("index.html");
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("<h2>Repetitions</h2>") && html.contains("stopped because"));
}

#[test]
fn a_snapshot_started_guest_migrates_intact_and_its_saved_state_reads_back() {
    let _g = lab_lock();
    let (_tmp, recs, dir) = run_scenario("fast", EXIT_OK);
    assert_eq!(recs.len(), 2);
    for r in &recs {
        assert_eq!(
            (r.outcome, r.integrity),
            (Outcome::Completed, Integrity::Ok),
            "{r:?}"
        );
        // Restored, not booted: the source waited for the saved state.
        let cmdline = run_file(&dir, &r.run_id, "qemu-src.cmdline");
        assert!(cmdline.contains("-incoming fd:0"), "{cmdline}");
        // The probing windows asked for: half a second of RTT samples
        // at 1 ms before the migration.
        let before = r.rtt.before.as_ref().map_or(0, |b| b.n);
        assert!((300..=900).contains(&before), "{before} samples before");
    }
    let saved = std::fs::read_dir(migbench::lab::image::cache_dir().join("snapshots"))
        .unwrap()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "state"));
    assert!(saved, "no saved state in the cache");
    // Each saved state reads back page by page: a 256 MiB guest's top
    // 16 MiB hold its page array (4.2 MB) and initramfs (1.7 MB), and far
    // from all its 268 MB is non-zero. Line: name, RAM, all, top 16/32/64.
    let out = migbench()
        .args(["image", "--saved-states"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let held = |l: &str| {
        let w: Vec<f64> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        w.len() == 5 && w[1] < 200.0 && (5.9..=16.8).contains(&w[2])
    };
    let mine: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(".state  256 MiB"))
        .collect();
    assert!(
        out.status.success() && !mine.is_empty() && mine.iter().all(|l| held(l)),
        "{text}"
    );
}
