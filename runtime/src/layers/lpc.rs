//! Linear prediction from a frame of log-mel bands, as the audio family's
//! two-tier model reads it: LPCNet's way of imposing a frame's spectral
//! envelope on the samples that fill it.
//!
//! A frame's `C` values `v` are band energies `e = 10^(4 v - 4)`; the
//! autocorrelation they imply is linear in them (`r = A e`, `A` the
//! GGUF's `lpc.weight`, `(P + 1) x C`), plus a white-noise floor on the
//! zero lag ([`LPC_FLOOR`]); Levinson-Durbin turns `r` into `P`
//! coefficients that predict a sample from the `P` before it. Once per
//! frame, with fixed arrays, in f32 as LPCNet and Opus solve theirs (soft
//! f64 on a Cortex-M4 added 4 KiB of code: its add, multiply, divide and
//! `exp10`). The host trains with this same function, so the codes a
//! device predicts are the ones its model learnt from; against an f64
//! solution the coefficients of even adversarial frames (bands drawn
//! independently, energies over 16 decades) differ by under 2%, and the
//! predicted code by at most one.

use super::Vector;
use crate::math;
use edgegen_format::arch::audio::{LPC_FLOOR, MAX_LPC_ORDER};

/// The most coefficients a prediction has.
pub const MAX_ORDER: usize = MAX_LPC_ORDER as usize;

/// The band-to-autocorrelation map, read in place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BandLpc<'a> {
    /// `(P + 1, C)`, row-major.
    pub acf: Vector<'a>,
    /// `C`.
    pub bands: usize,
    /// `P`, at most [`MAX_ORDER`] (checked at load).
    pub order: usize,
}

impl BandLpc<'_> {
    /// Writes the `P` coefficients of the frame `bands` (`C` values) into
    /// `a` (`x_t ~ sum_i a[i] x[t - 1 - i]`). The caller checks the
    /// lengths.
    pub fn coefficients(&self, bands: &[f32], a: &mut [f32]) {
        coefficients(|i| self.acf.get(i), self.bands, self.order, bands, a)
    }
}

/// The coefficients of order `order` (at most [`MAX_ORDER`]) of the frame
/// `bands` (`c` values) into `a`, where `acf(j * c + m)` is lag `j`'s
/// autocorrelation per unit of band `m`'s energy: the device's
/// computation, which the host's trainer calls too, so that both predict
/// the same codes.
///
/// ```
/// use edgegen_runtime::layers::lpc::{coefficients, predict};
/// // One band whose energy has lags 1, 0.9, 0.81: a one-pole envelope.
/// let acf = [1.0, 0.9, 0.81];
/// let mut a = [0f32; 2];
/// coefficients(|i| acf[i], 1, 2, &[1.0], &mut a);
/// assert!((a[0] - 0.9).abs() < 1e-4 && a[1].abs() < 1e-4);
/// // The next sample after 0.5 (the latest, at ring index 1) and 0.4.
/// assert!((predict(&a, &[0.4, 0.5], 1) - 0.45).abs() < 1e-4);
/// ```
pub fn coefficients(
    acf: impl Fn(usize) -> f32,
    c: usize,
    order: usize,
    bands: &[f32],
    a: &mut [f32],
) {
    let (c, p) = (c.min(256), order.min(MAX_ORDER));
    // e_m = 10^(4 v - 4).
    let mut e = [0f32; 256];
    for (em, &v) in e.iter_mut().zip(bands.iter().take(c)) {
        *em = math::exp((4.0 * v - 4.0) * core::f32::consts::LN_10);
    }
    let mut r = [0f32; MAX_ORDER + 1];
    for (j, rj) in r.iter_mut().enumerate().take(p + 1) {
        let mut s = if j == 0 { LPC_FLOOR as f32 } else { 0.0 };
        for (m, &em) in e.iter().enumerate().take(c) {
            s += acf(j * c + m) * em;
        }
        *rj = s;
    }
    levinson(&r[..p + 1], a);
}

/// Levinson-Durbin: the `r.len() - 1` coefficients of the autocorrelation
/// `r` into `a` (the rest of `a` zeroed), with the host's tiny white-noise
/// floor on the zero lag; it stops where the prediction error would turn
/// non-positive. At most [`MAX_ORDER`] coefficients.
pub fn levinson(r: &[f32], a: &mut [f32]) {
    let p = r.len().saturating_sub(1).min(a.len()).min(MAX_ORDER);
    a.iter_mut().for_each(|v| *v = 0.0);
    let mut err = r.first().copied().unwrap_or(0.0) * (1.0 + 1e-9) + 1e-12;
    for i in 0..p {
        let mut acc = r[i + 1];
        for j in 0..i {
            acc -= a[j] * r[i - j];
        }
        let k = acc / err;
        // a[j] -= k a[i-1-j] for j < i, in place by pairs (no copy of
        // the old coefficients: a copy links memcpy on a device).
        for j in 0..i / 2 {
            let (x, y) = (a[j], a[i - 1 - j]);
            a[j] = x - k * y;
            a[i - 1 - j] = y - k * x;
        }
        if i % 2 == 1 {
            a[i / 2] -= k * a[i / 2];
        }
        a[i] = k;
        err *= 1.0 - k * k;
        if err <= 0.0 || !err.is_finite() {
            break;
        }
    }
}

/// `sum_i a[i] x_{t-i}`, clamped to [-1, 1], where the past samples
/// `past` are a ring: sample `t` at `past[t % P]`, the latest `t` at
/// index `latest` (samples before the first read as the ring's zeros).
pub fn predict(a: &[f32], past: &[f32], latest: usize) -> f32 {
    let p = past.len();
    let mut s = 0f32;
    for (i, &k) in a.iter().enumerate().take(p) {
        let at = if latest >= i {
            latest - i
        } else {
            latest + p - i
        };
        s += k * past.get(at).copied().unwrap_or(0.0);
    }
    s.clamp(-1.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The coefficients of an AR(2) process's autocorrelation are its
    /// own, and the higher ones vanish.
    #[test]
    fn levinson_recovers_an_ar2_process() {
        // x_t = 1.2 x_{t-1} - 0.5 x_{t-2} + e: its Yule-Walker lags.
        let (a1, a2) = (1.2f32, -0.5f32);
        let mut r = [0f32; 5];
        r[0] = 1.0;
        r[1] = a1 / (1.0 - a2);
        for j in 2..5 {
            r[j] = a1 * r[j - 1] + a2 * r[j - 2];
        }
        let mut a = [0f32; 4];
        levinson(&r, &mut a);
        assert!(
            (a[0] - a1).abs() < 1e-5 && (a[1] - a2).abs() < 1e-5,
            "{a:?}"
        );
        assert!(a[2].abs() < 1e-5 && a[3].abs() < 1e-5, "{a:?}");
        assert_eq!(predict(&[0.5, 0.25], &[4.0, 4.0], 0), 1.0);
        // x_t = 0.4 at index 1, x_{t-1} = 0.2 at index 0.
        assert!((predict(&[0.5, 0.25], &[0.2, 0.4], 1) - 0.25).abs() < 1e-7);
        assert!((predict(&[0.5, 0.25], &[0.4, 0.2], 0) - 0.25).abs() < 1e-7);
    }
}
