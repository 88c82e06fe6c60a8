//! A scatter of predicted against measured values with the line y = x:
//! points on it were predicted exactly, above it over-predicted.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::{lines::dashed_path, style, Chart};

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
        let top = if top > 0.0 { top * 1.1 } else { 1.0 };
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
        for (k, g) in self.groups.iter().enumerate() {
            let c = style::color(k);
            chart
                .draw_series(g.points.iter().map(|p| Circle::new(*p, 4, c.filled())))?
                .label(&g.name)
                .legend(move |(x, y)| Circle::new((x + 7, y), 4, c.filled()));
        }
        style::legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        Ok(())
    }
}
