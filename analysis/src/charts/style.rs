//! The one chart style: size, fonts, colours. The font (DejaVu Sans, from
//! Debian's fonts-dejavu-core; licence beside it in `assets/`) is embedded,
//! so PNGs have text without system font libraries.

use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

/// Legend key of a line series: a short stroke in the series' style.
pub fn line_key(st: ShapeStyle) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 14, y)], st)
}

/// Default chart size in pixels.
pub const SIZE: (u32, u32) = (900, 480);
/// Font family name the charts use.
pub const FONT: &str = "sans-serif";
/// Title font size.
pub const TITLE: u32 = 22;
/// Axis label font size.
pub const LABEL: u32 = 15;
/// Tick label font size.
pub const TICK: u32 = 13;

static DEJAVU: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// Register the embedded font (idempotent).
pub fn register_fonts() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // A static byte slice never fails to be accepted by ab_glyph's parser
        // for this font; if it did, charts would lack text, not crash.
        let _ = register_font(FONT, FontStyle::Normal, DEJAVU);
    });
}

/// Series colours (colour-blind friendly: Okabe–Ito).
pub const PALETTE: &[RGBColor] = &[
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(240, 228, 66),
    RGBColor(0, 0, 0),
];

/// Colour of series `i`.
pub fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Outcome colours for the convergence map.
pub const COMPLETED: RGBColor = RGBColor(0, 158, 115);
/// Some runs did not complete.
pub const MIXED: RGBColor = RGBColor(230, 159, 0);
/// No run completed.
pub const NOT_CONVERGED: RGBColor = RGBColor(213, 94, 0);
/// Shading of probe outage windows.
pub const OUTAGE: RGBColor = RGBColor(213, 94, 0);
/// The physical bound line.
pub const BOUND: RGBColor = RGBColor(90, 90, 90);
/// Crosses marking outlier runs on bars (dark red: stands apart from
/// the series palette's fills).
pub const OUTLIER: RGBColor = RGBColor(150, 0, 24);

/// Chart size for `n` categories side by side: the default, wider when
/// their labels need room.
pub fn category_size(n: usize) -> (u32, u32) {
    (SIZE.0.max(180 * n as u32), SIZE.1)
}

/// Tick label of a categorical axis where category `i` spans `[i, i+1)`:
/// its name at the centre tick, nothing elsewhere.
pub fn category_label(v: f64, names: &[String]) -> String {
    let i = v.floor() as usize;
    if (v - i as f64 - 0.5).abs() < 0.01 && i < names.len() {
        names[i].clone()
    } else {
        String::new()
    }
}

/// A text style in the chart font.
pub fn text(size: u32) -> TextStyle<'static> {
    (FONT, size).into_font().into()
}

/// Draw the series legend of `chart` at `pos`, in the one legend style.
pub fn legend<'a, DB, CT>(
    chart: &mut ChartContext<'a, DB, CT>,
    pos: SeriesLabelPosition,
) -> anyhow::Result<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    CT: plotters::coord::CoordTranslate,
{
    chart
        .configure_series_labels()
        .position(pos)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(text(TICK))
        .draw()?;
    Ok(())
}
