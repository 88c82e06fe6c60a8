//! A guest-side hang on request (`Request::Stall`, the `agent-stall`
//! fault): until the deadline, the agent's echo and memory workload wait
//! instead of working, as a hung application would; its control
//! connection keeps answering so the host can tell it what to do.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

static ORIGIN: OnceLock<Instant> = OnceLock::new();
/// Stalled until this many µs after [`ORIGIN`] (0: not stalled).
static UNTIL_US: AtomicU64 = AtomicU64::new(0);

fn now_us() -> u64 {
    ORIGIN.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// Hang the workers for `d` from now (a later call replaces the deadline).
pub fn stall_for(d: Duration) {
    UNTIL_US.store(now_us() + d.as_micros() as u64, Ordering::Relaxed);
}

/// How long the workers are still to hang.
pub fn remaining() -> Duration {
    Duration::from_micros(UNTIL_US.load(Ordering::Relaxed).saturating_sub(now_us()))
}

/// Wait out a stall, if one is on; returns at once otherwise.
pub fn wait() {
    loop {
        let left = remaining();
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stall_holds_the_worker_until_its_deadline() {
        assert!(remaining().is_zero());
        stall_for(Duration::from_millis(120));
        assert!(remaining() > Duration::from_millis(50));
        let t = Instant::now();
        wait();
        assert!(t.elapsed() >= Duration::from_millis(100));
        assert!(remaining().is_zero());
    }
}
