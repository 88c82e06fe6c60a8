//! [`watch`]: start a migration through any [`MigrationDriver`], sample
//! its progress, let the policies act on each sample (recording every
//! intervention), finish the storage copy at a pre-switchover pause, and
//! enforce the timeout.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use migbench_model::record::{Action, Intervention, MigrationEvent};
use migbench_model::ProgressSample;

use super::fault::Injector;
use super::policy::Policies;
use super::recovery::{PostcopyStep, PostcopyWatch};
use super::{BackendError, MigrationDriver, MigrationState, Status};

/// How often to sample, when the clock started, when to give up.
#[derive(Debug, Clone, Copy)]
pub struct WatchConfig {
    /// The run's clock origin: sample and event times are ms since it.
    pub origin: Instant,
    /// Time between progress readings.
    pub poll: Duration,
    /// Cancel the migration after this long.
    pub timeout: Duration,
}

/// How the migration ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "end", content = "reason")]
pub enum End {
    /// Completed.
    Completed,
    /// The backend reported failure: why.
    Failed(String),
    /// Cancelled at the scenario's timeout.
    TimedOut,
    /// A policy cancelled it: why.
    Aborted(String),
    /// Interrupted by the operator.
    Interrupted,
}

/// When things happened, ms since the run's clock origin.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// `migrate` issued.
    pub started_ms: f64,
    /// Seen complete.
    pub completed_ms: Option<f64>,
    /// Post-copy started.
    pub postcopy_ms: Option<f64>,
    /// A force-complete policy paused the guest.
    pub paused_ms: Option<f64>,
    /// A post-copy paused by a fault ran again after a recovery.
    #[serde(default)]
    pub recovered_ms: Option<f64>,
}

/// What the watch loop saw (recorded in `timeline.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Watched {
    /// When things happened.
    #[serde(flatten)]
    pub at: Moments,
    /// How it ended.
    pub end: End,
    /// The last status read (after completion or cancel).
    pub last: Status,
    /// What the policies did.
    pub interventions: Vec<Intervention>,
    /// Index in `interventions` of a completion timeout that forced the end.
    pub forced: Option<usize>,
    /// Downtime limit in force at the end, ms.
    pub downtime_limit_ms: u64,
    /// Post-copy recovery attempts after a fault.
    #[serde(default)]
    pub recover_attempts: u32,
}

/// The result of [`watch`]: the summary and the series.
#[derive(Debug, Clone)]
pub struct Watch {
    /// What happened.
    pub watched: Watched,
    /// Every progress sample.
    pub samples: Vec<ProgressSample>,
    /// Pass and state events.
    pub events: Vec<MigrationEvent>,
}

/// Start a migration and watch it: poll every `cfg.poll`, let `policies`
/// act on each sample (recording every intervention), call `on_sample` for
/// progress bars, give up after `cfg.timeout` (cancel, then wait for the
/// backend to confirm), stop early when `interrupted()` turns true.
///
/// With a fault (`faults`): strike it at its moment; once it has struck,
/// a backend that stops answering ends the migration as failed (not the
/// run), a post-copy that stops moving for [`super::recovery::STUCK`] is paused, and a
/// paused post-copy is recovered, one attempt per second, until the
/// timeout.
pub async fn watch<D: MigrationDriver>(
    d: &mut D,
    cfg: WatchConfig,
    policies: &mut Policies,
    mut faults: Option<&mut Injector>,
    interrupted: impl Fn() -> bool,
    mut on_sample: impl FnMut(&Status),
) -> Result<Watch, BackendError> {
    let WatchConfig {
        origin,
        poll,
        timeout,
    } = cfg;
    let started = Instant::now();
    let since = |t: Instant| t.duration_since(origin).as_secs_f64() * 1e3;
    d.start().await?;
    let mut samples = Vec::new();
    let mut w = Watched {
        at: Moments {
            started_ms: since(started),
            completed_ms: None,
            postcopy_ms: None,
            paused_ms: None,
            recovered_ms: None,
        },
        end: End::Interrupted,
        last: Status::default(),
        interventions: Vec::new(),
        forced: None,
        downtime_limit_ms: policies.initial_downtime_ms(),
        recover_attempts: 0,
    };
    let mut next = started;
    let mut abort: Option<String> = None;
    let mut struck = false;
    let mut pc = PostcopyWatch::default();
    let mut switched = false;
    // After a fault, a backend error ends the migration (failed), not the run.
    macro_rules! after_fault {
        ($l:lifetime, $e:expr, $what:literal) => {
            match $e {
                Ok(v) => v,
                Err(e) if struck => break $l End::Failed(format!("{} after the fault: {e}", $what)),
                Err(e) => return Err(e),
            }
        };
    }
    w.end = 'watch: loop {
        let mut st = after_fault!('watch, d.status().await, "the source stopped answering");
        st.progress.t_ms = since(Instant::now());
        samples.push(st.progress.clone());
        on_sample(&st);
        if let Some(inj) = faults.as_deref_mut() {
            struck |= inj.poll(started.elapsed(), &st);
        }
        w.last = st;
        if struck {
            match pc.step(&w.last, Instant::now()) {
                PostcopyStep::Wait => {}
                PostcopyStep::Pause => {
                    if !after_fault!('watch, d.pause_postcopy().await, "pausing the stuck post-copy failed")
                    {
                        pc.not_paused(Instant::now());
                    }
                }
                PostcopyStep::Recover => {
                    w.recover_attempts += 1;
                    after_fault!('watch, d.recover_postcopy().await, "post-copy recovery failed");
                }
                PostcopyStep::Recovered => {
                    w.at.recovered_ms.get_or_insert(since(Instant::now()));
                }
            }
            if started.elapsed() >= timeout && pc.in_postcopy(&w.last) {
                // Cancelling now would leave the guest split between the hosts.
                break End::Failed(format!(
                    "post-copy was not recovered within the timeout ({}); the guest's memory is split between the hosts",
                    w.last.progress.status
                ));
            }
        }
        match w.last.state {
            MigrationState::Completed => {
                let at = d.completed_at().unwrap_or_else(Instant::now);
                // QEMU sets `completed` a moment before it fills in total-time
                // and downtime: re-read until they appear.
                let settle = Instant::now();
                while w.last.times.total_time_ms.unwrap_or(0.0) <= 0.0
                    && settle.elapsed() < Duration::from_secs(2)
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    w.last = d.status().await?;
                }
                w.at.completed_ms = Some(since(at));
                break End::Completed;
            }
            MigrationState::Failed => {
                break End::Failed(
                    w.last
                        .error
                        .clone()
                        .unwrap_or_else(|| "migration failed".into()),
                )
            }
            MigrationState::Cancelled => {
                break End::Failed("migration cancelled by the hypervisor".into())
            }
            // Once: QEMU leaves pre-switchover only when its migration
            // thread next runs, so a poll soon after `migrate-continue`
            // can see the state again; a second switchover would find the
            // disk mirror already completed and fail a good migration.
            MigrationState::PreSwitchover if !switched => {
                after_fault!('watch, d.switchover().await, "switchover failed");
                switched = true;
                continue;
            }
            _ => {}
        }
        for dec in policies.decide(started.elapsed(), &w.last) {
            let t = Instant::now();
            if dec.forced {
                w.forced = Some(w.interventions.len());
            }
            match dec.action {
                Action::SetDowntimeLimit => {
                    let ms = dec.value.unwrap_or(0.0) as u64;
                    after_fault!('watch, d.set_downtime_limit(ms).await, "setting the downtime limit failed");
                    w.downtime_limit_ms = ms;
                }
                Action::StartPostcopy => {
                    after_fault!('watch, d.start_postcopy().await, "starting post-copy failed");
                    w.at.postcopy_ms = Some(since(t));
                }
                Action::PauseGuest => {
                    after_fault!('watch, d.pause_guest().await, "pausing the guest failed");
                    w.at.paused_ms = Some(since(t));
                }
                Action::Abort => abort = Some(dec.reason.clone()),
            }
            w.interventions.push(Intervention {
                t_ms: t.duration_since(started).as_secs_f64() * 1e3,
                action: dec.action,
                value: dec.value,
                reason: dec.reason,
                state: w.last.progress.clone(),
            });
        }
        let over_time = started.elapsed() >= timeout;
        if over_time || abort.is_some() || interrupted() {
            after_fault!('watch, d.cancel().await, "cancelling failed");
            // Wait for the backend to settle so the guest is known to run on.
            let settle = Instant::now();
            while settle.elapsed() < Duration::from_secs(30) {
                let st = after_fault!('watch, d.status().await, "the source stopped answering");
                if st.state.finished() {
                    w.last = st;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if w.last.state == MigrationState::Completed {
                // It slipped through before the cancel landed.
                w.at.completed_ms = Some(since(d.completed_at().unwrap_or_else(Instant::now)));
                break End::Completed;
            }
            break match abort.take() {
                Some(reason) => End::Aborted(reason),
                None if over_time => End::TimedOut,
                None => End::Interrupted,
            };
        }
        next += poll;
        let now = Instant::now();
        if next > now {
            tokio::time::sleep(next - now).await;
        } else {
            next = now;
        }
    };
    let events = d
        .take_events()
        .into_iter()
        .map(|e| MigrationEvent {
            t_ms: since(e.at),
            pass: e.pass,
            status: e.status,
        })
        .collect();
    Ok(Watch {
        watched: w,
        samples,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::migrate::{DiskCopy, MigrationSettings, StoragePlan};

    /// A fake backend that completes after `n` polls, for the watcher.
    #[derive(Default)]
    struct Fake {
        polls: u32,
        complete_after: Option<u32>,
        cancelled: bool,
        postcopy: bool,
        limits: Vec<u64>,
        /// Polls (from, to) that report pre-switchover, whatever was done.
        pre_switchover: Option<(u32, u32)>,
        switchovers: u32,
    }

    impl MigrationDriver for Fake {
        async fn prepare(
            &mut self,
            _: &MigrationSettings,
            _: StoragePlan,
        ) -> Result<Option<DiskCopy>, BackendError> {
            Ok(None)
        }
        async fn settings(&mut self) -> Result<serde_json::Value, BackendError> {
            Ok(serde_json::Value::Null)
        }
        async fn finish(&mut self, _: bool) -> Result<(), BackendError> {
            Ok(())
        }
        async fn set_downtime_limit(&mut self, ms: u64) -> Result<(), BackendError> {
            self.limits.push(ms);
            Ok(())
        }
        async fn start_postcopy(&mut self) -> Result<(), BackendError> {
            self.postcopy = true;
            Ok(())
        }
        async fn pause_guest(&mut self) -> Result<(), BackendError> {
            Ok(())
        }
        async fn switchover(&mut self) -> Result<(), BackendError> {
            self.switchovers += 1;
            Ok(())
        }
        async fn start(&mut self) -> Result<(), BackendError> {
            Ok(())
        }
        async fn status(&mut self) -> Result<Status, BackendError> {
            self.polls += 1;
            let state = if self.cancelled {
                MigrationState::Cancelled
            } else if self.complete_after.is_some_and(|n| self.polls >= n) {
                MigrationState::Completed
            } else if self
                .pre_switchover
                .is_some_and(|(a, b)| (a..=b).contains(&self.polls))
            {
                MigrationState::PreSwitchover
            } else if self.postcopy {
                MigrationState::PostcopyActive
            } else {
                MigrationState::Active
            };
            let mut st = Status {
                state,
                ..Status::default()
            };
            st.progress.status = format!("{state:?}");
            st.progress.passes = self.polls as u64;
            Ok(st)
        }
        async fn cancel(&mut self) -> Result<(), BackendError> {
            self.cancelled = true;
            Ok(())
        }
    }

    fn policies(text: &str) -> Policies {
        Policies::new(&migbench_model::matrix::sample_run(text), 0.25)
    }

    async fn run(f: &mut Fake, timeout_ms: u64, pol: &mut Policies) -> Watch {
        let cfg = WatchConfig {
            origin: Instant::now(),
            poll: Duration::from_millis(5),
            timeout: Duration::from_millis(timeout_ms),
        };
        watch(f, cfg, pol, None, || false, |_| {}).await.unwrap()
    }

    #[tokio::test]
    async fn watch_returns_completed_with_every_sample() {
        let mut f = Fake {
            complete_after: Some(3),
            ..Fake::default()
        };
        let w = run(&mut f, 5000, &mut policies("")).await;
        assert!(w.watched.end == End::Completed);
        assert_eq!(w.samples.len(), 3);
        assert!(w.watched.interventions.is_empty());
    }

    #[tokio::test]
    async fn a_migration_seen_in_pre_switchover_on_several_polls_switches_over_once() {
        // QEMU's migration thread may not have left pre-switchover by the
        // next poll after `migrate-continue` (CI saw a block migration fail
        // with "the disk mirror job vanished" on the second switchover).
        let mut f = Fake {
            pre_switchover: Some((2, 4)),
            complete_after: Some(6),
            ..Fake::default()
        };
        let w = run(&mut f, 5000, &mut policies("")).await;
        assert!(w.watched.end == End::Completed);
        assert_eq!(f.switchovers, 1);
        assert_eq!(w.samples.len(), 6);
    }

    #[tokio::test]
    async fn watch_cancels_at_the_timeout() {
        let mut f = Fake::default();
        let w = run(&mut f, 30, &mut policies("")).await;
        assert_eq!(w.watched.end, End::TimedOut);
        assert!(f.cancelled);
        assert_eq!(w.watched.last.state, MigrationState::Cancelled);
    }

    #[tokio::test]
    async fn a_policy_abort_cancels_and_is_recorded() {
        let mut f = Fake::default();
        let mut pol =
            policies("[migration]\ntimeout = \"60s\"\n[policy]\nprogress_timeout = \"10ms\"\n");
        let w = run(&mut f, 5000, &mut pol).await;
        assert!(
            matches!(w.watched.end, End::Aborted(ref r) if r.contains("no progress")),
            "{:?}",
            w.watched.end
        );
        assert!(f.cancelled);
        assert_eq!(w.watched.interventions.len(), 1);
        assert_eq!(w.watched.interventions[0].action, Action::Abort);
        assert_eq!(w.watched.interventions[0].state.status, "Active");
    }

    #[tokio::test]
    async fn scheduled_postcopy_reaches_the_driver() {
        let mut f = Fake {
            complete_after: Some(6),
            ..Fake::default()
        };
        let mut pol = policies("[migration]\npostcopy = \"after 2 passes\"\n");
        let w = run(&mut f, 5000, &mut pol).await;
        assert!(w.watched.end == End::Completed);
        assert!(f.postcopy);
        assert!(w.watched.at.postcopy_ms.is_some());
        assert_eq!(w.watched.interventions.len(), 1);
        assert_eq!(w.watched.interventions[0].state.passes, 2);
        assert!(w.samples.iter().any(|s| s.status == "PostcopyActive"));
    }
}
