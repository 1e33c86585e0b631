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

use super::fastmath::{dispatch_fma, exp_neg_fma, fmadd, lanes, lanes_max, lanes2};
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

/// The widest head [`Attention::new`] takes. Models use 32 to 128 values
/// a head; the bound makes an absurd `--dim` and `--heads` pair an error
/// rather than a run.
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
                let mut p = vec![0f32; 2 * padded(t)];
                forward_seq(out, lse, qkv, &mut p, dims);
            });
    }

    /// Writes into `dqkv (B, T, C + 2 Ckv)` the gradient of the forward
    /// that gave `out` and `lse` from `qkv`, for the output's gradient
    /// `dout`. (Each thread zeroes its own sequences first, while they are
    /// in its cache.)
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
                dqkv.fill(0.0);
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
        // Zero once: only the first `d` columns of rows (and the first `t`
        // of transposed rows) are ever written.
        let mut q = vec![0f32; h * t * dp];
        let mut kt = vec![0f32; kvh * d * tp];
        let mut v = vec![0f32; kvh * t * dp];
        rows(&mut q, qkv, [t, d, w, 0, dp, h]);
        transposed(&mut kt, qkv, [t, d, w, c, tp, kvh]);
        rows(&mut v, qkv, [t, d, w, c + kvh * d, dp, kvh]);
        for head in 0..h {
            let kv = head / (h / kvh);
            let q = &q[head * t * dp..][..t * dp];
            let kt = &kt[kv * d * tp..][..d * tp];
            let v = &v[kv * t * dp..][..t * dp];
            for i in 0..t {
                // Queries in pairs: the second's scores come with the first's.
                let (p0, p1) = p.split_at_mut(tp);
                let s = if i % 2 == 1 {
                    &mut p1[..padded(i + 1)]
                } else if i + 1 < t {
                    let n = padded(i + 2);
                    let (q0, q1) = (&q[i * dp..(i + 1) * dp], &q[(i + 1) * dp..(i + 2) * dp]);
                    scores2::<FMA>([&mut p0[..n], &mut p1[..n]], [q0, q1], [kt, kt], [scale; 2], [d, tp]);
                    &mut p0[..padded(i + 1)]
                } else {
                    let s = &mut p0[..padded(i + 1)];
                    scores::<FMA>(s, &q[i * dp..(i + 1) * dp], kt, scale, [d, tp]);
                    s
                };
                s[i + 1..].fill(MASKED);
                let m = lanes_max(s);
                s.iter_mut().for_each(|x| *x = exp_neg_fma::<FMA>(*x - m));
                let sum: f32 = lanes(s, |x| x);
                let inv = 1.0 / sum;
                let o = &mut out[i * c + head * d..][..d];
                combine::<FMA>(o, false, &s[..=i], v, dp);
                o.iter_mut().for_each(|o| *o *= inv);
                lse[head * t + i] = m + sum.ln();
            }
        }
    }
}

/// Position `j`'s key and value gradients over `N` vectors of values from
/// column `col`: `sum_{i >= j} dS_ij Q_i` and `sum_{i >= j} P_ij G_i`.
#[inline(always)]
fn dkv_n<const FMA: bool, const N: usize>(
    ds: &[f32],
    pm: &[f32],
    q: &[f32],
    g: &[f32],
    [j, t, tp, dp, col]: [usize; 5],
) -> ([[f32; 16]; N], [[f32; 16]; N]) {
    let (mut ak, mut av) = ([[0f32; 16]; N], [[0f32; 16]; N]);
    for i in j..t {
        let (x, p) = (ds[i * tp + j], pm[i * tp + j]);
        let (qr, gr) = (&q[i * dp + col..], &g[i * dp + col..]);
        for b in 0..N {
            fma16::<FMA>(&mut ak[b], x, &qr[b * 16..]);
            fma16::<FMA>(&mut av[b], p, &gr[b * 16..]);
        }
    }
    (ak, av)
}

/// `dst += acc`, vector by vector (the last may be partial). An iterator
/// that flattens the vectors would stay a scalar loop, and a separate
/// function compiled without AVX.
#[inline(always)]
fn add_blocks(dst: &mut [f32], acc: &[[f32; 16]]) {
    for (o, a) in dst.chunks_mut(16).zip(acc) {
        o.iter_mut().zip(a).for_each(|(o, a)| *o += a);
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

/// Every head's columns of the `t` rows of `src` (rows of width `w`; head
/// `hd` in columns `off + hd*d ..`), into `dst` as `heads` blocks of `t`
/// rows of `dp` (the columns past `d` stay zero). One pass down the rows
/// serves all heads, so each row is read whole and in order rather than
/// once per head in pieces.
#[inline(always)]
fn rows(dst: &mut [f32], src: &[f32], [t, d, w, off, dp, heads]: [usize; 6]) {
    for (j, sr) in src.chunks(w).take(t).enumerate() {
        for hd in 0..heads {
            let dr = &mut dst[(hd * t + j) * dp..][..d];
            let sr = &sr[off + hd * d..][..d];
            // Whole vectors as vector moves: `copy_from_slice` of a
            // length the compiler cannot see is a call to memcpy.
            let (mut dc, mut sc) = (dr.chunks_exact_mut(16), sr.chunks_exact(16));
            for (a, b) in (&mut dc).zip(&mut sc) {
                let a: &mut [f32; 16] = a.try_into().expect("16 values");
                *a = b.try_into().expect("16 values");
            }
            for (a, &b) in dc.into_remainder().iter_mut().zip(sc.remainder()) {
                *a = b;
            }
        }
    }
}

/// The same columns, transposed: head `hd`'s block is `d` rows of `tp`,
/// `dst[(hd*d + e) * tp + j] = src[j * w + off + hd*d + e]` (the columns
/// past `t` stay zero).
#[inline(always)]
fn transposed(dst: &mut [f32], src: &[f32], [t, d, w, off, tp, heads]: [usize; 6]) {
    for (j, sr) in src.chunks(w).take(t).enumerate() {
        for (e, &x) in sr[off..off + heads * d].iter().enumerate() {
            dst[e * tp + j] = x;
        }
    }
}

/// `s[j] = scale * (q . kt[.., j])` for the `s.len()` positions (a whole
/// number of vectors), up to four vectors of positions at a time: four
/// independent sums keep the multiply-add unit busy, where one sum would
/// wait out each multiply-add's latency.
#[inline(always)]
fn scores<const FMA: bool>(s: &mut [f32], q: &[f32], kt: &[f32], scale: f32, dims: [usize; 2]) {
    let mut col = 0;
    while s.len() - col >= 64 {
        scores_n::<FMA, 4>(&mut s[col..col + 64], q, kt, scale, dims, col);
        col += 64;
    }
    // Not three at once: LLVM turns 48 sums into scalars.
    if s.len() - col >= 32 {
        scores_n::<FMA, 2>(&mut s[col..col + 32], q, kt, scale, dims, col);
        col += 32;
    }
    if s.len() - col >= 16 {
        scores_n::<FMA, 1>(&mut s[col..col + 16], q, kt, scale, dims, col);
    }
}

/// [`scores`] for `N` vectors of positions from position `col`.
#[inline(always)]
fn scores_n<const FMA: bool, const N: usize>(
    s: &mut [f32],
    q: &[f32],
    kt: &[f32],
    scale: f32,
    [d, tp]: [usize; 2],
    col: usize,
) {
    let mut acc = [[0f32; 16]; N];
    for (e, &qe) in q[..d].iter().enumerate() {
        let row = &kt[e * tp + col..];
        for (b, a) in acc.iter_mut().enumerate() {
            fma16::<FMA>(a, qe * scale, &row[b * 16..]);
        }
    }
    for (sc, a) in s.chunks_exact_mut(16).zip(&acc) {
        sc.copy_from_slice(a);
    }
}

/// Two rows of [`scores`] in one pass: `s[r][j] = scale[r] * (q[r] .
/// kt[r][.., j])`, over the same number of positions. Either the same keys
/// for two queries, or two products for one query; both ways, twice the
/// independent sums of [`scores`] are in flight (the multiply-add unit
/// needs about eight to stay busy).
#[inline(always)]
fn scores2<const FMA: bool>(
    s: [&mut [f32]; 2],
    q: [&[f32]; 2],
    kt: [&[f32]; 2],
    scale: [f32; 2],
    dims: [usize; 2],
) {
    let [s0, s1] = s;
    let n = s0.len().min(s1.len());
    let mut col = 0;
    while n - col >= 64 {
        let s = [&mut s0[col..col + 64], &mut s1[col..col + 64]];
        scores2_n::<FMA, 4>(s, q, kt, scale, dims, col);
        col += 64;
    }
    if n - col >= 32 {
        let s = [&mut s0[col..col + 32], &mut s1[col..col + 32]];
        scores2_n::<FMA, 2>(s, q, kt, scale, dims, col);
        col += 32;
    }
    if n - col >= 16 {
        let s = [&mut s0[col..col + 16], &mut s1[col..col + 16]];
        scores2_n::<FMA, 1>(s, q, kt, scale, dims, col);
    }
}

/// [`scores2`] for `N` vectors of positions from position `col`.
#[inline(always)]
fn scores2_n<const FMA: bool, const N: usize>(
    s: [&mut [f32]; 2],
    q: [&[f32]; 2],
    kt: [&[f32]; 2],
    scale: [f32; 2],
    [d, tp]: [usize; 2],
    col: usize,
) {
    let (mut a0, mut a1) = ([[0f32; 16]; N], [[0f32; 16]; N]);
    for e in 0..d {
        let (r0, r1) = (&kt[0][e * tp + col..], &kt[1][e * tp + col..]);
        let (x0, x1) = (q[0][e] * scale[0], q[1][e] * scale[1]);
        for b in 0..N {
            fma16::<FMA>(&mut a0[b], x0, &r0[b * 16..]);
            fma16::<FMA>(&mut a1[b], x1, &r1[b * 16..]);
        }
    }
    let [s0, s1] = s;
    for (sc, a) in s0.chunks_exact_mut(16).zip(&a0) {
        sc.copy_from_slice(a);
    }
    for (sc, a) in s1.chunks_exact_mut(16).zip(&a1) {
        sc.copy_from_slice(a);
    }
}

/// `out[l] = sum_j wt[j] * m[j * stride + col + l]` for the `out.len()`
/// columns (at most `dp`, from a zero-padded row of whole vectors): the
/// weighted sum of rows that gives a query's output, or its gradient.
/// Two vectors of columns and two rows at a time, so four independent
/// sums are in flight.
#[inline(always)]
fn combine<const FMA: bool>(out: &mut [f32], add: bool, wt: &[f32], m: &[f32], stride: usize) {
    let mut col = 0;
    while col < out.len() {
        let n = (out.len() - col).min(32);
        let acc = if n > 16 {
            combine_n::<FMA, 2>(wt, m, stride, col)
        } else {
            let [a] = combine_n::<FMA, 1>(wt, m, stride, col);
            [a, [0.0; 16]]
        };
        let o = &mut out[col..col + n];
        if add {
            add_blocks(o, &acc);
        } else {
            for (o, a) in o.chunks_mut(16).zip(&acc) {
                o.copy_from_slice(&a[..o.len()]);
            }
        }
        col += n;
    }
}

/// [`combine`] for `N` vectors of columns from column `col`.
#[inline(always)]
fn combine_n<const FMA: bool, const N: usize>(
    wt: &[f32],
    m: &[f32],
    stride: usize,
    col: usize,
) -> [[f32; 16]; N] {
    let (mut a0, mut a1) = ([[0f32; 16]; N], [[0f32; 16]; N]);
    let pairs = wt.len() / 2;
    for jp in 0..pairs {
        let j = 2 * jp;
        let (r0, r1) = (&m[j * stride + col..], &m[(j + 1) * stride + col..]);
        for b in 0..N {
            fma16::<FMA>(&mut a0[b], wt[j], &r0[b * 16..]);
            fma16::<FMA>(&mut a1[b], wt[j + 1], &r1[b * 16..]);
        }
    }
    if wt.len() % 2 == 1 {
        let j = wt.len() - 1;
        let r = &m[j * stride + col..];
        for (b, a) in a0.iter_mut().enumerate() {
            fma16::<FMA>(a, wt[j], &r[b * 16..]);
        }
    }
    for (x, y) in a0.iter_mut().zip(&a1) {
        x.iter_mut().zip(y).for_each(|(x, y)| *x += y);
    }
    a0
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
        let mut q = vec![0f32; h * t * dp];
        let mut g = vec![0f32; h * t * dp];
        let mut k = vec![0f32; kvh * t * dp];
        let mut kt = vec![0f32; kvh * d * tp];
        let mut vt = vec![0f32; kvh * d * tp];
        let mut pm = vec![0f32; t * tp];
        let mut ds = vec![0f32; t * tp];
        rows(&mut q, qkv, [t, d, w, 0, dp, h]);
        rows(&mut g, dout, [t, d, c, 0, dp, h]);
        rows(&mut k, qkv, [t, d, w, c, dp, kvh]);
        transposed(&mut kt, qkv, [t, d, w, c, tp, kvh]);
        transposed(&mut vt, qkv, [t, d, w, c + kvh * d, tp, kvh]);
        for head in 0..h {
            // Query heads that share a K/V head add into its gradient.
            let kv = head / (h / kvh);
            let (qo, ko, vo) = (head * d, c + kv * d, c + kvh * d + kv * d);
            let q = &q[head * t * dp..][..t * dp];
            let g = &g[head * t * dp..][..t * dp];
            let k = &k[kv * t * dp..][..t * dp];
            let kt = &kt[kv * d * tp..][..d * tp];
            let vt = &vt[kv * d * tp..][..d * tp];
            for i in 0..t {
                let n = padded(i + 1);
                let gi = &g[i * dp..(i + 1) * dp];
                // sum_j p_ij (g . v_j) = g . o_i: softmax's backward needs
                // only the output row, not the probabilities.
                let delta = dot(&gi[..d], &out[i * c + head * d..][..d]);
                let l = lse[head * t + i];
                // The probabilities again, from the scores and the
                // forward's log-sum-exp.
                // And g . v_j beside them (one pass, twice the sums in
                // flight), then the scores' gradient.
                let pr = &mut pm[i * tp..i * tp + n];
                let dr = &mut ds[i * tp..i * tp + n];
                let qi = &q[i * dp..(i + 1) * dp];
                scores2::<FMA>([&mut *pr, &mut *dr], [qi, gi], [kt, vt], [scale, 1.0], [d, tp]);
                pr[i + 1..].fill(MASKED);
                pr.iter_mut().for_each(|x| *x = exp_neg_fma::<FMA>(*x - l));
                for (x, &pj) in dr.iter_mut().zip(pr.iter()) {
                    *x = pj * (*x - delta) * scale;
                }
            }
            for i in 0..t {
                // dQ_i = sum_{j <= i} dS_ij K_j.
                let dq = &mut dqkv[i * w + qo..][..d];
                combine::<FMA>(dq, true, &ds[i * tp..i * tp + i + 1], k, dp);
            }
            for j in 0..t {
                // dK_j = sum_{i >= j} dS_ij Q_i, dV_j = sum_{i >= j} P_ij G_i,
                // two vectors of values at a time (four sums in flight).
                let row = &mut dqkv[j * w..];
                let mut col = 0;
                while col < d {
                    let n = (d - col).min(32);
                    let (ak, av) = if n > 16 {
                        dkv_n::<FMA, 2>(&ds, &pm, q, g, [j, t, tp, dp, col])
                    } else {
                        let ([ak], [av]) = dkv_n::<FMA, 1>(&ds, &pm, q, g, [j, t, tp, dp, col]);
                        ([ak, [0.0; 16]], [av, [0.0; 16]])
                    };
                    add_blocks(&mut row[ko + col..ko + col + n], &ak);
                    add_blocks(&mut row[vo + col..vo + col + n], &av);
                    col += n;
                }
            }
        }
    }
}
