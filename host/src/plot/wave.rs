//! Waveform plots of audio clips, one panel per clip.

use super::de;
use crate::provenance::Provenance;
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

/// One clip to draw.
pub struct Wave<'a> {
    /// Panel title.
    pub title: String,
    /// Samples in [-1, 1].
    pub samples: &'a [f32],
    /// Sample rate in Hz.
    pub rate: u32,
}

/// Draws the clips stacked vertically and writes a PNG.
pub fn waveform_png(waves: &[Wave<'_>], path: &Path, tag: &Provenance) -> Result<()> {
    let (w, panel_h) = (900u32, 180u32);
    let h = panel_h * waves.len().max(1) as u32;
    super::draw_png(path, (w, h), tag, |root| {
        for (area, wave) in root.split_evenly((waves.len().max(1), 1)).iter().zip(waves) {
            let secs = wave.samples.len() as f64 / wave.rate as f64;
            let mut chart = ChartBuilder::on(area)
                .caption(&wave.title, ("sans-serif", 16))
                .margin(6)
                .x_label_area_size(28)
                .y_label_area_size(44)
                .build_cartesian_2d(0f64..secs.max(1e-3), -1f64..1f64)
                .map_err(de)?;
            chart
                .configure_mesh()
                .x_desc("seconds")
                .disable_y_mesh()
                .light_line_style(WHITE)
                .x_labels(8)
                .y_labels(5)
                .draw()
                .map_err(de)?;
            // Draw at most ~4 points per pixel column: min/max envelopes
            // would be better, but a stride keeps the shape readable.
            let stride = (wave.samples.len() / (w as usize * 4)).max(1);
            let points = wave.samples.iter().enumerate().step_by(stride);
            chart
                .draw_series(LineSeries::new(
                    points.map(|(i, &s)| (i as f64 / wave.rate as f64, s as f64)),
                    &BLUE,
                ))
                .map_err(de)?;
        }
        Ok(())
    })
}
