//! Real lab tests of storage (the lab tier): block migration in all
//! four modes with the disk verified on the destination, and a
//! destination killed during the disk mirror. They need root,
//! qemu-system-x86, qemu-nbd and the guest agent (`.ci/run` provides
//! them) and run one at a time (a shared lock).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use migbench_model::{Integrity, Outcome, RunRecord};

#[test]
fn block_migration_copies_the_disk_incremental_only_the_overlay_and_all_four_modes_keep_it_intact()
{
    let _g = lab_lock();
    // 64 MiB of base data ("OS image") + 16 MiB written before migration.
    let (_tmp, recs, _dir) = run_scenario("storage", EXIT_OK);
    assert_eq!(recs.len(), 4);
    for r in &recs {
        assert_eq!(r.outcome, Outcome::Completed, "{r:?}");
        assert_eq!(
            (r.integrity, r.disk_integrity),
            (Integrity::Ok, Integrity::Ok),
            "{r:?}"
        );
    }
    let (shared, block, inc, nbd) = (&recs[0], &recs[1], &recs[2], &recs[3]);
    assert_eq!(shared.disk_bytes, None, "shared storage moves no disk");
    assert_eq!(
        nbd.disk_bytes, None,
        "storage served over NBD does not move either"
    );
    // What crosses the link in the disk phase (storage.toml): the 64 MiB
    // base + 16 MiB written before the migration (block), the 16 MiB
    // overlay alone (block-incremental), plus what the guest writes at
    // 1 MB/s from the probing window before `migrate` (2 s) to the mirror
    // in sync; unwritten (zero) regions do not. Measured 2026-12-05: block
    // 90.6 MiB (expected 89.2), incremental 20.3 MiB (expected 19.6).
    let expected = |mib: f64, r: &RunRecord| {
        mib * MIB + 1e6 * (r.params.probe_before.ms() + r.disk_time_ms.unwrap()) / 1e3
    };
    let disk = block
        .disk_bytes
        .expect("block migration records its disk bytes") as f64;
    let overlay = inc.disk_bytes.expect("incremental records its disk bytes") as f64;
    let (disk_s, inc_s) = (
        block.disk_time_ms.unwrap() / 1e3,
        inc.disk_time_ms.unwrap() / 1e3,
    );
    let wire_s = disk * 8.0 / 100e6;
    let extra_s = (block.total_time_ms.unwrap() - shared.total_time_ms.unwrap()) / 1e3;
    eprintln!(
        "disk phase: block {:.1} MiB in {disk_s:.2} s (expected {:.1} MiB; {wire_s:.2} s of link), {extra_s:.2} s longer than shared; incremental {:.1} MiB in {inc_s:.2} s (expected {:.1} MiB)",
        disk / MIB,
        expected(80.0, block) / MIB,
        overlay / MIB,
        expected(16.0, inc) / MIB
    );
    assert_within_15_percent(disk, expected(80.0, block), "block migration's disk bytes");
    assert_within_15_percent(
        overlay,
        expected(16.0, inc),
        "incremental migration's disk bytes",
    );
    // The disk phase takes at least its bytes' time on the 100 Mbit link
    // (−10 %: the counters' moments), and the mirror keeps the link busy
    // (the phase at most 1.5× that; measured 1.00×: 7.63 s for 7.60 s).
    assert!(
        (wire_s * 0.9..=wire_s * 1.5).contains(&disk_s),
        "the disk phase took {disk_s:.2} s; its bytes need {wire_s:.2} s on the link"
    );
    // The whole run is longer than shared storage's by about the disk
    // phase (measured 9.13 s for a 7.63 s phase).
    assert!(
        (wire_s * 0.9..=disk_s + 5.0).contains(&extra_s),
        "block took {extra_s:.2} s longer; its disk phase was {disk_s:.2} s, its bytes need {wire_s:.2} s"
    );
}

const MIB: f64 = 1048576.0;

/// `bytes` is within ±15 % of `expected`.
#[track_caller]
fn assert_within_15_percent(bytes: f64, expected: f64, what: &str) {
    assert!(
        (expected * 0.85..=expected * 1.15).contains(&bytes),
        "{what}: {:.1} MiB, expected {:.1} MiB ± 15 %",
        bytes / MIB,
        expected / MIB
    );
}

#[test]
fn a_destination_killed_during_the_disk_mirror_fails_the_run_and_the_next_run_starts_clean() {
    let _g = lab_lock();
    let (_tmp, root, child) = start_run("mirrorfail", "repetitions = 2\n[guest]\nram = \"256MiB\"\n[storage]\nmode = \"block\"\ndisk_size = \"256MiB\"\n[workload]\ndisk_fill = \"96MiB\"\n[link]\nrate = \"100mbit\"\n[migration]\ntimeout = \"120s\"\n");
    let pid = child.id();
    // The first run's source namespace; its migration link counts the mirror's bytes.
    let src_ns = format!("migbench-{pid}-0-src");
    let start = Instant::now();
    let tx = || migbench::lab::net::tx_bytes(&src_ns, "mig0").unwrap_or(0);
    // Kill the destination QEMU once ~20 MB of the 96 MiB disk crossed the link.
    while tx() < 20_000_000 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the mirror never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    kill_pidfile(Path::new(&format!("/tmp/migbench-{pid}-run0/dst.pid")));
    // A failed run makes migbench exit 1.
    child.wait_exit(EXIT_FAILED);
    let dir = results_dir(&root, "mirrorfail");
    let recs = records(&dir);
    assert_eq!(recs.len(), 2);
    let failed = &recs[0];
    assert_eq!(failed.outcome, Outcome::Failed, "{failed:?}");
    let err = failed.error.as_deref().unwrap();
    assert!(
        err.contains("mirror") && err.contains("still answers on the source"),
        "{err}"
    );
    assert_eq!(
        recs[1].outcome,
        Outcome::Completed,
        "the next run starts clean: {:?}",
        recs[1]
    );
    assert_eq!(recs[1].disk_integrity, Integrity::Ok);
    assert_nothing_left(pid);
}
