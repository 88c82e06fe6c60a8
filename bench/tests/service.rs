//! Real lab tests of what a service sees: the guest's kernel (ICMP), the
//! agent (UDP), a TCP stream and TCP requests during a real migration and
//! during calibrated pauses, and the report that shows them.

mod common;

use common::*;
use migbench_model::Outcome;

#[test]
fn the_network_comes_back_before_the_application_and_tcp_sees_at_least_the_network_outage() {
    let _g = lab_lock();
    let (tmp, recs, dir) = run_scenario("service", EXIT_OK);
    assert_eq!(recs.len(), 1);
    let r = &recs[0];
    assert_eq!(r.outcome, Outcome::Completed, "{r:?}");
    // All at switchover (the gap begun last before completion).
    let icmp = r.downtime_icmp_ms.expect("an ICMP outage");
    let udp = r.switchover_probe_ms.expect("a UDP outage");
    let qemu = r.downtime_qemu_ms.unwrap();
    // The kernel answers before the agent in user space does: the ICMP
    // gap ends no later than the UDP one (one 1 ms interval of slack).
    // Compared by their ends, not lengths: the gaps begin within ±3 ms of
    // each other (the last reply before the pause), so a length says
    // less (CI once saw ICMP 9.4 ms longer; measured here, 10 runs of
    // this scenario: ICMP ends 8-55 ms before UDP, starts -1.7 … +2.8 ms
    // apart).
    let (iw, uw) = (
        switchover_gap(&dir, "service/icmp.csv", r.params.probe_interval.ms()),
        switchover_gap(&dir, "probes.csv", r.params.probe_interval.ms()),
    );
    eprintln!(
        "switchover gap: ICMP {:.1} – {:.1} ms ({icmp:.1} ms), UDP {:.1} – {:.1} ms ({udp:.1} ms)",
        iw.start_ms, iw.end_ms, uw.start_ms, uw.end_ms
    );
    assert!(
        iw.end_ms <= uw.end_ms + 1.0,
        "ICMP replies resumed at {:.1} ms, after the UDP agent's at {:.1} ms",
        iw.end_ms,
        uw.end_ms
    );
    assert!(
        icmp >= qemu - 1.0,
        "ICMP outage {icmp} below QEMU's downtime {qemu}"
    );
    let s = r.stream.as_ref().expect("a stream summary");
    assert_eq!(s.lost_bytes, 0, "TCP lost bytes: {s:?}");
    assert!(s.error.is_none(), "{s:?}");
    // At 5 Mbit/s in 10 ms chunks for the whole run.
    assert!(s.chunks > 500, "{s:?}");
    // Nothing leaves a paused guest. (The stream can come back before the
    // echo does: the guest on the destination sends before it answers.)
    let gap = s.switchover_gap_ms.expect("a stream gap at switchover");
    assert!(
        gap >= qemu - 1.0,
        "stream gap {gap} ms below QEMU's downtime {qemu} ms"
    );
    assert!(s.longest_gap_ms >= gap);
    let tight = s.tightest().unwrap();
    assert_eq!(tight.buffer_ms, 0.0);
    assert!(tight.stalls >= 1 && tight.stall_ms > 0.0, "{s:?}");
    let one_s = s.playout.iter().find(|p| p.buffer_ms == 1000.0).unwrap();
    assert!(
        one_s.stall_ms <= tight.stall_ms,
        "a buffer cannot stall longer: {s:?}"
    );
    assert!((one_s.startup_ms - 1000.0).abs() < 100.0, "{one_s:?}");
    let rr = r.rr.as_ref().expect("a request summary");
    assert!(rr.error.is_none(), "{rr:?}");
    assert_eq!(rr.answered + rr.failed, rr.sent);
    // A request needs both directions, and TCP waits for its own timer.
    let stall = rr.switchover_gap_ms.expect("a request stall at switchover");
    assert!(
        stall >= icmp - 1.0,
        "request stall {stall} ms below the network outage {icmp} ms"
    );
    let during = rr.during.expect("requests during migration");
    assert!(
        during.max >= icmp - 10.0,
        "slowest request {} ms, outage {icmp} ms",
        during.max
    );
    assert!(rr.before.unwrap().p50 < 20.0, "{rr:?}");
    for f in ["icmp.csv", "stream.csv", "rr.csv", "ends.json"] {
        assert!(
            dir.join("runs/run-0000/service").join(f).is_file(),
            "{f} missing"
        );
    }
    // The report: headline columns, the new charts and tables, rendered.
    let rep = report(&dir, &tmp.path().join("reports"), "svc");
    let csv = std::fs::read_to_string(rep.join("summary.csv")).unwrap();
    for col in [
        "downtime_icmp_ms_median",
        "stall_rr_ms_median",
        "stall_stream_ms_median",
        "rr_p99_during_ms_median",
    ] {
        assert!(csv.lines().next().unwrap().contains(col), "{col} missing");
    }
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    for needle in [
        "What a viewer saw",
        "What a request client saw",
        "ICMP outage ms",
        "TCP request stall ms",
        "TCP stream gap ms",
    ] {
        assert!(html.contains(needle), "report lacks {needle:?}");
    }
    for chart in ["stream-stall", "request-latency"] {
        let svg = rep.join(format!("{chart}.svg"));
        let ink = screenshot_ink(&svg, &tmp.path().join(format!("{chart}.png")));
        assert!(ink > 0.01, "{chart} looks blank ({ink:.4} inked)");
    }
}

#[test]
fn calibration_shows_what_the_stream_and_requests_saw_of_a_200ms_pause() {
    let _g = lab_lock();
    let (stdout, rows) =
        calibrate_json(&["--pauses", "200ms", "--repeat", "2", "--service", "all"]);
    assert!(
        stdout.contains("stream gap") && stdout.contains("rr max ms"),
        "{stdout}"
    );
    assert_eq!(rows.len(), 2);
    for r in &rows {
        let pause = r["true_pause_ms"].as_f64().unwrap();
        let seen = &r["services"];
        let v = |k: &str| {
            seen[k]
                .as_f64()
                .unwrap_or_else(|| panic!("{k} missing: {r}"))
        };
        eprintln!(
            "pause {pause:.2} ms: icmp {:+.2}, stream gap {:+.2}, stall {:+.2}, rr max {:+.2} ms",
            v("icmp_ms") - pause,
            v("stream_gap_ms") - pause,
            v("stream_stall_ms") - pause,
            v("rr_max_ms") - pause
        );
        // ICMP within ±10 ms of the pause. It was ±15 ms after CI saw
        // +12.9 ms (and the UDP probe +11 ms) once; both counted kernel
        // stamps from the origin's wall time, which this host slews at up
        // to 5,000 ppm against the monotonic pause marks (fixed in
        // probes::clock). Measured 2026-12-05 after the fix, `calibrate
        // --pauses 200ms --service all`, 40 pauses: ICMP min +0.51, p50
        // +1.11, p90 +1.91, max +2.05 ms (UDP probe max +5.46 ms beside
        // the TCP services' catch-up).
        let icmp = v("icmp_ms") - pause;
        assert!((-10.0..=10.0).contains(&icmp), "icmp {icmp:+.2} ms: {r}");
        // Nothing arrives while the guest is paused; TCP resends on
        // resume. The stream sends a chunk every 10 ms, so its gap is the
        // pause plus up to one chunk interval, + 20 ms slack (measured:
        // +9.55 … +11.70 ms; the guide's table +10.0 … +13.7 ms).
        let gap = v("stream_gap_ms") - pause;
        assert!((-5.0..=30.0).contains(&gap), "stream gap {gap:+.2} ms: {r}");
        // The zero-buffer viewer stalls for about the pause (measured
        // −10.42 … +0.42 ms), never longer than the gap allows.
        let stall = v("stream_stall_ms") - pause;
        assert!((-30.0..=30.0).contains(&stall), "stall {stall:+.2} ms: {r}");
        // The slowest request waits the pause, and at most TCP's minimum
        // retransmission timeout (200 ms) more if a segment was resent
        // (measured −2.52 … +1.18 ms, no resend).
        let rr = v("rr_max_ms") - pause;
        assert!(
            (-0.1 * pause..=230.0).contains(&rr),
            "rr max {rr:+.2} ms: {r}"
        );
    }
}
