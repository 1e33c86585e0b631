//! Losses and the VAE's reparameterization, each with its backward.
//!
//! Per-sample losses are *sums* over the sample's elements (nats per
//! image), as in PyTorch's VAE example; the batch loss is their sum.

use super::act::sigmoid;

/// Bernoulli negative log-likelihood of `targets` under `logits` (binary
/// cross-entropy with logits), summed per row of `d` elements. Writes each
/// row's loss to `row_loss` and, if given, `dlogits = scale * (sigmoid(logits) - targets)`.
///
/// Rows are split over the rayon pool, and each row runs a SIMD kernel
/// (see [`super::fastmath`]); [`bce_with_logits_ref`] is the scalar reference.
pub fn bce_with_logits(
    row_loss: &mut [f32],
    dlogits: Option<&mut [f32]>,
    logits: &[f32],
    targets: &[f32],
    d: usize,
    scale: f32,
) {
    use rayon::prelude::*;
    let rows = row_loss.len();
    // About 32k elements per task: enough work to pay for the fork.
    let per = (32_768 / d.max(1)).max(1);
    let (logits, targets) = (&logits[..rows * d], &targets[..rows * d]);
    match dlogits {
        Some(dl) => row_loss
            .par_chunks_mut(per)
            .zip(dl[..rows * d].par_chunks_mut(per * d))
            .zip(logits.par_chunks(per * d).zip(targets.par_chunks(per * d)))
            .for_each(|((l, g), (x, t))| {
                for (((l, g), x), t) in l
                    .iter_mut()
                    .zip(g.chunks_exact_mut(d))
                    .zip(x.chunks_exact(d))
                    .zip(t.chunks_exact(d))
                {
                    *l = bce_row_grad(g, x, t, scale);
                }
            }),
        None => row_loss
            .par_chunks_mut(per)
            .zip(logits.par_chunks(per * d).zip(targets.par_chunks(per * d)))
            .for_each(|(l, (x, t))| {
                for ((l, x), t) in l.iter_mut().zip(x.chunks_exact(d)).zip(t.chunks_exact(d)) {
                    *l = bce_row(x, t);
                }
            }),
    }
}

/// Lanes of the partial sums: a multiple of every SIMD width in use, so
/// the reduction vectorizes without reassociating floats.
const LANES: usize = 16;

#[inline(always)]
fn bce_elem(x: f32, t: f32) -> (f32, f32) {
    // e = exp(-|x|) serves both the loss and the sigmoid.
    let e = super::fastmath::exp_neg(-x.abs());
    let loss = x.max(0.0) - x * t + super::fastmath::log1p_unit(e);
    let r = 1.0 / (1.0 + e);
    let sig = if x >= 0.0 { r } else { e * r };
    (loss, sig)
}

super::fastmath::dispatch! {
    fn bce_row_grad(g: &mut [f32], x: &[f32], t: &[f32], scale: f32) -> f32 {
        let mut acc = [0f32; LANES];
        let n = x.len() / LANES * LANES;
        for ((g, x), t) in g[..n].chunks_exact_mut(LANES).zip(x[..n].chunks_exact(LANES)).zip(t[..n].chunks_exact(LANES)) {
            for j in 0..LANES {
                let (l, s) = bce_elem(x[j], t[j]);
                acc[j] += l;
                g[j] = scale * (s - t[j]);
            }
        }
        let mut sum = acc.iter().sum::<f32>();
        for i in n..x.len() {
            let (l, s) = bce_elem(x[i], t[i]);
            sum += l;
            g[i] = scale * (s - t[i]);
        }
        sum
    }
}

super::fastmath::dispatch! {
    fn bce_row(x: &[f32], t: &[f32]) -> f32 {
        let mut acc = [0f32; LANES];
        let n = x.len() / LANES * LANES;
        for (x, t) in x[..n].chunks_exact(LANES).zip(t[..n].chunks_exact(LANES)) {
            for j in 0..LANES {
                acc[j] += bce_elem(x[j], t[j]).0;
            }
        }
        let mut sum = acc.iter().sum::<f32>();
        for i in n..x.len() {
            sum += bce_elem(x[i], t[i]).0;
        }
        sum
    }
}

/// The scalar reference for [`bce_with_logits`], on std's `exp` and `ln_1p`.
pub fn bce_with_logits_ref(
    row_loss: &mut [f32],
    dlogits: Option<&mut [f32]>,
    logits: &[f32],
    targets: &[f32],
    d: usize,
    scale: f32,
) {
    let rows = row_loss.len();
    for r in 0..rows {
        let (x, t) = (&logits[r * d..(r + 1) * d], &targets[r * d..(r + 1) * d]);
        row_loss[r] = x
            .iter()
            .zip(t)
            .map(|(&x, &t)| x.max(0.0) - x * t + (-x.abs()).exp().ln_1p())
            .sum();
    }
    if let Some(dl) = dlogits {
        for ((g, &x), &t) in dl[..rows * d].iter_mut().zip(logits).zip(targets) {
            *g = scale * (sigmoid(x) - t);
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

/// Softmax cross-entropy per row of `logits` `(rows, k)` against integer
/// `labels`: `loss[r] = logsumexp(l_r) - l_r[y_r]` (nats), with `scale *
/// (softmax(l_r) - onehot(y_r))` written into `dlogits` when asked. A label
/// past the classes has no target: its row's loss is the logsumexp alone.
///
/// Rows go to the threads; each row's exponentials are f32 (`exp_neg`, the
/// max subtracted first) summed in eight lanes, within 1e-6 relative of
/// an f64 sum for rows of thousands of classes.
pub fn softmax_cross_entropy(
    loss: &mut [f32],
    dlogits: Option<&mut [f32]>,
    logits: &[f32],
    labels: &[u32],
    k: usize,
    scale: f32,
) {
    use rayon::prelude::*;
    let rows = loss.len();
    let per = (4096 / k.max(1)).max(1);
    match dlogits {
        Some(d) => loss
            .par_chunks_mut(per)
            .zip(d[..rows * k].par_chunks_mut(per * k))
            .zip(logits[..rows * k].par_chunks(per * k))
            .zip(labels[..rows].par_chunks(per))
            .for_each(|(((l, d), x), y)| ce_rows(l, Some(d), x, y, k, scale)),
        None => loss
            .par_chunks_mut(per)
            .zip(logits[..rows * k].par_chunks(per * k))
            .zip(labels[..rows].par_chunks(per))
            .for_each(|((l, x), y)| ce_rows(l, None, x, y, k, scale)),
    }
}

/// [`softmax_cross_entropy`] for training, where the logits are not needed
/// after the loss: `logits` is overwritten with `scale * (softmax - onehot)`,
/// which saves a copy of the whole `(rows, k)` buffer each step.
pub fn softmax_cross_entropy_in_place(
    loss: &mut [f32],
    logits: &mut [f32],
    labels: &[u32],
    k: usize,
    scale: f32,
) {
    use rayon::prelude::*;
    let rows = loss.len();
    let per = (4096 / k.max(1)).max(1);
    loss.par_chunks_mut(per)
        .zip(logits[..rows * k].par_chunks_mut(per * k))
        .zip(labels[..rows].par_chunks(per))
        .for_each(|((l, x), y)| ce_rows_in_place(l, x, y, k, scale));
}

// Per row: its logsumexp (max subtracted first), and the loss.
#[inline(always)]
fn ce_row<const FMA: bool>(row: &[f32], y: usize) -> (f32, f32) {
    use super::fastmath::{exp_neg_fma, lanes, lanes_max};
    let m = lanes_max(row);
    let lse = m + lanes(row, |v| exp_neg_fma::<FMA>(v - m)).ln();
    (lse, lse - row.get(y).copied().unwrap_or(0.0))
}

// Per row: the loss, and with `dl` the gradient (the row is copied there,
// then turned into its gradient in place, as training does it).
super::fastmath::dispatch_fma! {
    fn ce_rows(loss: &mut [f32], dl: Option<&mut [f32]>, logits: &[f32], labels: &[u32], k: usize, scale: f32) {
        let mut dl = dl;
        for (r, (l, &y)) in loss.iter_mut().zip(labels).enumerate() {
            let row = &logits[r * k..(r + 1) * k];
            match dl.as_deref_mut() {
                Some(d) => {
                    let d = &mut d[r * k..(r + 1) * k];
                    d.copy_from_slice(row);
                    *l = ce_grad_in_place::<FMA>(d, y as usize, scale);
                }
                None => *l = ce_row::<FMA>(row, y as usize).1,
            }
        }
    }
}

super::fastmath::dispatch_fma! {
    fn ce_rows_in_place(loss: &mut [f32], logits: &mut [f32], labels: &[u32], k: usize, scale: f32) {
        for ((l, &y), row) in loss.iter_mut().zip(labels).zip(logits.chunks_exact_mut(k)) {
            *l = ce_grad_in_place::<FMA>(row, y as usize, scale);
        }
    }
}

/// One row's loss; the row becomes `scale * (softmax - onehot(y))`.
#[inline(always)]
fn ce_grad_in_place<const FMA: bool>(row: &mut [f32], y: usize, scale: f32) -> f32 {
    use super::fastmath::exp_neg_fma;
    let (lse, loss) = ce_row::<FMA>(row, y);
    for v in row.iter_mut() {
        *v = scale * exp_neg_fma::<FMA>(*v - lse);
    }
    if let Some(g) = row.get_mut(y) {
        *g -= scale;
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn fast_bce_matches_the_reference() {
        let mut r = Rng::new(5);
        for (rows, d) in [(1, 1), (3, 17), (130, 784)] {
            let x: Vec<f32> = (0..rows * d).map(|_| r.normal() * 8.0).collect();
            let t: Vec<f32> = (0..rows * d).map(|_| r.uniform()).collect();
            let (mut l1, mut l2) = (vec![0.0; rows], vec![0.0; rows]);
            let (mut g1, mut g2) = (vec![0.0; rows * d], vec![0.0; rows * d]);
            bce_with_logits(&mut l1, Some(&mut g1), &x, &t, d, 0.5);
            bce_with_logits_ref(&mut l2, Some(&mut g2), &x, &t, d, 0.5);
            for (a, b) in l1.iter().zip(&l2) {
                assert!((a - b).abs() <= 2e-5 * b.abs().max(1.0), "{a} vs {b}");
            }
            for (a, b) in g1.iter().zip(&g2) {
                assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
            }
            let mut l3 = vec![0.0; rows];
            bce_with_logits(&mut l3, None, &x, &t, d, 1.0);
            assert_eq!(l1, l3);
        }
    }
}
