//! The golden test: a small results directory from real runs (checked in
//! under `fixtures/golden/`) summarises to exactly the `summary.csv` that
//! was produced from it before the backend-neutral reshaping of the core:
//! every column that CSV has, value for value, in the same rows. Columns
//! added since (new metrics, e.g. libvirt's downtimes) are allowed.

use std::path::Path;

#[test]
fn the_checked_in_results_summarise_to_the_checked_in_csv() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/golden");
    let set = migbench_analysis::load::load_results(&root.join("results")).unwrap();
    assert!(set.records.len() >= 4, "the fixture holds real runs");
    let summary = migbench_analysis::summary::summarise(&[set], true).unwrap();
    let csv = migbench_analysis::export::by_name("csv")
        .unwrap()
        .render(&summary);
    let want = std::fs::read_to_string(root.join("summary.csv")).unwrap();
    let (got, want) = (table(&csv), table(&want));
    assert_eq!(got.len(), want.len(), "rows");
    let (got_head, want_head) = (&got[0], &want[0]);
    for (wi, name) in want_head.iter().enumerate() {
        let gi = got_head
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("column {name} is gone"));
        for (row, (g, w)) in got.iter().zip(&want).enumerate().skip(1) {
            assert_eq!(g[gi], w[wi], "row {row}, column {name}");
        }
    }
}

/// Rows of simple CSV (the summary quotes no commas).
fn table(csv: &str) -> Vec<Vec<String>> {
    csv.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}
