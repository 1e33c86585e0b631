//! Batch normalization over the channels of `(B, C, S)` batches: S = H*W
//! for images (BatchNorm2d), 1 for features (BatchNorm1d). The scale and
//! shift are parameters (that never decay); the running mean and variance
//! are buffers, saved in checkpoints beside the parameters and folded into
//! the weights at export.

use super::fastmath::{lanes, lanes2};
use super::params::Layout;
use rayon::prelude::*;

/// PyTorch's defaults.
pub const EPS: f32 = 1e-5;
/// Weight of the newest batch in the running statistics.
pub const MOMENTUM: f32 = 0.1;

/// Whether batch norms use the batch's statistics (and update their
/// running ones) or the running ones; dropout too drops only in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics; running statistics updated.
    Train,
    /// Running statistics.
    Eval,
}

/// A batch norm's place in the parameter and buffer layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchNorm {
    /// Offset of the scale (gamma) in the parameters; the shift follows.
    pub offset: usize,
    /// Offset of the running mean in the buffers; the variance follows.
    pub buf_offset: usize,
    /// Channels.
    pub c: usize,
    /// Values per channel per example (H*W, or 1).
    pub s: usize,
}

impl BatchNorm {
    /// Registers `{name}.weight` and `{name}.bias` `(c)` as parameters and
    /// `{name}.running_mean` and `{name}.running_var` `(c)` as buffers.
    pub fn new(params: &mut Layout, buffers: &mut Layout, name: &str, c: usize, s: usize) -> Self {
        let offset = params.push(format!("{name}.weight"), &[c]);
        params.push(format!("{name}.bias"), &[c]);
        let buf_offset = buffers.push(format!("{name}.running_mean"), &[c]);
        buffers.push(format!("{name}.running_var"), &[c]);
        Self {
            offset,
            buf_offset,
            c,
            s,
        }
    }

    /// Values per example.
    pub fn len(&self) -> usize {
        self.c * self.s
    }

    /// Whether the layer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Floats a training forward saves for the backward: mean and 1/std.
    pub fn saved_len(&self) -> usize {
        2 * self.c
    }

    /// Scale 1, shift 0, running mean 0 and variance 1 (PyTorch's).
    pub fn init(&self, params: &mut [f32], buffers: &mut [f32]) {
        let c = self.c;
        params[self.offset..self.offset + c].fill(1.0);
        params[self.offset + c..self.offset + 2 * c].fill(0.0);
        buffers[self.buf_offset..self.buf_offset + c].fill(0.0);
        buffers[self.buf_offset + c..self.buf_offset + 2 * c].fill(1.0);
    }

    /// Running mean 0 and variance 1 only.
    pub fn init_running(&self, buffers: &mut [f32]) {
        let c = self.c;
        buffers[self.buf_offset..self.buf_offset + c].fill(0.0);
        buffers[self.buf_offset + c..self.buf_offset + 2 * c].fill(1.0);
    }

    /// `(gamma, beta)`.
    pub fn affine<'a>(&self, params: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        params[self.offset..self.offset + 2 * self.c].split_at(self.c)
    }

    /// `(running_mean, running_var)`.
    pub fn running<'a>(&self, buffers: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        buffers[self.buf_offset..self.buf_offset + 2 * self.c].split_at(self.c)
    }

    /// Per channel: mean and biased variance over `(B, S)`: two passes
    /// (mean, then squared deviations, so no cancellation), each row of S
    /// summed in eight f32 lanes and the rows in f64.
    fn stats(&self, inp: &[f32], batch: usize) -> Vec<(f64, f64)> {
        let (c, s) = (self.c, self.s);
        let n = (batch * s) as f64;
        (0..c)
            .into_par_iter()
            .map(|ch| {
                let rows = || (0..batch).map(|b| &inp[(b * c + ch) * s..(b * c + ch + 1) * s]);
                let mean = rows().map(|r| lanes(r, |x| x) as f64).sum::<f64>() / n;
                let m = mean as f32;
                let var = rows()
                    .map(|r| lanes(r, |x| (x - m) * (x - m)) as f64)
                    .sum::<f64>()
                    / n;
                (mean, var)
            })
            .collect()
    }

    /// `out = gamma (x - mean) / sqrt(var + eps) + beta` per channel, with
    /// `scale[c] = gamma / sqrt(var + eps)` and `shift[c]` given.
    fn apply(&self, out: &mut [f32], inp: &[f32], batch: usize, scale: &[f32], shift: &[f32]) {
        let (c, s) = (self.c, self.s);
        out[..batch * c * s]
            .par_chunks_mut(c * s)
            .zip(inp[..batch * c * s].par_chunks(c * s))
            .for_each(|(o, x)| {
                for ch in 0..c {
                    let (a, b) = (scale[ch], shift[ch]);
                    for (o, &x) in o[ch * s..(ch + 1) * s]
                        .iter_mut()
                        .zip(&x[ch * s..(ch + 1) * s])
                    {
                        *o = a * x + b;
                    }
                }
            });
    }

    /// Training mode: normalizes with the batch's statistics, saves mean
    /// and 1/std in `saved` for the backward, and moves the running
    /// statistics toward the batch's (with the unbiased variance, as
    /// PyTorch does).
    pub fn forward_train(
        &self,
        params: &[f32],
        buffers: &mut [f32],
        out: &mut [f32],
        inp: &[f32],
        batch: usize,
        saved: &mut [f32],
    ) {
        let c = self.c;
        let st = self.stats(inp, batch);
        let n = batch * self.s;
        let (gamma, beta) = self.affine(params);
        let (mut scale, mut shift) = (vec![0f32; c], vec![0f32; c]);
        let (mean_s, rstd_s) = saved[..2 * c].split_at_mut(c);
        for ch in 0..c {
            let (mean, var) = st[ch];
            let rstd = 1.0 / (var + EPS as f64).sqrt();
            mean_s[ch] = mean as f32;
            rstd_s[ch] = rstd as f32;
            scale[ch] = gamma[ch] * rstd as f32;
            shift[ch] = beta[ch] - scale[ch] * mean as f32;
        }
        self.apply(out, inp, batch, &scale, &shift);
        let unbias = if n > 1 {
            n as f64 / (n - 1) as f64
        } else {
            1.0
        };
        let (rm, rv) = buffers[self.buf_offset..self.buf_offset + 2 * c].split_at_mut(c);
        for ch in 0..c {
            rm[ch] = (1.0 - MOMENTUM) * rm[ch] + MOMENTUM * st[ch].0 as f32;
            rv[ch] = (1.0 - MOMENTUM) * rv[ch] + MOMENTUM * (st[ch].1 * unbias) as f32;
        }
    }

    /// Evaluation mode: normalizes with the running statistics.
    pub fn forward_eval(
        &self,
        params: &[f32],
        buffers: &[f32],
        out: &mut [f32],
        inp: &[f32],
        batch: usize,
    ) {
        let (scale, shift) = self.folded(params, buffers);
        self.apply(out, inp, batch, &scale, &shift);
    }

    /// [`BatchNorm::forward_train`] or [`BatchNorm::forward_eval`], as
    /// `mode` says.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        params: &[f32],
        buffers: &mut [f32],
        out: &mut [f32],
        inp: &[f32],
        batch: usize,
        saved: &mut [f32],
        mode: Mode,
    ) {
        match mode {
            Mode::Train => self.forward_train(params, buffers, out, inp, batch, saved),
            Mode::Eval => self.forward_eval(params, buffers, out, inp, batch),
        }
    }

    /// The eval-mode affine map per channel, `(scale, shift)`: what export
    /// folds into the neighbouring layer's weights and bias.
    pub fn folded(&self, params: &[f32], buffers: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let (gamma, beta) = self.affine(params);
        let (rm, rv) = self.running(buffers);
        let scale: Vec<f32> = (0..self.c)
            .map(|ch| gamma[ch] / (rv[ch] + EPS).sqrt())
            .collect();
        let shift = (0..self.c)
            .map(|ch| beta[ch] - scale[ch] * rm[ch])
            .collect();
        (scale, shift)
    }

    /// The backward of [`BatchNorm::forward_train`]: adds the scale and
    /// shift gradients to `grads` and the input gradient to `dinp`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        dinp: &mut [f32],
        dout: &[f32],
        inp: &[f32],
        batch: usize,
        saved: &[f32],
    ) {
        let (c, s) = (self.c, self.s);
        let (mean, rstd) = saved[..2 * c].split_at(c);
        // Per channel: sum(dy) and sum(dy * xhat).
        let sums: Vec<(f64, f64)> = (0..c)
            .into_par_iter()
            .map(|ch| {
                let (mut sd, mut sdx) = (0f64, 0f64);
                let m = mean[ch];
                for b in 0..batch {
                    let r = (b * c + ch) * s..(b * c + ch + 1) * s;
                    let (g, x) = (&dout[r.clone()], &inp[r]);
                    sd += lanes(g, |v| v) as f64;
                    sdx += lanes2(g, x, |g, x| g * (x - m)) as f64;
                }
                (sd, sdx * rstd[ch] as f64)
            })
            .collect();
        let (gamma, _) = self.affine(params);
        let (dg, db) = grads[self.offset..self.offset + 2 * c].split_at_mut(c);
        for ch in 0..c {
            dg[ch] += sums[ch].1 as f32;
            db[ch] += sums[ch].0 as f32;
        }
        let n = (batch * s) as f32;
        dinp[..batch * c * s]
            .par_chunks_mut(c * s)
            .zip(dout[..batch * c * s].par_chunks(c * s))
            .zip(inp[..batch * c * s].par_chunks(c * s))
            .for_each(|((dx, dy), x)| {
                for ch in 0..c {
                    let k = gamma[ch] * rstd[ch] / n;
                    let (sd, sdx) = (sums[ch].0 as f32, sums[ch].1 as f32);
                    let r = ch * s..(ch + 1) * s;
                    for ((d, &g), &xv) in dx[r.clone()].iter_mut().zip(&dy[r.clone()]).zip(&x[r]) {
                        let xhat = (xv - mean[ch]) * rstd[ch];
                        *d += k * (n * g - sd - xhat * sdx);
                    }
                }
            });
    }
}
