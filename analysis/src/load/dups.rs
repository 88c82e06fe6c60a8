//! Runs given more than once: the same results directory twice, a copied
//! directory, a copied line ([`RunIdentity`] says what is the same run).

use std::collections::HashMap;

use super::{ResultsSet, Usage};

/// What makes two records the same run: the session that recorded it
/// (the manifest's scenario name and start time, which every copy of a
/// results directory keeps) and the run's id within it (which also names
/// its raw-data directory). Two sessions of one scenario both have a
/// `run-0000`, and those are different runs; the same directory given
/// twice, a copied directory, or a line copied within or between copies
/// of one session are the same run.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RunIdentity {
    /// Scenario name from the manifest.
    pub scenario: String,
    /// The manifest's `started_at`, bit for bit.
    pub session: u64,
    /// The record's run_id.
    pub run_id: String,
}

/// A run found more than once among the inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    /// Which run.
    pub id: RunIdentity,
    /// Every place it is (`runs.jsonl:LINE`), first first.
    pub places: Vec<String>,
}

/// The runs that appear more than once among `sets` ([`RunIdentity`]).
pub fn duplicates(sets: &[ResultsSet]) -> Vec<Duplicate> {
    let mut seen: HashMap<RunIdentity, usize> = HashMap::new();
    let mut out: Vec<Duplicate> = Vec::new();
    for s in sets {
        for (i, r) in s.records.iter().enumerate() {
            let id = RunIdentity {
                scenario: s.manifest.scenario_name.clone(),
                session: s.manifest.started_at.to_bits(),
                run_id: r.run_id.clone(),
            };
            match seen.get(&id) {
                Some(&k) => out[k].places.push(s.where_is(i)),
                None => {
                    seen.insert(id.clone(), out.len());
                    out.push(Duplicate {
                        id,
                        places: vec![s.where_is(i)],
                    });
                }
            }
        }
    }
    out.retain(|d| d.places.len() > 1);
    out
}

/// Refuse duplicated runs ([`duplicates`]) with a [`Usage`] error that
/// names them (the first few) and the directories given twice.
pub fn refuse_duplicates(sets: &[ResultsSet]) -> Result<(), Usage> {
    let dups = duplicates(sets);
    if dups.is_empty() {
        return Ok(());
    }
    let mut msg = String::new();
    let canon = |s: &ResultsSet| std::fs::canonicalize(&s.dir).unwrap_or_else(|_| s.dir.clone());
    for (i, a) in sets.iter().enumerate() {
        if let Some(b) = sets[..i].iter().find(|b| canon(b) == canon(a)) {
            msg.push_str(&format!(
                "{} is given twice (as {} and {})\n",
                canon(a).display(),
                b.dir.display(),
                a.dir.display()
            ));
        }
    }
    msg.push_str(&format!(
        "{} run{} would be counted more than once (a run is its session, i.e. the manifest's scenario and start time, and its run_id):",
        dups.len(),
        if dups.len() == 1 { "" } else { "s" }
    ));
    let shown = if msg.contains("given twice") { 2 } else { 5 };
    for d in dups.iter().take(shown) {
        msg.push_str(&format!(
            "\n  {} of {}: {}",
            d.id.run_id,
            d.id.scenario,
            d.places.join(" and ")
        ));
    }
    if dups.len() > shown {
        msg.push_str(&format!("\n  and {} more", dups.len() - shown));
    }
    msg.push_str(
        "\ngive each results directory once and each run once, or pass --allow-duplicates to count every copy",
    );
    Err(Usage(msg))
}
