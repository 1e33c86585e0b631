//! Spectrograms of audio clips, one panel per clip: what a generated digit
//! sounds like, at a glance (formants and pitch show where a waveform plot
//! shows only loudness).

use super::de;
use super::wave::Wave;
use crate::provenance::Provenance;
use anyhow::Result;
use plotters::prelude::*;
use std::path::Path;

pub use crate::data::logmel::FRAME;
use crate::data::logmel::PowerSpectrum;
/// Samples between frames.
pub const HOP: usize = 64;
/// The quietest level drawn, in dB below the clip's loudest bin.
pub const FLOOR_DB: f64 = 80.0;

/// Power in dB relative to the loudest bin (at most 0, floored at
/// `-FLOOR_DB`) of Hann-windowed frames: `frames` rows of `FRAME / 2 + 1`
/// bins, from 0 Hz to half the sample rate. A clip shorter than a frame is
/// zero-padded to one.
pub fn stft_db(x: &[f32]) -> (usize, Vec<f64>) {
    let bins = PowerSpectrum::BINS;
    let frames = x.len().saturating_sub(FRAME) / HOP + 1;
    let mut dft = PowerSpectrum::default();
    let mut p = vec![0f64; frames * bins];
    for (f, row) in p.chunks_exact_mut(bins).enumerate() {
        dft.power(x, f * HOP, row);
    }
    let max = p.iter().fold(1e-30f64, |m, &v| m.max(v));
    for v in &mut p {
        *v = (10.0 * (*v / max).max(1e-30).log10()).max(-FLOOR_DB);
    }
    (frames, p)
}

/// Draws each clip's spectrogram (time across, frequency up, louder
/// brighter) stacked vertically and writes a PNG.
pub fn spectrogram_png(waves: &[Wave<'_>], path: &Path, tag: &Provenance) -> Result<()> {
    let (w, panel_h) = (900u32, 220u32);
    let h = panel_h * waves.len().max(1) as u32;
    super::draw_png(path, (w, h), tag, |root| {
        for (area, wave) in root.split_evenly((waves.len().max(1), 1)).iter().zip(waves) {
            let (frames, db) = stft_db(wave.samples);
            let bins = FRAME / 2 + 1;
            let (dt, df) = (
                HOP as f64 / wave.rate as f64,
                wave.rate as f64 / FRAME as f64,
            );
            let secs = (frames as f64 * dt).max(1e-3);
            let nyquist = wave.rate as f64 / 2.0;
            let mut chart = ChartBuilder::on(area)
                .caption(&wave.title, ("sans-serif", 16))
                .margin(6)
                .x_label_area_size(28)
                .y_label_area_size(52)
                .build_cartesian_2d(0f64..secs, 0f64..nyquist)
                .map_err(de)?;
            chart
                .configure_mesh()
                .x_desc("seconds")
                .y_desc("Hz")
                .disable_mesh()
                .x_labels(8)
                .y_labels(5)
                .draw()
                .map_err(de)?;
            chart
                .draw_series((0..frames).flat_map(|f| {
                    let db = &db;
                    (0..bins).map(move |k| {
                        let level = 1.0 + db[f * bins + k] / FLOOR_DB; // 0..1
                        let c = viridis(level);
                        let (t0, f0) = (f as f64 * dt, (k as f64 - 0.5).max(0.0) * df);
                        Rectangle::new(
                            [(t0, f0), (t0 + dt, ((k as f64 + 0.5) * df).min(nyquist))],
                            c.filled(),
                        )
                    })
                }))
                .map_err(de)?;
        }
        Ok(())
    })
}

/// Level in [0, 1] to a colour: five of viridis's stops, linearly
/// between them (dark, blue, teal, green, yellow), so that louder is
/// brighter in grey print too.
fn viridis(level: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = level.clamp(0.0, 1.0) * 4.0;
    let i = (x as usize).min(3);
    let t = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * t).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tone_peaks_in_its_bin_and_silence_is_at_the_floor() {
        // 1 kHz at 8 kHz: bin 1000 / 31.25 = 32.
        let x: Vec<f32> = (0..4000)
            .map(|i| (2.0 * std::f64::consts::PI * 1000.0 * i as f64 / 8000.0).sin() as f32)
            .collect();
        let (frames, db) = stft_db(&x);
        assert_eq!(frames, (4000 - FRAME) / HOP + 1);
        let bins = FRAME / 2 + 1;
        for f in 0..frames {
            let row = &db[f * bins..(f + 1) * bins];
            let peak = (0..bins)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap();
            assert_eq!(peak, 32, "frame {f}");
            // Far from the tone the Hann window's leakage is far down.
            assert!(row[100] < -60.0, "frame {f}: {}", row[100]);
        }
        let (frames, db) = stft_db(&[0.0; 100]);
        assert_eq!(frames, 1);
        assert!(db.iter().all(|&v| v == -FLOOR_DB));
    }
}
