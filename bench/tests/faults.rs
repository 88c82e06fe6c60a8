//! Real lab tests of fault injection: every fault kind strikes a real
//! migration once and ends in a defined outcome, with the guest where the
//! record says, answering there and intact when it survives, and nothing
//! left behind; a link failure during post-copy is recovered.

mod common;

use common::*;
use migbench_model::fault::{FaultKind, GuestLocation};
use migbench_model::{Integrity, Outcome};

#[test]
fn every_fault_ends_in_a_defined_outcome_with_the_guest_where_the_record_says() {
    let _g = lab_lock();
    // The destination and the source killed fail their runs: exit 1.
    let (tmp, recs, dir) = run_scenario("faults", EXIT_FAILED);
    assert_eq!(recs.len(), 7);
    for r in &recs {
        fault_ran_cleanly(r);
    }
    ridden_out(&recs);
    // The destination killed at switchover: the source resumes the guest.
    let r = by_fault(&recs, FaultKind::DstKill);
    let f = r.fault.as_ref().unwrap();
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert_eq!(f.phase.as_deref(), Some("pre-switchover"));
    assert_eq!(f.guest, GuestLocation::Source, "{r:?}");
    // The source killed: the guest is lost, and the run says so.
    let r = by_fault(&recs, FaultKind::SrcKill);
    let f = r.fault.as_ref().unwrap();
    assert_eq!(r.outcome, Outcome::Failed, "{r:?}");
    assert_eq!((f.guest, f.answers), (GuestLocation::Lost, false), "{r:?}");
    assert!(
        r.error.as_deref().unwrap().contains("after the fault"),
        "{r:?}"
    );
    // A guest-side stall shows in the probe, not in the switchover outage.
    let r = by_fault(&recs, FaultKind::AgentStall);
    let gap = r.fault.as_ref().unwrap().probe_gap_ms.unwrap();
    eprintln!("agent stall: probe gap {gap:.1} ms");
    // The stall's 1500 ms, less one 1 ms probe interval (and 9 ms of
    // timer slack), plus at most 200 ms of scheduling (measured 1502.6 ms).
    assert!(
        (1490.0..=1700.0).contains(&gap),
        "a 1.5 s stall, probe gap {gap} ms"
    );
    let switchover = r.switchover_probe_ms.unwrap();
    assert!(switchover < 1000.0, "switchover outage {switchover} ms");
    // The report has the fault table.
    let rep = report(&dir, &tmp.path().join("reports"), "faults");
    let html = std::fs::read_to_string(rep.join("index.html")).unwrap();
    assert!(html.contains("When things go wrong"), "no fault table");
    for cell in ["src-kill at 2s", "lost", "pre-switchover"] {
        assert!(html.contains(cell), "{cell} missing from the fault table");
    }
}

#[test]
fn a_link_failure_during_postcopy_is_recovered_and_the_guest_arrives_intact() {
    let _g = lab_lock();
    let (_tmp, recs, _dir) = run_scenario("faults-postcopy", EXIT_OK);
    let r = &recs[0];
    let f = r.fault.as_ref().expect("a fault record");
    assert_eq!(f.phase.as_deref(), Some("postcopy-active"), "{r:?}");
    assert_eq!(r.outcome, Outcome::Recovered, "{r:?}");
    assert!(f.recover_attempts >= 1, "{r:?}");
    let back = f.to_recovery_ms.expect("a recovery time");
    // Not before the link came back (3 s), not long after.
    assert!((3000.0..15_000.0).contains(&back), "{r:?}");
    assert_eq!((f.guest, f.answers), (GuestLocation::Destination, true));
    assert_eq!(r.integrity, Integrity::Ok, "{r:?}");
    assert_eq!(f.leftovers, Some(0));
}
