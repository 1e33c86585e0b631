//! Causal multi-head self-attention, fused: `softmax(Q K^T / sqrt(d)) V`
//! per head in one pass per query, and its backward in one pass per head.
//!
//! Layout (llm.c's): the input is the QKV projection `(B, T, C + 2 Ckv)`, Q
//! then K then V along the last axis, query head `h` in columns
//! `h*d .. (h+1)*d` of Q (d = C / H); the output is `(B, T, C)` with the
//! heads side by side. With grouped-query attention (`kv_heads` < `heads`,
//! as llama2.c's stories models have), K and V hold `kv_heads` heads
//! (Ckv = kv_heads * d) and query head `h` reads K/V head
//! `h / (heads / kv_heads)`: the KV cache on a device shrinks by that
//! factor. With `kv_heads == heads` it is plain multi-head attention.
//!
//! Why fused, as FlashAttention does it: no `(T, T)` matrix of scores or
//! probabilities is kept per head. The forward keeps one float per query,
//! the log-sum-exp of its scores; the backward recomputes each score from
//! Q and K and its probability from that log-sum-exp, so the memory of a
//! layer is `B * H * T` floats instead of `B * H * T * T`. Sequences go to
//! the threads whole, one batch row each, so every thread writes its own
//! rows of the gradient.

use super::fastmath::{dispatch, exp_neg, lanes2};
use rayon::prelude::*;

/// A causal self-attention over `heads` heads of a model width `dim`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attention {
    /// H.
    pub heads: usize,
    /// Heads of K and V; divides H.
    pub kv_heads: usize,
    /// C; a multiple of H.
    pub dim: usize,
}

/// `sum a[i] * b[i]` (a head is 16 to 64 values).
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    lanes2(a, b, |x, y| x * y)
}

/// `y += k * x`.
#[inline(always)]
fn axpy(y: &mut [f32], k: f32, x: &[f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += k * x;
    }
}

/// The widest head [`Attention::new`] takes: the backward keeps one
/// head's query gradient on the stack.
pub const MAX_HEAD_DIM: usize = 256;

impl Attention {
    /// `heads` query heads and `kv_heads` key/value heads over width `dim`,
    /// or `None` unless `dim` is a positive multiple of `heads` with at most
    /// [`MAX_HEAD_DIM`] per head, and `kv_heads` divides `heads`.
    pub fn new(heads: usize, kv_heads: usize, dim: usize) -> Option<Self> {
        (heads > 0
            && dim > 0
            && dim.is_multiple_of(heads)
            && dim / heads <= MAX_HEAD_DIM
            && kv_heads > 0
            && heads.is_multiple_of(kv_heads))
        .then_some(Self {
            heads,
            kv_heads,
            dim,
        })
    }

    /// Values per head.
    pub fn head_dim(&self) -> usize {
        self.dim / self.heads.max(1)
    }

    /// The width of K (and of V): `kv_heads * head_dim`.
    pub fn kv_dim(&self) -> usize {
        self.kv_heads * self.head_dim()
    }

    /// The width of the QKV projection's output: `C + 2 Ckv`.
    pub fn qkv_dim(&self) -> usize {
        self.dim + 2 * self.kv_dim()
    }

    fn dims(&self, t: usize) -> [usize; 5] {
        [t, self.dim, self.heads, self.kv_heads, self.qkv_dim()]
    }

    /// `out (B, T, C)` from `qkv (B, T, C + 2 Ckv)`; `lse (B, H, T)` gets
    /// each query's log-sum-exp of its scaled scores, for the backward.
    pub fn forward(&self, out: &mut [f32], lse: &mut [f32], qkv: &[f32], batch: usize, t: usize) {
        let (c, h, w) = (self.dim, self.heads, self.qkv_dim());
        let dims = self.dims(t);
        out[..batch * t * c]
            .par_chunks_mut(t * c)
            .zip(lse[..batch * h * t].par_chunks_mut(h * t))
            .zip(qkv[..batch * t * w].par_chunks(t * w))
            .for_each(|((out, lse), qkv)| {
                let mut p = vec![0f32; t];
                forward_seq(out, lse, qkv, &mut p, dims);
            });
    }

    /// Adds into `dqkv (B, T, C + 2 Ckv)` the gradient of the forward that
    /// gave `out` and `lse` from `qkv`, for the output's gradient `dout`.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        dqkv: &mut [f32],
        dout: &[f32],
        out: &[f32],
        lse: &[f32],
        qkv: &[f32],
        batch: usize,
        t: usize,
    ) {
        let (c, h, w) = (self.dim, self.heads, self.qkv_dim());
        let dims = self.dims(t);
        dqkv[..batch * t * w]
            .par_chunks_mut(t * w)
            .zip(dout[..batch * t * c].par_chunks(t * c))
            .zip(out[..batch * t * c].par_chunks(t * c))
            .zip(lse[..batch * h * t].par_chunks(h * t))
            .zip(qkv[..batch * t * w].par_chunks(t * w))
            .for_each(|((((dqkv, dout), out), lse), qkv)| {
                let mut p = vec![0f32; t];
                backward_seq(dqkv, dout, out, lse, qkv, &mut p, dims);
            });
    }
}

// One sequence's forward, every head: compiled for AVX-512 and AVX2 too,
// as the rest of the crate is built for baseline x86-64.
dispatch! {
    fn forward_seq(out: &mut [f32], lse: &mut [f32], qkv: &[f32], p: &mut [f32], dims: [usize; 5]) {
        let [t, c, h, kvh, w] = dims;
        let d = c / h;
        let scale = 1.0 / (d as f32).sqrt();
        for head in 0..h {
            let kv = head / (h / kvh);
            let (qo, ko, vo) = (head * d, c + kv * d, c + kvh * d + kv * d);
            for i in 0..t {
                let q = &qkv[i * w + qo..][..d];
                let mut m = f32::NEG_INFINITY;
                for (j, s) in p[..=i].iter_mut().enumerate() {
                    *s = dot(q, &qkv[j * w + ko..][..d]) * scale;
                    m = m.max(*s);
                }
                p[..=i].iter_mut().for_each(|s| *s = exp_neg(*s - m));
                let sum: f32 = p[..=i].iter().sum();
                let o = &mut out[i * c + head * d..][..d];
                o.fill(0.0);
                let inv = 1.0 / sum;
                for (j, &pj) in p[..=i].iter().enumerate() {
                    axpy(o, pj * inv, &qkv[j * w + vo..][..d]);
                }
                lse[head * t + i] = m + sum.ln();
            }
        }
    }
}

// One sequence's backward, every head (see `forward_seq`).
dispatch! {
    fn backward_seq(
        dqkv: &mut [f32],
        dout: &[f32],
        out: &[f32],
        lse: &[f32],
        qkv: &[f32],
        p: &mut [f32],
        dims: [usize; 5]
    ) {
        let [t, c, h, kvh, w] = dims;
        let d = c / h;
        let scale = 1.0 / (d as f32).sqrt();
        for head in 0..h {
            // Query heads that share a K/V head add into its gradient.
            let kv = head / (h / kvh);
            let (qo, ko, vo) = (head * d, c + kv * d, c + kvh * d + kv * d);
            for i in 0..t {
                let q = &qkv[i * w + qo..][..d];
                let g = &dout[i * c + head * d..][..d];
                // sum_j p_ij (g . v_j) = g . o_i: softmax's backward needs
                // only the output row, not the probabilities.
                let delta = dot(g, &out[i * c + head * d..][..d]);
                let l = lse[head * t + i];
                // The probabilities again, from the scores and the
                // forward's log-sum-exp.
                for (j, s) in p[..=i].iter_mut().enumerate() {
                    *s = exp_neg(dot(q, &qkv[j * w + ko..][..d]) * scale - l);
                }
                let mut dq = [0f32; MAX_HEAD_DIM];
                let dq = &mut dq[..d];
                for (j, &p) in p[..=i].iter().enumerate() {
                    let k = &qkv[j * w + ko..][..d];
                    let v = &qkv[j * w + vo..][..d];
                    let ds = p * (dot(g, v) - delta) * scale;
                    axpy(dq, ds, k);
                    axpy(&mut dqkv[j * w + ko..][..d], ds, q);
                    axpy(&mut dqkv[j * w + vo..][..d], p, g);
                }
                for (a, &b) in dqkv[i * w + qo..][..d].iter_mut().zip(dq.iter()) {
                    *a += b;
                }
            }
        }
    }
}
