//! Hostile `runs.jsonl`: truncated, corrupt, unknown-field and reordered
//! lines never panic the loader; every line is either a record or a
//! warning that names the file and its line, and no intact record is lost.

use std::path::Path;

use migbench_analysis::load::parse_runs;
use migbench_model::RunRecord;
use proptest::prelude::*;

fn record(i: usize) -> String {
    let mut p = migbench_model::matrix::sample_run("");
    p.index = i;
    serde_json::to_string(&RunRecord::pending(&p, i as f64, "tcg")).unwrap()
}

/// What can happen to one line.
#[derive(Debug, Clone)]
enum Harm {
    Intact,
    Truncate(usize),
    Garbage(String),
    UnknownField,
    FlipByte(usize),
}

fn harm() -> impl Strategy<Value = Harm> {
    prop_oneof![
        4 => Just(Harm::Intact),
        1 => (0usize..2000).prop_map(Harm::Truncate),
        1 => "\\PC{0,80}".prop_map(Harm::Garbage),
        1 => Just(Harm::UnknownField),
        1 => (0usize..2000).prop_map(Harm::FlipByte),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn every_line_is_a_record_or_a_warning_naming_it(
        harms in proptest::collection::vec(harm(), 1..12),
        order in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
        newline_at_end in any::<bool>(),
    ) {
        let mut lines: Vec<(String, bool)> = harms
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let r = record(i);
                match h {
                    Harm::Intact => (r, true),
                    Harm::Truncate(n) => {
                        let cut = r.char_indices().map(|(i, _)| i).nth(n % r.len()).unwrap_or(0);
                        (r[..cut].to_string(), false)
                    }
                    Harm::Garbage(g) => (g.replace('\n', " "), false),
                    // Unknown fields are tolerated: newer writers add fields.
                    Harm::UnknownField => (r.replacen('{', "{\"from_the_future\":[1,2],", 1), true),
                    Harm::FlipByte(n) => {
                        let mut b = r.into_bytes();
                        let k = n % b.len();
                        b[k] = b'#';
                        (String::from_utf8_lossy(&b).into_owned(), false)
                    }
                }
            })
            .collect();
        // Reorder: runs.jsonl is in finishing order, not matrix order.
        let n = lines.len();
        for (k, idx) in order.iter().enumerate() {
            lines.swap(k % n, idx.index(n));
        }
        let mut text = lines.iter().map(|(l, _)| l.as_str()).collect::<Vec<_>>().join("\n");
        if newline_at_end {
            text.push('\n');
        }
        let (recs, warns) = parse_runs(Path::new("r/runs.jsonl"), &text);
        let nonblank = text.lines().filter(|l| !l.trim().is_empty()).count();
        prop_assert_eq!(recs.len() + warns.len(), nonblank);
        let intact = lines.iter().filter(|(_, ok)| *ok).count();
        prop_assert!(recs.len() >= intact, "{} records of {} intact lines", recs.len(), intact);
        for w in &warns {
            let line: usize = w
                .strip_prefix("r/runs.jsonl:")
                .and_then(|r| r.split(':').next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            prop_assert!(line >= 1 && line <= text.lines().count(), "{}", w);
        }
    }
}
