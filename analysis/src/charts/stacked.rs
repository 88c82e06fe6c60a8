//! Stacked bars: one bar per category made of consecutive phases (e.g. the
//! disk phase of a block migration under its RAM phase), medians only.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style;
use super::Chart;

/// A stacked bar chart.
pub struct Stacked {
    /// File stem.
    pub name: String,
    /// Caption.
    pub title: String,
    /// Y-axis title with unit.
    pub y_axis: String,
    /// Category labels.
    pub categories: Vec<String>,
    /// Segments bottom to top: (legend name, one value per category).
    pub segments: Vec<(String, Vec<Option<f64>>)>,
}

impl Chart for Stacked {
    super::labelled!(categories);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let totals: Vec<f64> = (0..self.categories.len().max(1))
            .map(|i| {
                self.segments
                    .iter()
                    .filter_map(|s| s.1.get(i).copied().flatten())
                    .sum()
            })
            .collect();
        let n = totals.len();
        let top = totals.iter().copied().fold(0.0f64, f64::max);
        let mut chart =
            super::category_chart(root, &self.title, &self.y_axis, &self.categories, top)?;
        let mut base = vec![0.0; n];
        for (si, (name, values)) in self.segments.iter().enumerate() {
            let c = style::color(si);
            let mut rects = Vec::new();
            for (i, v) in values.iter().enumerate().take(n) {
                if let Some(v) = v.filter(|v| *v > 0.0) {
                    rects.push(Rectangle::new(
                        [(i as f64 + 0.15, base[i]), (i as f64 + 0.85, base[i] + v)],
                        c.filled(),
                    ));
                    base[i] += v;
                }
            }
            chart
                .draw_series(rects)?
                .label(name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        style::legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}
