//! `compare` on the checked-in real runs (`fixtures/golden/`: 100 Mbit vs
//! 1 Gbit × idle vs 5 MB/s, two repetitions each): by a dimension while
//! another varies, groups named by a subset of their dimensions, and the
//! model's predictions beside the measurements.

mod common;
use common::golden;
use std::path::Path;
use std::process::{Command, Output};

fn analyze(args: &[&str], reports: &Path) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_migbench-analyze"))
        .arg("compare")
        .args(args)
        .arg("--reports")
        .arg(reports)
        .output()
        .unwrap();
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

#[test]
fn by_link_rate_compares_within_each_dirty_rate_and_pools() {
    let tmp = tempfile::tempdir().unwrap();
    let g = golden();
    let out = analyze(&[g.to_str().unwrap(), "--by", "link_rate"], tmp.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("by link_rate: A = 100mbit, B = 1gbit"),
        "{text}"
    );
    assert!(
        text.contains("dirty_rate=0") && text.contains("dirty_rate=5MB/s"),
        "{text}"
    );
    // 1 Gbit moves the same memory several times faster in both cells,
    // but by how much depends on the dirty rate (9.5x idle, 14.9x busy, far
    // beyond chance with two runs a cell): the pooled line says so rather
    // than one confident number.
    let pooled = text
        .lines()
        .find(|l| l.contains("total migration time (s): depends on dirty_rate: 1gbit is"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        pooled
            .contains("9.46x lower at dirty_rate=0, 14.9x lower at dirty_rate=5MB/s than 100mbit"),
        "{pooled}"
    );
    assert!(pooled.contains("not one effect (I² = 99.9 %"), "{pooled}");
    // The guide quotes these lines: they must be what compare prints.
    let readme =
        std::fs::read_to_string(golden().join("../../../docs/src/guide/reports.md")).unwrap();
    let section = readme
        .split("**Comparing along one dimension.**")
        .nth(1)
        .expect("the guide's section");
    let quoted = section
        .split("```")
        .nth(1)
        .expect("the guide's output block");
    let quoted: Vec<&str> = quoted.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(quoted.len() >= 2, "{quoted:?}");
    for line in quoted {
        assert!(
            text.lines().any(|l| l.trim() == line.trim()),
            "the guide quotes a line compare does not print:\n{line}\n--- printed:\n{text}"
        );
    }
    // The page and its data.
    let page = std::fs::read_dir(tmp.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(page.join("compare.json")).unwrap()).unwrap();
    assert_eq!(json[0]["cells"].as_array().unwrap().len(), 2);
    // Every pooled interval covers the ratios it pools when they disagree.
    for p in json[0]["pooled"].as_array().unwrap() {
        let (name, p) = (p[0].as_str().unwrap(), &p[2]);
        let (lo, hi) = (p["lo"].as_f64().unwrap(), p["hi"].as_f64().unwrap());
        let (min, max) = (
            p["range"][0].as_f64().unwrap(),
            p["range"][1].as_f64().unwrap(),
        );
        if p["heterogeneous"].as_bool().unwrap() {
            assert!(lo <= min && hi >= max, "{name}: {p}");
        }
        assert!(lo <= p["ratio"].as_f64().unwrap() && p["ratio"].as_f64().unwrap() <= hi);
        // Two combinations: Student's t on 1 df (12.706) times a standard
        // error never below the random-effects one (the HKSJ correction).
        let se_dl = p["fit"]["se_dl"].as_f64().unwrap();
        assert!(
            hi.ln() - lo.ln() >= 2.0 * 12.706 * se_dl * 0.9999,
            "{name}: {p}"
        );
    }
    assert!(page.join("ratio-0.svg").is_file());
    // A dimension that does not vary, or does not exist, is named.
    let one = analyze(&[g.to_str().unwrap(), "--by", "ram"], tmp.path());
    assert!(!one.status.success());
    assert!(String::from_utf8_lossy(&one.stderr).contains("--by ram: it has one value here"));
    let none = analyze(&[g.to_str().unwrap(), "--by", "colour"], tmp.path());
    assert!(String::from_utf8_lossy(&none.stderr)
        .contains("--by colour: no such dimension; these vary here: dirty_rate, link_rate"));
}

#[test]
fn a_group_may_name_a_subset_of_its_dimensions() {
    let tmp = tempfile::tempdir().unwrap();
    let g = golden();
    let g = g.to_str().unwrap();
    let out = analyze(
        &[
            g,
            g,
            "--group-a",
            "link_rate=100mbit",
            "--group-b",
            "link_rate=1gbit",
        ],
        tmp.path(),
    );
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    // Each side holds both dirty rates' runs: n=4.
    let total = text
        .lines()
        .find(|l| l.starts_with("total migration time"))
        .unwrap();
    assert_eq!(total.matches("(n=4)").count(), 2, "{text}");
}

#[test]
fn predicted_sets_the_model_beside_each_group() {
    let tmp = tempfile::tempdir().unwrap();
    let out = analyze(&[golden().to_str().unwrap(), "--predicted"], tmp.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("| dirty_rate="))
        .collect();
    assert_eq!(rows.len(), 4, "{text}");
    assert!(rows.iter().all(|r| r.contains(" 2 / 2 ")), "{text}");
    assert!(text.contains("8 runs: total time off by"), "{text}");
}

#[test]
fn combinations_are_listed_in_the_order_of_their_values() {
    // Three dirty rates, 0, 2 and 10 MB/s: as text "10MB/s" sorts before
    // "2MB/s", which scrambled the per-combination list and hid the trend
    // ("9.5x at 0, 14.9x at 10MB/s, 9.5x at 2MB/s").
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("three");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(golden().join("manifest.json"), dir.join("manifest.json")).unwrap();
    let mut lines = String::new();
    for l in std::fs::read_to_string(golden().join("runs.jsonl"))
        .unwrap()
        .lines()
    {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        if v["params"]["dirty_rate"] == "0" {
            let mut copy = v.clone();
            copy["run_id"] = format!("{}-2", v["run_id"].as_str().unwrap()).into();
            copy["params"]["dirty_rate"] = "2MB/s".into();
            lines.push_str(&format!("{copy}\n"));
        } else {
            v["params"]["dirty_rate"] = "10MB/s".into();
        }
        lines.push_str(&format!("{v}\n"));
    }
    std::fs::write(dir.join("runs.jsonl"), lines).unwrap();
    let out = analyze(&[dir.to_str().unwrap(), "--by", "link_rate"], tmp.path());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let cells: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("  dirty_rate="))
        .map(str::trim)
        .collect();
    assert_eq!(
        cells,
        ["dirty_rate=0", "dirty_rate=2MB/s", "dirty_rate=10MB/s"],
        "{text}"
    );
    let pooled = text
        .lines()
        .find(|l| l.contains("total migration time (s): depends on dirty_rate"))
        .unwrap_or_else(|| panic!("{text}"));
    let (a, b, c) = (
        pooled.find("at dirty_rate=0,").unwrap(),
        pooled.find("at dirty_rate=2MB/s").unwrap(),
        pooled.find("at dirty_rate=10MB/s").unwrap(),
    );
    assert!(a < b && b < c, "{pooled}");
}
