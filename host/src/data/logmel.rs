//! Log-mel features of a clip, as a fixed-size image: what the audio
//! classifier (the image classifier's CNN, unchanged) hears a spoken digit
//! by, and what `eval --classifier` computes on generated clips, so that
//! real and generated clips go through the same steps.
//!
//! A clip is trimmed of its leading and trailing silence, then `frames`
//! Hann-windowed frames of [`FRAME`] samples are spread evenly over what
//! is left (a long digit's frames overlap less than a short one's: the
//! time axis is normalized, as in classic isolated-word recognizers), and
//! each frame's power spectrum is pooled by `mels` triangular filters on
//! the mel scale. Levels are in dB below the clip's loudest cell, floored
//! at [`FLOOR_DB`] and mapped to [0, 1]: a pixel of a `[1, mels, frames]`
//! image, low frequencies in the first row.

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

/// Samples per analysis frame: 32 ms at 8 kHz.
pub const FRAME: usize = 256;
/// The quietest level kept, in dB below the loudest cell.
pub const FLOOR_DB: f64 = 80.0;

/// The feature settings a classifier was trained with (stored in its
/// checkpoint, so that eval computes the same features).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LogMel {
    /// Mel bands (rows).
    pub mels: usize,
    /// Frames (columns).
    pub frames: usize,
    /// Hz of the samples.
    pub sample_rate: u32,
    /// Silence trimmed: frames more than this many dB below the loudest
    /// 10 ms.
    pub trim_db: f32,
}

impl Default for LogMel {
    fn default() -> Self {
        Self {
            mels: 32,
            frames: 32,
            sample_rate: 8000,
            trim_db: 30.0,
        }
    }
}

/// The power spectrum of Hann-windowed frames of [`FRAME`] samples, by a
/// direct DFT over precomputed twiddles (a few hundred frames per clip:
/// no FFT needed): `FRAME / 2 + 1` bins from 0 Hz to half the rate. The
/// spectrogram plots and the log-mel features share it.
pub struct PowerSpectrum {
    win: Vec<f64>,
    tw: Vec<(f64, f64)>,
    frame: Vec<f64>,
}

impl Default for PowerSpectrum {
    fn default() -> Self {
        let angle = |i: usize| 2.0 * PI * i as f64 / FRAME as f64;
        Self {
            win: (0..FRAME).map(|i| 0.5 - 0.5 * angle(i).cos()).collect(),
            tw: (0..FRAME)
                .map(|i| (angle(i).cos(), angle(i).sin()))
                .collect(),
            frame: vec![0.0; FRAME],
        }
    }
}

impl PowerSpectrum {
    /// Bins per frame.
    pub const BINS: usize = FRAME / 2 + 1;

    /// `out` (`BINS` values) = the power of the frame of `x` starting at
    /// `start` (zero past the end of `x`).
    pub fn power(&mut self, x: &[f32], start: usize, out: &mut [f64]) {
        for (i, v) in self.frame.iter_mut().enumerate() {
            *v = x.get(start + i).map_or(0.0, |&s| s as f64) * self.win[i];
        }
        for (k, p) in out.iter_mut().enumerate().take(Self::BINS) {
            let (mut re, mut im) = (0.0, 0.0);
            for (n, &v) in self.frame.iter().enumerate() {
                let (c, s) = self.tw[(k * n) % FRAME];
                re += v * c;
                im -= v * s;
            }
            *p = re * re + im * im;
        }
    }
}

fn hz_to_mel(f: f64) -> f64 {
    2595.0 * (1.0 + f / 700.0).log10()
}

fn mel_to_hz(m: f64) -> f64 {
    700.0 * (10f64.powf(m / 2595.0) - 1.0)
}

impl LogMel {
    /// The image shape of the features: `[1, mels, frames]`.
    pub fn shape(&self) -> [usize; 3] {
        [1, self.mels, self.frames]
    }

    /// Triangular mel filters over the FFT bins, `(mels, FRAME / 2 + 1)`:
    /// centers evenly spaced in mel from 0 Hz to half the rate (HTK's
    /// formula), each filter peaking at 1.
    fn filters(&self) -> Vec<f64> {
        let bins = FRAME / 2 + 1;
        let top = hz_to_mel(self.sample_rate as f64 / 2.0);
        let edges: Vec<f64> = (0..self.mels + 2)
            .map(|i| mel_to_hz(top * i as f64 / (self.mels + 1) as f64))
            .collect();
        let bin_hz = self.sample_rate as f64 / FRAME as f64;
        let mut f = vec![0f64; self.mels * bins];
        for m in 0..self.mels {
            let (lo, mid, hi) = (edges[m], edges[m + 1], edges[m + 2]);
            for k in 0..bins {
                let hz = k as f64 * bin_hz;
                let w = if hz <= lo || hz >= hi {
                    0.0
                } else if hz <= mid {
                    (hz - lo) / (mid - lo)
                } else {
                    (hi - hz) / (hi - mid)
                };
                f[m * bins + k] = w;
            }
        }
        f
    }

    /// The features of each clip (samples in [-1, 1] at the sample rate),
    /// `mels * frames` values in [0, 1] per clip, row-major.
    pub fn features_of(&self, clips: &[&[f32]]) -> Vec<f32> {
        let bins = PowerSpectrum::BINS;
        let filters = self.filters();
        let mut dft = PowerSpectrum::default();
        let (nm, nf) = (self.mels, self.frames);
        let mut out = Vec::with_capacity(clips.len() * nm * nf);
        let mut power = vec![0f64; bins];
        let mut cells = vec![0f64; nm * nf];
        for x in clips {
            let r = super::audio::trim_silence(x, self.sample_rate as usize / 100, self.trim_db);
            let seg = &x[r];
            for f in 0..nf {
                let start = if seg.len() > FRAME && nf > 1 {
                    f * (seg.len() - FRAME) / (nf - 1)
                } else {
                    0
                };
                dft.power(seg, start, &mut power);
                for m in 0..nm {
                    let fm = &filters[m * bins..(m + 1) * bins];
                    cells[m * nf + f] = fm.iter().zip(&power).map(|(w, p)| w * p).sum();
                }
            }
            let max = cells.iter().fold(1e-30f64, |m, &v| m.max(v));
            out.extend(cells.iter().map(|&v| {
                let db = (10.0 * (v / max).max(1e-30).log10()).max(-FLOOR_DB);
                (1.0 + db / FLOOR_DB) as f32
            }));
        }
        out
    }
}

/// [`LogMel::filters`] of `mels` bands at `sample_rate`.
pub(crate) fn mel_filters(mels: usize, sample_rate: u32) -> Vec<f64> {
    LogMel {
        mels,
        frames: 1,
        sample_rate,
        trim_db: 0.0,
    }
    .filters()
}

/// What [`frame_features`] gives a silent band.
pub const SILENT_FEATURE: f32 = -1.5;

/// Log-mel energies of a clip's consecutive frames of [`FRAME`] samples
/// (frame `f` holds samples `f * FRAME ..`, zero past the end), `mels`
/// bands each, in absolute level: `(dB + 40) / 40`, where 0 dB is a
/// frame's power of 1. Unlike [`LogMel::features_of`], nothing is trimmed
/// or normalized per clip: frame `f` describes samples `f * FRAME ..`, so
/// that a model of samples can follow them. Returns `frames * mels`
/// values, frame-major.
pub fn frame_features(x: &[f32], mels: usize, sample_rate: u32) -> Vec<f32> {
    let bins = PowerSpectrum::BINS;
    let filters = mel_filters(mels, sample_rate);
    let mut dft = PowerSpectrum::default();
    let mut power = vec![0f64; bins];
    let frames = x.len().div_ceil(FRAME);
    let mut out = Vec::with_capacity(frames * mels);
    for f in 0..frames {
        dft.power(x, f * FRAME, &mut power);
        for m in 0..mels {
            let fm = &filters[m * bins..(m + 1) * bins];
            let e: f64 = fm.iter().zip(&power).map(|(w, p)| w * p).sum();
            out.push(((10.0 * (e + 1e-10).log10() + 40.0) / 40.0) as f32);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(hz: f32, n: usize, at: usize, total: usize) -> Vec<f32> {
        (0..total)
            .map(|i| {
                if i >= at && i < at + n {
                    0.5 * (std::f32::consts::TAU * hz * i as f32 / 8000.0).sin()
                } else {
                    0.0
                }
            })
            .collect()
    }

    /// Frame features follow the clip frame by frame, in absolute level:
    /// a tone's frames light its band above the others and above the
    /// silent frames, which read as silence; a clip of 3.5 frames has 4.
    #[test]
    fn frame_features_follow_the_clip_frame_by_frame() {
        let x = tone(1000.0, 512, 512, 896);
        let mels = 20;
        let f = frame_features(&x, mels, 8000);
        assert_eq!(f.len(), 4 * mels);
        let row = |i: usize| &f[i * mels..(i + 1) * mels];
        let loudest = |r: &[f32]| (0..mels).max_by(|&a, &b| r[a].total_cmp(&r[b])).unwrap();
        let band = loudest(row(2));
        assert_eq!(loudest(row(3)), band);
        // The band that holds 1 kHz: its filter's center is the nearest.
        let fl = mel_filters(mels, 8000);
        let bins = PowerSpectrum::BINS;
        let k = 1000 * FRAME / 8000;
        assert!(fl[band * bins + k] > 0.5, "band {band}");
        for r in [row(0), row(1)] {
            assert!(r.iter().all(|&v| v == SILENT_FEATURE), "{r:?}");
        }
        assert!(row(2)[band] > 1.0 + SILENT_FEATURE.abs() * 0.5);
    }

    /// A tone lights the band that holds its pitch, in every frame, and
    /// the silence around it is trimmed away: the same tone anywhere in a
    /// clip gives the same features.
    #[test]
    fn a_tone_lights_its_band_wherever_it_sits() {
        let lm = LogMel::default();
        let (a, b) = (
            tone(1000.0, 2400, 800, 8000),
            tone(1000.0, 2400, 4000, 8000),
        );
        let f = lm.features_of(&[&a, &b]);
        let d = lm.mels * lm.frames;
        assert_eq!(f.len(), 2 * d);
        assert!(f.iter().all(|v| (0.0..=1.0).contains(v)));
        // Trimmed to within a 10 ms frame of the tone: nearly the same.
        let diff = f[..d]
            .iter()
            .zip(&f[d..])
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 0.05, "{diff}");
        // 1 kHz is mel 1000; the top (4 kHz) is mel 2146: band 14 of 32.
        let band = |m: usize| f[m * lm.frames + lm.frames / 2];
        let loudest = (0..lm.mels)
            .max_by(|&i, &j| band(i).total_cmp(&band(j)))
            .unwrap();
        assert!((13..=15).contains(&loudest), "{loudest}");
        assert!(band(loudest) > 0.99 && band(2) < 0.5);
        // Silence is all floor.
        let z = lm.features_of(&[&[0.0; 100]]);
        assert!(z.iter().all(|&v| v == 0.0));
    }
}
