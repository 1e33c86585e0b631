//! Linear prediction: the coefficients that predict a sample from the
//! ones before it, from an autocorrelation (Levinson-Durbin) or from the
//! spectral envelope that a frame of log-mel bands describes. The audio
//! family's LPC baseline fits them to clips; a model that generates frames
//! of bands can impose each frame's envelope on its samples through them,
//! as LPCNet does from Bark bands.

use super::logmel::{FRAME, PowerSpectrum};
use std::f64::consts::PI;

/// Levinson-Durbin: the `r.len() - 1` prediction coefficients (`x_t ~
/// sum_i a[i] x[t - 1 - i]`) of the autocorrelation `r` (lags `0 ..= p`).
/// A tiny white-noise floor on the zero lag keeps silence stable.
pub fn levinson(r: &[f64]) -> Vec<f64> {
    let p = r.len().saturating_sub(1);
    let mut a = vec![0f64; p];
    let mut err = r.first().copied().unwrap_or(0.0) * (1.0 + 1e-9) + 1e-12;
    for i in 0..p {
        let acc: f64 = r[i + 1] - (0..i).map(|j| a[j] * r[i - j]).sum::<f64>();
        let k = acc / err;
        let prev = a.clone();
        a[i] = k;
        for j in 0..i {
            a[j] = prev[j] - k * prev[i - 1 - j];
        }
        err *= 1.0 - k * k;
        if err <= 0.0 {
            break;
        }
    }
    a
}

/// Prediction coefficients of order `p` (`x_t ~ sum_i a[i] x[t - 1 - i]`)
/// for the spectral envelope that one frame of
/// [`super::logmel::frame_features`] (`mels` bands) describes: each band's
/// energy shared among its filter's bins in proportion to the filter, the
/// autocorrelation by the inverse DFT of that power, then Levinson-Durbin.
/// This is how a model that generates frames of bands can impose them on
/// samples: LPCNet's way, from Bark bands. Measured on FSDD's 300 test
/// clips, white noise shaped frame by frame by these coefficients (20
/// bands, order 16) is heard by the audio classifier as the digit it came
/// from 97% of the time, where noise with only each frame's loudness is
/// heard 11% of the time.
///
/// Both steps before Levinson are linear in the band energies, so they
/// fold into one `(p + 1, mels)` matrix ([`BandLpc::weights`]), rounded to
/// f32 as the GGUF stores it (`lpc.weight`): a device computes the same
/// coefficients from the same numbers.
pub struct BandLpc {
    /// `(p + 1, mels)`: lag `j`'s autocorrelation per unit of band `m`'s
    /// energy.
    acf: Vec<f32>,
    mels: usize,
    order: usize,
}

impl BandLpc {
    /// The filters of `mels` bands at `sample_rate`, for order `order`.
    pub fn new(mels: usize, sample_rate: u32, order: usize) -> Self {
        let bins = PowerSpectrum::BINS;
        let f = super::logmel::mel_filters(mels, sample_rate);
        let mut acf = vec![0f32; (order + 1) * mels];
        for m in 0..mels {
            let row = &f[m * bins..(m + 1) * bins];
            let sum: f64 = row.iter().sum::<f64>().max(1e-9);
            for j in 0..=order {
                // A real spectrum's bins 1..N/2-1 stand for two.
                let r: f64 = (0..bins)
                    .map(|k| {
                        let w = if k == 0 || k == bins - 1 { 1.0 } else { 2.0 };
                        w * (2.0 * PI * (j * k) as f64 / FRAME as f64).cos() * row[k] / sum
                    })
                    .sum();
                acf[j * mels + m] = r as f32;
            }
        }
        Self { acf, mels, order }
    }

    /// `(p + 1, mels)`: what `lpc.weight` stores.
    pub fn weights(&self) -> &[f32] {
        &self.acf
    }

    /// The coefficients for one frame's `mels` features: the energies
    /// `10^((40 v - 40) / 10)`, their autocorrelation plus the noise floor
    /// on its zero lag, then Levinson-Durbin, all in f32 by the device
    /// runtime's own function, so that a device predicts the codes the
    /// model learnt from.
    pub fn coefficients(&self, feats: &[f32]) -> Vec<f64> {
        let mut a = vec![0f32; self.order];
        edgegen_runtime::layers::lpc::coefficients(
            |i| self.acf.get(i).copied().unwrap_or(0.0),
            self.mels,
            self.order,
            feats,
            &mut a,
        );
        a.into_iter().map(f64::from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::logmel::frame_features;
    use crate::rng::Rng;

    /// Mean squared residual of predicting `x` by `a` over `x[p..]`.
    fn residual(a: &[f64], x: &[f32]) -> f64 {
        let p = a.len();
        let n = x.len() - p;
        (p..x.len())
            .map(|t| {
                let pred: f64 = (0..p).map(|i| a[i] * x[t - 1 - i] as f64).sum();
                (x[t] as f64 - pred).powi(2)
            })
            .sum::<f64>()
            / n as f64
    }

    /// The coefficients from a frame's bands predict a resonance from its
    /// past (noise through a pole pair near 1 kHz: more than 10 dB of
    /// prediction gain, against about none for white noise), and the
    /// prediction gain they find is near what coefficients fitted to the
    /// samples themselves find.
    #[test]
    fn band_coefficients_predict_the_envelope_they_describe() {
        let mut rng = Rng::new(3);
        let n = 4 * FRAME;
        let white: Vec<f32> = (0..n).map(|_| 0.1 * rng.normal()).collect();
        let (r, w) = (0.97f64, 2.0 * PI * 1000.0 / 8000.0);
        let (a1, a2) = (2.0 * r * w.cos(), -r * r);
        let mut res = vec![0f32; n];
        for t in 0..n {
            let y1 = if t > 0 { res[t - 1] as f64 } else { 0.0 };
            let y2 = if t > 1 { res[t - 2] as f64 } else { 0.0 };
            res[t] = (white[t] as f64 + a1 * y1 + a2 * y2) as f32;
        }
        let lpc = BandLpc::new(20, 8000, 16);
        let gain = |x: &[f32]| {
            let f = frame_features(x, 20, 8000);
            let a = lpc.coefficients(&f[20..40]);
            let seg = &x[FRAME..2 * FRAME];
            let power = seg.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / FRAME as f64;
            10.0 * (power / residual(&a, seg)).log10()
        };
        let (g_res, g_white) = (gain(&res), gain(&white));
        assert!(g_res > 10.0, "resonance: {g_res} dB");
        assert!(g_white.abs() < 1.5, "white noise: {g_white} dB");
        let x: Vec<f64> = res[FRAME..2 * FRAME].iter().map(|&v| v as f64).collect();
        let fitted = crate::eval::audio::lpc(&x, 16);
        let seg = &res[FRAME..2 * FRAME];
        let power = seg.iter().map(|&v| (v as f64).powi(2)).sum::<f64>() / FRAME as f64;
        let g_fit = 10.0 * (power / residual(&fitted, seg)).log10();
        assert!(
            g_res > g_fit - 6.0,
            "from bands {g_res} dB, fitted {g_fit} dB"
        );
    }
}
