//! A scatter of predicted against measured values with the line y = x:
//! points on it were predicted exactly, above it over-predicted. A group
//! of more than [`MAX_POINTS`] runs is drawn thinned ([`thin`]): an even
//! sample over the measured range plus the worst predictions, and its
//! legend says how many of how many are shown (10,000 circles made each
//! chart 0.8 MB of SVG).

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{lines::dashed_path, style, Chart};

/// Points drawn per chart at most (over all groups).
pub const MAX_POINTS: usize = 400;

/// At most `max` of `points`: the `max / 5` farthest from y = x (by
/// |ln(predicted / measured)|, or absolute distance where a value is not
/// positive), then an even sample of the rest in measured order. Keeps
/// every point when there are no more than `max`.
pub fn thin(points: &[(f64, f64)], max: usize) -> Vec<(f64, f64)> {
    if points.len() <= max {
        return points.to_vec();
    }
    let off = |p: &(f64, f64)| {
        if p.0 > 0.0 && p.1 > 0.0 {
            (p.1 / p.0).ln().abs()
        } else {
            (p.1 - p.0).abs()
        }
    };
    let mut idx: Vec<usize> = (0..points.len()).collect();
    idx.sort_by(|a, b| off(&points[*b]).total_cmp(&off(&points[*a])));
    let worst = max / 5;
    let mut keep: Vec<usize> = idx[..worst].to_vec();
    let mut rest: Vec<usize> = idx[worst..].to_vec();
    rest.sort_by(|a, b| points[*a].0.total_cmp(&points[*b].0));
    // Evenly spaced in measured order, both ends included.
    let want = max - worst;
    if want == 1 {
        keep.push(rest[0]);
    } else if want > 1 {
        keep.extend((0..want).map(|i| rest[i * (rest.len() - 1) / (want - 1)]));
    }
    keep.sort_unstable();
    keep.into_iter().map(|i| points[i]).collect()
}

/// One group of points (one legend entry).
pub struct Points {
    /// Legend name.
    pub name: String,
    /// (measured, predicted).
    pub points: Vec<(f64, f64)>,
}

/// The chart.
pub struct Scatter {
    /// File stem.
    pub name: String,
    /// Caption.
    pub title: String,
    /// Axis quantity with unit, e.g. "total time (s)".
    pub quantity: String,
    /// The groups.
    pub groups: Vec<Points>,
}

impl Chart for Scatter {
    super::labelled!();
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let top = self
            .groups
            .iter()
            .flat_map(|g| g.points.iter().map(|p| p.0.max(p.1)))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let top = super::axis_top(top, 1.1);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, style::text(style::TITLE))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..top, 0f64..top)?;
        chart
            .configure_mesh()
            .x_desc(format!("measured {}", self.quantity))
            .y_desc(format!("predicted {}", self.quantity))
            .label_style(style::text(style::TICK))
            .axis_desc_style(style::text(style::LABEL))
            .draw()?;
        let grey = RGBColor(120, 120, 120).stroke_width(1);
        chart
            .draw_series(
                dashed_path(&[(0.0, 0.0), (top, top)], top)
                    .into_iter()
                    .map(|seg| PathElement::new(seg, grey)),
            )?
            .label("y = x (exact)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], grey));
        let total: usize = self.groups.iter().map(|g| g.points.len()).sum();
        for (k, g) in self.groups.iter().enumerate() {
            let c = style::color(k);
            // Each group's share of the points drawn, by its size.
            let share = (MAX_POINTS * g.points.len()).div_ceil(total.max(1)).max(1);
            let shown = thin(&g.points, share);
            let name = if shown.len() < g.points.len() {
                format!(
                    "{} ({} of {} runs shown)",
                    g.name,
                    shown.len(),
                    g.points.len()
                )
            } else {
                g.name.clone()
            };
            chart
                .draw_series(shown.iter().map(|p| Circle::new(*p, 4, c.filled())))?
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, c.filled()));
        }
        style::legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_the_worst_predictions_and_spans_the_range() {
        let pts: Vec<(f64, f64)> = (1..=10_000).map(|i| (i as f64, i as f64)).collect();
        let mut pts = pts;
        pts[5_000].1 = 50_000.0; // one far off
        let t = thin(&pts, 400);
        assert_eq!(t.len(), 400);
        assert!(t.contains(&(5_001.0, 50_000.0)));
        let (lo, hi) = t
            .iter()
            .fold((f64::MAX, 0.0f64), |(a, b), p| (a.min(p.0), b.max(p.0)));
        assert!(lo <= 30.0 && hi >= 9_970.0, "{lo}..{hi}");
        assert_eq!(thin(&pts[..10], 400).len(), 10);
        for max in 0..4 {
            assert_eq!(thin(&pts, max).len(), max);
        }
    }
}
