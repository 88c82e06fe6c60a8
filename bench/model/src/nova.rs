//! OpenStack Nova's downtime stepping (`live_migration_downtime`,
//! `_steps`, `_delay`): the schedule of downtime limits Nova's libvirt
//! driver sets during a migration. Pure; the policy that applies it
//! (bench) and the prediction model both read it from here.

use std::time::Duration;

/// Nova's downtime steps: `(delay·i seconds, base + offset·i ms)` for
/// `i = 0..=steps`, with `base = limit/steps`, `offset = (limit − base)/steps`
/// and `delay` scaled by the guest's data in GiB (at least 2, as Nova does).
pub fn downtime_steps(
    limit_ms: u64,
    steps: u32,
    delay_per_gib: Duration,
    data_gib: f64,
) -> Vec<(Duration, u64)> {
    if steps == 0 {
        return vec![(Duration::ZERO, limit_ms)];
    }
    let delay = delay_per_gib.as_secs_f64() * data_gib.max(2.0);
    let base = limit_ms as f64 / steps as f64;
    let offset = (limit_ms as f64 - base) / steps as f64;
    (0..=steps)
        .map(|i| {
            (
                Duration::from_secs_f64(delay * i as f64),
                (base + offset * i as f64) as u64,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nova_steps_match_its_formula() {
        // Nova's defaults: 500 ms, 10 steps, 75 s per GiB; a 3 GiB guest.
        let s = downtime_steps(500, 10, Duration::from_secs(75), 3.0);
        assert_eq!(s.len(), 11);
        assert_eq!(s[0], (Duration::ZERO, 50));
        assert_eq!(s[1], (Duration::from_secs(225), 95));
        assert_eq!(s[2], (Duration::from_secs(450), 140));
        assert_eq!(s[10], (Duration::from_secs(2250), 500));
        // Small guests count as 2 GiB.
        assert_eq!(
            downtime_steps(500, 10, Duration::from_secs(75), 0.25)[1].0,
            Duration::from_secs(150)
        );
        assert_eq!(
            downtime_steps(300, 0, Duration::from_secs(75), 1.0),
            vec![(Duration::ZERO, 300)]
        );
    }
}
