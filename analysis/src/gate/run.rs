//! The gate as a command: both sides loaded, their runs paired group by
//! group, every check evaluated per group and the verdicts printed, with
//! the exit status.

use super::*;

/// The runs of each group both sides have: (group label, baseline, candidate).
type Pairs<'a> = Vec<(Option<String>, Vec<&'a RunRecord>, Vec<&'a RunRecord>)>;

/// Pair the sides' runs group by group. Groups are keyed by the labels of
/// the dimensions varying in either set, less those both sides' `--group`
/// filters name (or one names while the other side has one value of it). Groups only one side has are returned as warnings.
pub fn pair_groups<'a>(
    a: &'a Side<'a>,
    b: &'a Side<'a>,
) -> Result<(Pairs<'a>, Vec<String>), String> {
    let (ra, rb) = (a.records(), b.records());
    for (side, runs, flag) in [(a, &ra, "--group-a"), (b, &rb, "--group-b")] {
        if runs.is_empty() {
            return Err(match &side.group {
                Some(g) => format!(
                    "{flag} {g}: no run of {} has it (groups look like \"link_rate=100mbit\")",
                    side.set.name
                ),
                None => format!("{} has no runs", side.set.name),
            });
        }
    }
    // A dimension leaves the key when both sides pin it (the comparison
    // is across it, or within one value of it), or one side pins it and
    // the other has one value of it; pinned on one side while the other
    // has several values, the other side's runs are still matched by it,
    // not pooled over its values.
    let names = |g: &Option<String>| -> Vec<String> {
        g.iter()
            .flat_map(|g| g.split([' ', ',']))
            .filter_map(|w| w.split_once('=').map(|(k, _)| k.to_string()))
            .collect()
    };
    let (pin_a, pin_b) = (names(&a.group), names(&b.group));
    let single = |runs: &[&RunRecord], d: &Dim| {
        runs.iter()
            .all(|r| (d.label)(&r.params) == (d.label)(&runs[0].params))
    };
    let pinned = |d: &Dim| {
        let (pa, pb) = (
            pin_a.iter().any(|k| k == d.name),
            pin_b.iter().any(|k| k == d.name),
        );
        (pa && (pb || single(&rb, d))) || (pb && single(&ra, d))
    };
    let vary_a = varying(&all_runs(std::slice::from_ref(a.set)));
    let vary_b = varying(&all_runs(std::slice::from_ref(b.set)));
    let vary: Vec<&Dim> = DIMS
        .iter()
        .filter(|d| !pinned(d) && (vary_a.iter().chain(&vary_b)).any(|v| v.name == d.name))
        .collect();
    let key = |r: &RunRecord| -> Option<String> {
        (!vary.is_empty()).then(|| {
            vary.iter()
                .map(|d| format!("{}={}", d.name, (d.label)(&r.params)))
                .collect::<Vec<_>>()
                .join(" ")
        })
    };
    let split = |runs: &[&'a RunRecord]| {
        let mut out: Vec<(Option<String>, Vec<&'a RunRecord>)> = Vec::new();
        for r in runs {
            let k = key(r);
            match out.iter_mut().find(|(g, _)| *g == k) {
                Some((_, v)) => v.push(r),
                None => out.push((k, vec![*r])),
            }
        }
        out
    };
    let (ga, mut gb) = (split(&ra), split(&rb));
    let mut pairs = Vec::new();
    let mut warnings = Vec::new();
    for (k, runs_a) in ga {
        match gb.iter().position(|(g, _)| *g == k) {
            Some(i) => pairs.push((k, runs_a, gb.remove(i).1)),
            None => warnings.push(format!(
                "group {} is only in the baseline ({}): not gated",
                k.unwrap_or_default(),
                a.name()
            )),
        }
    }
    for (k, _) in gb {
        warnings.push(format!(
            "group {} is only in the candidate ({}): not gated",
            k.unwrap_or_default(),
            b.name()
        ));
    }
    if pairs.is_empty() {
        return Err(format!(
            "the baseline and the candidate have no group in common ({}); pick one on each side with --group-a/--group-b",
            warnings.join("; ")
        ));
    }
    Ok((pairs, warnings))
}

fn load(dir: &Path) -> Result<ResultsSet, String> {
    let set = load_results(dir).map_err(|e| {
        let mut s = format!("loading results directory {}: {e}", dir.display());
        let mut src = std::error::Error::source(&e);
        while let Some(c) = src {
            let _ = write!(s, ": {c}");
            src = c.source();
        }
        s
    })?;
    for w in &set.warnings {
        eprintln!("warning: {w}");
    }
    Ok(set)
}

/// Run the gate: print the verdicts and return the exit status (0 pass,
/// 1 a check failed, 2 the gate could not be evaluated).
pub fn run(
    baseline: &Path,
    candidate: &Path,
    group_a: Option<String>,
    group_b: Option<String>,
    args: &GateArgs,
) -> i32 {
    let mut checks = Vec::new();
    for expr in &args.fail_if {
        match Check::parse(expr) {
            Ok(c) => checks.push(c),
            Err(e) => {
                eprintln!("error: --fail-if {expr:?}: {e}");
                return 2;
            }
        }
    }
    let sets = match load(baseline).and_then(|a| Ok((a, load(candidate)?))) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let (sa, sb) = (
        Side {
            set: &sets.0,
            group: group_a,
        },
        Side {
            set: &sets.1,
            group: group_b,
        },
    );
    let (pairs, warnings) = match pair_groups(&sa, &sb) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for w in warnings {
        eprintln!("warning: {w}");
    }
    let json = args.format == "json";
    if !json {
        println!("baseline  = {}\ncandidate = {}", sa.name(), sb.name());
    }
    let (mut total, mut failed, mut untested) = (0, 0, 0);
    for check in &checks {
        for (group, ra, rb) in &pairs {
            let v = evaluate(check, group.as_deref(), ra, rb, args.require_runs);
            total += 1;
            failed += usize::from(v.fail);
            if v.outcome == Outcome::TooFewRuns {
                untested += 1;
                if args.require_runs.is_none() {
                    eprintln!(
                        "WARNING: {}{}: too few completed runs to test (baseline {}, candidate {}; Welch's test needs 2 a side): this check PASSES UNTESTED; run more repetitions, or add --require-runs 2 to fail instead",
                        v.metric,
                        v.group.as_deref().map(|g| format!(" [{g}]")).unwrap_or_default(),
                        v.baseline_n,
                        v.candidate_n
                    );
                }
            }
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&v).expect("a verdict serialises")
                );
            } else {
                println!("{}", v.line(args.require_runs));
            }
        }
    }
    if !json {
        let untested = if untested > 0 {
            format!(", {untested} with too few runs")
        } else {
            String::new()
        };
        if failed > 0 {
            println!("gate: FAIL ({failed} of {total} checks{untested})");
        } else {
            println!("gate: ok ({total} checks{untested})");
        }
    }
    i32::from(failed > 0)
}
