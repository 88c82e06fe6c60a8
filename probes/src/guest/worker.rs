//! [`Worker`]: a background loop that runs until asked to stop — the
//! agent's memory dirtier and disk writer each run in one. Stopping joins
//! the thread; dropping stops it. [`Pacer`] spreads a rate over ticks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A background loop and its stop flag.
pub struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Run `body` on its own thread; it should return once the flag it is
    /// given turns true. With `run` false, nothing is started.
    pub fn spawn(run: bool, body: impl FnOnce(Arc<AtomicBool>) + Send + 'static) -> Worker {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = run.then(|| {
            let stop = stop.clone();
            std::thread::spawn(move || body(stop))
        });
        Worker { stop, thread }
    }

    /// Ask the loop to stop and wait for it.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whole units (pages, blocks) due per tick at a fractional rate per tick,
/// carrying the remainder so the long-run rate is exact.
#[derive(Debug, Clone, Copy)]
pub struct Pacer {
    per_tick: f64,
    carry: f64,
}

impl Pacer {
    /// `per_tick` units per tick on average.
    pub fn new(per_tick: f64) -> Pacer {
        Pacer {
            per_tick,
            carry: 0.0,
        }
    }

    /// The units due this tick.
    pub fn due(&mut self) -> usize {
        self.carry += self.per_tick;
        let n = self.carry.floor();
        self.carry -= n;
        n as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fractional_rate_is_kept_over_many_ticks() {
        let mut p = Pacer::new(2.5);
        let total: usize = (0..1000).map(|_| p.due()).sum();
        assert_eq!(total, 2500);
        assert!([2, 3].contains(&p.due()));
    }
}
