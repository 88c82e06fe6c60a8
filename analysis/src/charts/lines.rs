//! Lines over a numeric dimension: one line per value of another dimension
//! (e.g. total time against dirty rate, one line per link rate), medians
//! with 95 % whiskers, optional dashed companion lines (the physical bound,
//! or QEMU-reported beside probe-measured downtime).

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style;
use super::Chart;
use crate::stats::Estimate;

/// One line.
pub struct Line {
    /// Legend name.
    pub name: String,
    /// Points (x, estimate), sorted by x.
    pub points: Vec<(f64, Estimate)>,
    /// Palette index (lines that belong together share it).
    pub color: usize,
    /// Dashed (a bound or a second measure) rather than solid.
    pub dashed: bool,
}

/// A line chart.
pub struct Lines {
    /// File stem.
    pub name: String,
    /// Caption.
    pub title: String,
    /// X-axis title with unit.
    pub x_axis: String,
    /// Y-axis title with unit.
    pub y_axis: String,
    /// The lines.
    pub lines: Vec<Line>,
}

/// A polyline as short dashes (plotters 0.3 has no dash style shared by
/// every backend).
pub(super) fn dashed_path(points: &[(f64, f64)], x_span: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out = Vec::new();
    let dash = x_span / 80.0;
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        let len = (x1 - x0).abs().max(1e-12);
        let steps = (len / dash).ceil().max(1.0) as usize;
        for s in (0..steps).step_by(2) {
            let t0 = s as f64 / steps as f64;
            let t1 = ((s + 1) as f64 / steps as f64).min(1.0);
            out.push(vec![
                (x0 + (x1 - x0) * t0, y0 + (y1 - y0) * t0),
                (x0 + (x1 - x0) * t1, y0 + (y1 - y0) * t1),
            ]);
        }
    }
    out
}

impl Chart for Lines {
    super::labelled!();
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let xs = self.lines.iter().flat_map(|l| l.points.iter().map(|p| p.0));
        let (x0, x1) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
        let (x0, x1) = if x0 < x1 {
            (x0, x1)
        } else {
            (x0 - 1.0, x0 + 1.0)
        };
        let pad = (x1 - x0) * 0.05;
        let top = self
            .lines
            .iter()
            .flat_map(|l| {
                l.points
                    .iter()
                    .map(|p| p.1.ci_hi.unwrap_or(p.1.median).max(p.1.median))
            })
            .fold(0.0f64, f64::max);
        let top = super::axis_top(top, 1.15);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, style::text(style::TITLE))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_axis)
            .y_desc(&self.y_axis)
            .label_style(style::text(style::TICK))
            .axis_desc_style(style::text(style::LABEL))
            .draw()?;
        for l in &self.lines {
            let c = style::color(l.color);
            let pts: Vec<(f64, f64)> = l.points.iter().map(|(x, e)| (*x, e.median)).collect();
            let st = c.stroke_width(2);
            if l.dashed {
                chart
                    .draw_series(
                        dashed_path(&pts, x1 - x0)
                            .into_iter()
                            .map(|seg| PathElement::new(seg, st)),
                    )?
                    .label(&l.name)
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 5, y)], st));
            } else {
                chart
                    .draw_series(LineSeries::new(pts.clone(), st))?
                    .label(&l.name)
                    .legend(style::line_key(st));
                chart.draw_series(pts.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
            }
            for (x, (lo, hi)) in l.points.iter().filter_map(|p| Some((p.0, p.1.interval()?))) {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(x, lo), (x, hi)],
                    c.stroke_width(1),
                )))?;
            }
        }
        style::legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}
