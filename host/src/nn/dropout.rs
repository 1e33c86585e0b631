//! Inverted dropout: in training, each value is kept with probability
//! `1 - p` and scaled by `1 / (1 - p)`, so that evaluation is the identity.
//! The mask is drawn from the run's RNG, so a resumed run drops the same
//! values it would have.

use crate::rng::Rng;

/// Training mode: draws `mask` (0 or `1/(1-p)` per value) and writes
/// `out = inp * mask`. `p` must lie in [0, 1).
pub fn forward(out: &mut [f32], inp: &[f32], mask: &mut [f32], p: f32, rng: &mut Rng) {
    let keep = 1.0 / (1.0 - p);
    for ((o, &x), m) in out.iter_mut().zip(inp).zip(mask.iter_mut()) {
        *m = if rng.uniform() < p { 0.0 } else { keep };
        *o = x * *m;
    }
}

/// `dinp += dout * mask`.
pub fn backward(dinp: &mut [f32], dout: &[f32], mask: &[f32]) {
    for ((d, &g), &m) in dinp.iter_mut().zip(dout).zip(mask) {
        *d += g * m;
    }
}
