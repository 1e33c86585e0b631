//! Losses and the VAE's reparameterization, each with its backward.
//!
//! Per-sample losses are *sums* over the sample's elements (nats per
//! image), as in PyTorch's VAE example; the batch loss is their sum.

use super::act::sigmoid;

/// Bernoulli negative log-likelihood of `targets` under `logits` (binary
/// cross-entropy with logits), summed per row of `d` elements. Writes each
/// row's loss to `row_loss` and, if given, `dlogits = scale * (sigmoid(logits) - targets)`.
pub fn bce_with_logits(
    row_loss: &mut [f32],
    dlogits: Option<&mut [f32]>,
    logits: &[f32],
    targets: &[f32],
    d: usize,
    scale: f32,
) {
    let rows = logits.chunks_exact(d).zip(targets.chunks_exact(d));
    match dlogits {
        Some(dl) => {
            for ((l, (x, t)), g) in row_loss.iter_mut().zip(rows).zip(dl.chunks_exact_mut(d)) {
                let mut s = 0f32;
                for ((&x, &t), g) in x.iter().zip(t).zip(g.iter_mut()) {
                    // e = exp(-|x|) serves both the loss and the sigmoid.
                    let e = (-x.abs()).exp();
                    s += x.max(0.0) - x * t + e.ln_1p();
                    let sig = if x >= 0.0 {
                        1.0 / (1.0 + e)
                    } else {
                        e / (1.0 + e)
                    };
                    *g = scale * (sig - t);
                }
                *l = s;
            }
        }
        None => {
            for (l, (x, t)) in row_loss.iter_mut().zip(rows) {
                *l = x
                    .iter()
                    .zip(t)
                    .map(|(&x, &t)| x.max(0.0) - x * t + (-x.abs()).exp().ln_1p())
                    .sum();
            }
        }
    }
}

/// ln(2 pi) / 2, the constant of a unit-variance Gaussian's log density.
pub const HALF_LN_2PI: f32 = 0.918_938_5;

/// Gaussian negative log-likelihood with unit variance, summed per row:
/// `sum 0.5 (x - t)^2 + 0.5 ln(2 pi)`; `dx = scale * (x - t)`.
pub fn gaussian_nll(
    row_loss: &mut [f32],
    dx: Option<&mut [f32]>,
    x: &[f32],
    targets: &[f32],
    d: usize,
    scale: f32,
) {
    for (r, l) in row_loss.iter_mut().enumerate() {
        let (x, t) = (&x[r * d..(r + 1) * d], &targets[r * d..(r + 1) * d]);
        *l = x
            .iter()
            .zip(t)
            .map(|(a, b)| 0.5 * (a - b) * (a - b))
            .sum::<f32>()
            + HALF_LN_2PI * d as f32;
    }
    if let Some(dx) = dx {
        for ((g, a), b) in dx.iter_mut().zip(x).zip(targets) {
            *g = scale * (a - b);
        }
    }
}

/// KL(N(mu, e^logvar) || N(0, 1)) summed per row of `z` latents:
/// `-0.5 sum (1 + logvar - mu^2 - e^logvar)`. `stats` holds rows of
/// `[mu (z), logvar (z)]`; the gradient `scale * dKL/dstats` is *added* to `dstats`.
pub fn kl_diag_gaussian(
    row_loss: &mut [f32],
    dstats: Option<&mut [f32]>,
    stats: &[f32],
    z: usize,
    scale: f32,
) {
    for (l, s) in row_loss.iter_mut().zip(stats.chunks_exact(2 * z)) {
        let (mu, lv) = s.split_at(z);
        *l = -0.5
            * mu.iter()
                .zip(lv)
                .map(|(&m, &v)| 1.0 + v - m * m - v.exp())
                .sum::<f32>();
    }
    if let Some(ds) = dstats {
        for (d, s) in ds.chunks_exact_mut(2 * z).zip(stats.chunks_exact(2 * z)) {
            let (dmu, dlv) = d.split_at_mut(z);
            let (mu, lv) = s.split_at(z);
            for i in 0..z {
                dmu[i] += scale * mu[i];
                dlv[i] += scale * 0.5 * (lv[i].exp() - 1.0);
            }
        }
    }
}

/// The reparameterization `z = mu + eps * e^(logvar / 2)`. `stats` holds rows
/// `[mu, logvar]`; `out` has rows of `stride >= z` and gets z in its first
/// `z` columns (the rest, a class one-hot, is left alone).
pub fn reparam_forward(out: &mut [f32], stride: usize, stats: &[f32], eps: &[f32], z: usize) {
    for ((o, s), e) in out
        .chunks_exact_mut(stride)
        .zip(stats.chunks_exact(2 * z))
        .zip(eps.chunks_exact(z))
    {
        for i in 0..z {
            o[i] = s[i] + e[i] * (0.5 * s[z + i]).exp();
        }
    }
}

/// Backward of [`reparam_forward`]: adds `dz` into `dmu` and
/// `dz * eps * e^(logvar / 2) / 2` into `dlogvar`.
pub fn reparam_backward(
    dstats: &mut [f32],
    dout: &[f32],
    stride: usize,
    stats: &[f32],
    eps: &[f32],
    z: usize,
) {
    for (((d, g), s), e) in dstats
        .chunks_exact_mut(2 * z)
        .zip(dout.chunks_exact(stride))
        .zip(stats.chunks_exact(2 * z))
        .zip(eps.chunks_exact(z))
    {
        for i in 0..z {
            d[i] += g[i];
            d[z + i] += g[i] * e[i] * 0.5 * (0.5 * s[z + i]).exp();
        }
    }
}

/// `sigmoid` re-exported for decoders that turn logits into pixels.
pub fn logits_to_pixels(out: &mut [f32], logits: &[f32]) {
    for (o, &x) in out.iter_mut().zip(logits) {
        *o = sigmoid(x);
    }
}
