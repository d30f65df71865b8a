//! What every PNG plot of the crate shares (the examples `estimator_eval` and
//! `planner_study`, the replayer's plots): the font, the palette and
//! the legend style.
//!
//! Text is drawn with a TTF registered at run time: Debian's fonts-dejavu-core
//! (`scripts/apt_ensure fonts-dejavu-core`), or the file named by `LANDMARK_FLOW_FONT`.

use plotters::chart::{ChartContext, SeriesLabelPosition};
use plotters::coord::CoordTranslate;
use plotters::drawing::DrawingAreaErrorKind;
use plotters::prelude::DrawingBackend;
use plotters::style::{Color, FontStyle, RGBColor, BLACK, WHITE};

/// Font used when `LANDMARK_FLOW_FONT` is not set.
pub const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

/// The font could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("font {path}: {detail} (install fonts-dejavu-core or set LANDMARK_FLOW_FONT)")]
pub struct FontError {
    pub path: String,
    pub detail: String,
}

/// Registers the TTF at `LANDMARK_FLOW_FONT` (default [`DEFAULT_FONT`]) as plotters'
/// "sans-serif".
///
/// # Errors
/// [`FontError`] when the file cannot be read or is not a TTF.
pub fn register_font() -> Result<(), FontError> {
    let path = std::env::var("LANDMARK_FLOW_FONT").unwrap_or_else(|_| DEFAULT_FONT.to_string());
    let bytes = std::fs::read(&path).map_err(|e| FontError { path: path.clone(), detail: e.to_string() })?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| FontError { path, detail: "not a TTF".into() })
}

/// The `i`-th series colour (matplotlib's tab10, cycling).
pub fn colour(i: usize) -> RGBColor {
    const C: [RGBColor; 10] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
    ];
    C[i % C.len()]
}

/// Draws a chart's series legend in the crate's style: `font_px` sans-serif, white
/// translucent background, black border, at `position`.
///
/// # Errors
/// What plotters' legend drawing returns.
pub fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    font_px: u32,
    position: SeriesLabelPosition,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart
        .configure_series_labels()
        .label_font(("sans-serif", font_px))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(position)
        .draw()
}
