//! Scatter plots of labelled 2-D points.

use super::de;
use crate::provenance::Provenance;
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// Draws `(x, y, class)` points, one colour per class, with a legend.
pub fn class_scatter_png(
    title: &str,
    points: &[(f32, f32, u32)],
    classes: &[String],
    path: &Path,
    tag: &Provenance,
) -> Result<()> {
    let (w, h) = (800u32, 700u32);
    let ext = |f: fn(&(f32, f32, u32)) -> f32| {
        points
            .iter()
            .map(f)
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            })
    };
    let (mut x0, mut x1) = ext(|p| p.0);
    let (mut y0, mut y1) = ext(|p| p.1);
    if !x0.is_finite() {
        (x0, x1, y0, y1) = (-1.0, 1.0, -1.0, 1.0);
    }
    let (px, py) = (((x1 - x0) * 0.05).max(1e-3), ((y1 - y0) * 0.05).max(1e-3));
    super::draw_png(path, (w, h), tag, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((x0 - px)..(x1 + px), (y0 - py)..(y1 + py))
            .map_err(de)?;
        chart
            .configure_mesh()
            .x_desc("z[0]")
            .y_desc("z[1]")
            .light_line_style(WHITE)
            .draw()
            .map_err(de)?;
        let n_classes = classes.len().max(1);
        for c in 0..n_classes {
            let color = Palette99::pick(c).to_rgba();
            let name = classes.get(c).cloned().unwrap_or_else(|| "all".into());
            chart
                .draw_series(
                    points
                        .iter()
                        .filter(|p| classes.is_empty() || p.2 as usize == c)
                        .map(|p| Circle::new((p.0, p.1), 2, color.filled())),
                )
                .map_err(de)?
                .label(name)
                .legend(move |(x, y)| Circle::new((x + 8, y), 4, color.filled()));
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
