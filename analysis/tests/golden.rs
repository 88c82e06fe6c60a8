//! The golden test: a small results directory from real runs (checked in
//! under `fixtures/golden/`) summarises to exactly the `summary.csv` that
//! was produced from it before the backend-neutral reshaping of the core.

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
    assert_eq!(csv, want);
}
