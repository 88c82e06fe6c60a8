//! Report charts drawn with plotters, one module per chart kind, one style
//! ([`style`]). Every chart implements [`Chart`] and is rendered twice by
//! [`render`]: SVG (inlined in the HTML) and PNG (for slides and docs).

pub mod bars;
pub mod cdf;
pub mod convergence;
pub mod lines;
pub mod scatter;
pub mod stacked;
pub mod style;
pub mod timeline;

use std::path::Path;

use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

/// Something drawable on any plotters backend.
pub trait Chart {
    /// File stem, e.g. `total-time`.
    fn name(&self) -> String;
    /// Caption shown in the report.
    fn title(&self) -> String;
    /// Size in pixels.
    fn size(&self) -> (u32, u32) {
        style::SIZE
    }
    /// Draw on a white area.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

/// [`Chart::name`] and [`Chart::title`] from a chart's `name` and `title`
/// fields; with `categories`, also a [`Chart::size`] that widens with them.
macro_rules! labelled {
    () => {
        fn name(&self) -> String {
            self.name.clone()
        }
        fn title(&self) -> String {
            self.title.clone()
        }
    };
    (categories) => {
        super::labelled!();
        fn size(&self) -> (u32, u32) {
            style::category_size(self.categories.len())
        }
    };
}
pub(crate) use labelled;

/// The top of a value axis from the largest value to show: `max` times
/// `pad`, or 1 when that is not a positive finite number (an infinite
/// axis hangs plotters' tick search; the loader keeps such values out,
/// this keeps a chart from hanging if one gets through).
pub(crate) fn axis_top(max: f64, pad: f64) -> f64 {
    let top = max * pad;
    if top.is_finite() && top > 0.0 {
        top
    } else {
        1.0
    }
}

/// Axes for one value per category (bars, stacked bars): categories along
/// x at 0.5, 1.5, ..., values from 0 to a little above `max` on y.
pub(crate) fn category_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    y_axis: &str,
    cats: &[String],
    max: f64,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>>
where
    DB::ErrorType: 'static,
{
    let n = cats.len().max(1);
    let top = axis_top(max, 1.15);
    let mut chart = ChartBuilder::on(root)
        .caption(title, style::text(style::TITLE))
        .margin(12)
        .x_label_area_size(if n > 4 { 70 } else { 40 })
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..n as f64, 0f64..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n * 2 + 1)
        .x_label_formatter(&|x| style::category_label(*x, cats))
        .y_desc(y_axis)
        .label_style(style::text(style::TICK))
        .axis_desc_style(style::text(style::LABEL))
        .draw()?;
    Ok(chart)
}

/// A rendered chart: its files and the SVG text.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// File stem.
    pub name: String,
    /// Caption.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// Draw `chart` as `<dir>/<name>.svg` and `<dir>/<name>.png`.
pub fn render(chart: &impl Chart, dir: &Path) -> Result<Rendered> {
    style::register_fonts();
    let size = chart.size();
    let name = chart.name();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        chart.draw(&root)?;
        root.present()?;
    }
    std::fs::write(dir.join(format!("{name}.svg")), &svg)?;
    {
        let png = dir.join(format!("{name}.png"));
        let root = BitMapBackend::new(&png, size).into_drawing_area();
        root.fill(&WHITE)?;
        chart.draw(&root)?;
        root.present()?;
    }
    Ok(Rendered {
        name,
        title: chart.title(),
        svg,
    })
}

#[cfg(test)]
mod tests {
    use super::bars::{Bars, Series};
    use crate::stats::Estimate;

    #[test]
    fn an_infinite_or_huge_value_draws_instead_of_hanging() {
        for v in [f64::INFINITY, f64::MAX, 1e308] {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let dir = tempfile::tempdir().unwrap();
                let chart = Bars {
                    name: "inf".into(),
                    title: "an absurd value".into(),
                    y_axis: "s".into(),
                    categories: vec!["a".into(), "b".into()],
                    series: vec![Series {
                        name: "x".into(),
                        values: vec![Some(Estimate::exact(v)), Some(Estimate::exact(2.0))],
                        outliers: Vec::new(),
                    }],
                    marker: None,
                };
                let _ = tx.send(super::render(&chart, dir.path()).is_ok());
            });
            let done = rx.recv_timeout(std::time::Duration::from_secs(60));
            assert!(done.is_ok(), "drawing a bar of {v} did not finish in 60 s");
        }
        assert_eq!(super::axis_top(f64::INFINITY, 1.15), 1.0);
        assert_eq!(super::axis_top(f64::MAX, 1.15), 1.0);
        assert_eq!(super::axis_top(2.0, 1.5), 3.0);
        assert_eq!(super::axis_top(f64::NAN, 1.5), 1.0);
    }
}
