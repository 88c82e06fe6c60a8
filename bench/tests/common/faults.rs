//! What every fault run must show, and the runs of a fault campaign by
//! kind: shared by the QMP and the libvirt fault tests.
#![allow(dead_code)]

use migbench_model::{Integrity, RunRecord};

/// What every fault run must show, whatever the fault and backend: it
/// struck, without errors, leaving nothing behind; no hang (the migration
/// ended within its timeout, counted from `migrate`, and not before a
/// fault that lasts was lifted); a surviving guest answers and is intact
/// where the record says.
pub fn fault_ran_cleanly(r: &RunRecord) {
    use migbench_model::fault::GuestLocation;
    let f = r
        .fault
        .as_ref()
        .unwrap_or_else(|| panic!("no fault record: {r:?}"));
    assert!(f.struck, "{r:?}");
    assert_eq!(f.leftovers, Some(0), "{r:?}");
    assert!(f.errors.is_empty(), "{r:?}");
    // (2026-12-05, QMP: the lasting faults ended 9.9–13.4 s after striking
    // at 2 s, the kills 0–0.1 s after.)
    let (struck, to_end) = (f.struck_ms.unwrap(), f.to_end_ms.unwrap());
    assert!(struck + to_end <= r.params.timeout.ms(), "{r:?}");
    let lifted = f.cleared_ms.map_or(0.0, |c| c - struck);
    eprintln!(
        "{} {:?}: struck at {struck:.0} ms, lifted after {lifted:.0} ms, ended after {to_end:.0} ms, {:?}, guest {:?}",
        r.params.backend, r.params.fault.kind, r.outcome, f.guest
    );
    assert!(
        to_end >= lifted,
        "ended {to_end} ms after the strike, lifted after {lifted} ms: {r:?}"
    );
    if f.guest != GuestLocation::Lost {
        assert!(f.answers, "{r:?}");
        assert_eq!(r.integrity, Integrity::Ok, "{r:?}");
        assert_eq!(r.disk_integrity, Integrity::Ok, "{r:?}");
    }
}

/// The run of `recs` whose fault is of `kind`.
pub fn by_fault(recs: &[RunRecord], kind: migbench_model::fault::FaultKind) -> &RunRecord {
    recs.iter()
        .find(|r| r.params.fault.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} run"))
}

/// The runs of `recs` whose fault ends (link down, flap and degrade,
/// storage down, an agent stall), each ridden out: completed, the guest
/// on the destination, the fault lifted after it struck.
pub fn ridden_out(recs: &[RunRecord]) -> Vec<&RunRecord> {
    use migbench_model::fault::{FaultKind, GuestLocation};
    use migbench_model::Outcome;
    [
        FaultKind::LinkDown,
        FaultKind::LinkFlap,
        FaultKind::LinkDegrade,
        FaultKind::StorageDown,
        FaultKind::AgentStall,
    ]
    .into_iter()
    .map(|kind| {
        let r = by_fault(recs, kind);
        assert_eq!(r.outcome, Outcome::Completed, "{kind:?}: {r:?}");
        let f = r.fault.as_ref().unwrap();
        assert_eq!(f.guest, GuestLocation::Destination, "{r:?}");
        assert!(f.cleared_ms.unwrap() > f.struck_ms.unwrap(), "{r:?}");
        r
    })
    .collect()
}
