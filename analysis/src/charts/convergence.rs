//! The convergence map: dirty rate × migration bandwidth, each cell
//! coloured by outcome (all completed / some / none) and labelled with the
//! median total time of its completed runs.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style;
use super::Chart;

/// One cell.
pub struct Cell {
    /// Column (dirty rate) index.
    pub x: usize,
    /// Row (bandwidth) index.
    pub y: usize,
    /// Completed runs.
    pub completed: usize,
    /// All runs.
    pub n: usize,
    /// Median total time of completed runs, s.
    pub total_s: Option<f64>,
}

/// The map.
pub struct Convergence {
    /// File stem.
    pub name: String,
    /// Caption.
    pub title: String,
    /// Column labels (dirty rates).
    pub xs: Vec<String>,
    /// Row labels (bandwidths).
    pub ys: Vec<String>,
    /// Cells.
    pub cells: Vec<Cell>,
}

impl Chart for Convergence {
    super::labelled!();
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let (nx, ny) = (self.xs.len().max(1), self.ys.len().max(1));
        let (xs, ys) = (self.xs.clone(), self.ys.clone());
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, style::text(style::TITLE))
            .margin(12)
            .x_label_area_size(45)
            .y_label_area_size(110)
            .build_cartesian_2d(0f64..nx as f64, 0f64..ny as f64)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_labels(nx * 2 + 1)
            .y_labels(ny * 2 + 1)
            .x_label_formatter(&|v| style::category_label(*v, &xs))
            .y_label_formatter(&|v| style::category_label(*v, &ys))
            .x_desc("dirty rate")
            .y_desc("migration bandwidth")
            .label_style(style::text(style::TICK))
            .axis_desc_style(style::text(style::LABEL))
            .draw()?;
        for c in &self.cells {
            let color = if c.completed == c.n && c.n > 0 {
                style::COMPLETED
            } else if c.completed > 0 {
                style::MIXED
            } else {
                style::NOT_CONVERGED
            };
            let (x, y) = (c.x as f64, c.y as f64);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(x + 0.03, y + 0.03), (x + 0.97, y + 0.97)],
                color.mix(0.75).filled(),
            )))?;
            let text = match c.total_s {
                Some(t) => format!("{t:.1} s ({}/{})", c.completed, c.n),
                None => format!("did not converge (0/{})", c.n),
            };
            chart.draw_series(std::iter::once(Text::new(
                text,
                (x + 0.08, y + 0.55),
                style::text(style::LABEL),
            )))?;
        }
        Ok(())
    }
}
