//! Convergence policies as orchestrators apply them to a running migration
//! (OpenStack Nova's libvirt driver): downtime stepping, a completion
//! timeout that aborts or forces completion, a no-progress timeout, and a
//! scheduled post-copy switch. Pure decisions from elapsed time and
//! progress readings; [`super::watch`] carries them out through the driver.

use std::time::Duration;

use migbench_model::nova::downtime_steps;
use migbench_model::record::{Action, Intervention, OutcomeDetail};
use migbench_model::settings::{Channels, CompletionAction, Postcopy, Xbzrle};
use migbench_model::RunParams;

use super::{MigrationState, Status};

/// One decision: what to do now and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The action.
    pub action: Action,
    /// Its value (downtime limit, ms), if any.
    pub value: Option<f64>,
    /// Which policy and why, in words.
    pub reason: String,
    /// A completion timeout forcing the end (post-copy or paused guest).
    pub forced: bool,
}

/// The policies of one run and what they have done so far.
#[derive(Debug, Clone)]
pub struct Policies {
    steps: Vec<(Duration, u64)>,
    next_step: usize,
    completion: Option<(Duration, CompletionAction)>,
    completion_fired: bool,
    progress_timeout: Option<Duration>,
    /// Lowest `remaining` seen and when it was reached.
    watermark: Option<(u64, Duration)>,
    postcopy: Postcopy,
    postcopy_started: bool,
    done: bool,
}

impl Policies {
    /// The policies a run's parameters ask for. `data_gib` is the guest's
    /// data (RAM, plus disk for block migration) in GiB.
    pub fn new(p: &RunParams, data_gib: f64) -> Policies {
        let limit = p.downtime_limit.0.as_millis() as u64;
        let nonzero = |d: Duration| (!d.is_zero()).then_some(d);
        Policies {
            steps: downtime_steps(limit, p.downtime_steps, p.downtime_delay.0, data_gib),
            // Step 0 is the starting limit, applied before `migrate`.
            next_step: 1,
            completion: nonzero(p.completion_timeout.0).map(|d| (d, p.completion_action)),
            completion_fired: false,
            progress_timeout: nonzero(p.progress_timeout.0),
            watermark: None,
            postcopy: p.postcopy,
            postcopy_started: false,
            done: false,
        }
    }

    /// The downtime limit to set before `migrate`, ms.
    pub fn initial_downtime_ms(&self) -> u64 {
        self.steps[0].1
    }

    /// Decide what to do, `elapsed` after `migrate`, given the latest sample.
    pub fn decide(&mut self, elapsed: Duration, status: &Status) -> Vec<Decision> {
        let mut out = Vec::new();
        // Only a migration still copying can be helped.
        if self.done || status.state != MigrationState::Active {
            return out;
        }
        let st = &status.progress;
        // Downtime stepping: every step whose time has come (the latest wins).
        let mut due = None;
        while self.next_step < self.steps.len() && elapsed >= self.steps[self.next_step].0 {
            due = Some(self.next_step);
            self.next_step += 1;
        }
        if let Some(i) = due {
            out.push(Decision {
                action: Action::SetDowntimeLimit,
                value: Some(self.steps[i].1 as f64),
                reason: format!(
                    "downtime step {i}/{} at {:.0}s",
                    self.steps.len() - 1,
                    self.steps[i].0.as_secs_f64()
                ),
                forced: false,
            });
        }
        // Scheduled post-copy switch.
        if !self.postcopy_started {
            let why = match self.postcopy {
                Postcopy::AfterPasses(n) if st.passes >= n as u64 => {
                    Some(format!("post-copy after {n} passes (pass {})", st.passes))
                }
                Postcopy::AfterTime(d) if elapsed >= d.0 => Some(format!("post-copy after {d}")),
                _ => None,
            };
            if let Some(reason) = why {
                self.postcopy_started = true;
                out.push(Decision {
                    action: Action::StartPostcopy,
                    value: None,
                    reason,
                    forced: false,
                });
            }
        }
        // Completion timeout.
        if let Some((after, action)) = self.completion {
            if !self.completion_fired && elapsed >= after {
                self.completion_fired = true;
                let reason = format!("completion timeout {:.0}s", after.as_secs_f64());
                match action {
                    CompletionAction::Abort => {
                        self.done = true;
                        out.push(Decision {
                            action: Action::Abort,
                            value: None,
                            reason,
                            forced: false,
                        });
                        return out;
                    }
                    CompletionAction::ForceComplete => {
                        let postcopy = self.postcopy.enabled() && !self.postcopy_started;
                        if postcopy {
                            self.postcopy_started = true;
                        }
                        out.push(Decision {
                            action: if postcopy {
                                Action::StartPostcopy
                            } else {
                                Action::PauseGuest
                            },
                            value: None,
                            reason: format!("{reason}: force-complete"),
                            forced: true,
                        });
                    }
                }
            }
        }
        // No progress: remaining RAM has not reached a new low for too long.
        if let Some(limit) = self.progress_timeout {
            match self.watermark {
                Some((low, _)) if st.remaining >= low => {}
                _ => self.watermark = Some((st.remaining, elapsed)),
            }
            if let Some((low, at)) = self.watermark {
                if elapsed.saturating_sub(at) >= limit && !self.postcopy_started {
                    self.done = true;
                    out.push(Decision {
                        action: Action::Abort,
                        value: None,
                        reason: format!(
                            "no progress for {:.0}s (remaining stuck above {} MiB)",
                            limit.as_secs_f64(),
                            low >> 20
                        ),
                        forced: false,
                    });
                }
            }
        }
        out
    }
}

/// How a migration finished and what finished it, from its interventions:
/// `aborted` names the policy that gave up; a completed run is `forced`
/// (completion timeout), `postcopy` (scheduled switch), `stepped` (downtime
/// raised) or `converged` (the settings it started with).
pub fn classify(
    p: &RunParams,
    completed: bool,
    aborted: Option<&str>,
    interventions: &[Intervention],
    forced: Option<usize>,
    final_limit_ms: u64,
    max_throttle_pct: Option<f64>,
) -> (Option<OutcomeDetail>, Option<String>) {
    if let Some(reason) = aborted {
        return (Some(OutcomeDetail::Aborted), Some(reason.to_string()));
    }
    if !completed {
        return (None, None);
    }
    if let Some(i) = forced.and_then(|i| interventions.get(i)) {
        let how = match i.action {
            Action::StartPostcopy => "post-copy",
            _ => "paused guest",
        };
        return (
            Some(OutcomeDetail::Forced),
            Some(format!("{}: {how}", i.reason)),
        );
    }
    if let Some(i) = interventions
        .iter()
        .find(|i| i.action == Action::StartPostcopy)
    {
        return (Some(OutcomeDetail::Postcopy), Some(i.reason.clone()));
    }
    let mut how = vec![format!("downtime-limit {final_limit_ms}ms")];
    if let Some(t) = max_throttle_pct.filter(|t| *t > 0.0) {
        how.push(format!("auto-converge throttle {t:.0}%"));
    }
    if let Channels::On(n) = p.multifd_channels {
        how.push(format!("multifd {n} channels, {}", p.multifd_compression));
    }
    if p.xbzrle_cache != Xbzrle::Off {
        how.push(format!("xbzrle {}", p.xbzrle_cache));
    }
    if let Some(i) = interventions
        .iter()
        .rev()
        .find(|i| i.action == Action::SetDowntimeLimit)
    {
        how[0] = format!("downtime-limit {final_limit_ms}ms ({})", i.reason);
        return (Some(OutcomeDetail::Stepped), Some(how.join("; ")));
    }
    (Some(OutcomeDetail::Converged), Some(how.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use migbench_model::units::Dur;
    use migbench_model::ProgressSample;

    /// The policies of a 256 MiB guest's run with `text` appended.
    fn policies(text: &str) -> Policies {
        Policies::new(&params(text), 0.25)
    }

    fn params(text: &str) -> RunParams {
        migbench_model::matrix::sample_run(text)
    }

    fn active(remaining: u64, passes: u64) -> Status {
        sample(MigrationState::Active, remaining, passes)
    }

    fn sample(state: MigrationState, remaining: u64, passes: u64) -> Status {
        Status {
            state,
            progress: ProgressSample {
                remaining,
                passes,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn stepping_raises_the_limit_on_schedule_and_only_once_per_step() {
        let mut pol = policies("[migration]\ndowntime_limit = \"1000ms\"\n[policy]\ndowntime_steps = 4\ndowntime_delay = \"1s\"\n");
        assert_eq!(pol.initial_downtime_ms(), 250);
        let st = active(100 << 20, 2);
        assert!(pol.decide(Duration::from_millis(1900), &st).is_empty());
        let d = pol.decide(Duration::from_secs(2), &st);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].action, Action::SetDowntimeLimit);
        assert_eq!(d[0].value, Some(437.0));
        assert!(pol.decide(Duration::from_millis(2100), &st).is_empty());
        // A late poll jumps to the latest due step.
        let d = pol.decide(Duration::from_secs(7), &st);
        assert_eq!(d[0].value, Some(812.0));
        assert!(d[0].reason.contains("step 3/4"), "{}", d[0].reason);
        let d = pol.decide(Duration::from_secs(60), &st);
        assert_eq!(d[0].value, Some(1000.0));
        assert!(pol.decide(Duration::from_secs(120), &st).is_empty());
    }

    #[test]
    fn completion_timeout_aborts_once() {
        let mut pol =
            policies("[migration]\ntimeout = \"60s\"\n[policy]\ncompletion_timeout = \"10s\"\n");
        let st = active(1 << 20, 5);
        assert!(pol.decide(Duration::from_secs(9), &st).is_empty());
        let d = pol.decide(Duration::from_secs(10), &st);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].action, Action::Abort);
        assert!(pol.decide(Duration::from_secs(11), &st).is_empty());
    }

    #[test]
    fn force_complete_prefers_postcopy_when_allowed_else_pauses() {
        let mut pol = policies("[migration]\ntimeout = \"60s\"\npostcopy = \"allowed\"\n[policy]\ncompletion_timeout = \"10s\"\ncompletion_action = \"force-complete\"\n");
        let st = active(1 << 20, 5);
        assert!(
            pol.decide(Duration::from_secs(5), &st).is_empty(),
            "allowed alone never switches"
        );
        let d = pol.decide(Duration::from_secs(10), &st);
        assert_eq!(d[0].action, Action::StartPostcopy);
        assert!(pol.postcopy_started);
        let mut pol = policies("[migration]\ntimeout = \"60s\"\n[policy]\ncompletion_timeout = \"10s\"\ncompletion_action = \"force-complete\"\n");
        let d = pol.decide(Duration::from_secs(10), &st);
        assert_eq!(d[0].action, Action::PauseGuest);
        assert!(pol.decide(Duration::from_secs(20), &st).is_empty());
    }

    #[test]
    fn scheduled_postcopy_switches_after_passes_or_time() {
        let mut p = params("[migration]\npostcopy = \"after 3 passes\"\n");
        let mut pol = Policies::new(&p, 0.25);
        assert!(pol.decide(Duration::from_secs(5), &active(9, 2)).is_empty());
        let d = pol.decide(Duration::from_secs(6), &active(9, 3));
        assert_eq!(d[0].action, Action::StartPostcopy);
        assert!(pol.decide(Duration::from_secs(7), &active(9, 4)).is_empty());
        p.postcopy = Postcopy::AfterTime(Dur(Duration::from_secs(4)));
        let mut pol = Policies::new(&p, 0.25);
        assert!(pol.decide(Duration::from_secs(3), &active(9, 9)).is_empty());
        assert_eq!(pol.decide(Duration::from_secs(4), &active(9, 9)).len(), 1);
    }

    #[test]
    fn no_progress_timeout_tracks_the_low_watermark() {
        let mut pol =
            policies("[migration]\ntimeout = \"60s\"\n[policy]\nprogress_timeout = \"5s\"\n");
        let at = |s: u64| Duration::from_secs(s);
        // Shrinking: fine.
        for (t, r) in [(0, 100), (2, 80), (4, 60), (6, 40)] {
            assert!(pol.decide(at(t), &active(r << 20, 1)).is_empty());
        }
        // Bouncing above the low of 40 MiB for 5 s: abort.
        assert!(pol.decide(at(8), &active(50 << 20, 2)).is_empty());
        assert!(pol.decide(at(10), &active(45 << 20, 3)).is_empty());
        let d = pol.decide(at(11), &active(42 << 20, 4));
        assert_eq!(d[0].action, Action::Abort);
        assert!(d[0].reason.contains("40 MiB"), "{}", d[0].reason);
    }

    fn intervention(action: Action, reason: &str) -> Intervention {
        Intervention {
            t_ms: 1.0,
            action,
            value: None,
            reason: reason.into(),
            state: ProgressSample::default(),
        }
    }

    #[test]
    fn classification_names_what_finished_the_run() {
        let p = params("");
        let c = |i: &[Intervention], done, ab| {
            let forced = i.iter().position(|x| x.reason.contains("force-complete"));
            classify(&p, done, ab, i, forced, 300, Some(40.0))
        };
        assert_eq!(c(&[], false, None), (None, None));
        let (d, by) = c(&[], true, None);
        assert_eq!(d, Some(OutcomeDetail::Converged));
        assert_eq!(
            by.unwrap(),
            "downtime-limit 300ms; auto-converge throttle 40%"
        );
        let step = intervention(Action::SetDowntimeLimit, "downtime step 2/4 at 4s");
        let (d, by) = c(std::slice::from_ref(&step), true, None);
        assert_eq!(d, Some(OutcomeDetail::Stepped));
        assert!(by.unwrap().contains("step 2/4"));
        let pc = intervention(Action::StartPostcopy, "post-copy after 2 passes (pass 2)");
        assert_eq!(
            c(&[step.clone(), pc], true, None).0,
            Some(OutcomeDetail::Postcopy)
        );
        let force = intervention(Action::PauseGuest, "completion timeout 10s: force-complete");
        let (d, by) = c(&[step, force], true, None);
        assert_eq!(d, Some(OutcomeDetail::Forced));
        assert!(by.unwrap().ends_with("paused guest"));
        let (d, by) = c(&[], false, Some("no progress for 5s"));
        assert_eq!(d, Some(OutcomeDetail::Aborted));
        assert_eq!(by.unwrap(), "no progress for 5s");
    }

    #[test]
    fn nothing_happens_outside_the_active_state() {
        let mut pol =
            policies("[migration]\ntimeout = \"60s\"\n[policy]\ncompletion_timeout = \"1s\"\n");
        for s in [
            MigrationState::Setup,
            MigrationState::Device,
            MigrationState::Completed,
            MigrationState::PostcopyActive,
            MigrationState::PreSwitchover,
        ] {
            assert!(
                pol.decide(Duration::from_secs(30), &sample(s, 1, 1))
                    .is_empty(),
                "{s:?}"
            );
        }
    }
}
