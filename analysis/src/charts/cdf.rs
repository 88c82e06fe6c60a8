//! Probe RTT distribution before / during / after migration, as CDFs on a
//! logarithmic RTT axis.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style;
use super::Chart;

/// CDF curves, each (legend, points (rtt ms, fraction)).
pub struct Cdf {
    /// File stem.
    pub name: String,
    /// Caption.
    pub title: String,
    /// The curves.
    pub curves: Vec<(String, Vec<(f64, f64)>)>,
}

impl Chart for Cdf {
    super::labelled!();
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let curves = &self.curves;
        let xs = curves
            .iter()
            .flat_map(|c| c.1.iter().map(|p| p.0))
            .filter(|x| *x > 0.0);
        let (lo, hi) = xs.fold((f64::MAX, f64::MIN), |(a, b), x| (a.min(x), b.max(x)));
        let (lo, hi) = if lo < hi {
            (lo * 0.8, hi * 1.25)
        } else {
            (0.01, 10.0)
        };
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, style::text(style::TITLE))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(60)
            .build_cartesian_2d((lo..hi).log_scale(), 0f64..1.0)?;
        chart
            .configure_mesh()
            .x_desc("probe RTT (ms, log scale)")
            .y_desc("fraction of probes ≤ RTT")
            .label_style(style::text(style::TICK))
            .axis_desc_style(style::text(style::LABEL))
            .draw()?;
        for (i, (name, pts)) in self.curves.iter().enumerate() {
            let c = style::color(i).stroke_width(2);
            chart
                .draw_series(LineSeries::new(
                    pts.iter().filter(|p| p.0 > 0.0).copied(),
                    c,
                ))?
                .label(name)
                .legend(style::line_key(c));
        }
        style::legend(&mut chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    }
}
