//! Summary exporters, one format per file behind one [`Exporter`] trait.

mod csv;
mod json;
pub mod markdown;
pub mod parquet;

pub use self::csv::CsvExporter;
pub use self::json::JsonExporter;
pub use self::markdown::MarkdownExporter;

use crate::summary::Summary;

/// Renders a summary in one format.
pub trait Exporter {
    /// File extension (without dot).
    fn extension(&self) -> &'static str;
    /// The rendered summary.
    fn render(&self, s: &Summary) -> String;
}

/// The exporter for a `--format` name.
pub fn by_name(name: &str) -> Option<Box<dyn Exporter>> {
    match name {
        "csv" => Some(Box::new(CsvExporter)),
        "json" => Some(Box::new(JsonExporter)),
        "markdown" | "md" => Some(Box::new(MarkdownExporter)),
        _ => None,
    }
}

/// Format a number compactly for tables.
pub(crate) fn num(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let a = v.abs();
    if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
