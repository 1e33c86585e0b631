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

use super::fastmath::{dispatch_fma, exp_neg, fmadd, lanes, lanes2};
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

/// Rows of positions are computed in whole vectors of this many: a loop of
/// a length the compiler cannot know ends in scalar iterations, and with
/// rows of 1 to T positions those were most of the work. The extra
/// positions read zero-padded keys and are masked out.
const PAD: usize = 16;

/// `n` rounded up to whole vectors.
fn padded(n: usize) -> usize {
    n.div_ceil(PAD) * PAD
}

/// A score no position past the query may have: its weight is exactly 0.
const MASKED: f32 = -1e30;

/// The largest of `row`, in eight lanes.
#[inline(always)]
fn max_lanes(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    for ch in chunks {
        for (a, &x) in acc.iter_mut().zip(ch) {
            *a = a.max(x);
        }
    }
    tail.iter()
        .chain(&acc)
        .fold(f32::NEG_INFINITY, |a, &b| a.max(b))
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
                let mut p = vec![0f32; padded(t)];
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
                backward_seq(dqkv, dout, out, lse, qkv, dims);
            });
    }
}

// One sequence's forward, every head: compiled for AVX-512 and AVX2 too,
// as the rest of the crate is built for baseline x86-64.
//
// A head's queries, keys and values are gathered into contiguous buffers
// (the keys also transposed), with each row padded with zeros to whole
// vectors of 16. Every inner loop then keeps 16 sums in one register
// (`fma16`) over a run of multiply-adds, as a small GEMM kernel does: a
// query's scores along 16 positions at a time, its output along 16 of
// its values at a time.
dispatch_fma! {
    fn forward_seq(out: &mut [f32], lse: &mut [f32], qkv: &[f32], p: &mut [f32], dims: [usize; 5]) {
        let [t, c, h, kvh, w] = dims;
        let d = c / h;
        let (tp, dp) = (padded(t), padded(d));
        let scale = 1.0 / (d as f32).sqrt();
        let mut q = vec![0f32; t * dp];
        let mut kt = vec![0f32; dp * tp];
        let mut k = vec![0f32; t * dp];
        let mut v = vec![0f32; t * dp];
        for head in 0..h {
            let kv = head / (h / kvh);
            let (qo, ko, vo) = (head * d, c + kv * d, c + kvh * d + kv * d);
            rows(&mut q, qkv, [t, d, w, qo, dp]);
            rows(&mut k, qkv, [t, d, w, ko, dp]);
            rows(&mut v, qkv, [t, d, w, vo, dp]);
            transpose(&mut kt, &k, [t, d, dp, tp]);
            for i in 0..t {
                let s = &mut p[..padded(i + 1)];
                scores::<FMA>(s, &q[i * dp..(i + 1) * dp], &kt, scale, [d, tp]);
                s[i + 1..].fill(MASKED);
                let m = max_lanes(s);
                s.iter_mut().for_each(|x| *x = exp_neg(*x - m));
                let sum: f32 = lanes(s, |x| x);
                let inv = 1.0 / sum;
                let o = &mut out[i * c + head * d..][..d];
                for (cb, oc) in o.chunks_mut(16).enumerate() {
                    let mut acc = [0f32; 16];
                    for (j, &pj) in s[..=i].iter().enumerate() {
                        fma16::<FMA>(&mut acc, pj, &v[j * dp + cb * 16..]);
                    }
                    for (o, a) in oc.iter_mut().zip(acc) {
                        *o = a * inv;
                    }
                }
                lse[head * t + i] = m + sum.ln();
            }
        }
    }
}

/// `acc[l] += a * b[l]` for 16 lanes: one register (and one fused
/// multiply-add) on AVX-512.
#[inline(always)]
fn fma16<const FMA: bool>(acc: &mut [f32; 16], a: f32, b: &[f32]) {
    for (x, &y) in acc.iter_mut().zip(&b[..16]) {
        *x = fmadd::<FMA>(a, y, *x);
    }
}

/// Column `off .. off + d` of each of the `t` rows of `src` (rows of width
/// `w`) into `dst` as rows of `dp`, the rest of each row zero.
#[inline(always)]
fn rows(dst: &mut [f32], src: &[f32], dims: [usize; 5]) {
    let [t, d, w, off, dp] = dims;
    for j in 0..t {
        dst[j * dp..j * dp + d].copy_from_slice(&src[j * w + off..j * w + off + d]);
        dst[j * dp + d..(j + 1) * dp].fill(0.0);
    }
}

/// `dst` (dp x tp) = `src` (t x dp) transposed, the columns past t zero.
#[inline(always)]
fn transpose(dst: &mut [f32], src: &[f32], dims: [usize; 4]) {
    let [t, d, dp, tp] = dims;
    dst.fill(0.0);
    for j in 0..t {
        for e in 0..d {
            dst[e * tp + j] = src[j * dp + e];
        }
    }
}

/// `s[j] = scale * (q . kt[.., j])` for the `s.len()` positions (a whole
/// number of vectors), 16 at a time.
#[inline(always)]
fn scores<const FMA: bool>(s: &mut [f32], q: &[f32], kt: &[f32], scale: f32, dims: [usize; 2]) {
    let [d, tp] = dims;
    for (jb, sc) in s.chunks_exact_mut(16).enumerate() {
        let mut acc = [0f32; 16];
        for (e, &qe) in q[..d].iter().enumerate() {
            fma16::<FMA>(&mut acc, qe * scale, &kt[e * tp + jb * 16..]);
        }
        sc.copy_from_slice(&acc);
    }
}

// One sequence's backward, every head (see `forward_seq`). Each query's
// probabilities and score gradients are rows of `pm` and `ds` (T x Tp);
// then dQ = dS K, dK = dS^T Q and dV = P^T G run as the same 16-wide
// register sums, and add into `dqkv` once per head.
dispatch_fma! {
    fn backward_seq(
        dqkv: &mut [f32],
        dout: &[f32],
        out: &[f32],
        lse: &[f32],
        qkv: &[f32],
        dims: [usize; 5]
    ) {
        let [t, c, h, kvh, w] = dims;
        let d = c / h;
        let (tp, dp) = (padded(t), padded(d));
        let scale = 1.0 / (d as f32).sqrt();
        let mut q = vec![0f32; t * dp];
        let mut k = vec![0f32; t * dp];
        let mut v = vec![0f32; t * dp];
        let mut g = vec![0f32; t * dp];
        let mut kt = vec![0f32; dp * tp];
        let mut vt = vec![0f32; dp * tp];
        let mut pm = vec![0f32; t * tp];
        let mut ds = vec![0f32; t * tp];
        for head in 0..h {
            // Query heads that share a K/V head add into its gradient.
            let kv = head / (h / kvh);
            let (qo, ko, vo) = (head * d, c + kv * d, c + kvh * d + kv * d);
            rows(&mut q, qkv, [t, d, w, qo, dp]);
            rows(&mut k, qkv, [t, d, w, ko, dp]);
            rows(&mut v, qkv, [t, d, w, vo, dp]);
            rows(&mut g, dout, [t, d, c, head * d, dp]);
            transpose(&mut kt, &k, [t, d, dp, tp]);
            transpose(&mut vt, &v, [t, d, dp, tp]);
            for i in 0..t {
                let n = padded(i + 1);
                let gi = &g[i * dp..(i + 1) * dp];
                // sum_j p_ij (g . v_j) = g . o_i: softmax's backward needs
                // only the output row, not the probabilities.
                let delta = dot(&gi[..d], &out[i * c + head * d..][..d]);
                let l = lse[head * t + i];
                // The probabilities again, from the scores and the
                // forward's log-sum-exp.
                let pr = &mut pm[i * tp..i * tp + n];
                scores::<FMA>(pr, &q[i * dp..(i + 1) * dp], &kt, scale, [d, tp]);
                pr[i + 1..].fill(MASKED);
                pr.iter_mut().for_each(|x| *x = exp_neg(*x - l));
                // g . v_j, then the scores' gradient.
                let dr = &mut ds[i * tp..i * tp + n];
                scores::<FMA>(dr, gi, &vt, 1.0, [d, tp]);
                for (x, &pj) in dr.iter_mut().zip(pr.iter()) {
                    *x = pj * (*x - delta) * scale;
                }
            }
            for i in 0..t {
                // dQ_i = sum_{j <= i} dS_ij K_j.
                let dq = &mut dqkv[i * w + qo..][..d];
                for (cb, dc) in dq.chunks_mut(16).enumerate() {
                    let mut acc = [0f32; 16];
                    for (j, &x) in ds[i * tp..i * tp + i + 1].iter().enumerate() {
                        fma16::<FMA>(&mut acc, x, &k[j * dp + cb * 16..]);
                    }
                    dc.iter_mut().zip(acc).for_each(|(a, b)| *a += b);
                }
            }
            for j in 0..t {
                // dK_j = sum_{i >= j} dS_ij Q_i, dV_j = sum_{i >= j} P_ij G_i.
                for cb in 0..dp / 16 {
                    let (mut ak, mut av) = ([0f32; 16], [0f32; 16]);
                    for i in j..t {
                        fma16::<FMA>(&mut ak, ds[i * tp + j], &q[i * dp + cb * 16..]);
                        fma16::<FMA>(&mut av, pm[i * tp + j], &g[i * dp + cb * 16..]);
                    }
                    let n = 16.min(d - cb * 16);
                    let row = &mut dqkv[j * w..];
                    let at = cb * 16;
                    row[ko + at..ko + at + n].iter_mut().zip(ak).for_each(|(a, b)| *a += b);
                    row[vo + at..vo + at + n].iter_mut().zip(av).for_each(|(a, b)| *a += b);
                }
            }
        }
    }
}
