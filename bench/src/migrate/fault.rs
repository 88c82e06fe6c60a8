//! Fault injection during a migration, whatever environment carries it
//! out: when a [`Fault`] is due ([`due`], pure), the [`Injector`] that
//! strikes it once from the watch loop and lifts it again on a thread of
//! its own, and the [`FaultTarget`] an environment offers (the lab's
//! link, processes and storage host: `crate::lab::faults`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use migbench_model::fault::{Fault, FaultAt, FaultKind, FLAP_PERIOD};
use migbench_model::units::BitRate;
use migbench_probes::host::agent_client::AgentClient;
use migbench_probes::protocol::Request;

use super::{MigrationState, Status};

/// A hypervisor host of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Where the guest starts.
    Source,
    /// Where it goes.
    Destination,
}

/// What an environment can break and mend.
pub trait FaultTarget: Send + Sync {
    /// Take the migration link down or bring it back.
    fn set_link(&self, up: bool) -> Result<()>;
    /// Set the migration link's rate (`None`: back to the scenario's).
    fn set_link_rate(&self, rate: Option<BitRate>) -> Result<()>;
    /// SIGKILL one side's hypervisor process and wait until it has
    /// exited (its sockets closed, as a crashed host's would be).
    fn kill(&self, side: Side) -> Result<()>;
    /// Cut the storage host off both hypervisors, or reconnect it.
    fn set_storage(&self, up: bool) -> Result<()>;
    /// Note the run's processes before its hosts are removed (a pid file
    /// goes with them), so [`FaultTarget::leftovers`] can count them.
    fn remember(&self) {}
    /// What the run left behind once its hosts are removed: namespaces,
    /// processes, directories (0 when clean).
    fn leftovers(&self) -> u32;
}

/// Whether `fault` is due `since` after `migrate`, given the last status.
pub fn due(fault: &Fault, since: Duration, st: &Status) -> bool {
    if !fault.is_some() || st.state.finished() {
        return false;
    }
    match fault.at {
        FaultAt::After(d) => since >= d.0,
        FaultAt::Pass(n) => st.progress.passes >= n as u64,
        FaultAt::Switchover => st.state == MigrationState::PreSwitchover,
        FaultAt::Postcopy => st.state == MigrationState::PostcopyActive,
    }
}

/// When a struck fault happened and was lifted.
#[derive(Debug, Clone, Default)]
pub struct Strike {
    /// Struck.
    pub at: Option<Instant>,
    /// The migration's state then (the backend's name).
    pub phase: Option<String>,
    /// Lifted (faults that last).
    pub cleared: Option<Instant>,
    /// What went wrong injecting or lifting it.
    pub errors: Vec<String>,
}

/// Strikes one fault at its moment and lifts it after its duration.
pub struct Injector {
    fault: Fault,
    target: Arc<dyn FaultTarget>,
    agent: Option<AgentClient>,
    strike: Arc<Mutex<Strike>>,
    lifter: Option<std::thread::JoinHandle<()>>,
}

impl Injector {
    /// An injector of `fault` into `target` (`agent` for agent-stall).
    pub fn new(fault: Fault, target: Arc<dyn FaultTarget>, agent: Option<AgentClient>) -> Self {
        Injector {
            fault,
            target,
            agent,
            strike: Arc::default(),
            lifter: None,
        }
    }

    /// Whether it has struck.
    pub fn struck(&self) -> bool {
        self.lifter.is_some()
    }

    /// Strike if due (once); true when it struck now.
    pub fn poll(&mut self, since: Duration, st: &Status) -> bool {
        if self.struck() || !due(&self.fault, since, st) {
            return false;
        }
        {
            let mut s = self.strike.lock().expect("strike lock");
            s.at = Some(Instant::now());
            s.phase = Some(st.progress.status.clone());
        }
        let (fault, target, agent, strike) = (
            self.fault,
            self.target.clone(),
            self.agent.clone(),
            self.strike.clone(),
        );
        let (began, onset) = std::sync::mpsc::channel::<()>();
        self.lifter = Some(std::thread::spawn(move || {
            let errors = inflict(fault, &*target, agent.as_ref(), &|| {
                let _ = began.send(());
            });
            let mut s = strike.lock().expect("strike lock");
            if fault.kind.lasts() && fault.duration.is_some() {
                s.cleared = Some(Instant::now());
            }
            s.errors.extend(errors);
        }));
        // The migration goes on only once the fault has begun: a kill at
        // the switchover lands before the switchover is sent (CI saw the
        // source complete into a destination killed a moment later when
        // the kill ran beside `migrate-continue`).
        let _ = onset.recv_timeout(ONSET_WAIT);
        true
    }

    /// Wait for the fault to be lifted (or lift it now: a degrade that
    /// lasts to the end) and say what happened.
    pub fn finish(mut self) -> Strike {
        if let Some(t) = self.lifter.take() {
            let _ = t.join();
        }
        let mut s = self.strike.lock().expect("strike lock").clone();
        if s.at.is_some() && self.fault.kind == FaultKind::LinkDegrade && s.cleared.is_none() {
            if let Err(e) = self.target.set_link_rate(None) {
                s.errors.push(format!("restoring the link rate: {e:#}"));
            }
        }
        s
    }
}

/// How long [`Injector::poll`] waits for a fault to begin.
const ONSET_WAIT: Duration = Duration::from_secs(5);

/// Carry the fault out, for its whole duration, calling `onset` once it
/// has begun; the errors met.
fn inflict(
    f: Fault,
    target: &dyn FaultTarget,
    agent: Option<&AgentClient>,
    onset: &dyn Fn(),
) -> Vec<String> {
    let mut errors = Vec::new();
    let mut note = |what: &str, r: Result<()>| {
        if let Err(e) = r {
            errors.push(format!("{what}: {e:#}"));
        }
        onset();
    };
    let lasting = f.duration.map(|d| d.0);
    let hold = lasting.unwrap_or_default();
    match f.kind {
        FaultKind::None => {}
        FaultKind::LinkDown => {
            note("taking the link down", target.set_link(false));
            std::thread::sleep(hold);
            note("bringing the link up", target.set_link(true));
        }
        FaultKind::LinkFlap => {
            let end = Instant::now() + hold;
            let mut up = false;
            while Instant::now() < end {
                note("flapping the link", target.set_link(up));
                std::thread::sleep(FLAP_PERIOD.min(end.saturating_duration_since(Instant::now())));
                up = !up;
            }
            note("bringing the link up", target.set_link(true));
        }
        FaultKind::LinkDegrade => {
            note("degrading the link", target.set_link_rate(f.rate));
            if let Some(d) = lasting {
                std::thread::sleep(d);
                note("restoring the link rate", target.set_link_rate(None));
            }
        }
        FaultKind::DstKill => note("killing the destination", target.kill(Side::Destination)),
        FaultKind::SrcKill => note("killing the source", target.kill(Side::Source)),
        FaultKind::StorageDown => {
            note("cutting the storage host off", target.set_storage(false));
            std::thread::sleep(hold);
            note("reconnecting the storage host", target.set_storage(true));
        }
        FaultKind::AgentStall => {
            let r = match agent {
                None => Err(anyhow::anyhow!("the guest runs no migbench agent")),
                Some(a) => a
                    .request(
                        &Request::Stall {
                            ms: hold.as_millis() as u64,
                        },
                        Duration::from_secs(5),
                    )
                    .map(|_| ())
                    .map_err(anyhow::Error::new),
            };
            note("stalling the guest's agent", r);
            std::thread::sleep(hold);
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn status(state: MigrationState, passes: u64) -> Status {
        let mut s = Status {
            state,
            ..Status::default()
        };
        s.progress.passes = passes;
        s
    }

    fn fault(s: &str) -> Fault {
        s.parse().unwrap()
    }

    #[test]
    fn each_moment_is_due_at_its_phase_and_never_after_the_end() {
        let active = status(MigrationState::Active, 1);
        let s = Duration::from_secs;
        assert!(!due(&fault("link-down at 5s"), s(4), &active));
        assert!(due(&fault("link-down at 5s"), s(5), &active));
        assert!(!due(&fault("link-down at pass 2"), s(9), &active));
        assert!(due(
            &fault("link-down at pass 2"),
            s(0),
            &status(MigrationState::Active, 2)
        ));
        let pre = status(MigrationState::PreSwitchover, 3);
        assert!(due(&fault("dst-kill at switchover"), s(0), &pre));
        assert!(!due(&fault("dst-kill at switchover"), s(60), &active));
        let pc = status(MigrationState::PostcopyActive, 3);
        assert!(due(&fault("src-kill at postcopy"), s(0), &pc));
        assert!(!due(&fault("src-kill at postcopy"), s(0), &pre));
        assert!(!due(&fault("none"), s(60), &active));
        assert!(!due(
            &fault("link-down at 1s"),
            s(9),
            &status(MigrationState::Completed, 3)
        ));
    }

    /// Records what was done to it; taking the link down takes `slow`.
    #[derive(Default)]
    struct Recording {
        slow: Duration,
        downs: AtomicU32,
        ups: AtomicU32,
        rates: Mutex<Vec<Option<BitRate>>>,
    }

    impl FaultTarget for Recording {
        fn set_link(&self, up: bool) -> Result<()> {
            if !up {
                std::thread::sleep(self.slow);
            }
            let c = if up { &self.ups } else { &self.downs };
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
        fn set_link_rate(&self, rate: Option<BitRate>) -> Result<()> {
            self.rates.lock().unwrap().push(rate);
            Ok(())
        }
        fn kill(&self, _: Side) -> Result<()> {
            anyhow::bail!("no such process")
        }
        fn set_storage(&self, _: bool) -> Result<()> {
            Ok(())
        }
        fn leftovers(&self) -> u32 {
            0
        }
    }

    #[test]
    fn an_injector_strikes_once_lifts_after_its_duration_and_restores_a_degrade() {
        let t = Arc::new(Recording::default());
        let mut inj = Injector::new(fault("link-down for 50ms at 0s"), t.clone(), None);
        let active = status(MigrationState::Active, 1);
        assert!(inj.poll(Duration::ZERO, &active));
        assert!(!inj.poll(Duration::ZERO, &active), "strikes once");
        let s = inj.finish();
        assert!(s.cleared.unwrap() - s.at.unwrap() >= Duration::from_millis(50));
        assert_eq!(s.phase.as_deref(), Some(""));
        assert_eq!(
            (t.downs.load(Ordering::SeqCst), t.ups.load(Ordering::SeqCst)),
            (1, 1)
        );

        let mut inj = Injector::new(fault("link-degrade to 1mbit at 0s"), t.clone(), None);
        inj.poll(Duration::ZERO, &active);
        let s = inj.finish();
        assert!(s.cleared.is_none() && s.errors.is_empty());
        assert_eq!(
            *t.rates.lock().unwrap(),
            vec![Some(BitRate(1_000_000)), None],
            "a degrade to the end is undone when the run ends"
        );

        let mut inj = Injector::new(fault("dst-kill at 0s"), t, None);
        inj.poll(Duration::ZERO, &active);
        let s = inj.finish();
        assert!(s.errors[0].contains("killing the destination"), "{s:?}");
    }

    #[test]
    fn the_migration_goes_on_only_once_the_fault_has_begun() {
        let t = Arc::new(Recording {
            slow: Duration::from_millis(100),
            ..Recording::default()
        });
        let mut inj = Injector::new(fault("link-down for 50ms at 0s"), t.clone(), None);
        let start = Instant::now();
        assert!(inj.poll(Duration::ZERO, &status(MigrationState::Active, 1)));
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!(t.downs.load(Ordering::SeqCst), 1, "down when poll returns");
        inj.finish();
    }
}
