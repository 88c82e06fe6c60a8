//! One run's timeline: remaining RAM with pass boundaries and policy
//! interventions; throughput and dirty rate (both Mbit/s); the workload's
//! own progress rate and the auto-converge CPU throttle beneath; with
//! services, what their clients saw (request latency, gaps between stream
//! chunks). Probe outage windows are shaded in every panel.

use anyhow::Result;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::style;
use super::Chart;
use migbench_model::{ProgressSample, WorkloadSample};

/// A run's timeline data, times in seconds from `migrate`.
pub struct Timeline {
    /// File stem.
    pub name: String,
    /// Caption.
    pub title: String,
    /// Query-migrate samples.
    pub progress: Vec<ProgressSample>,
    /// Workload samples.
    pub workload: Vec<WorkloadSample>,
    /// Outage windows (start, end) ms on the run clock.
    pub outages: Vec<(f64, f64)>,
    /// Run-clock time of `migrate`, ms (the timeline's zero).
    pub t0_ms: f64,
    /// Policy interventions: seconds since `migrate` and a short label.
    pub interventions: Vec<(f64, String)>,
    /// Service series: a name and (run-clock ms, value ms) points; an
    /// empty list draws no service panel.
    pub service: Vec<(String, Vec<(f64, f64)>)>,
}

impl Timeline {
    fn secs(&self, t_ms: f64) -> f64 {
        (t_ms - self.t0_ms) / 1e3
    }

    /// Throughput between consecutive samples, Mbit/s, at the later sample.
    fn throughput(&self) -> Vec<(f64, f64)> {
        self.progress
            .windows(2)
            .filter(|w| w[1].t_ms > w[0].t_ms && w[1].transferred >= w[0].transferred)
            .map(|w| {
                let bits = (w[1].transferred - w[0].transferred) as f64 * 8.0;
                (
                    self.secs(w[1].t_ms),
                    bits / ((w[1].t_ms - w[0].t_ms) / 1e3) / 1e6,
                )
            })
            .collect()
    }
}

/// The highest y of two series, at least 1.
fn top_of(a: &[(f64, f64)], b: &[(f64, f64)]) -> f64 {
    a.iter().chain(b).map(|p| p.1).fold(1.0f64, f64::max)
}

impl Chart for Timeline {
    super::labelled!();
    fn size(&self) -> (u32, u32) {
        if self.service.is_empty() {
            (900, 720)
        } else {
            (900, 940)
        }
    }
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        let root = root.titled(&self.title, style::text(style::TITLE))?;
        let with_service = !self.service.is_empty();
        let panels = root.split_evenly((if with_service { 4 } else { 3 }, 1));
        let time_axis = Some("time since migrate (s)");
        let last = self
            .progress
            .last()
            .map(|p| self.secs(p.t_ms))
            .unwrap_or(1.0);
        let first_w = self
            .workload
            .first()
            .map(|w| self.secs(w.t_ms))
            .unwrap_or(0.0);
        let (x0, x1) = (first_w.min(-0.5), (last + 2.5).max(1.0));
        let outages: Vec<(f64, f64)> = self
            .outages
            .iter()
            .map(|(a, b)| (self.secs(*a), self.secs(*b)))
            .collect();

        // Panel 1: remaining RAM.
        let rem: Vec<(f64, f64)> = self
            .progress
            .iter()
            .map(|p| (self.secs(p.t_ms), p.remaining as f64 / 1048576.0))
            .collect();
        let top = rem.iter().map(|p| p.1).fold(1.0f64, f64::max) * 1.1;
        let mut c = panel(
            &panels[0],
            (x0, x1),
            top,
            "remaining RAM (MiB)",
            None,
            &outages,
        )?;
        c.draw_series(LineSeries::new(rem, style::color(0).stroke_width(2)))?
            .label("remaining RAM")
            .legend(style::line_key(style::color(0).stroke_width(2)));
        // Pass boundaries: where dirty-sync-count increases.
        let passes = self
            .progress
            .windows(2)
            .filter(|w| w[1].passes > w[0].passes)
            .map(|w| self.secs(w[1].t_ms));
        c.draw_series(
            passes.map(|x| PathElement::new(vec![(x, 0.0), (x, top)], style::BOUND.mix(0.6))),
        )?
        .label("new pass")
        .legend(|(x, y)| PathElement::new(vec![(x + 6, y - 6), (x + 6, y + 6)], style::BOUND));
        c.draw_series(std::iter::once(Rectangle::new(
            [(x0, 0.0), (x0, 0.0)],
            style::OUTAGE.mix(0.25).filled(),
        )))?
        .label("probe outage")
        .legend(|(x, y)| {
            Rectangle::new(
                [(x, y - 5), (x + 12, y + 5)],
                style::OUTAGE.mix(0.35).filled(),
            )
        });
        if !self.interventions.is_empty() {
            c.draw_series(self.interventions.iter().map(|(x, _)| {
                PathElement::new(vec![(*x, 0.0), (*x, top)], style::color(4).stroke_width(2))
            }))?
            .label("intervention")
            .legend(|(x, y)| {
                PathElement::new(
                    vec![(x + 6, y - 6), (x + 6, y + 6)],
                    style::color(4).stroke_width(2),
                )
            });
            c.draw_series(
                self.interventions
                    .iter()
                    .enumerate()
                    .map(|(i, (x, label))| {
                        // Stagger labels so close interventions stay readable.
                        let y = top * (0.95 - 0.08 * (i % 4) as f64);
                        Text::new(label.clone(), (*x, y), style::text(style::TICK))
                    }),
            )?;
        }
        style::legend(&mut c, SeriesLabelPosition::UpperRight)?;

        // Panel 2: throughput and dirty rate, Mbit/s.
        let tp = self.throughput();
        let dirty: Vec<(f64, f64)> = self
            .progress
            .iter()
            .map(|p| {
                (
                    self.secs(p.t_ms),
                    p.dirty_pages_rate as f64 * 4096.0 * 8.0 / 1e6,
                )
            })
            .collect();
        let top = top_of(&tp, &dirty) * 1.1;
        let mut c = panel(&panels[1], (x0, x1), top, "Mbit/s", None, &outages)?;
        c.draw_series(LineSeries::new(tp, style::color(1).stroke_width(2)))?
            .label("throughput")
            .legend(style::line_key(style::color(1).stroke_width(2)));
        c.draw_series(LineSeries::new(dirty, style::color(2).stroke_width(2)))?
            .label("dirty rate")
            .legend(style::line_key(style::color(2).stroke_width(2)));
        style::legend(&mut c, SeriesLabelPosition::UpperRight)?;

        // Panel 3: the workload's own progress rate.
        let wl: Vec<(f64, f64)> = self
            .workload
            .iter()
            .filter(|w| w.window_ms > 0.0)
            .map(|w| {
                (
                    self.secs(w.t_ms),
                    w.bytes as f64 / (w.window_ms / 1e3) / 1e6,
                )
            })
            .collect();
        let throttle: Vec<(f64, f64)> = self
            .progress
            .iter()
            .filter_map(|p| Some((self.secs(p.t_ms), p.throttle_pct?)))
            .collect();
        let top = top_of(&wl, &throttle) * 1.2;
        let y_desc = if throttle.is_empty() {
            "workload MB/s"
        } else {
            "workload MB/s · throttle %"
        };
        let mut c = panel(
            &panels[2],
            (x0, x1),
            top,
            y_desc,
            if with_service { None } else { time_axis },
            &outages,
        )?;
        c.draw_series(LineSeries::new(wl, style::color(3).stroke_width(2)))?
            .label("workload rate (MB/s)")
            .legend(style::line_key(style::color(3).stroke_width(2)));
        if !throttle.is_empty() {
            c.draw_series(LineSeries::new(throttle, style::color(5).stroke_width(2)))?
                .label("CPU throttle (%)")
                .legend(style::line_key(style::color(5).stroke_width(2)));
        }
        style::legend(&mut c, SeriesLabelPosition::UpperRight)?;

        // Panel 4: what the services' clients saw, ms.
        if with_service {
            let series: Vec<(&String, Vec<(f64, f64)>)> = self
                .service
                .iter()
                .map(|(n, pts)| (n, pts.iter().map(|(t, v)| (self.secs(*t), *v)).collect()))
                .collect();
            let top = series
                .iter()
                .flat_map(|(_, p)| p.iter().filter(|(x, _)| *x >= x0 && *x <= x1))
                .map(|p| p.1)
                .fold(1.0f64, f64::max)
                * 1.1;
            let mut c = panel(&panels[3], (x0, x1), top, "ms", time_axis, &outages)?;
            for (i, (name, pts)) in series.into_iter().enumerate() {
                let color = style::color(1 + 3 * i);
                c.draw_series(
                    pts.into_iter()
                        .filter(|(x, _)| *x >= x0 && *x <= x1)
                        .map(|p| Circle::new(p, 2, color.filled())),
                )?
                .label(name.as_str())
                .legend(move |(x, y)| Circle::new((x + 6, y), 3, color.filled()));
            }
            style::legend(&mut c, SeriesLabelPosition::UpperRight)?;
        }
        Ok(())
    }
}

/// One panel: time on x (`x`), 0..`top` on y, outage windows shaded.
fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    (x0, x1): (f64, f64),
    top: f64,
    y_desc: &str,
    x_desc: Option<&str>,
    outages: &[(f64, f64)],
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>>
where
    DB::ErrorType: 'static,
{
    let mut c = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(if x_desc.is_some() { 40 } else { 30 })
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0f64..top)?;
    let mut mesh = c.configure_mesh();
    if let Some(x) = x_desc {
        mesh.x_desc(x);
    }
    mesh.y_desc(y_desc)
        .label_style(style::text(style::TICK))
        .axis_desc_style(style::text(style::LABEL))
        .draw()?;
    c.draw_series(
        outages
            .iter()
            .map(|(a, b)| Rectangle::new([(*a, 0.0), (*b, top)], style::OUTAGE.mix(0.25).filled())),
    )?;
    Ok(c)
}
