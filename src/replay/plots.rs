//! PNG plots of a replay: the robot's path with each landmark's estimate (mean path,
//! 2σ ellipses at eight times, final ellipse bold, truth), and error / √tr(Σ) vs time.
//!
//! Font and palette are the crate's ([`crate::plotting`]).

use super::report::ReportBuilder;
use crate::plotting::{colour, draw_legend, register_font, FontError};
use nalgebra::{Matrix2, Vector2};
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Why the plots could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(transparent)]
    Font(#[from] FontError),
    #[error("plot {path}: {detail}")]
    Draw { path: PathBuf, detail: String },
}

/// Points of the k-σ ellipse of N(mean, cov) (closed polygon of 73 points,
/// [`crate::msg::convert::ellipse_points`]).
fn ellipse_points(mean: &Vector2<f64>, cov: &Matrix2<f64>, k: f64) -> Vec<(f64, f64)> {
    crate::msg::convert::ellipse_points(mean, cov, k, 72).into_iter().map(|p| (p.x, p.y)).collect()
}

fn draw_err(path: &Path) -> impl Fn(String) -> PlotError + '_ {
    move |detail| PlotError::Draw { path: path.to_path_buf(), detail }
}

macro_rules! d {
    ($e:expr, $path:expr) => {
        $e.map_err(|e| draw_err($path)(format!("{e:?}")))?
    };
}

/// Draws `trajectory.png` and `error_vs_time.png` into `dir`; returns their paths.
///
/// # Errors
/// [`PlotError`] when the font is missing or a file cannot be written.
pub fn write_plots(dir: &Path, data: &ReportBuilder) -> Result<Vec<PathBuf>, PlotError> {
    register_font()?;
    let trajectory = dir.join("trajectory.png");
    trajectory_plot(&trajectory, data)?;
    let errors = dir.join("error_vs_time.png");
    error_plot(&errors, data)?;
    let mut files = vec![trajectory, errors];
    if !data.robot_path_error.is_empty() {
        let path_errors = dir.join("robot_path_error.png");
        path_error_plot(&path_errors, &data.robot_path_error)?;
        files.push(path_errors);
    }
    Ok(files)
}

fn bounds(data: &ReportBuilder) -> (f64, f64, f64, f64) {
    let mut pts: Vec<(f64, f64)> = data.trajectory.iter().map(|&(_, x, y)| (x, y)).collect();
    for s in data.landmarks.values() {
        if let Some(b) = s.samples.last() {
            pts.push((b.mean.x, b.mean.y));
        }
    }
    if let Some(t) = &data.truth {
        pts.extend(t.landmarks.values().map(|y| (y.x, y.y)));
    }
    pts.retain(|p| p.0.is_finite() && p.1.is_finite());
    if pts.is_empty() {
        return (-10.0, 10.0, -10.0, 10.0);
    }
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for (x, y) in pts {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    // Square, with a margin.
    let half = ((x1 - x0).max(y1 - y0) / 2.0 * 1.15).max(2.0);
    let (cx, cy) = ((x0 + x1) / 2.0, (y0 + y1) / 2.0);
    (cx - half, cx + half, cy - half, cy + half)
}

fn trajectory_plot(path: &Path, data: &ReportBuilder) -> Result<(), PlotError> {
    let root = BitMapBackend::new(path, (1000, 1000)).into_drawing_area();
    d!(root.fill(&WHITE), path);
    let (x0, x1, y0, y1) = bounds(data);
    let mut chart = d!(
        ChartBuilder::on(&root)
            .caption("Robot path and landmark estimates (2σ ellipses over time)", ("sans-serif", 24))
            .margin(15)
            .x_label_area_size(45)
            .y_label_area_size(55)
            .build_cartesian_2d(x0..x1, y0..y1),
        path
    );
    d!(chart.configure_mesh().x_desc("x (m)").y_desc("y (m)").label_style(("sans-serif", 15)).draw(), path);
    let grey = RGBColor(120, 120, 120);
    // Thin the path to at most 5000 points.
    let step = (data.trajectory.len() / 5000).max(1);
    let robot: Vec<(f64, f64)> = data.trajectory.iter().step_by(step).map(|&(_, x, y)| (x, y)).collect();
    if !robot.is_empty() {
        d!(chart.draw_series(LineSeries::new(robot, grey.stroke_width(1))), path)
            .label("robot path (odometry)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], grey.stroke_width(2)));
    }
    // With drifting odometry, the corrected path in the map frame too.
    let blue = RGBColor(40, 90, 200);
    let step = (data.map_trajectory.len() / 5000).max(1);
    let corrected: Vec<(f64, f64)> = data.map_trajectory.iter().step_by(step).map(|&(_, x, y)| (x, y)).collect();
    if !corrected.is_empty() {
        d!(chart.draw_series(LineSeries::new(corrected, blue.mix(0.7).stroke_width(1))), path)
            .label("robot path (corrected, map)")
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(2)));
    }
    for (i, (id, series)) in data.landmarks.iter().enumerate() {
        let c = colour(i);
        let s = &series.samples;
        if s.is_empty() {
            continue;
        }
        let step = (s.len() / 2000).max(1);
        let means: Vec<(f64, f64)> = s.iter().step_by(step).map(|b| (b.mean.x, b.mean.y)).collect();
        d!(chart.draw_series(LineSeries::new(means, c.mix(0.5).stroke_width(1))), path);
        for k in 1..8 {
            let b = &s[(s.len() * k / 8).min(s.len() - 1)];
            let alpha = 0.15 + 0.5 * k as f64 / 8.0;
            d!(chart.draw_series(std::iter::once(PathElement::new(ellipse_points(&b.mean, &b.cov, 2.0), c.mix(alpha).stroke_width(1)))), path);
        }
        let last = s[s.len() - 1];
        d!(chart.draw_series(std::iter::once(PathElement::new(ellipse_points(&last.mean, &last.cov, 2.0), c.stroke_width(3)))), path)
            .label(format!("{id} (final 2σ)"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3)));
        d!(chart.draw_series(std::iter::once(Circle::new((last.mean.x, last.mean.y), 4, c.filled()))), path);
        if let Some(y) = data.truth.as_ref().and_then(|t| t.landmarks.get(id)) {
            d!(chart.draw_series(std::iter::once(TriangleMarker::new((y.x, y.y), 9, BLACK.filled()))), path);
        }
    }
    if data.truth.is_some() {
        d!(chart.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>()), path)
            .label("true landmark")
            .legend(|(x, y)| TriangleMarker::new((x + 10, y), 6, BLACK.filled()));
    }
    d!(draw_legend(&mut chart, 15, SeriesLabelPosition::UpperRight), path);
    d!(root.present(), path);
    Ok(())
}

/// `robot_path_error.png`: the corrected robot position's error vs time.
fn path_error_plot(path: &Path, series: &[(f64, f64)]) -> Result<(), PlotError> {
    let root = BitMapBackend::new(path, (1100, 420)).into_drawing_area();
    d!(root.fill(&WHITE), path);
    let t_end = series.last().map_or(1.0, |p| p.0).max(1e-3);
    let hi = series.iter().map(|p| p.1).fold(0.0, f64::max).max(1e-3) * 1.1;
    let mut chart = d!(
        ChartBuilder::on(&root)
            .caption("Robot path error vs time (robot_pose against the true path)", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..t_end, 0f64..hi),
        path
    );
    d!(chart.configure_mesh().x_desc("time since the bag's first message (s)").y_desc("position error (m)").label_style(("sans-serif", 14)).draw(), path);
    d!(chart.draw_series(LineSeries::new(series.iter().copied(), colour(0).stroke_width(2))), path);
    d!(root.present(), path);
    Ok(())
}

fn log_range(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::MAX, f64::MIN);
    for v in values.filter(|v| v.is_finite() && *v > 0.0) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return (0.01, 100.0);
    }
    (lo / 1.5, hi * 1.5)
}

fn error_plot(path: &Path, data: &ReportBuilder) -> Result<(), PlotError> {
    let has_truth = data.landmarks.values().any(|s| s.samples.iter().any(|b| b.error_m.is_some()));
    let root = BitMapBackend::new(path, (1100, if has_truth { 900 } else { 480 })).into_drawing_area();
    d!(root.fill(&WHITE), path);
    let t_end = data
        .landmarks
        .values()
        .filter_map(|s| s.samples.last().map(|b| b.time_s))
        .fold(data.trajectory.last().map(|t| t.0).unwrap_or(1.0), f64::max)
        .max(1e-3);
    let panels = if has_truth { root.split_evenly((2, 1)) } else { vec![root.clone()] };
    type Pick = fn(&super::report::BeliefSample) -> Option<f64>;
    let mut specs: Vec<(&str, &str, Pick)> = Vec::new();
    if has_truth {
        specs.push(("Error vs time", "‖μ − y‖ (m)", |b| b.error_m));
    }
    specs.push(("√tr(Σ) vs time", "√tr(Σ) (m)", |b| Some(b.cov.trace().max(0.0).sqrt())));
    for (panel, (title, y_desc, pick)) in panels.iter().zip(specs) {
        let (lo, hi) = log_range(data.landmarks.values().flat_map(|s| s.samples.iter().filter_map(pick)));
        let mut chart = d!(
            ChartBuilder::on(panel)
                .caption(title, ("sans-serif", 22))
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(60)
                .build_cartesian_2d(0f64..t_end, (lo..hi).log_scale()),
            path
        );
        d!(chart.configure_mesh().x_desc("time since the bag's first message (s)").y_desc(y_desc).label_style(("sans-serif", 14)).draw(), path);
        for (i, (id, s)) in data.landmarks.iter().enumerate() {
            let c = colour(i);
            let pts: Vec<(f64, f64)> = s.samples.iter().filter_map(|b| pick(b).map(|v| (b.time_s, v.max(lo)))).collect();
            if pts.is_empty() {
                continue;
            }
            d!(chart.draw_series(LineSeries::new(pts, c.stroke_width(2))), path)
                .label(id.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        }
        if has_truth && title.starts_with("Error") {
            for (level, style) in [(1.0, BLACK.mix(0.5)), (0.5, BLACK.mix(0.3))] {
                if level > lo && level < hi {
                    d!(chart.draw_series(std::iter::once(PathElement::new(vec![(0.0, level), (t_end, level)], style.stroke_width(1)))), path);
                }
            }
        }
        d!(draw_legend(&mut chart, 14, SeriesLabelPosition::UpperRight), path);
    }
    d!(root.present(), path);
    Ok(())
}
