//! What explains check9's miss (`fixtures/model/setup/`), the guide's
//! worked downtimes, and every fitted fixture run again
//! (`fixtures/model/refit/`), beside how far one day's medians say the
//! other day's runs. The never-fitted checks are in `holdout.rs`.

mod model_fixtures;

use migbench_model::RunRecord;
use migbench_predict::accuracy::check;
use migbench_predict::{fit, Constants};
use model_fixtures::{cell, figures, fitted, fixtures, left_out, load, medians, range};

/// The idle runs of one RAM size (MiB).
fn idle(runs: &[RunRecord], mib: u64) -> impl Iterator<Item = &RunRecord> {
    runs.iter()
        .filter(move |r| r.params.ram.0 == mib << 20 && r.params.dirty_rate.0 == 0)
}

/// QEMU's downtimes of `runs`, ms, sorted.
fn sorted_pauses<'a>(runs: impl Iterator<Item = &'a RunRecord>) -> Vec<f64> {
    let mut v: Vec<f64> = runs.filter_map(|r| r.downtime_qemu_ms).collect();
    v.sort_by(f64::total_cmp);
    v
}

/// What check9 missed on (`fixtures/model/setup/` and `reruns/`, run
/// after it), as the docs quote it: QEMU's setup is no line in RAM.
/// Snapshot-started idle guests (two runs a size) took 0.27–0.40 s at
/// 896, 992 and 1056 MiB but 0.49–0.50 s at 1 GiB and 0.51–0.68 s at
/// 1152 MiB; check9's 960 MiB guest, booted for each run instead of
/// started from one saved state, took 0.50–0.88 s where its restored
/// runs took 0.27–0.29 s. The model's line through the fixtures' medians
/// says 0.74 s at 960 MiB. Today's guest paused longer than the model's
/// top of RAM: 167 and 189 ms at 1 GiB over 1 Gbit with a 300 ms limit;
/// ram768 run again paused 217 and 222 ms idle with a 300 ms limit (the
/// fixture's runs: 53 and 134), its idle runs set up in 0.26–0.31 s
/// (the fixture's: 0.37–1.03 s).
#[test]
fn check9s_findings_setups_by_ram_and_start_and_idle_pauses_are_as_the_docs_say() {
    let setup = |runs: &[RunRecord], mib: u64| -> Vec<f64> {
        idle(runs, mib)
            .filter_map(|r| r.qemu_setup_time_ms)
            .collect()
    };
    let scan = load("setup");
    let near: Vec<f64> = [896, 992, 1056]
        .iter()
        .flat_map(|&m| setup(&scan, m))
        .collect();
    let gib = setup(&scan, 1024);
    let (near_lo, near_hi) = range(&near);
    let (gib_lo, gib_hi) = range(&gib);
    println!("setup ms: 896-1056 MiB {near_lo}-{near_hi}, 1 GiB {gib_lo}-{gib_hi}");
    assert_eq!((near.len(), gib.len()), (6, 2));
    assert_eq!(
        (near_lo, near_hi, gib_lo, gib_hi),
        (269.0, 397.0, 490.0, 495.0)
    );
    // check9's idle cell: booted (in setup/) against restored (misses/).
    let booted = setup(&scan, 960);
    let restored = setup(&load("misses"), 960);
    let (b_lo, b_hi) = range(&booted);
    let (r_lo, r_hi) = range(&restored);
    println!("960 MiB setup ms: booted {b_lo}-{b_hi}, restored {r_lo}-{r_hi}");
    assert_eq!((booted.len(), restored.len()), (6, 3));
    assert!(b_lo > r_hi, "booted {booted:?} restored {restored:?}");
    assert_eq!((b_lo, b_hi, r_lo, r_hi), (495.0, 876.0, 268.0, 285.0));
    assert_eq!(range(&setup(&scan, 1152)), (507.0, 680.0));
    let pauses = |runs: &[RunRecord], mib: u64, limit_ms: f64| -> Vec<f64> {
        sorted_pauses(idle(runs, mib).filter(|r| r.params.downtime_limit.ms() == limit_ms))
    };
    assert_eq!(pauses(&scan, 1024, 300.0), [167.0, 189.0]);
    let reruns = load("reruns");
    assert_eq!(pauses(&reruns, 768, 300.0), [217.0, 222.0]);
    assert_eq!(pauses(&fixtures(), 768, 300.0), [53.0, 134.0]);
    assert_eq!(range(&setup(&reruns, 768)), (262.0, 310.0));
    assert_eq!(range(&setup(&fixtures(), 768)), (374.0, 1031.0));
    let c = fitted().constants;
    let line = c.setup_ms + c.setup_ms_per_gib * 960.0 / 1024.0;
    assert!((line - 740.0).abs() < 10.0, "{line}");
}

/// The guide's worked examples of where the downtime comes from, with the
/// shipped constants: an idle 512 MiB guest (a quarter of it the working
/// set) paused for the switchover and 26 ms of the pass on average over
/// 200 Mbit with a 100 ms limit (30 ms), 34 ms over 500 Mbit, and its top
/// of RAM over 500 Mbit with a 500 ms limit (205 ms); an idle 1 GiB guest
/// over 1 Gbit with a 300 ms limit 138 ms; and the first two's pauses as
/// measured on both days.
#[test]
fn the_guides_worked_downtimes_and_the_pauses_beside_them_are_as_stated() {
    let mib = (1u64 << 20) as f64;
    for (ram, link_bps, limit_ms, down_ms) in [
        (512.0, 200e6, 100.0, 30.0),
        (512.0, 500e6, 100.0, 34.0),
        (512.0, 500e6, 500.0, 205.0),
        (1024.0, 1e9, 300.0, 138.0),
    ] {
        let i = migbench_predict::Inputs {
            ram: ram * mib,
            working_set: ram * mib / 4.0,
            link_bps,
            downtime_limit_ms: limit_ms,
            timeout_ms: 600_000.0,
            ..Default::default()
        };
        let p = migbench_predict::predict(&i, &migbench_predict::Constants::LAB);
        let got = p.downtime_ms.unwrap();
        assert!(
            (got - down_ms).abs() < 0.5,
            "{ram} MiB, {link_bps}, {limit_ms} ms: {got}"
        );
    }
    // What the guide quotes beside the first two: the idle 512 MiB
    // guest's pauses with a 100 ms limit (ms, sorted), fixture and re-run.
    let pauses = |runs: &[RunRecord], link: u64| -> Vec<f64> {
        sorted_pauses(
            idle(runs, 512)
                .filter(|r| r.params.link_rate.0 == link && r.params.downtime_limit.ms() == 100.0),
        )
    };
    let (fix, again) = (fixtures(), load("refit"));
    assert_eq!(pauses(&fix, 200_000_000), [3.0, 3.0]);
    assert_eq!(pauses(&again, 200_000_000), [13.0, 42.0]);
    assert_eq!(pauses(&fix, 500_000_000), [47.0, 51.0]);
    assert_eq!(pauses(&again, 500_000_000), [29.0, 68.0]);
}

/// Every fitted fixture run again on 2026-12-06 with that day's guest
/// (`fixtures/model/refit/`, not fitted on). The shipped model, never
/// fitted on them, predicts them within 4.4 % and 11.6 % of the total
/// time and 0.69 and 0.74 of the downtime targets (all four met).
/// Fitted on them instead, the setup line halves (788 to 360 ms per GiB:
/// their 1 GiB guests set up in 333–674 ms, the fixtures' in 466–2415),
/// the guest's background dirtying becomes 0.5 MB/s (the idle
/// 512 MiB guest with a 64 MiB working set is then predicted to pause
/// 135 ms, where 73 were measured and the shipped model says 108); left
/// out one configuration at a time the total time is closer (1.7 % and
/// 6.4 %) but the downtime meets only the median's target (0.95 and
/// 1.26; 1.29 and 1.33 before the eleventh session). As the guide says.
#[test]
fn the_fixtures_run_again_fit_the_total_closer_and_the_downtime_worse() {
    let recs = load("refit");
    assert_eq!(recs.len(), 94);
    let c = fit(&recs).expect("fitted").constants;
    println!("fitted on the re-run: {c:?}");
    assert_eq!(c.setup_ms, 0.0);
    assert!((c.setup_ms_per_gib - 360.0).abs() < 0.5, "{c:?}");
    assert_eq!(c.sync_share, 0.5);
    // Why the line halves: QEMU's setup of a 1 GiB guest, ms.
    let setups = |runs: &[RunRecord]| -> (f64, f64) {
        let v: Vec<f64> = runs
            .iter()
            .filter(|r| r.params.ram.0 == 1 << 30)
            .filter_map(|r| r.qemu_setup_time_ms)
            .collect();
        range(&v)
    };
    assert_eq!(setups(&recs), (333.0, 674.0));
    assert_eq!(setups(&fixtures()), (466.0, 2415.0));
    assert_eq!(c.background_rate, 0.5e6);
    // Why the pause grows: the idle 512 MiB guest with the default
    // 64 MiB working set (`holdout/check3`), 73 ms measured.
    let held = load("holdout");
    let idle64: Vec<&RunRecord> = held
        .iter()
        .filter(|r| {
            r.params.ram.0 == 512 << 20
                && r.params.working_set.0 == 64 << 20
                && r.params.dirty_rate.0 == 0
        })
        .collect();
    let pd = check(&idle64, &c)[0].predicted.downtime_ms.unwrap();
    assert!((pd - 135.2).abs() < 0.5, "{pd}");
    let shipped_pd = check(&idle64, &Constants::LAB)[0]
        .predicted
        .downtime_ms
        .unwrap();
    assert!((shipped_pd - 108.1).abs() < 0.5, "{shipped_pd}");
    // The shipped model on them (never fitted on them), then a fit of
    // them, each configuration left out in turn: the guide's figures
    // (total time median and p90 %, downtime scaled median and p90).
    let refs: Vec<&RunRecord> = recs.iter().collect();
    let shipped = figures(&check(&refs, &Constants::LAB));
    let (cells, all) = left_out(&recs);
    assert_eq!(cells.len(), 46);
    let refit = figures(&all);
    // Figures quoted to one decimal (%) within 0.05, to two within 0.005.
    for (what, f, stated) in [
        ("shipped", &shipped, [4.4, 11.6, 0.69, 0.74]),
        ("refitted, left out", &refit, [1.7, 6.4, 0.95, 1.26]),
    ] {
        println!("{what}: {f:?}");
        let got = [
            f.time_median,
            f.time_p90,
            f.down_scaled_median,
            f.down_scaled_p90,
        ];
        for (k, (g, s)) in got.iter().zip(stated).enumerate() {
            let margin = if k < 2 { 0.05 } else { 0.005 };
            assert!(
                (g - s).abs() < margin,
                "{what}: {got:?}, the guide says {stated:?}"
            );
        }
    }
    // All four targets (before the socket, the downtime's p90 was just
    // over, at 1.03); a fit of these runs, left out, misses the downtime's
    // p90 target (and missed both before the eleventh session).
    assert!(shipped.time_median <= 5.0 && shipped.time_p90 <= 15.0);
    assert!(shipped.down_scaled_median <= 1.0 && shipped.down_scaled_p90 <= 1.0);
    assert!(refit.down_scaled_median <= 1.0 && refit.down_scaled_p90 > 1.0);
}

/// A guess of a configuration's (total ms, downtime ms) from its name and runs.
type Guess = dyn Fn(&str, &[&RunRecord]) -> (f64, f64);

/// How far one day's runs say another day's: each re-run configuration
/// (`refit/`, 2026-12-06) predicted by the fixtures' own median of the
/// same configuration, against the shipped model predicting it. Per run
/// (total time median and p90 %, downtime scaled median and p90) and per
/// configuration (of 44 with completed runs on both days, how many meet
/// the hidden check's targets: total time within 10 %, downtime within
/// 50 ms or 25 %): the fixtures' medians 2.5 %, 13.1 %, 0.975, 0.94, 37
/// and 39; the model 4.4 %, 11.6 %, 0.69, 0.74, 39 and 42. The other
/// way round (the re-run's medians for the fixtures' runs) 2.6 %,
/// 14.3 %, 0.81, 1.11, 37 and 39. The model meets at least as many of
/// the re-run's configurations as the other day's medians do: the same
/// configuration moves between days by as much as the model errs, which
/// is what a check on another machine meets: a 1 GiB idle guest over
/// 1 Gbit with a 100 ms limit took 3.4 s re-run and 3.8 s in the
/// fixtures, with 3 MB/s 3.6 and 6.8 s (medians). As the guide says.
#[test]
fn the_model_meets_as_many_of_a_new_days_configurations_as_another_days_medians() {
    use migbench_model::stats::median;
    use migbench_predict::accuracy::{
        downtime_tolerance_ms, downtime_tolerance_p90_ms, measured_downtime,
    };
    use model_fixtures::quantile;
    let completed = |runs: &[RunRecord], name: &str| -> Vec<RunRecord> {
        runs.iter()
            .filter(|r| cell(r) == name && r.outcome == migbench_model::Outcome::Completed)
            .cloned()
            .collect()
    };
    // Each run of `to` predicted as (total ms, downtime ms) by `guess`
    // of its configuration: per-run figures and the configurations met.
    let judge = |to: &[RunRecord], guess: &Guess| {
        let mut names: Vec<String> = to.iter().map(cell).collect();
        names.sort();
        names.dedup();
        let (mut time, mut med, mut p90) = (Vec::new(), Vec::new(), Vec::new());
        let (mut n, mut time_met, mut down_met) = (0, 0, 0);
        for name in &names {
            let runs = completed(to, name);
            let refs: Vec<&RunRecord> = runs.iter().collect();
            if refs.is_empty() || completed(&fixtures(), name).is_empty() {
                continue;
            }
            let (pt, pd) = guess(name, &refs);
            let (t, d) = medians(&refs);
            n += 1;
            time_met += usize::from((pt - t).abs() <= 0.10 * t);
            down_met += usize::from((pd - d).abs() <= (0.25 * d).max(50.0));
            for r in &refs {
                let d = measured_downtime(r).unwrap();
                let t = r.total_time_ms.unwrap();
                time.push((pt - t).abs() / t * 100.0);
                med.push((pd - d).abs() / downtime_tolerance_ms(d));
                p90.push((pd - d).abs() / downtime_tolerance_p90_ms(d));
            }
        }
        let got = [
            median(&time).unwrap(),
            quantile(&time, 0.9),
            median(&med).unwrap(),
            quantile(&p90, 0.9),
        ];
        (got, n, time_met, down_met)
    };
    let (fix, again) = (fixtures(), load("refit"));
    // A configuration's medians on the other day.
    let other_day = |other: &[RunRecord]| {
        let other = other.to_vec();
        move |name: &str, _: &[&RunRecord]| {
            let runs = completed(&other, name);
            medians(&runs.iter().collect::<Vec<_>>())
        }
    };
    let model = |_: &str, runs: &[&RunRecord]| {
        let p = check(runs, &Constants::LAB)[0].predicted;
        (p.total_time_ms, p.downtime_ms.expect("completes"))
    };
    // (whose prediction, its figures, the guide's, the configurations met).
    let cases = [
        (
            "the fixtures' medians",
            judge(&again, &other_day(&fix)),
            [2.5, 13.1, 0.975, 0.94],
            (37, 39),
        ),
        (
            "the model",
            judge(&again, &model),
            [4.4, 11.6, 0.69, 0.74],
            (39, 42),
        ),
        (
            "the re-run's medians, for the fixtures' runs",
            judge(&fix, &other_day(&again)),
            [2.6, 14.3, 0.81, 1.11],
            (37, 39),
        ),
    ];
    // What moves between days: two 1 GiB configurations' median total
    // times (s, to one decimal), re-run and fixtures.
    for (name, again_s, fix_s) in [
        ("1GiB 0 ws 256MiB 1gbit limit 100ms cap unlimited", 3.4, 3.8),
        (
            "1GiB 3MB/s ws 256MiB 1gbit limit 100ms cap unlimited",
            3.6,
            6.8,
        ),
    ] {
        for (runs, stated) in [(&again, again_s), (&fix, fix_s)] {
            let done = completed(runs, name);
            let t = medians(&done.iter().collect::<Vec<_>>()).0 / 1e3;
            assert!((t - stated).abs() < 0.05, "{name}: {t} s");
        }
    }
    let mut met_by = Vec::new();
    for (what, (got, n, time_met, down_met), stated, met) in cases {
        println!(
            "{what}: {got:.3?}; of {n} configurations, total time met {time_met}, downtime {down_met}"
        );
        assert_eq!(n, 44, "{what}");
        // Figures quoted to one decimal (%) within 0.05, to two within
        // 0.005, to three within 0.0005.
        for (k, (g, s)) in got.iter().zip(stated).enumerate() {
            let margin = if k < 2 {
                0.05
            } else if (s * 100.0_f64).fract().abs() > 1e-9 {
                0.0005
            } else {
                0.005
            };
            assert!(
                (g - s).abs() < margin,
                "{what}: {got:?}, the guide says {stated:?}"
            );
        }
        assert_eq!((time_met, down_met), met, "{what}");
        met_by.push(met);
    }
    // The model meets at least as many of the re-run's configurations as
    // the fixtures' own medians do, on the total time and on the downtime.
    assert!(
        met_by[1].0 >= met_by[0].0 && met_by[1].1 >= met_by[0].1,
        "{met_by:?}"
    );
}

/// ram1g and ram768 run again on 2026-12-06 (`fixtures/model/reruns/`,
/// not fitted on), by the shipped model: 0.52 and 0.80 of the downtime's
/// targets (median, 90th percentile). The first check at its span's
/// middle alone had scored 0.51 and 0.85 (measured once, with that
/// form's unrounded fit): alike at the
/// median, better at the 90th percentile, as the guide says.
#[test]
fn the_reruns_downtimes_are_as_the_guide_says() {
    let recs = load("reruns");
    let refs: Vec<&RunRecord> = recs.iter().collect();
    let f = figures(&check(&refs, &Constants::LAB));
    println!("{f:?}");
    assert_eq!(f.runs, 24);
    assert!((f.down_scaled_median - 0.52).abs() < 0.005, "{f:?}");
    assert!((f.down_scaled_p90 - 0.80).abs() < 0.005, "{f:?}");
}
