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
    let top = if max > 0.0 { max * 1.15 } else { 1.0 };
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
