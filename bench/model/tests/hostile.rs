//! Hostile input: scenario text that is arbitrary bytes, or TOML built
//! from the scenario's own keys with arbitrary values, never panics the
//! parser; every refusal names a line and column in the file and a field.

use std::path::Path;

use migbench_model::scenario::ScenarioError;
use migbench_model::Scenario;
use proptest::prelude::*;

/// Parse; on refusal, check the error is located.
fn parse_checked(text: &str) {
    match Scenario::parse(Path::new("scenarios/fuzz.toml"), text) {
        Ok(_) => {}
        Err(ScenarioError::Invalid {
            path, line, column, ..
        }) => {
            assert_eq!(path, Path::new("scenarios/fuzz.toml"));
            let lines = text.lines().count().max(1);
            assert!(line >= 1 && line <= lines + 1, "line {line} of {lines}");
            assert!(column >= 1);
        }
        Err(e) => panic!("unexpected {e}"),
    }
}

const KEYS: &[(&str, &str)] = &[
    ("guest", "ram"),
    ("guest", "vcpus"),
    ("link", "rate"),
    ("workload", "dirty_rate"),
    ("workload", "working_set"),
    ("migration", "downtime_limit"),
    ("migration", "max_bandwidth"),
    ("migration", "postcopy"),
    ("migration", "multifd_channels"),
    ("storage", "mode"),
    ("service", "kind"),
    ("service", "stream_rate"),
    ("service", "buffer"),
    ("probe", "interval"),
    ("policy", "downtime_steps"),
    ("fault", "inject"),
];

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,12}",
        "\"[0-9.]{0,6} ?[a-zA-Z/%+ ]{0,8}\"",
        "\\[(\"[0-9]{1,4}[a-zA-Z]{0,5}\", ){0,3}\\]",
        Just("true".to_string()),
        Just("{}".to_string()),
        Just("\"\"".to_string()),
        "\"(link-down|dst-kill|link-degrade|agent-stall|none)( to [0-9]{1,3}mbit)?( for [0-9]{1,2}s)?( at (pass )?[0-9]{1,2}s?)?\"",
        // Quantities at and far beyond u64 and f64.
        "\"[0-9]{15,45}(\\.[0-9])? ?(B|KiB|TiB|G|MB/s|GiB/s|kbit|gbit|Mbps|ns|ms|s|min|h|%)\"",
        "\"[1-9]e[0-9]{1,3} ?(TiB|MB/s|gbit|tbit|h|%)\"",
        "\"(to [0-9]{15,25}gbit|link-down for [0-9]{15,25}h)\"",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics_the_parser(text in "\\PC{0,400}") {
        parse_checked(&text);
    }

    #[test]
    fn scenario_keys_with_arbitrary_values_are_parsed_or_refused_with_a_place(
        picks in proptest::collection::vec((0..KEYS.len(), value()), 1..8)
    ) {
        let mut text = String::from("[guest]\nram = \"256MiB\"\n[link]\nrate = \"1gbit\"\n");
        for (k, v) in picks {
            let (table, key) = KEYS[k];
            text.push_str(&format!("[{table}]\n{key} = {v}\n"));
        }
        parse_checked(&text);
    }
}

/// The checked-in corpus (`tests/corpus/scenario/`): inputs that once
/// mattered (hostile shapes, each fault phrase, every refusal kind) are
/// parsed or refused with a place, every time.
#[test]
fn the_corpus_is_parsed_or_refused_with_a_place() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/scenario");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let bytes = std::fs::read(e.path()).unwrap();
        parse_checked(&String::from_utf8_lossy(&bytes));
        n += 1;
    }
    assert!(n >= 10, "corpus of {n} files in {}", dir.display());
}
