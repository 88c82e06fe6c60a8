//! Fuzz target: a scenario file's text through parsing, validation and
//! bounded expansion (what `migbench run --dry-run` does before any run).
#![no_main]

use libfuzzer_sys::fuzz_target;
use migbench_model::matrix::Limits;
use migbench_predict::plan::expand_bounded;
use migbench_model::Scenario;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(sc) = Scenario::parse(std::path::Path::new("fuzz.toml"), text) {
        // Small limits keep each input fast; the bound is what is tested.
        let limits = Limits {
            max_runs: 2_000,
            max_secs: 7.0 * 86_400.0,
        };
        if let Ok(runs) = expand_bounded(&sc, &limits) {
            assert!(runs.len() as u64 <= limits.max_runs);
        }
    }
});
