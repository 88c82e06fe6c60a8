//! `export` (runs and probes as parquet or CSV tables) and
//! `summary --format parquet`, through the built binary on the golden
//! runs, read back with polars and checked against `runs.jsonl` and the
//! raw `probes.csv` files.

mod common;
use common::{copy_dir, golden};
use std::path::Path;
use std::process::Command;

use polars::prelude::*;
use serde_json::Value;

fn analyze(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_migbench-analyze"))
        .args(args)
        .output()
        .unwrap();
    let (o, e) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    eprintln!("{o}{e}");
    (out.status.success(), o, e)
}

fn read_parquet(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

fn records() -> Vec<Value> {
    std::fs::read_to_string(golden().join("runs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Data rows of every golden run's probes.csv.
fn probe_lines(dir: &Path) -> usize {
    records()
        .iter()
        .map(|r| {
            let p = dir
                .join("runs")
                .join(r["run_id"].as_str().unwrap())
                .join("probes.csv");
            std::fs::read_to_string(p).map_or(0, |t| t.lines().count() - 1)
        })
        .sum()
}

#[test]
fn export_writes_every_run_and_probe_as_parquet() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("exported");
    let g = golden();
    let (ok, stdout, _) = analyze(&[
        "export",
        g.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(ok);
    assert!(stdout.contains("runs.parquet: 8 runs, "), "{stdout}");
    let recs = records();
    let runs = read_parquet(&out.join("runs.parquet"));
    assert_eq!(runs.height(), recs.len());
    // Every scalar of a record is a column, nested ones dotted.
    for name in [
        "source",
        "run_id",
        "params.link_rate",
        "params.ram",
        "total_time_ms",
        "transferred_bytes",
        "rtt.during.p99",
        "outcome",
        "interventions",
    ] {
        assert!(
            runs.column(name).is_ok(),
            "{name}: {:?}",
            runs.get_column_names()
        );
    }
    assert_eq!(
        runs.column("transferred_bytes").unwrap().dtype(),
        &DataType::Int64
    );
    assert_eq!(
        runs.column("total_time_ms").unwrap().dtype(),
        &DataType::Float64
    );
    let ids = runs.column("run_id").unwrap().str().unwrap().clone();
    let links = runs
        .column("params.link_rate")
        .unwrap()
        .str()
        .unwrap()
        .clone();
    let times = runs.column("total_time_ms").unwrap().f64().unwrap().clone();
    let p99 = runs
        .column("rtt.during.p99")
        .unwrap()
        .f64()
        .unwrap()
        .clone();
    let bytes = runs
        .column("transferred_bytes")
        .unwrap()
        .i64()
        .unwrap()
        .clone();
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(ids.get(i), r["run_id"].as_str());
        assert_eq!(links.get(i), r["params"]["link_rate"].as_str());
        assert_eq!(times.get(i), r["total_time_ms"].as_f64());
        assert_eq!(p99.get(i), r["rtt"]["during"]["p99"].as_f64());
        assert_eq!(bytes.get(i), r["transferred_bytes"].as_i64());
    }
    // Lists are JSON text.
    let iv = runs.column("interventions").unwrap().str().unwrap().clone();
    assert_eq!(iv.get(0), Some("[]"));

    let probes = read_parquet(&out.join("probes.parquet"));
    assert_eq!(probes.height(), probe_lines(&g));
    assert_eq!(
        probes.get_column_names(),
        ["source", "run_id", "seq", "sent_ms", "recv_ms"]
    );
    // Probes of run-0000 in file order, a lost one null.
    let first = std::fs::read_to_string(g.join("runs/run-0000/probes.csv")).unwrap();
    let row1: Vec<&str> = first.lines().nth(1).unwrap().split(',').collect();
    assert_eq!(
        probes.column("run_id").unwrap().str().unwrap().get(0),
        Some("run-0000")
    );
    assert_eq!(
        probes.column("sent_ms").unwrap().f64().unwrap().get(0),
        Some(row1[1].parse().unwrap())
    );
    let lost = first.lines().skip(1).filter(|l| l.ends_with(',')).count();
    let lf = LazyFrame::scan_parquet(
        PlRefPath::from(out.join("probes.parquet").to_string_lossy().as_ref()),
        ScanArgsParquet::default(),
    )
    .unwrap();
    let per_run = lf
        .filter(col("run_id").eq(lit("run-0000")))
        .select([len().alias("n"), col("recv_ms").null_count().alias("lost")])
        .collect()
        .unwrap();
    let n = per_run
        .column("n")
        .unwrap()
        .cast(&DataType::UInt64)
        .unwrap();
    let l = per_run
        .column("lost")
        .unwrap()
        .cast(&DataType::UInt64)
        .unwrap();
    assert_eq!(
        n.u64().unwrap().get(0),
        Some(first.lines().count() as u64 - 1)
    );
    assert_eq!(l.u64().unwrap().get(0), Some(lost as u64));
    assert!(lost > 0);
}

#[test]
fn an_unreadable_probes_file_is_skipped_with_a_warning() {
    let tmp = tempfile::tempdir().unwrap();
    let res = tmp.path().join("results");
    let g = golden();
    // Copy the golden results, then spoil one run's probes.
    copy_dir(&g, &res);
    let bad = res.join("runs/run-0003/probes.csv");
    std::fs::write(&bad, "this is not a probes file\n").unwrap();
    let out = tmp.path().join("csv");
    let (ok, stdout, stderr) = analyze(&[
        "export",
        res.to_str().unwrap(),
        "--format",
        "csv",
        "--output",
        out.to_str().unwrap(),
    ]);
    assert!(ok);
    assert!(
        stderr.contains(&format!("warning: {}: not a probes.csv", bad.display())),
        "{stderr}"
    );
    assert!(stdout.contains("of 7 of 8 runs"), "{stdout}");
    let probes = CsvReadOptions::default()
        .try_into_reader_with_file_path(Some(out.join("probes.csv")))
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(probes.height(), probe_lines(&res));
    let ids = probes.column("run_id").unwrap().str().unwrap().clone();
    assert!(ids.iter().all(|id| id != Some("run-0003")));
    let runs = CsvReadOptions::default()
        .try_into_reader_with_file_path(Some(out.join("runs.csv")))
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(runs.height(), 8);
    assert!(runs.column("params.dirty_rate").is_ok());
}

#[test]
fn summary_as_parquet_has_the_csv_columns_and_needs_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let g = golden();
    let file = tmp.path().join("summary.parquet");
    let (ok, stdout, _) = analyze(&[
        "summary",
        g.to_str().unwrap(),
        "--format",
        "parquet",
        "--output",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{stdout}");
    let df = read_parquet(&file);
    let (ok, csv, _) = analyze(&["summary", g.to_str().unwrap(), "--format", "csv"]);
    assert!(ok);
    let head: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(df.get_column_names(), head);
    assert_eq!(df.height(), csv.lines().count() - 1);
    // Labels stay text ("0" is a dirty rate, not a number); statistics are numbers.
    assert_eq!(df.column("dirty_rate").unwrap().dtype(), &DataType::String);
    let mean = df
        .column("total_time_s_mean")
        .unwrap()
        .f64()
        .unwrap()
        .clone();
    let first: Vec<&str> = csv.lines().nth(1).unwrap().split(',').collect();
    let at = head.iter().position(|h| *h == "total_time_s_mean").unwrap();
    assert!((mean.get(0).unwrap() - first[at].parse::<f64>().unwrap()).abs() < 1e-9);
    // Binary output is never printed.
    let (ok, stdout, stderr) = analyze(&["summary", g.to_str().unwrap(), "--format", "parquet"]);
    assert!(!ok && stdout.is_empty());
    assert!(stderr.contains("--output <FILE>"), "{stderr}");
    // A text format goes to the file as printed.
    let md = tmp.path().join("summary.md");
    let (ok, _, _) = analyze(&[
        "summary",
        g.to_str().unwrap(),
        "--output",
        md.to_str().unwrap(),
    ]);
    assert!(ok);
    assert!(std::fs::read_to_string(md).unwrap().starts_with('|'));
}
