//! Report assembly: which charts apply to the data ([`charts`]; charts
//! pooling runs across groups in `pooled`, the services' in `service`),
//! the self-contained `index.html` (SVG inline, no scripts, no external
//! fonts; tables in [`html`]), and the summary files. [`report_path`] owns the
//! on-disk layout.

mod chart_choice;
pub mod drawn_series;
mod faults;
mod html;
mod outliers;
mod pooled;
pub mod predicted;
mod repeats;
mod service;

use anyhow::{Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::export::{CsvExporter, Exporter, JsonExporter, MarkdownExporter};
use crate::frame::all_runs;
use crate::load::{ResultsSet, Usage};
use crate::stats::COMPARE_TEST;
use crate::summary::Summary;

pub use chart_choice::charts;
use faults::faults_table;
use html::{endings_table, html_table, service_tables};

/// Most per-run timelines drawn in one report.
pub const MAX_TIMELINES: usize = 12;

/// Where a report named `name` lives under `root` (normally `reports/`).
pub fn report_path(root: &Path, name: &str) -> PathBuf {
    root.join(name)
}

/// Check a user-given report name: one plain folder name under the
/// reports root, never a path out of it.
pub fn check_name(name: &str) -> Result<(), Usage> {
    let why = if name.is_empty() {
        Some("it is empty")
    } else if name.contains(['/', '\\']) {
        Some("it has a / or \\ (a path, not a name)")
    } else if name.contains("..") {
        Some("it has ..")
    } else if name.starts_with('.') {
        Some("it starts with . (a hidden folder)")
    } else if name.chars().any(char::is_control) {
        Some("it has a control character")
    } else if name.len() > 200 {
        Some("it is longer than 200 bytes")
    } else {
        None
    };
    match why {
        Some(why) => Err(Usage(format!(
            "--name \"{}\": {why}; a report name is one plain folder name made under --reports: no / or .., not empty, not starting with . (e.g. --name golden-100mbit)",
            crate::load::clip(name)
        ))),
        None => Ok(()),
    }
}

/// `s` as a plain folder name: every character but letters, digits, `.`,
/// `_` and `-` becomes `-`, and no leading `.` (for names built from
/// manifests and arguments: scenario names, groups).
pub fn plain_name(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect::<String>()
        .replace("..", "--");
    let out = out.trim_start_matches('.');
    match out {
        "" => "report".into(),
        o if o.len() > 200 => o[..200].to_string(),
        o => o.to_string(),
    }
}

/// Default report name for some results sets: `<scenario>-<timestamp>`,
/// or `combined-<first>` for several ([`plain_name`]).
pub fn default_name(sets: &[ResultsSet]) -> String {
    let one = |s: &ResultsSet| s.name.replace('/', "-");
    plain_name(&match sets {
        [s] => one(s),
        [s, ..] => format!("combined-{}", one(s)),
        [] => "empty".into(),
    })
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One row per run: how it ended, what finished it, every intervention
/// and what it cost the workload.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title><style>\
body{{font-family:'DejaVu Sans',sans-serif;margin:2em;max-width:1100px;color:#222}}\
table{{border-collapse:collapse;font-size:13px;margin:1em 0}}td,th{{border:1px solid #ccc;padding:4px 6px;text-align:right}}\
th{{background:#f3f3f3}}figure{{margin:2em 0}}figcaption{{font-size:14px;color:#444}}pre{{background:#f7f7f7;padding:1em;overflow:auto}}\
.warn{{color:#a40}}svg{{max-width:100%;height:auto}}</style></head><body><h1>{t}</h1>{body}</body></html>\n",
        t = esc(title)
    )
}

fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

/// A rendered chart as a report figure: the SVG inline, links to both files.
pub fn figure(c: &crate::charts::Rendered) -> String {
    format!(
        "<figure>{}<figcaption>{} — <a href=\"{n}.svg\">SVG</a> · <a href=\"{n}.png\">PNG</a></figcaption></figure>",
        inline_svg(&c.svg),
        esc(&c.title),
        n = c.name
    )
}

/// What [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The report's `index.html`.
    pub index: PathBuf,
    /// Raw series the report could not use, each `FILE[:LINE]: why`
    /// (also shown in the report); the summary's warnings are not repeated.
    pub warnings: Vec<String>,
}

/// Write a full report for `sets` into `dir`. Raw series that cannot be
/// used are left out with a warning; `probes` false (`--no-probes`)
/// reads no `probes.csv`. The `runs.jsonl` lines the sets skipped are
/// listed in a table.
pub fn write_report(
    sets: &[ResultsSet],
    summary: &Summary,
    model: &(migbench_predict::Model, String),
    dir: &Path,
    probes: bool,
) -> Result<Written> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let series = drawn_series::Series::new(probes, &summary.warnings);
    let mut charts = charts(sets, summary, dir, &series)?;
    std::fs::write(dir.join("summary.csv"), CsvExporter.render(summary))?;
    std::fs::write(dir.join("summary.md"), MarkdownExporter.render(summary))?;
    std::fs::write(dir.join("summary.json"), JsonExporter.render(summary))?;
    let mut body = String::new();
    for s in sets {
        let m = &s.manifest;
        let _ = write!(
            body,
            "<p><b>{}</b>: {} runs recorded of {} planned · QEMU {} · accelerator {} · host kernel {} · migbench {} (git {}) · guest image {}</p>",
            esc(&s.name),
            s.records.len(),
            m.matrix.len(),
            esc(m.qemu_version.trim_start_matches("QEMU emulator version ")),
            esc(&m.accel),
            esc(&m.host_kernel),
            esc(&m.migbench_version),
            esc(&m.git_revision),
            esc(&m.guest_image)
        );
    }
    let late = series.warnings();
    for w in summary.warnings.iter().chain(&late) {
        let _ = write!(body, "<p class=\"warn\">Warning: {}</p>", esc(w));
    }
    body.push_str("<h2>Summary</h2>");
    body.push_str(&html_table(summary));
    let _ = write!(
        body,
        "<p><small>Per group of runs sharing the varying dimensions ({}): median over completed runs, with the 95 % Student-t interval of the mean in brackets when a group has several runs. Failed and timed-out runs are counted, never dropped. Physical bound: guest RAM that had to be sent at least once (RAM minus zero pages, over the wire compression ratio when compressed) over the link rate. Comparisons use {}.</small></p>",
        esc(&summary.varying.join(", ")),
        COMPARE_TEST
    );
    let runs = all_runs(sets);
    if let Some(t) = repeats::repeats_table(sets, &runs) {
        body.push_str("<h2>Repetitions</h2>");
        body.push_str(&t);
    }
    if let Some(t) = outliers::outliers_table(&runs) {
        body.push_str("<h2>Outliers</h2>");
        body.push_str(&t);
    }
    if let Some(t) = service_tables(&runs, &crate::frame::varying(&runs), summary) {
        body.push_str("<h2>What the services' users saw</h2>");
        body.push_str(&t);
    }
    if let Some(t) = faults_table(&runs) {
        body.push_str("<h2>When things go wrong: injected faults</h2>");
        body.push_str(&t);
    }
    if runs.iter().any(|r| r.rec.outcome_detail.is_some()) {
        body.push_str("<h2>How each run ended</h2>");
        body.push_str(&endings_table(&runs));
        body.push_str("<p><small>Outcome detail: converged (pre-copy finished under its starting settings), stepped (after downtime stepping raised the limit), postcopy (a scheduled post-copy switch), forced (the completion timeout switched to post-copy or paused the guest), aborted (a policy cancelled it; the guest stayed on the source). Workload slowdown: 1 − the guest workload's rate while migrating / its rate before.</small></p>");
    }
    if let Some((table, more)) = predicted::section(&runs, &model.0, &model.1, dir)? {
        body.push_str("<h2>Predicted against measured</h2>");
        body.push_str(&table);
        charts.extend(more);
    }
    let skipped: Vec<_> = sets.iter().flat_map(|s| s.skipped.clone()).collect();
    if !skipped.is_empty() {
        body.push_str("<h2>Skipped records</h2>");
        body.push_str(&html::skipped_table(&skipped));
    }
    body.push_str("<h2>Charts</h2>");
    for c in &charts {
        body.push_str(&figure(c));
    }
    body.push_str("<h2>Scenarios</h2>");
    for s in sets {
        let _ = write!(
            body,
            "<h3>{}</h3><pre>{}</pre>",
            esc(&s.manifest.scenario_path),
            esc(&s.manifest.scenario_text)
        );
    }
    let title = format!(
        "migbench report: {}",
        sets.iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let index = dir.join("index.html");
    std::fs::write(&index, page(&title, &body))?;
    Ok(Written {
        index,
        warnings: late,
    })
}
