//! [`Eta`]: the time a matrix has left, from each run's planned duration
//! (`migbench_predict::plan::run_secs`) scaled by how long the runs so
//! far took against their plan, so a matrix mixing 20 s and 2 s runs is
//! not extrapolated from its average run.

/// Planned against measured so far, and the plan of what is left.
#[derive(Debug, Clone, Default)]
pub struct Eta {
    planned_done: f64,
    taken: f64,
    planned_left: f64,
}

impl Eta {
    /// A matrix whose runs to come are planned at `planned` seconds each.
    pub fn new(planned: impl IntoIterator<Item = f64>) -> Eta {
        Eta {
            planned_left: planned.into_iter().sum(),
            ..Eta::default()
        }
    }

    /// A run planned at `planned` s took `taken` s.
    pub fn ran(&mut self, planned: f64, taken: f64) {
        self.planned_done += planned;
        self.taken += taken;
        self.skipped(planned);
    }

    /// A run planned at `planned` s will not run (its cell is precise).
    pub fn skipped(&mut self, planned: f64) {
        self.planned_left = (self.planned_left - planned).max(0.0);
    }

    /// How much longer (measured) runs take than planned; 1 before any ran.
    pub fn scale(&self) -> f64 {
        if self.planned_done > 0.0 {
            self.taken / self.planned_done
        } else {
            1.0
        }
    }

    /// Seconds left: the plan of the runs to come, scaled.
    pub fn left_secs(&self) -> f64 {
        self.planned_left * self.scale()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_is_scaled_by_what_the_runs_so_far_took() {
        // Two long runs and two short ones, planned 20 s and 4 s.
        let mut e = Eta::new([20.0, 4.0, 20.0, 4.0]);
        assert_eq!(e.left_secs(), 48.0);
        // The first long run took 10 s: everything runs at half the plan.
        e.ran(20.0, 10.0);
        assert_eq!(e.left_secs(), 14.0);
        // A short one took its plan: 14 s taken for 24 s planned.
        e.ran(4.0, 4.0);
        assert!((e.left_secs() - 24.0 * 14.0 / 24.0).abs() < 1e-9);
        e.skipped(4.0);
        assert!((e.left_secs() - 20.0 * 14.0 / 24.0).abs() < 1e-9);
        e.ran(20.0, 10.0);
        assert_eq!(e.left_secs(), 0.0);
    }
}
