//! Matrix products for the training engine, through faer.
//!
//! All matrices are row-major `f32` slices. [`gemm`] is the one entry point;
//! [`gemm_naive`] is the reference it is tested against (kept in the tree,
//! as llm.c keeps `matmul_forward_naive`).
//!
//! Why faer and not a kernel of our own: on an AVX-512 Xeon (2 cores, one
//! core's FMA peak about 215 GFLOP/s) faer's x86 kernel reaches 110-133
//! GFLOP/s on one thread for the DCGAN's convolution products
//! (`cargo bench -p edgegen --bench gemm_shapes -- gan`). A textbook
//! BLIS-style AVX-512 product written to replace it (an 8 x 48 register
//! tile, B packed in 128-deep panels, A in 128-row blocks) measured the
//! same, 124-126 GFLOP/s on the 128 x 6272 x 1024 product against faer's
//! 123-133 in the same runs: its tile ran at about 75% of the peak, and
//! packing B, read once from beyond L2, took a fifth of the time, as
//! faer's unpacked reads of it do. It was not kept.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// How many threads the GEMMs use; 1 means sequential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads(pub usize);

/// A row-major operand: `data` holds `rows x cols` (before any transpose).
fn view(data: &[f32], rows: usize, cols: usize, trans: bool) -> MatRef<'_, f32> {
    let m = MatRef::from_row_major_slice(data, rows, cols);
    if trans { m.transpose() } else { m }
}

/// `out (m, n) = [out +] alpha * op(a) (m, k) * op(b) (k, n)`.
///
/// `a` is stored `(m, k)` row-major, or `(k, m)` if `ta`; likewise `b` is
/// `(k, n)`, or `(n, k)` if `tb`. With `accumulate` the product is added to
/// `out`, otherwise it replaces it.
#[allow(clippy::too_many_arguments)]
pub fn gemm(
    out: &mut [f32],
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    (m, n, k): (usize, usize, usize),
    alpha: f32,
    accumulate: bool,
    threads: Threads,
) {
    debug_assert_eq!(out.len(), m * n);
    debug_assert_eq!(a.len(), m * k);
    debug_assert_eq!(b.len(), k * n);
    let (ar, ac) = if ta { (k, m) } else { (m, k) };
    let (br, bc) = if tb { (n, k) } else { (k, n) };
    let dst = MatMut::from_row_major_slice_mut(out, m, n);
    let acc = if accumulate {
        Accum::Add
    } else {
        Accum::Replace
    };
    let (a, b) = (view(a, ar, ac, ta), view(b, br, bc, tb));
    split(dst, acc, a, b, alpha, threads.0.max(1));
}

/// Below this many multiply-adds a product runs on one thread: a fork and
/// join costs microseconds.
const MIN_PARALLEL_MACS: usize = 1 << 16;

/// `dst = [dst +] alpha a b` on `parts` threads, each running faer's
/// sequential kernel on its own block of `dst`'s rows (or columns, if
/// those are more). Splitting here rather than handing faer `Par::rayon`
/// measured 8% faster on the text family's training step (2 threads, the
/// baby config): faer parallelizes inside each product with barriers
/// between its blocks, which at these sizes (a few hundred rows and
/// columns) costs more than the blocks take.
fn split(
    dst: MatMut<'_, f32>,
    acc: Accum,
    a: MatRef<'_, f32>,
    b: MatRef<'_, f32>,
    alpha: f32,
    parts: usize,
) {
    let (m, n, k) = (dst.nrows(), dst.ncols(), a.ncols());
    if parts <= 1 || m.max(n) < 32 || m * n * k < MIN_PARALLEL_MACS {
        matmul(dst, acc, a, b, alpha, Par::Seq);
        return;
    }
    let left = parts / 2;
    // Cut at a multiple of 16 (whole SIMD rows) in proportion to the
    // threads on each side.
    let cut = |len: usize| ((len * left / parts).next_multiple_of(16)).min(len);
    if m >= n {
        let (d0, d1) = dst.split_at_row_mut(cut(m));
        let (a0, a1) = a.split_at_row(cut(m));
        rayon::join(
            || split(d0, acc, a0, b, alpha, left),
            || split(d1, acc, a1, b, alpha, parts - left),
        );
    } else {
        let (d0, d1) = dst.split_at_col_mut(cut(n));
        let (b0, b1) = b.split_at_col(cut(n));
        rayon::join(
            || split(d0, acc, a, b0, alpha, left),
            || split(d1, acc, a, b1, alpha, parts - left),
        );
    }
}

/// The reference: three loops, f64 accumulation. Same contract as [`gemm`].
#[allow(clippy::too_many_arguments)]
pub fn gemm_naive(
    out: &mut [f32],
    a: &[f32],
    ta: bool,
    b: &[f32],
    tb: bool,
    (m, n, k): (usize, usize, usize),
    alpha: f32,
    accumulate: bool,
) {
    for i in 0..m {
        for j in 0..n {
            let mut s = 0f64;
            for p in 0..k {
                let x = if ta { a[p * m + i] } else { a[i * k + p] };
                let y = if tb { b[j * k + p] } else { b[p * n + j] };
                s += x as f64 * y as f64;
            }
            let v = alpha * s as f32;
            out[i * n + j] = if accumulate { out[i * n + j] + v } else { v };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn faer_matches_naive_for_every_transpose_and_odd_sizes() {
        let mut r = Rng::new(3);
        // The last two are split across threads, by rows and by columns.
        for &(m, n, k) in &[
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 65),
            (128, 40, 400),
            (40, 130, 400),
        ] {
            for ta in [false, true] {
                for tb in [false, true] {
                    for acc in [false, true] {
                        let a: Vec<f32> = (0..m * k).map(|_| r.normal()).collect();
                        let b: Vec<f32> = (0..k * n).map(|_| r.normal()).collect();
                        let init: Vec<f32> = (0..m * n).map(|_| r.normal()).collect();
                        let mut y = init.clone();
                        gemm_naive(&mut y, &a, ta, &b, tb, (m, n, k), 0.5, acc);
                        for th in [1, 2, 3] {
                            let mut x = init.clone();
                            gemm(&mut x, &a, ta, &b, tb, (m, n, k), 0.5, acc, Threads(th));
                            let err = x
                                .iter()
                                .zip(&y)
                                .map(|(p, q)| (p - q).abs())
                                .fold(0f32, f32::max);
                            assert!(
                                err < 1e-4 * (k as f32).sqrt(),
                                "{m}x{n}x{k} ta={ta} tb={tb} threads {th}: {err}"
                            );
                        }
                    }
                }
            }
        }
    }
}
