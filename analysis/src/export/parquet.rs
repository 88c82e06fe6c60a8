//! Exports for analysis in other tools (pandas, polars, DuckDB, R, a
//! spreadsheet): the summary table as parquet ([`write_summary`]), and
//! `export`'s two tables ([`export`]):
//!
//! - `runs.parquet`: one row per run record, every field of it as a column
//!   ([`runs_frame`]): `source` (the results set), then the record's fields
//!   in file order, nested objects flattened with dotted names
//!   (`params.link_rate`, `rtt.during.p99`), lists as JSON text. Columns
//!   take the type their values share: integers Int64, numbers Float64,
//!   text String, booleans Boolean, mixed kinds their JSON text, never
//!   set Null.
//! - `probes.parquet`: every run's `probes.csv` concatenated
//!   ([`probes_frame`]): `source`, `run_id`, `seq`, `sent_ms`, `recv_ms`
//!   (null for a lost probe). A run whose `probes.csv` is missing or
//!   unreadable is skipped with a warning naming the file.
//!
//! With `--format csv` the same tables go to `runs.csv` and `probes.csv`.

use std::collections::HashMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use migbench_model::series::read_probes_csv;
use polars::prelude::*;
use serde_json::Value;

use super::{CsvExporter, Exporter};
use crate::load::ResultsSet;
use crate::summary::Summary;

/// `migbench-analyze export`'s arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Results directories (results/<scenario>/<timestamp>); their runs go
    /// into the same tables, told apart by the `source` column.
    #[arg(required = true)]
    pub results: Vec<PathBuf>,
    /// Table format: parquet (typed, compressed; for pandas, polars,
    /// DuckDB, R arrow) or csv.
    #[arg(long, default_value = "parquet", value_parser = ["parquet", "csv"])]
    pub format: String,
    /// Directory for runs.<format> and probes.<format> (created if needed;
    /// files of the same name are replaced).
    #[arg(long, value_name = "DIR")]
    pub output: PathBuf,
}

/// Write a frame as `format` (`parquet` or `csv`).
pub fn write_frame(df: &mut DataFrame, path: &Path, format: &str) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let written = match format {
        "parquet" => ParquetWriter::new(file).finish(df).map(drop),
        "csv" => CsvWriter::new(file).finish(df),
        other => anyhow::bail!("no table format `{other}` (parquet or csv)"),
    };
    Context::with_context(written, || format!("writing {}", path.display()))
}

/// The summary table as a frame: `summary.csv`'s columns, the dimension
/// labels as text and the statistics as numbers.
pub fn summary_frame(s: &Summary) -> PolarsResult<DataFrame> {
    let text = CsvExporter.render(s);
    // Every column's type from its name, not guessed from the values: a
    // statistic a group cannot have (the spread of one run) is an empty
    // cell, which a guess would read as text, and a mean that happens to
    // be whole as an integer; schemas would differ between exports.
    let header = text.lines().next().unwrap_or_default();
    let schema = Schema::from_iter(header.split(',').map(|c| {
        let dtype = if s.varying.iter().any(|d| d == c) {
            DataType::String
        } else if super::csv::COUNT_COLUMNS.contains(&c) || c.ends_with("_n") {
            DataType::Int64
        } else {
            DataType::Float64
        };
        Field::new(c.into(), dtype)
    }));
    CsvReadOptions::default()
        .with_has_header(true)
        .with_schema(Some(Arc::new(schema)))
        .into_reader_with_file_handle(Cursor::new(text.into_bytes()))
        .finish()
}

/// `summary --output FILE`: the summary as `format` (parquet, or a text
/// format's rendering) in `path`.
pub fn write_summary(s: &Summary, format: &str, path: &Path) -> Result<()> {
    if format == "parquet" {
        let mut df = summary_frame(s)?;
        return write_frame(&mut df, path, "parquet");
    }
    let exporter =
        super::by_name(format).with_context(|| format!("no summary format `{format}`"))?;
    std::fs::write(path, exporter.render(s)).with_context(|| format!("writing {}", path.display()))
}

/// Flatten a JSON value into `(dotted name, scalar or list)` pairs.
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let name = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&name, x, out);
            }
        }
        other => out.push((prefix.to_string(), other.clone())),
    }
}

/// A column from the values of one flattened field (`None` or null where
/// a record lacks it), typed by what its values share.
fn typed_column(name: &str, vals: &[Option<&Value>]) -> Column {
    let set: Vec<&Value> = vals
        .iter()
        .flatten()
        .filter(|v| !v.is_null())
        .copied()
        .collect();
    let name: PlSmallStr = name.into();
    if set.is_empty() {
        return Column::full_null(name, vals.len(), &DataType::Null);
    }
    if set.iter().all(|v| v.is_boolean()) {
        let col: Vec<Option<bool>> = vals.iter().map(|v| v.and_then(Value::as_bool)).collect();
        return Column::new(name, col);
    }
    if set.iter().all(|v| v.is_i64()) {
        let col: Vec<Option<i64>> = vals.iter().map(|v| v.and_then(Value::as_i64)).collect();
        return Column::new(name, col);
    }
    if set.iter().all(|v| v.is_number()) {
        let col: Vec<Option<f64>> = vals.iter().map(|v| v.and_then(Value::as_f64)).collect();
        return Column::new(name, col);
    }
    let col: Vec<Option<String>> = vals
        .iter()
        .map(|v| match v {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        })
        .collect();
    Column::new(name, col)
}

/// One row per run record of `sets`: `source` and every field flattened.
pub fn runs_frame(sets: &[ResultsSet]) -> Result<DataFrame> {
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut rows: Vec<HashMap<usize, Value>> = Vec::new();
    let mut sources = Vec::new();
    for set in sets {
        for rec in &set.records {
            let v = serde_json::to_value(rec).context("a run record as JSON")?;
            let mut flat = Vec::new();
            flatten("", &v, &mut flat);
            let mut row = HashMap::new();
            for (k, x) in flat {
                let i = *index.entry(k.clone()).or_insert_with(|| {
                    names.push(k);
                    names.len() - 1
                });
                row.insert(i, x);
            }
            rows.push(row);
            sources.push(set.name.clone());
        }
    }
    let mut cols = vec![Column::new("source".into(), sources)];
    for (i, name) in names.iter().enumerate() {
        let vals: Vec<Option<&Value>> = rows.iter().map(|r| r.get(&i)).collect();
        let col = typed_column(name, &vals);
        // A field that is null here and an object there: its flattened
        // columns say all.
        let prefix = format!("{name}.");
        if col.dtype() == &DataType::Null && names.iter().any(|n| n.starts_with(&prefix)) {
            continue;
        }
        cols.push(col);
    }
    Ok(DataFrame::new_infer_height(cols)?)
}

/// Every run's probes: `source`, `run_id`, `seq`, `sent_ms`, `recv_ms`. A
/// run whose `probes.csv` cannot be read adds a warning naming it.
pub fn probes_frame(sets: &[ResultsSet], warnings: &mut Vec<String>) -> PolarsResult<DataFrame> {
    let (mut source, mut run_id) = (Vec::new(), Vec::new());
    let (mut seq, mut sent, mut recv) = (Vec::new(), Vec::new(), Vec::new());
    for set in sets {
        for rec in &set.records {
            let path = set.run_dir(&rec.run_id).join("probes.csv");
            let events = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|t| read_probes_csv(&t));
            match events {
                Ok(events) => {
                    for e in events {
                        source.push(set.name.clone());
                        run_id.push(rec.run_id.clone());
                        seq.push(e.seq);
                        sent.push(e.sent_ms);
                        recv.push(e.recv_ms);
                    }
                }
                Err(e) => warnings.push(format!(
                    "{}: {e}; run {} has no probes in the export",
                    path.display(),
                    rec.run_id
                )),
            }
        }
    }
    DataFrame::new_infer_height(vec![
        Column::new("source".into(), source),
        Column::new("run_id".into(), run_id),
        Column::new("seq".into(), seq),
        Column::new("sent_ms".into(), sent),
        Column::new("recv_ms".into(), recv),
    ])
}

/// `export`: write `runs.<format>` and `probes.<format>` into `dir`;
/// returns what was written, a line per file, and warnings.
pub fn export(sets: &[ResultsSet], dir: &Path, format: &str) -> Result<(Vec<String>, Vec<String>)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut warnings = Vec::new();
    let mut runs = runs_frame(sets)?;
    let runs_path = dir.join(format!("runs.{format}"));
    write_frame(&mut runs, &runs_path, format)?;
    let mut probes = probes_frame(sets, &mut warnings)?;
    let probes_path = dir.join(format!("probes.{format}"));
    write_frame(&mut probes, &probes_path, format)?;
    let with_probes = runs.height() - warnings.len();
    Ok((
        vec![
            format!(
                "{}: {} runs, {} columns",
                runs_path.display(),
                runs.height(),
                runs.width()
            ),
            format!(
                "{}: {} probes of {with_probes} of {} runs",
                probes_path.display(),
                probes.height(),
                runs.height()
            ),
        ],
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_columns_are_typed_by_name_even_for_one_run_groups() {
        let s = crate::export::csv::tests::one_and_two_run_summary();
        let df = summary_frame(&s).unwrap();
        let dtype = |c: &str| df.column(c).unwrap().dtype().clone();
        assert_eq!(dtype("link_rate"), DataType::String);
        assert_eq!(dtype("n"), DataType::Int64);
        assert_eq!(dtype("total_time_s_n"), DataType::Int64);
        for c in [
            "total_time_s_mean",
            "total_time_s_sd",
            "total_time_s_ci_lo",
            "success_rate",
        ] {
            assert_eq!(dtype(c), DataType::Float64, "{c}");
        }
        let sd = df.column("total_time_s_sd").unwrap().f64().unwrap().clone();
        assert_eq!(sd.get(0), None, "one run has no spread");
        assert!(sd.get(1).unwrap() > 0.0);
    }
}
