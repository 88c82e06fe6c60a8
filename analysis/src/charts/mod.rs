//! Report charts drawn with plotters, one module per chart kind, one style
//! ([`style`]). Every chart implements [`Chart`] and is rendered twice by
//! [`render`]: SVG (inlined in the HTML) and PNG (for slides and docs).

pub mod bars;
pub mod cdf;
pub mod convergence;
pub mod lines;
pub mod stacked;
pub mod style;
pub mod timeline;

use std::path::Path;

use anyhow::Result;
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
