//! Line charts: training curves.

use super::de;
use crate::provenance::Provenance;
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// A named series of (x, y) points.
pub struct Series<'a> {
    /// Legend label.
    pub label: &'a str,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

/// Draws series on one chart with a legend and writes a PNG.
pub fn line_chart_png(
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series<'_>],
    path: &Path,
    tag: &Provenance,
) -> Result<()> {
    let (w, h) = (800u32, 500u32);
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.0), b.max(p.0))
    });
    let (mut y0, mut y1) = all().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), p| {
        (a.min(p.1), b.max(p.1))
    });
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-6);
    super::draw_png(path, (w, h), tag, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .light_line_style(WHITE)
            .draw()
            .map_err(de)?;
        let colors = [BLUE, RED, GREEN, MAGENTA, CYAN];
        for (i, s) in series.iter().enumerate() {
            let c = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                .map_err(de)?
                .label(s.label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(de)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(de)?;
        Ok(())
    })
}
