//! The model's fixtures as the model tests read them.

use std::path::Path;

use migbench_model::RunRecord;

/// Every record of the `.jsonl` files in `fixtures/model/DIR` (`""`: the
/// top level), files in name order.
pub fn load(dir: &str) -> Vec<RunRecord> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/model")
        .join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    let mut recs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        recs.extend(
            text.lines()
                .map(|l| serde_json::from_str::<RunRecord>(l).unwrap()),
        );
    }
    recs
}
