//! The model against real runs (`fixtures/model/*.jsonl`, TCG on 2
//! cores): the shipped constants are what a fit of the fixtures gives;
//! fitted on every configuration but one, it predicts the one left out
//! (the docs quote the table this prints, and the assertions hold it
//! to those figures, and to the targets); a fit whose runs do
//! not vary RAM, link or limit keeps the prior for what they cannot
//! tell. `holdout.rs` holds the configurations never fitted on.

mod model_fixtures;

use std::path::Path;

use migbench_model::stats::median;
use migbench_model::RunRecord;
use migbench_predict::accuracy::{
    downtime_tolerance_ms, downtime_tolerance_p90_ms, measured_downtime, Checked,
};
use migbench_predict::{fit_report, Constants, Envelope, Model};
use model_fixtures::{cell, figures, fitted, fixtures, left_out, quantile};

/// Each fixture file's stem with the configurations it holds.
fn files() -> Vec<(String, Vec<String>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/model");
    let mut out: Vec<(String, Vec<String>)> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .map(|p| {
            let cells = std::fs::read_to_string(&p)
                .unwrap()
                .lines()
                .map(|l| cell(&serde_json::from_str::<RunRecord>(l).unwrap()))
                .collect();
            (p.file_stem().unwrap().to_string_lossy().into_owned(), cells)
        })
        .collect();
    out.sort();
    out
}

/// The rounding `LAB` writes a constant with, by its name; a constant
/// without one fails the test below until it has one, so none is shipped
/// unchecked. `None`: not fitted (the prior's, equal).
fn rounding(name: &str) -> Option<f64> {
    Some(match name {
        "goodput" => 0.001,
        "dirty_scale" | "remainder_share" | "sync_share" => 0.01,
        "setup_ms"
        | "setup_ms_per_gib"
        | "pass_ms"
        | "switchover_ms"
        | "switchover_ms_per_gib"
        | "check_ms" => 1.0,
        "base_bytes" | "base_bytes_per_gib" | "background_rate" | "tail_bytes"
        | "tail_bytes_per_gib" | "check_bytes" => 0.1e6,
        "socket_bytes" => 0.01e6,
        "dirty_capacity" | "compress_rate" => return None,
        other => panic!("no rounding for the constant `{other}`: say how LAB writes it"),
    })
}

/// Each constant as shipped against a fresh fit of the fixtures: equal
/// within the rounding `LAB` is written with.
#[test]
fn the_shipped_constants_are_a_fit_of_the_fixtures() {
    let m = fitted();
    let (f, lab) = (m.constants, Constants::LAB);
    println!("fitted: {f:?}");
    let (fitted, shipped) = (
        serde_json::to_value(f).unwrap(),
        serde_json::to_value(lab).unwrap(),
    );
    let names: Vec<&String> = fitted.as_object().unwrap().keys().collect();
    assert!(names.len() >= 17, "{names:?}");
    for name in names {
        let (x, y) = (
            fitted[name].as_f64().unwrap(),
            shipped[name].as_f64().unwrap(),
        );
        match rounding(name) {
            Some(unit) => assert!(
                (x - y).abs() <= unit / 2.0 + 1e-9,
                "{name}: fitted {x}, shipped {y} (rounded to {unit})"
            ),
            None => assert_eq!(x, y, "{name}: not fitted, the prior's"),
        }
    }
    // The envelope shipped is the fixtures'.
    println!("envelope: {:?}", m.envelope);
    assert_eq!(m.envelope, Envelope::LAB);
    assert_eq!(Model::LAB.constants, lab);
}

/// The figures the docs state for the leave-one-configuration-out
/// table: (total time median %, p90 %, downtime median ms, p90 ms,
/// endings right %). A change of the model or the fixtures that moves
/// them beyond the margins fails here until the docs say so.
const README_LOCO: (f64, f64, f64, f64, f64) = (3.6, 13.5, 24.0, 61.0, 98.9);

/// The docs' downtime figures in the issue's own units (|error| over
/// 20 ms or 15 % for the median, over 50 ms or 30 % for the 90th
/// percentile; at most 1 meets a target): the model left out one
/// configuration at a time; then, on the runs of configurations run more
/// than once (see [`Floor`]), each run against the others of its
/// configuration and the noise level (each run from its configuration's
/// mean), with its 95 % intervals, and the model on those runs.
/// (2026-12-06, eighth session: the top of RAM's slope per GiB moved the
/// model's from 0.71 and 1.04; the docs had called the first of these
/// floors the best any model could do, which overstated it. Tenth
/// session: capped runs' last pages leave at the link's rate past what
/// the socket takes, and the remainder is fitted without those runs;
/// from 0.64 and 0.96, and on the repeated runs from 0.63 and 0.96.
/// Eleventh session: QEMU's first check below the limit's worth is
/// taken anywhere in the span before it, not at its middle; from 0.74
/// and 0.94, on the repeated runs from 0.75 and 0.94: worse on the
/// fixtures' day, better on the re-run and the never-fitted checks, see
/// `unseen.rs` and `holdout.rs`.)
const README_SCALED: (f64, f64) = (0.90, 0.96);
const README_FLOOR: (f64, f64, f64, f64) = (0.60, 1.02, 0.47, 0.72);
/// The noise level's 95 % intervals (median from, to; p90 from, to).
const README_NOISE_INTERVAL: (f64, f64, f64, f64) = (0.21, 0.68, 0.45, 1.15);
/// The model's figures on the runs the floors are computed on.
const README_MODEL_REPEATED: (f64, f64) = (0.91, 0.96);

#[test]
fn left_out_configurations_are_predicted_as_the_readme_says() {
    let recs = fixtures();
    let (cells, all) = left_out(&recs);
    assert!(cells.len() >= 40, "{} configurations", cells.len());
    // Per fixture file, as the guide's table has it, row for row.
    let guide = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/src/guide/model.md"),
    )
    .unwrap();
    println!("| fixture | configurations | runs | total time median | p90 | downtime median | p90 | endings right |");
    println!("|---|---|---|---|---|---|---|---|");
    for (name, file_cells) in files() {
        let mut n = file_cells.clone();
        n.sort();
        n.dedup();
        let part: Vec<Checked> = all
            .iter()
            .filter(|k| file_cells.contains(&cell(k.rec)))
            .cloned()
            .collect();
        let g = figures(&part);
        let row = format!(
            "| {name} | {} | {} | {:.1} % | {:.1} % | {:.0} ms | {:.0} ms | {:.0} % |",
            n.len(),
            g.runs,
            g.time_median,
            g.time_p90,
            g.down_median,
            g.down_p90,
            g.ending_pct
        );
        println!("{row}");
        assert!(
            guide.lines().any(|l| l == row),
            "the guide's per-fixture table should have {row}"
        );
    }
    let f = figures(&all);
    println!(
        "left out one of {} configurations at a time ({} runs): total time median {:.1} %, p90 {:.1} %; downtime median {:.0} ms, p90 {:.0} ms; endings right {:.0} %; downtime error over its tolerance: median {:.2} (of 20 ms or 15 %), p90 {:.2} (of 50 ms or 30 %)",
        cells.len(),
        f.runs,
        f.time_median,
        f.time_p90,
        f.down_median,
        f.down_p90,
        f.ending_pct,
        f.down_scaled_median,
        f.down_scaled_p90,
    );
    let (tm, tp, dm, dp, end) = README_LOCO;
    let near = |what: &str, got: f64, stated: f64, margin: f64| {
        assert!(
            (got - stated).abs() <= margin,
            "{what}: {got:.1} where the docs state {stated} (±{margin}): {f:?}"
        );
    };
    near("total time median %", f.time_median, tm, 0.3);
    near("total time p90 %", f.time_p90, tp, 1.0);
    near("downtime median ms", f.down_median, dm, 3.0);
    near("downtime p90 ms", f.down_p90, dp, 8.0);
    near("endings right %", f.ending_pct, end, 0.5);
    let floor = repeatability_floor(&recs, &all);
    let ((iml, imh), (ipl, iph)) = floor.spread_interval;
    println!(
        "downtime |error| over its tolerance, median (of 20 ms or 15 %) and p90 (of 50 ms or 30 %), on the {} runs of the {} configurations run more than once: the model {:.2} and {:.2}; each run against the others of its configuration {:.2} and {:.2}; the noise level (from the mean) {:.2} [{iml:.2}, {imh:.2}] and {:.2} [{ipl:.2}, {iph:.2}] (95 % over configurations drawn again)",
        floor.runs, floor.configurations, floor.model.0, floor.model.1, floor.others.0, floor.others.1, floor.spread.0, floor.spread.1
    );
    let (sm, sp) = README_SCALED;
    near("downtime scaled median", f.down_scaled_median, sm, 0.03);
    near("downtime scaled p90", f.down_scaled_p90, sp, 0.05);
    let (om, op, pm, pp) = README_FLOOR;
    near("against the others, median", floor.others.0, om, 0.03);
    near("against the others, p90", floor.others.1, op, 0.05);
    near("noise level, median", floor.spread.0, pm, 0.03);
    near("noise level, p90", floor.spread.1, pp, 0.05);
    let (a, b, c, d) = README_NOISE_INTERVAL;
    near("noise level, median from", iml, a, 0.03);
    near("noise level, median to", imh, b, 0.03);
    near("noise level, p90 from", ipl, c, 0.05);
    near("noise level, p90 to", iph, d, 0.05);
    let (mm, mp) = README_MODEL_REPEATED;
    near(
        "model on the repeated runs, median",
        floor.model.0,
        mm,
        0.03,
    );
    near("model on the repeated runs, p90", floor.model.1, mp, 0.05);
    // The model's 90th percentile lies inside the noise level's
    // interval, its median above it (before the socket, 0.63, inside; 0.75
    // before the span's checks were averaged):
    // on the median these runs tell it from a model of each
    // configuration's mean.
    assert!(
        floor.model.0 > imh && floor.model.1 <= iph,
        "{:?}",
        floor.model
    );
    // The targets.
    assert!(f.time_median <= 5.0 && f.time_p90 <= 15.0, "{f:?}");
    assert!(f.ending_pct >= 95.0, "{f:?}");
    assert!(f.down_scaled_median <= 1.0, "{f:?}");
    assert!(f.down_scaled_p90 <= 1.0, "{f:?}");
}

/// How close a model of each configuration could come to its runs'
/// downtimes, in the units (median over 20 ms or 15 %, 90th
/// percentile over 50 ms or 30 %), over the runs of configurations run
/// more than once, with the model (left out) scored on the same runs.
struct Floor {
    /// Each run predicted by the median of the other runs of its
    /// configuration: those runs' own noise adds to the error (for a
    /// configuration run twice, the difference of two runs has twice a
    /// run's variance), so this overstates the noise.
    others: (f64, f64),
    /// Each run's distance from its configuration's mean, times
    /// √(n/(n−1)) for the mean's own share of the run: the noise level,
    /// what predicting each configuration's mean would give if the
    /// noise were normal. It is not (identical runs paused 19 and
    /// 101 ms), and the mean need not minimise these figures.
    spread: (f64, f64),
    /// 95 % interval of `spread`'s median and 90th percentile over
    /// configurations drawn with replacement (2000 draws): most
    /// configurations have two runs, so it is wide.
    spread_interval: ((f64, f64), (f64, f64)),
    /// The model, left out one configuration at a time, on these runs.
    model: (f64, f64),
    runs: usize,
    configurations: usize,
}

fn repeatability_floor(recs: &[RunRecord], model: &[Checked]) -> Floor {
    let done: Vec<(&RunRecord, f64)> = recs
        .iter()
        .filter(|r| r.outcome == migbench_model::Outcome::Completed)
        .filter_map(|r| Some((r, measured_downtime(r)?)))
        .collect();
    let scaled = |e: f64, d: f64| {
        (
            e / downtime_tolerance_ms(d),
            e / downtime_tolerance_p90_ms(d),
        )
    };
    let key = |r: &RunRecord| format!("{} {}", cell(r), r.params.variant);
    let (mut others, mut modelled) = (Vec::new(), Vec::new());
    // Each configuration's runs' `spread` figures (also resampled below).
    let mut by_config: std::collections::BTreeMap<String, Vec<(f64, f64)>> = Default::default();
    for (r, d) in &done {
        let all: Vec<f64> = done
            .iter()
            .filter(|(o, _)| key(o) == key(r))
            .map(|(_, d)| *d)
            .collect();
        let rest: Vec<f64> = done
            .iter()
            .filter(|(o, _)| key(o) == key(r) && !std::ptr::eq(*o, *r))
            .map(|(_, d)| *d)
            .collect();
        let Some(guess) = median(&rest) else {
            continue;
        };
        others.push(scaled((guess - d).abs(), *d));
        let n = all.len() as f64;
        let mean = all.iter().sum::<f64>() / n;
        let noise = scaled((n / (n - 1.0)).sqrt() * (mean - d).abs(), *d);
        by_config.entry(key(r)).or_default().push(noise);
        let k = model.iter().find(|k| std::ptr::eq(k.rec, *r)).unwrap();
        modelled.push(scaled(
            k.downtime_error_ms.expect("both completed").abs(),
            *d,
        ));
    }
    let figures = |v: &[(f64, f64)]| {
        let (m, p): (Vec<f64>, Vec<f64>) = v.iter().copied().unzip();
        (median(&m).unwrap(), quantile(&p, 0.9))
    };
    let configs: Vec<&Vec<(f64, f64)>> = by_config.values().collect();
    let mut seed: u64 = 0x5eed;
    let mut draws: (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    for _ in 0..2000 {
        let mut sample = Vec::new();
        for _ in 0..configs.len() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            sample.extend(configs[(seed >> 33) as usize % configs.len()]);
        }
        let (m, p) = figures(&sample);
        draws.0.push(m);
        draws.1.push(p);
    }
    let interval = |v: &[f64]| (quantile(v, 0.025), quantile(v, 0.975));
    Floor {
        others: figures(&others),
        spread: figures(&by_config.values().flatten().copied().collect::<Vec<_>>()),
        spread_interval: (interval(&draws.0), interval(&draws.1)),
        model: figures(&modelled),
        runs: others.len(),
        configurations: configs.len(),
    }
}

/// A fit on runs of one RAM size (1 GiB, a 100 ms limit) keeps the prior's
/// per-GiB slopes and says so, so a post-copy pause is not predicted as
/// nothing; one on a single configuration names every share it could not
/// tell apart too; nothing starts from `LAB`.
#[test]
fn a_fit_keeps_the_prior_for_what_its_runs_cannot_identify() {
    let recs = fixtures();
    let one_ram: Vec<RunRecord> = recs
        .iter()
        .filter(|r| r.params.ram.0 == 1 << 30 && r.params.downtime_limit.ms() == 100.0)
        .cloned()
        .collect();
    let f = fit_report(&one_ram).unwrap();
    println!("{:?}", f.unidentified);
    let c = f.model.constants;
    let prior = Constants::PRIOR;
    assert_eq!(c.setup_ms_per_gib, prior.setup_ms_per_gib);
    // The top of RAM is fitted at its one size, with no slope (the
    // prior's none, not LAB's).
    assert_eq!(c.tail_bytes_per_gib, 0.0);
    assert_eq!(prior.tail_bytes_per_gib, 0.0);
    assert_eq!(c.switchover_ms_per_gib, prior.switchover_ms_per_gib);
    assert_eq!(c.base_bytes_per_gib, prior.base_bytes_per_gib);
    assert!(
        f.unidentified.iter().any(|u| u.contains("per-GiB")),
        "{:?}",
        f.unidentified
    );
    // Its link and dirty rate vary: the shares are fitted. Its remainder
    // takes all of its downtimes, so the switchover is the prior's (and
    // a post-copy switch still pauses the guest). None of its runs is
    // capped below its link: the socket's take is the prior's none.
    assert_eq!(f.unidentified.len(), 3, "{:?}", f.unidentified);
    assert!(
        f.unidentified[1].starts_with("the switchover"),
        "{:?}",
        f.unidentified
    );
    assert!(
        f.unidentified[2].starts_with("what the socket takes"),
        "{:?}",
        f.unidentified
    );
    assert_eq!(c.socket_bytes, prior.socket_bytes);
    assert_eq!(c.switchover_ms, prior.switchover_ms);
    // A post-copy switch of a 2 GiB guest still pauses it (the prior's
    // slope), where a slope fitted as 0 said "a 0 ms pause".
    let mut i = migbench_predict::Inputs {
        ram: 2.0 * (1u64 << 30) as f64,
        working_set: 0.5 * (1u64 << 30) as f64,
        dirty_rate: 50e6,
        link_bps: 1e9,
        downtime_limit_ms: 300.0,
        timeout_ms: 600_000.0,
        ..Default::default()
    };
    i.postcopy = migbench_predict::Switch::AfterPasses(2);
    let p = migbench_predict::predict(&i, &c);
    assert!(p.downtime_ms.unwrap() >= prior.switchover_ms, "{p:?}");
    // One configuration: nothing varies but the repetitions.
    let first = recs
        .iter()
        .find(|r| {
            r.outcome == migbench_model::Outcome::Completed
                && r.params.max_bandwidth == migbench_model::settings::BandwidthCap::Unlimited
        })
        .map(cell)
        .unwrap();
    let single: Vec<RunRecord> = recs.iter().filter(|r| cell(r) == first).cloned().collect();
    let s = fit_report(&single).unwrap();
    println!("{:?}", s.unidentified);
    let text = s.unidentified.join("; ");
    for what in [
        "per-GiB",
        "between QEMU's checks",
        "between syncs",
        "the socket",
    ] {
        assert!(text.contains(what), "{what}: {text}");
    }
    let sc = s.model.constants;
    assert_eq!(
        (sc.remainder_share, sc.sync_share),
        (prior.remainder_share, prior.sync_share)
    );
}
