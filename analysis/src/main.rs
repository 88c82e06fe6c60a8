//! migbench-analyze: `report`, `compare`, `summary` and `export` over results
//! directories. `migbench report|compare|summary|export` forwards here, so the
//! driver binary does not link polars.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use migbench_analysis::by_dim::{compare_by, render_text as by_text, write_page as by_page};
use migbench_analysis::compare::{compare_sides, render_predicted, render_text, write_page, Side};
use migbench_analysis::export::{self, Exporter};
use migbench_analysis::load::{duplicates, load_results, refuse_duplicates, ResultsSet, Usage};
use migbench_analysis::report::{check_name, default_name, plain_name, report_path, write_report};
use migbench_analysis::summary::summarise;
use migbench_predict::Model;

/// `print!` that ends the program quietly when standard output is closed
/// (`migbench summary | head`) instead of panicking, and with exit 1 on
/// another write error.
macro_rules! print {
    ($($t:tt)*) => {
        out(format_args!($($t)*))
    };
}

/// `println!` likewise.
macro_rules! println {
    ($($t:tt)*) => {{
        out(format_args!($($t)*));
        out(format_args!("\n"));
    }};
}

fn out(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: writing to standard output: {e}");
        std::process::exit(1);
    }
}

/// Turn migbench results directories into reports.
#[derive(Debug, Parser)]
#[command(name = "migbench-analyze", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Write reports/<name>/: index.html (self-contained), every chart as SVG
    /// and PNG, summary.csv, summary.md and summary.json.
    Report {
        /// Results directories (results/<scenario>/<timestamp>); several are combined.
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// Root of the reports tree.
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// Report name (default: <scenario>-<timestamp>).
        #[arg(long)]
        name: Option<String>,
        /// Read no raw probe file (probes.csv): no probe columns in the
        /// summary, no outages on timelines, no RTT CDF.
        #[arg(long)]
        no_probes: bool,
        /// Count a run found more than once among the inputs (the same
        /// directory twice, copied runs) every time instead of refusing.
        #[arg(long)]
        allow_duplicates: bool,
        /// The model whose predictions the report sets beside the runs
        /// (default: results/model.json if `migbench predict --fit` stored
        /// one, else this lab's constants).
        #[arg(long, value_name = "FILE")]
        model: Option<PathBuf>,
    },
    /// Compare two results directories (or two groups of one) metric by
    /// metric, or (--predicted) one with what the model predicted for it.
    Compare {
        /// Results directory A.
        a: PathBuf,
        /// Results directory B (may be the same as A with different groups).
        #[arg(required_unless_present_any = ["predicted", "by"])]
        b: Option<PathBuf>,
        /// Compare A's values of this dimension (e.g. link_rate) within
        /// each combination of the other dimensions, then pooled; with
        /// --group-a/--group-b as the two values (e.g. 100mbit, 1gbit).
        #[arg(long, value_name = "DIMENSION", conflicts_with_all = ["b", "predicted"])]
        by: Option<String>,
        /// Compare A's runs with the model's predictions for them, per group.
        #[arg(long, conflicts_with_all = ["b", "group_b"])]
        predicted: bool,
        /// The model for --predicted (default as for `report`).
        #[arg(long, value_name = "FILE", requires = "predicted")]
        model: Option<PathBuf>,
        /// Restrict A to the runs with these dimension values, e.g.
        /// "link_rate=100mbit" (any subset of the varying dimensions); with
        /// --by, the dimension's value for side A.
        #[arg(long)]
        group_a: Option<String>,
        /// Restrict B likewise; with --by, side B's value.
        #[arg(long)]
        group_b: Option<String>,
        /// Root of the reports tree (the page goes to <reports>/compare-...).
        #[arg(long, default_value = "reports")]
        reports: PathBuf,
        /// Count a run found more than once within a side (copied runs)
        /// every time instead of refusing.
        #[arg(long)]
        allow_duplicates: bool,
        #[command(flatten)]
        gate: migbench_analysis::gate::GateArgs,
    },
    /// Print the summary table of some results directories.
    Summary {
        /// Results directories.
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// Output format: markdown, csv (summary.csv's columns), json (one
        /// pretty-printed document, summary.json's shape, not JSON Lines)
        /// or parquet (binary: needs --output).
        #[arg(long, default_value = "markdown", value_parser = ["csv", "json", "markdown", "parquet"])]
        format: String,
        /// Write the summary to FILE instead of printing it (required for
        /// parquet, a binary format: e.g. `--format parquet --output
        /// summary.parquet`, summary.csv's columns, typed).
        #[arg(long, value_name = "FILE", required_if_eq("format", "parquet"))]
        output: Option<PathBuf>,
        /// Count a run found more than once among the inputs (the same
        /// directory twice, copied runs) every time instead of refusing.
        #[arg(long)]
        allow_duplicates: bool,
    },
    /// Export every run and every probe as tables for other tools (pandas,
    /// polars, DuckDB, R).
    ///
    /// DIR/runs.parquet: one row per run, every field of its record as a
    /// column (source, run_id, params.link_rate, total_time_ms,
    /// rtt.during.p99, ...: nested objects dotted, lists as JSON text).
    /// DIR/probes.parquet: every run's probes.csv with source and run_id
    /// (source, run_id, seq, sent_ms, recv_ms; recv_ms null for a lost
    /// probe); a run whose probes.csv cannot be read is left out with a
    /// warning. --format csv writes runs.csv and probes.csv instead.
    ///
    /// Example: migbench export results/quick/20250101-120000 --output
    /// exported/
    Export(migbench_analysis::export::parquet::ExportArgs),
}

/// Load results directories, printing their warnings (each once); a run
/// found more than once within `dirs` is refused (a [`Usage`] error)
/// unless `allow_duplicates`, when it is counted every time with a
/// warning.
fn load_all(dirs: &[PathBuf], allow_duplicates: bool) -> Result<Vec<ResultsSet>> {
    load_sides(&[dirs], allow_duplicates).map(|mut s| s.remove(0))
}

/// [`load_all`] for sides loaded separately (compare's A and B, which
/// may be one directory): duplicates are looked for within each side.
fn load_sides(sides: &[&[PathBuf]], allow_duplicates: bool) -> Result<Vec<Vec<ResultsSet>>> {
    let mut out = Vec::new();
    for dirs in sides {
        let sets = dirs
            .iter()
            .map(|d| {
                load_results(d)
                    .with_context(|| format!("loading results directory {}", d.display()))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(sets);
    }
    let mut shown = std::collections::HashSet::new();
    for w in out.iter().flatten().flat_map(|s| &s.warnings) {
        if shown.insert(w) {
            eprintln!("warning: {w}");
        }
    }
    for sets in &out {
        if !allow_duplicates {
            refuse_duplicates(sets)?;
            continue;
        }
        let dups = duplicates(sets);
        if let Some(d) = dups.first() {
            eprintln!(
                "warning: {} run(s) counted more than once (--allow-duplicates), e.g. {} at {}",
                dups.len(),
                d.id.run_id,
                d.places.join(" and ")
            );
        }
    }
    Ok(out)
}

/// Warnings the summary added to the loading's (unusable probe files).
fn print_new_warnings(sets: &[ResultsSet], summary: &migbench_analysis::summary::Summary) {
    let loaded: usize = sets.iter().map(|s| s.warnings.len()).sum();
    for w in summary.warnings.iter().skip(loaded) {
        eprintln!("warning: {w}");
    }
}

fn run() -> Result<()> {
    match Cli::parse().command {
        Cmd::Report {
            results,
            reports,
            name,
            no_probes,
            model,
            allow_duplicates,
        } => {
            if let Some(n) = &name {
                check_name(n)?;
            }
            let model = Model::load(model.as_deref()).map_err(anyhow::Error::msg)?;
            let sets = load_all(&results, allow_duplicates)?;
            let summary = summarise(&sets, !no_probes)?;
            print_new_warnings(&sets, &summary);
            let dir = report_path(&reports, &name.unwrap_or_else(|| default_name(&sets)));
            let written = write_report(&sets, &summary, &model, &dir, !no_probes)?;
            for w in &written.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", export::MarkdownExporter.render(&summary));
            println!("report: {}", written.index.display());
        }
        Cmd::Compare {
            a,
            b,
            by,
            predicted,
            model,
            group_a,
            group_b,
            reports,
            allow_duplicates,
            gate,
        } => {
            if !gate.fail_if.is_empty() {
                let b = b.expect("clap requires B with --fail-if");
                let code = migbench_analysis::gate::run(&a, &b, group_a, group_b, &gate);
                std::process::exit(code);
            }
            if let Some(by) = by {
                let sets = load_all(&[a], allow_duplicates)?;
                let runs = migbench_analysis::frame::all_runs(&sets);
                let cmps = compare_by(&runs, &by, group_a.as_deref(), group_b.as_deref())
                    .map_err(Usage)?;
                print!("{}", by_text(&sets[0].name, &cmps));
                let name = plain_name(&format!("compare-{}-by-{by}", sets[0].name));
                let index = by_page(&sets[0].name, &cmps, &report_path(&reports, &name))?;
                println!("report: {}", index.display());
                return Ok(());
            }
            let Some(b) = b.filter(|_| !predicted) else {
                let model = Model::load(model.as_deref()).map_err(anyhow::Error::msg)?;
                let sets = load_all(&[a], allow_duplicates)?;
                print!(
                    "{}",
                    render_predicted(&sets[0], group_a.as_deref(), &model)?
                );
                return Ok(());
            };
            // Each side is checked for runs given twice on its own: A and
            // B may be one directory, compared group against group.
            let sets = load_sides(&[&[a], &[b]], allow_duplicates)?.concat();
            let (sa, sb) = (
                Side {
                    set: &sets[0],
                    group: group_a,
                },
                Side {
                    set: &sets[1],
                    group: group_b,
                },
            );
            sa.check("--group-a")?;
            sb.check("--group-b")?;
            let rows = compare_sides(&sa, &sb);
            if rows.iter().all(|r| r.a.is_none() && r.b.is_none()) {
                bail!("no completed runs to compare (check --group-a/--group-b: groups look like \"link_rate=100mbit\")");
            }
            print!("{}", render_text(&sa, &sb, &rows));
            let name = plain_name(&format!("compare-{}-vs-{}", sa.name(), sb.name()));
            let index = write_page(&sa, &sb, &rows, &report_path(&reports, &name))?;
            println!("report: {}", index.display());
        }
        Cmd::Summary {
            results,
            format,
            output,
            allow_duplicates,
        } => {
            let sets = load_all(&results, allow_duplicates)?;
            let summary = summarise(&sets, true)?;
            print_new_warnings(&sets, &summary);
            if let Some(path) = output {
                export::parquet::write_summary(&summary, &format, &path)?;
                println!("summary: {}", path.display());
                return Ok(());
            }
            let exporter = export::by_name(&format).expect("clap checked the format");
            print!("{}", exporter.render(&summary));
        }
        Cmd::Export(args) => {
            let sets = load_all(&args.results, true)?;
            let (written, warnings) = export::parquet::export(&sets, &args.output, &args.format)?;
            for w in warnings {
                eprintln!("warning: {w}");
            }
            for line in written {
                println!("{line}");
            }
        }
    }
    Ok(())
}

/// Exit 2 for a mistake in the call ([`Usage`], as clap does for its
/// own), 1 for a failure while working.
fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        for c in e.chain().skip(1) {
            eprintln!("  caused by: {c}");
        }
        let usage = e.chain().any(|c| c.is::<Usage>());
        std::process::exit(if usage { 2 } else { 1 });
    }
}
