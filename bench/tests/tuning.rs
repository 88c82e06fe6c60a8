//! Real lab tests of the migration knobs and the convergence policies:
//! small real migrations (256 MiB guests under TCG) through the `migbench`
//! binary, each knob and each policy checked by what it did — in QEMU's
//! read-back settings, its counters, the interface counters and the
//! probe — not just by the run completing.

mod common;

use std::path::Path;

use common::*;
use migbench_model::record::{Action, OutcomeDetail};
use migbench_model::{Integrity, Outcome, RunRecord};
use serde_json::Value;

/// What the run's QEMUs reported holding after migbench set them up.
fn settings(dir: &Path, r: &RunRecord) -> Value {
    serde_json::from_str(&run_file(dir, &r.run_id, "migration-settings.json")).unwrap()
}

fn has_cap(s: &Value, side: &str, cap: &str) -> bool {
    s[side]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c == cap)
}

fn completed_intact(r: &RunRecord) {
    assert_eq!(r.outcome, Outcome::Completed, "{}: {r:?}", r.params.variant);
    assert_eq!(r.integrity, Integrity::Ok, "{}", r.params.variant);
}

#[test]
fn each_knob_reaches_qemu_and_shows_its_effect() {
    let _g = lab_lock();
    let (_tmp, recs, dir) = run_scenario("knobs", EXIT_OK);
    assert_eq!(recs.len(), 5);
    for r in &recs {
        completed_intact(r);
    }

    // downtime_limit: QEMU holds the value; a looser limit lets it stop
    // the guest for longer. Not in fewer passes as QEMU counts them:
    // dirty-sync-count counts every bitmap sync, and QEMU 7.2 syncs at
    // each check once what remains is below the limit's worth, which a
    // 1 s limit (120 MB at 1 Gbit) reaches halfway through the first
    // pass: CI saw 5 syncs with the 1 s limit and 4 with 30 ms
    // (2026-12-06), where this test had asserted no more.
    let (tight, loose) = (
        by_variant(&recs, "limit-30ms"),
        by_variant(&recs, "limit-1000ms"),
    );
    assert_eq!(
        settings(&dir, tight)["source"]["parameters"]["downtime-limit"],
        30
    );
    assert_eq!(
        settings(&dir, loose)["source"]["parameters"]["downtime-limit"],
        1000
    );
    let (dt, dl) = (
        tight.downtime_qemu_ms.unwrap(),
        loose.downtime_qemu_ms.unwrap(),
    );
    assert!(
        dl > dt,
        "downtime with a 1 s limit {dl} ms not above the 30 ms limit's {dt} ms"
    );
    assert!(
        dl <= 1000.0 * 1.5,
        "downtime {dl} ms far above its 1 s limit"
    );
    // The client never sees less than QEMU's pause.
    assert!(loose.downtime_probe_ms.unwrap() >= dl - 1.0);

    // max_bandwidth: the cap, not the 1 Gbit link, sets the pace.
    let capped = by_variant(&recs, "capped");
    assert_eq!(
        settings(&dir, capped)["source"]["parameters"]["max-bandwidth"],
        30_000_000
    );
    let t = capped.throughput_mbps.unwrap();
    assert!(
        t <= 240.0 * 1.1,
        "throughput {t} Mbit/s above the 240 Mbit/s cap"
    );
    assert!(t >= 240.0 * 0.6, "throughput {t} Mbit/s far below the cap");

    // multifd + zstd: both sides run channels with compression, and fewer
    // bytes cross the wire than QEMU transferred.
    let mf = by_variant(&recs, "multifd-zstd");
    let s = settings(&dir, mf);
    for side in ["source", "destination"] {
        assert!(has_cap(&s, side, "multifd"), "{side}: {s}");
        assert_eq!(s[side]["parameters"]["multifd-channels"], 2);
        assert_eq!(s[side]["parameters"]["multifd-compression"], "zstd");
    }
    assert!(
        mf.multifd_bytes.unwrap() > 32 << 20,
        "{:?}",
        mf.multifd_bytes
    );
    let ratio = mf.transferred_bytes.unwrap() as f64 / mf.wire_bytes.unwrap() as f64;
    assert!(
        ratio > 1.5,
        "zstd saved too little: transferred/wire = {ratio:.2}"
    );
    let plain = tight.transferred_bytes.unwrap() as f64 / tight.wire_bytes.unwrap() as f64;
    assert!(
        plain < 1.1,
        "uncompressed run transferred/wire = {plain:.2}"
    );

    // announce: the destination announces with the configured timing.
    let an = settings(&dir, by_variant(&recs, "announce"));
    let dst = &an["destination"]["parameters"];
    assert_eq!(
        (
            &dst["announce-initial"],
            &dst["announce-max"],
            &dst["announce-rounds"],
            &dst["announce-step"]
        ),
        (&10.into(), &40.into(), &3.into(), &15.into())
    );
    // Other runs keep QEMU's defaults.
    assert_eq!(
        settings(&dir, tight)["destination"]["parameters"]["announce-rounds"],
        5
    );
}

#[test]
fn policies_finish_or_abort_a_guest_that_cannot_converge() {
    let _g = lab_lock();
    let (tmp, recs, dir) = run_scenario("policies", EXIT_OK);
    assert_eq!(recs.len(), 8);
    let poll = poll_ms(tmp.path(), "policies");

    // Completion timeout with abort: cancelled at 20 s, guest intact on the source.
    let ab = by_variant(&recs, "abort");
    assert_eq!(ab.outcome, Outcome::Aborted, "{ab:?}");
    assert_eq!(ab.outcome_detail, Some(OutcomeDetail::Aborted));
    assert_eq!(
        ab.integrity,
        Integrity::Ok,
        "guest not intact on the source"
    );
    assert_eq!(ab.interventions.len(), 1);
    let i = &ab.interventions[0];
    assert_eq!(i.action, Action::Abort);
    assert!(
        (20_000.0..22_000.0).contains(&i.t_ms),
        "aborted at {} ms",
        i.t_ms
    );
    assert_eq!(i.state.status, "active");
    assert!(i.state.remaining > 0);
    assert!(ab.downtime_qemu_ms.is_none());

    // No progress: remaining RAM stops reaching new lows, so it aborts
    // 6 s (progress_timeout) after the last new low, within two polls,
    // long before the 100 s timeout (2026-12-05: 6099 ms after it).
    let np = by_variant(&recs, "no-progress");
    assert_eq!(np.outcome, Outcome::Aborted, "{np:?}");
    assert!(np.finished_by.as_deref().unwrap().contains("no progress"));
    let i = &np.interventions[0];
    let stuck = i.t_ms - no_progress_since_ms(&dir, np, i);
    eprintln!(
        "no progress: aborted at {:.0} ms, {stuck:.0} ms after the last new low",
        i.t_ms
    );
    assert!(
        (6000.0..=6000.0 + 2.0 * poll).contains(&stuck),
        "aborted {stuck:.0} ms after the last new low (at {} ms)",
        i.t_ms
    );
    assert_eq!(np.integrity, Integrity::Ok);

    // Downtime stepping: the limit rises on Nova's schedule (base 2 s,
    // then +1.5 s every 2 s for a guest counted as 2 GiB), each step
    // within a poll + 200 ms of its time, until it converges (2026-12-05:
    // 1–2 ms after it, steps at 2002, 4002, 6002 and 8001 ms).
    let st = by_variant(&recs, "stepping");
    completed_intact(st);
    assert_eq!(st.outcome_detail, Some(OutcomeDetail::Stepped));
    assert!(!st.interventions.is_empty());
    assert_on_nova_schedule(st, 1000.0, 4.0, 8000.0, poll);
    let final_limit = st.downtime_limit_final_ms.unwrap();
    assert_eq!(final_limit, st.interventions.last().unwrap().value.unwrap());
    let d = st.downtime_qemu_ms.unwrap();
    assert!(
        d > 300.0 && d <= final_limit * 1.2,
        "downtime {d} ms, limit {final_limit}"
    );

    // Scheduled post-copy: switched after pass 2, finished in post-copy
    // with pages fetched on demand; the pause itself is short.
    let pc = by_variant(&recs, "postcopy");
    completed_intact(pc);
    assert_eq!(pc.outcome_detail, Some(OutcomeDetail::Postcopy));
    assert_eq!(pc.interventions[0].action, Action::StartPostcopy);
    assert!(pc.interventions[0].state.passes >= 2);
    assert!(pc.postcopy_time_ms.unwrap() > 0.0);
    assert!(pc.postcopy_requests.unwrap() > 0);
    assert!(pc.downtime_qemu_ms.unwrap() < 1000.0);
    let s = settings(&dir, pc);
    assert!(has_cap(&s, "source", "postcopy-ram") && has_cap(&s, "destination", "postcopy-ram"));
    let events = run_file(&dir, &pc.run_id, "events.jsonl");
    assert!(events.contains("postcopy-active"), "{events}");
    assert!(events.contains("\"pass\":2"), "{events}");

    // Force-complete: post-copy where allowed, else a paused guest whose
    // whole pause the client sees.
    let fp = by_variant(&recs, "force-postcopy");
    completed_intact(fp);
    assert_eq!(fp.outcome_detail, Some(OutcomeDetail::Forced));
    assert_eq!(fp.interventions[0].action, Action::StartPostcopy);
    assert!(fp.postcopy_time_ms.is_some());
    let fz = by_variant(&recs, "force-pause");
    completed_intact(fz);
    assert_eq!(fz.outcome_detail, Some(OutcomeDetail::Forced));
    assert_eq!(fz.interventions[0].action, Action::PauseGuest);
    let paused = fz.paused_ms.unwrap();
    assert!(paused > 1000.0, "paused {paused} ms");
    let probe = fz.downtime_probe_ms.unwrap();
    assert!(
        probe >= paused * 0.9,
        "client saw {probe} ms of a {paused} ms pause"
    );

    // XBZRLE: pages re-dirtied across passes go as deltas against the
    // cache, and with 75 % of each page unchanged that is enough to converge.
    let xb = by_variant(&recs, "xbzrle");
    completed_intact(xb);
    assert_eq!(xb.outcome_detail, Some(OutcomeDetail::Converged));
    assert!(xb.finished_by.as_deref().unwrap().contains("xbzrle"));
    let s = settings(&dir, xb);
    assert!(has_cap(&s, "source", "xbzrle"));
    assert_eq!(s["source"]["parameters"]["xbzrle-cache-size"], 128 << 20);
    let stats = xb.xbzrle.expect("xbzrle statistics recorded");
    assert!(stats.pages > 0, "no page went as a delta: {stats:?}");
    assert!(stats.encoding_rate > 1.0, "{stats:?}");

    // Auto-converge: once the dirty rate outruns the link QEMU throttles
    // the vCPU to 99 %, and the (rate-paced) workload slows down with it.
    // Lower throttles barely touch a paced workload, hence 99/1/99.
    let ac = by_variant(&recs, "auto-converge");
    assert!(
        matches!(ac.outcome, Outcome::Completed | Outcome::Aborted),
        "{ac:?}"
    );
    assert_eq!(ac.integrity, Integrity::Ok);
    assert_eq!(ac.max_throttle_pct, Some(99.0), "{ac:?}");
    assert!(has_cap(&settings(&dir, ac), "source", "auto-converge"));
    // The claim is about the throttled time: the workload's rate from a
    // second after QEMU first reported 99 % (its window ends then) to the
    // run's end, against its rate before the migration. The record's
    // slowdown averages the whole migration, so a throttle that came late
    // barely moves it (CI once: 0.3 % against the unthrottled 0.2 %, the
    // run aborted after 22 passes; here the same variant converged with
    // 31 %). With less than 2 s throttled there is nothing to judge.
    let abort_slow = ab.workload_slowdown_pct.unwrap();
    let (throttled_s, rate) = throttled_rate(&dir, ac);
    let before = ac.workload_rate_before_mbs.unwrap();
    eprintln!(
        "auto-converge: whole migration slowed {:.1} % (unthrottled {abort_slow:.1} %); \
         throttled 99 % for {throttled_s:.1} s at {rate:?} MB/s against {before:.2} MB/s before",
        ac.workload_slowdown_pct.unwrap()
    );
    if throttled_s >= 2.0 {
        // No sample window completed in 2 s or more of throttling (CI:
        // 26.1 s throttled, none; the agent keeps its samples and the
        // last fetch comes after the throttle ends, so none were lost):
        // the workload wrote nothing it could count, a full slowdown.
        let slow = (1.0 - rate.unwrap_or(0.0) / before) * 100.0;
        assert!(
            slow > abort_slow + 5.0,
            "throttled workload slowed {slow:.1} %, unthrottled {abort_slow:.1} %"
        );
    }
}

/// How long run `r` was throttled at 99 % or more (from a second after
/// QEMU first reported it to the last progress sample), s, and the
/// workload's mean rate over that time, MB/s (`None` without samples).
fn throttled_rate(dir: &Path, r: &RunRecord) -> (f64, Option<f64>) {
    let progress: Vec<migbench_model::ProgressSample> = run_file(dir, &r.run_id, "progress.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let Some(from) = progress
        .iter()
        .find(|p| p.throttle_pct.is_some_and(|t| t >= 99.0))
        .map(|p| p.t_ms + 1000.0)
    else {
        return (0.0, None);
    };
    let to = progress.last().map_or(from, |p| p.t_ms);
    let work: Vec<migbench_model::WorkloadSample> = run_file(dir, &r.run_id, "workload.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let (bytes, ms) = work
        .iter()
        .filter(|w| w.t_ms - w.window_ms >= from && w.t_ms <= to)
        .fold((0u64, 0.0), |(b, m), w| (b + w.bytes, m + w.window_ms));
    (
        ((to - from) / 1e3).max(0.0),
        (ms > 0.0).then(|| bytes as f64 / (ms / 1e3) / 1e6),
    )
}

#[test]
fn a_setting_this_qemu_lacks_is_refused_before_any_run_naming_it_and_the_version() {
    let _g = lab_lock();
    for (field, line) in [
        ("migration.dirty_limit", "dirty_limit = \"10MB/s\""),
        (
            "migration.multifd_compression",
            "multifd_channels = 2\nmultifd_compression = \"qpl\"",
        ),
        // QEMU 7.2 accepts a zstd level but keeps 1: refused as ignored.
        (
            "migration.multifd_compression_level",
            "multifd_channels = 2\nmultifd_compression = \"zstd\"\nmultifd_compression_level = 3",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let sc = write_scenario(
            tmp.path(),
            "lacking",
            &format!("[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n[migration]\n{line}\n"),
        );
        let root = tmp.path().join("results");
        let out = run_cmd(&sc, &root).exits(EXIT_REFUSED);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(field), "{stderr}");
        assert!(stderr.contains("lacking.toml"), "{stderr}");
        let version = stderr
            .split("QEMU ")
            .nth(1)
            .and_then(|v| v.chars().next())
            .is_some_and(|c| c.is_ascii_digit());
        assert!(version, "no QEMU version named: {stderr}");
        assert!(!root.exists(), "a results directory was created");
    }
}
