//! Fuzz target: a `runs.jsonl` as the analyzer loads it (every line
//! parsed and checked; a bad line is skipped with its reason).
#![no_main]

use libfuzzer_sys::fuzz_target;
use migbench_analysis::load::parse_runs_checked;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let p = parse_runs_checked(std::path::Path::new("runs.jsonl"), text);
    // Every non-empty line is either a record or a skipped line.
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert!(p.records.len() + p.skipped.len() <= lines + 1);
});
