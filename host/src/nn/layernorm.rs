//! LayerNorm over the last axis: `out = (x - mean) / sqrt(var + eps) * w + b`
//! per row of C values, as the transformer uses before attention and MLP.
//!
//! The forward saves each row's mean and 1/std (two floats a row), which is
//! all the backward needs besides the input (llm.c's `layernorm_backward`).
//! Rows go to the threads in a fixed number of chunks, and each chunk
//! keeps its own weight and bias gradients, summed in chunk order after:
//! the result does not depend on the thread count.

use super::fastmath::{dispatch_fma, fmadd, lanes};
use super::params::Layout;
use rayon::prelude::*;

/// Added to the variance (PyTorch's default for `nn.LayerNorm`).
pub const EPS: f32 = 1e-5;

/// Chunks of rows the backward splits a batch into.
const CHUNKS: usize = 8;

/// A LayerNorm's place in the parameters: weight `(c)` then bias `(c)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerNorm {
    /// Offset of the weight; the bias follows.
    pub offset: usize,
    /// Values per row.
    pub c: usize,
}

impl LayerNorm {
    /// Registers `{name}.weight` and `{name}.bias`, both `(c)` (vectors: no
    /// weight decay).
    pub fn new(layout: &mut Layout, name: &str, c: usize) -> Self {
        let offset = layout.push(format!("{name}.weight"), &[c]);
        layout.push(format!("{name}.bias"), &[c]);
        Self { offset, c }
    }

    /// Weight 1, bias 0 (PyTorch's).
    pub fn init(&self, params: &mut [f32]) {
        let (w, b) = params[self.offset..self.offset + 2 * self.c].split_at_mut(self.c);
        w.fill(1.0);
        b.fill(0.0);
    }

    /// `out (rows, c)` from `inp (rows, c)`; `saved` `(rows, 2)` gets each
    /// row's mean and 1/std.
    pub fn forward(
        &self,
        params: &[f32],
        out: &mut [f32],
        saved: &mut [f32],
        inp: &[f32],
        rows: usize,
    ) {
        let c = self.c;
        let (w, b) = params[self.offset..self.offset + 2 * c].split_at(c);
        // Rows in chunks of about 4,096 values per task; within a row, the
        // mean and then the squared deviations (two passes, so nothing
        // cancels) in eight f32 lanes.
        let per = (4096 / c.max(1)).max(1);
        out[..rows * c]
            .par_chunks_mut(per * c)
            .zip(saved[..2 * rows].par_chunks_mut(2 * per))
            .zip(inp[..rows * c].par_chunks(per * c))
            .for_each(|((o, s), x)| forward_rows(o, s, x, w, b, c));
    }

    /// Adds the input gradient into `dinp` and the weight and bias
    /// gradients into `grads`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        dinp: &mut [f32],
        dout: &[f32],
        inp: &[f32],
        saved: &[f32],
        rows: usize,
    ) {
        let c = self.c;
        let w = &params[self.offset..self.offset + c];
        let per = rows.div_ceil(CHUNKS).max(1);
        let partial: Vec<Vec<f32>> = dinp[..rows * c]
            .par_chunks_mut(per * c)
            .zip(dout[..rows * c].par_chunks(per * c))
            .zip(inp[..rows * c].par_chunks(per * c))
            .zip(saved[..2 * rows].par_chunks(2 * per))
            .map(|(((dx, dy), x), s)| {
                // (dw, db) of this chunk's rows.
                let mut g = vec![0f32; 2 * c];
                backward_rows(dx, dy, x, s, w, &mut g, c);
                g
            })
            .collect();
        let gw = &mut grads[self.offset..self.offset + 2 * c];
        for p in &partial {
            for (g, &v) in gw.iter_mut().zip(p) {
                *g += v;
            }
        }
    }
}

// Rows of `c` values: each row's mean and 1/std into `s`, then the
// normalized, scaled and shifted row into `o`.
dispatch_fma! {
    fn forward_rows(o: &mut [f32], s: &mut [f32], x: &[f32], w: &[f32], b: &[f32], c: usize) {
        for ((o, s), x) in o
            .chunks_exact_mut(c)
            .zip(s.chunks_exact_mut(2))
            .zip(x.chunks_exact(c))
        {
            let m = lanes(x, |v| v) / c as f32;
            let var = lanes(x, |v| (v - m) * (v - m)) / c as f32;
            let rstd = 1.0 / (var + EPS).sqrt();
            s[0] = m;
            s[1] = rstd;
            for (((o, &x), &w), &b) in o.iter_mut().zip(x).zip(w).zip(b) {
                *o = fmadd::<FMA>((x - m) * rstd, w, b);
            }
        }
    }
}

/// Lanes of the backward's two row sums: as many as an AVX-512 register.
const LANES: usize = 16;

// Rows of `c` values: adds each row's input gradient into `dx`, and its
// weight and bias gradients into `g = (dw, db)`. The two row sums run in
// `LANES` independent lanes (one running sum would be a chain of
// dependent adds that no SIMD unit can split).
dispatch_fma! {
    fn backward_rows(
        dx: &mut [f32],
        dy: &[f32],
        x: &[f32],
        s: &[f32],
        w: &[f32],
        g: &mut [f32],
        c: usize
    ) {
        let (dw, db) = g.split_at_mut(c);
        for (((dx, dy), x), s) in dx
            .chunks_exact_mut(c)
            .zip(dy.chunks_exact(c))
            .zip(x.chunks_exact(c))
            .zip(s.chunks_exact(2))
        {
            let (m, rstd) = (s[0], s[1]);
            // sum(dnorm) and sum(dnorm * (x - m)), dnorm = dy * w.
            let (mut sa, mut sb) = ([0f32; LANES], [0f32; LANES]);
            let whole = c - c % LANES;
            for ((cg, cx), cw) in dy[..whole]
                .chunks_exact(LANES)
                .zip(x[..whole].chunks_exact(LANES))
                .zip(w[..whole].chunks_exact(LANES))
            {
                for l in 0..LANES {
                    let dn = cg[l] * cw[l];
                    sa[l] += dn;
                    sb[l] = fmadd::<FMA>(dn, cx[l] - m, sb[l]);
                }
            }
            let (mut a, mut bsum) = (sa.iter().sum::<f32>(), sb.iter().sum::<f32>());
            for ((&gv, &xv), &wv) in dy[whole..].iter().zip(&x[whole..]).zip(&w[whole..]) {
                a += gv * wv;
                bsum += gv * wv * (xv - m);
            }
            // mean(dnorm) and mean(dnorm * xhat).
            let (a, bsum) = (a / c as f32, bsum * rstd / c as f32);
            for (((((d, &gv), &xv), &wv), dw), db) in dx
                .iter_mut()
                .zip(dy)
                .zip(x)
                .zip(w)
                .zip(dw.iter_mut())
                .zip(db.iter_mut())
            {
                let xhat = (xv - m) * rstd;
                *d += (gv * wv - a - xhat * bsum) * rstd;
                *dw = fmadd::<FMA>(gv, xhat, *dw);
                *db += gv;
            }
        }
    }
}
