//! JSON summary: the [`Summary`] as serde writes it.

use super::Exporter;
use crate::summary::Summary;

/// `summary.json`.
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn extension(&self) -> &'static str {
        "json"
    }

    fn render(&self, s: &Summary) -> String {
        serde_json::to_string_pretty(s).expect("summary serialises") + "\n"
    }
}
