//! Grouped bars with 95 % confidence whiskers: one category per group of
//! runs, one bar per series (e.g. QEMU-reported beside probe-measured
//! downtime), an optional marker per category (the physical bound).

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style;
use super::Chart;
use crate::stats::Estimate;

/// A bar series.
pub struct Series {
    /// Legend name.
    pub name: String,
    /// One value per category (None = no completed run).
    pub values: Vec<Option<Estimate>>,
    /// Per category, the values of runs flagged as outliers
    /// ([`crate::stats::outliers`]), drawn as crosses on the bar (they
    /// stay in the estimate); empty when not marked.
    pub outliers: Vec<Vec<f64>>,
}

/// A grouped bar chart.
pub struct Bars {
    /// File stem.
    pub name: String,
    /// Caption.
    pub title: String,
    /// Y-axis title with unit.
    pub y_axis: String,
    /// Category labels (groups).
    pub categories: Vec<String>,
    /// Series drawn side by side in each category.
    pub series: Vec<Series>,
    /// Optional per-category marker (value, legend name), drawn as a dash.
    pub marker: Option<(Vec<Option<f64>>, String)>,
}

impl Chart for Bars {
    super::labelled!(categories);
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let top = self
            .series
            .iter()
            .flat_map(|s| {
                let bars = s
                    .values
                    .iter()
                    .flatten()
                    .map(|e| e.ci_hi.unwrap_or(e.median).max(e.median));
                bars.chain(s.outliers.iter().flatten().copied())
            })
            .chain(
                self.marker
                    .iter()
                    .flat_map(|(m, _)| m.iter().flatten().copied()),
            )
            .fold(0.0f64, f64::max);
        let mut chart =
            super::category_chart(root, &self.title, &self.y_axis, &self.categories, top)?;
        let k = self.series.len().max(1) as f64;
        let width = 0.8 / k;
        for (si, s) in self.series.iter().enumerate() {
            let c = style::color(si);
            let bars = s.values.iter().enumerate().filter_map(|(i, v)| {
                let e = v.as_ref()?;
                let x0 = i as f64 + 0.1 + si as f64 * width;
                Some(Rectangle::new(
                    [(x0, 0.0), (x0 + width * 0.9, e.median)],
                    c.filled(),
                ))
            });
            chart
                .draw_series(bars)?
                .label(&s.name)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
            // Whiskers: the 95 % interval of the mean, where one is defined
            // (none for one run).
            for (i, v) in s.values.iter().enumerate() {
                let Some((lo, hi)) = v.and_then(|e| e.interval()) else {
                    continue;
                };
                let xc = i as f64 + 0.1 + si as f64 * width + width * 0.45;
                let w = width * 0.2;
                let black = BLACK.stroke_width(1);
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(xc, lo), (xc, hi)],
                    black,
                )))?;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(xc - w, lo), (xc + w, lo)],
                    black,
                )))?;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(xc - w, hi), (xc + w, hi)],
                    black,
                )))?;
            }
        }
        // Outlier runs: a cross on their series' bar, one legend entry.
        let crosses: Vec<(f64, f64)> = self
            .series
            .iter()
            .enumerate()
            .flat_map(|(si, s)| {
                s.outliers.iter().enumerate().flat_map(move |(i, vs)| {
                    let xc = i as f64 + 0.1 + si as f64 * width + width * 0.45;
                    vs.iter().map(move |&v| (xc, v))
                })
            })
            .collect();
        if !crosses.is_empty() {
            let st = style::OUTLIER.stroke_width(2);
            chart
                .draw_series(crosses.iter().map(|&p| Cross::new(p, 5, st)))?
                .label("outlier run (> 3 MAD from its group's median)")
                .legend(move |(x, y)| Cross::new((x + 6, y), 5, st));
        }
        if let Some((marks, label)) = &self.marker {
            let st = style::BOUND.stroke_width(3);
            let dashes = marks.iter().enumerate().filter_map(|(i, m)| {
                m.map(|v| PathElement::new(vec![(i as f64 + 0.05, v), (i as f64 + 0.95, v)], st))
            });
            chart
                .draw_series(dashes)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 12, y)], st));
        }
        style::legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}
