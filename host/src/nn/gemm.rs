//! Matrix products for the training engine, through faer.
//!
//! All matrices are row-major `f32` slices. [`gemm`] is the one entry point;
//! [`gemm_naive`] is the reference it is tested against (kept in the tree,
//! as llm.c keeps `matmul_forward_naive`).

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};

/// How many threads the GEMMs use; 1 means sequential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Threads(pub usize);

impl Threads {
    fn par(self) -> Par {
        if self.0 <= 1 {
            Par::Seq
        } else {
            Par::rayon(self.0)
        }
    }
}

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
    matmul(
        dst,
        acc,
        view(a, ar, ac, ta),
        view(b, br, bc, tb),
        alpha,
        threads.par(),
    );
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
        for &(m, n, k) in &[(1, 1, 1), (3, 5, 7), (17, 33, 65), (128, 40, 400)] {
            for ta in [false, true] {
                for tb in [false, true] {
                    for acc in [false, true] {
                        let a: Vec<f32> = (0..m * k).map(|_| r.normal()).collect();
                        let b: Vec<f32> = (0..k * n).map(|_| r.normal()).collect();
                        let init: Vec<f32> = (0..m * n).map(|_| r.normal()).collect();
                        let (mut x, mut y) = (init.clone(), init.clone());
                        gemm(&mut x, &a, ta, &b, tb, (m, n, k), 0.5, acc, Threads(2));
                        gemm_naive(&mut y, &a, ta, &b, tb, (m, n, k), 0.5, acc);
                        let err = x
                            .iter()
                            .zip(&y)
                            .map(|(p, q)| (p - q).abs())
                            .fold(0f32, f32::max);
                        assert!(
                            err < 1e-4 * (k as f32).sqrt(),
                            "{m}x{n}x{k} ta={ta} tb={tb}: {err}"
                        );
                    }
                }
            }
        }
    }
}
