//! Post-copy after a fault, sample by sample ([`PostcopyWatch`]): when
//! a post-copy that stopped moving should be paused, how often a paused
//! one is offered a recovery, and when it runs again. Pure; the watch loop
//! (`super::watch`) carries the steps out through the driver.

use std::time::{Duration, Instant};

use super::{MigrationState, Status};

/// A post-copy that moved no bytes this long after a fault is paused.
pub const STUCK: Duration = Duration::from_secs(2);
/// Time between post-copy recovery attempts.
pub const RETRY: Duration = Duration::from_secs(1);

/// What to do about post-copy after a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostcopyStep {
    /// Nothing now.
    Wait,
    /// It stopped moving: pause it so it can be recovered.
    Pause,
    /// It is paused: try to resume it.
    Recover,
    /// It runs again after a pause.
    Recovered,
}

/// Post-copy after a fault, sample by sample: notices a stall, paces the
/// recovery attempts, sees the recovery.
#[derive(Debug, Default)]
pub struct PostcopyWatch {
    moved: Option<(u64, Instant)>,
    pause_asked: bool,
    last_attempt: Option<Instant>,
    paused: bool,
}

impl PostcopyWatch {
    pub fn in_postcopy(&self, st: &Status) -> bool {
        matches!(
            st.state,
            MigrationState::PostcopyActive
                | MigrationState::PostcopyPaused
                | MigrationState::PostcopyRecover
        )
    }

    /// The pause was not made (the destination was not in post-copy yet):
    /// ask again after another [`STUCK`].
    pub fn not_paused(&mut self, now: Instant) {
        self.pause_asked = false;
        if let Some((b, _)) = self.moved {
            self.moved = Some((b, now));
        }
    }

    pub fn step(&mut self, st: &Status, now: Instant) -> PostcopyStep {
        match st.state {
            MigrationState::PostcopyActive | MigrationState::Completed if self.paused => {
                self.paused = false;
                self.pause_asked = false;
                self.moved = None;
                PostcopyStep::Recovered
            }
            MigrationState::PostcopyActive => {
                let bytes = st.progress.transferred;
                let since = match self.moved {
                    Some((b, t)) if b == bytes => t,
                    _ => {
                        self.moved = Some((bytes, now));
                        now
                    }
                };
                if !self.pause_asked && now.duration_since(since) >= STUCK {
                    self.pause_asked = true;
                    return PostcopyStep::Pause;
                }
                PostcopyStep::Wait
            }
            MigrationState::PostcopyPaused => {
                self.paused = true;
                match self.last_attempt {
                    Some(t) if now.duration_since(t) < RETRY => PostcopyStep::Wait,
                    _ => {
                        self.last_attempt = Some(now);
                        PostcopyStep::Recover
                    }
                }
            }
            MigrationState::PostcopyRecover => {
                self.paused = true;
                PostcopyStep::Wait
            }
            _ => PostcopyStep::Wait,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_postcopy_is_paused_once_then_recovered_at_a_paced_rate() {
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let st = |state, transferred| {
            let mut s = Status {
                state,
                ..Status::default()
            };
            s.progress.transferred = transferred;
            s
        };
        let mut pc = PostcopyWatch::default();
        use MigrationState::*;
        assert_eq!(pc.step(&st(PostcopyActive, 10), at(0)), PostcopyStep::Wait);
        assert_eq!(
            pc.step(&st(PostcopyActive, 20), at(1500)),
            PostcopyStep::Wait
        );
        assert_eq!(
            pc.step(&st(PostcopyActive, 20), at(3000)),
            PostcopyStep::Wait,
            "moved 1.5 s ago"
        );
        assert_eq!(
            pc.step(&st(PostcopyActive, 20), at(3600)),
            PostcopyStep::Pause
        );
        pc.not_paused(at(3600));
        assert_eq!(
            pc.step(&st(PostcopyActive, 20), at(4000)),
            PostcopyStep::Wait,
            "asks again later"
        );
        assert_eq!(
            pc.step(&st(PostcopyActive, 20), at(5600)),
            PostcopyStep::Pause
        );
        assert_eq!(
            pc.step(&st(PostcopyActive, 20), at(5700)),
            PostcopyStep::Wait,
            "asked once"
        );
        assert_eq!(
            pc.step(&st(PostcopyPaused, 20), at(5800)),
            PostcopyStep::Recover
        );
        assert_eq!(
            pc.step(&st(PostcopyPaused, 20), at(6300)),
            PostcopyStep::Wait,
            "paced"
        );
        assert_eq!(
            pc.step(&st(PostcopyPaused, 20), at(6800)),
            PostcopyStep::Recover
        );
        assert_eq!(
            pc.step(&st(PostcopyRecover, 20), at(6900)),
            PostcopyStep::Wait
        );
        assert_eq!(
            pc.step(&st(PostcopyActive, 30), at(7000)),
            PostcopyStep::Recovered
        );
        assert_eq!(
            pc.step(&st(PostcopyActive, 40), at(7100)),
            PostcopyStep::Wait
        );
        assert_eq!(
            pc.step(&st(PostcopyActive, 40), at(9200)),
            PostcopyStep::Pause,
            "stuck again"
        );
        // A pre-copy migration is never paused, however still it stands.
        let mut pre = PostcopyWatch::default();
        assert_eq!(pre.step(&st(Active, 5), at(0)), PostcopyStep::Wait);
        assert_eq!(pre.step(&st(Active, 5), at(9000)), PostcopyStep::Wait);
    }
}
