//! The statistics of the evaluation suite, over feature rows `(n, d)`:
//! the Fréchet distance between Gaussian fits, k-NN precision and recall
//! (Kynkäänniemi et al. 2019), and the Inception-style score of class
//! probabilities.

use crate::nn::gemm::{Threads, gemm};
use faer::{Mat, Side};
use rayon::prelude::*;

/// Mean `(d)` and covariance `(d, d)` (divided by n - 1) of `x` `(n, d)`,
/// in f64.
pub fn mean_cov(x: &[f32], d: usize) -> (Vec<f64>, Mat<f64>) {
    let n = x.len() / d.max(1);
    let mut mean = vec![0f64; d];
    for row in x.chunks_exact(d) {
        for (m, &v) in mean.iter_mut().zip(row) {
            *m += v as f64;
        }
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1) as f64);
    let centred: Vec<f64> = x
        .chunks_exact(d)
        .flat_map(|row| row.iter().zip(&mean).map(|(&v, m)| v as f64 - m))
        .collect();
    let c = Mat::<f64>::from_fn(n, d, |i, j| centred[i * d + j]);
    let cov = c.transpose() * &c * faer::Scale(1.0 / (n.max(2) - 1) as f64);
    (mean, cov)
}

/// `A^{1/2}` of a symmetric positive semi-definite `A`, through its
/// eigendecomposition (negative rounding noise clamped to zero).
fn sqrt_psd(a: &Mat<f64>) -> Mat<f64> {
    let n = a.nrows();
    let Ok(e) = a.self_adjoint_eigen(Side::Lower) else {
        return Mat::zeros(n, n);
    };
    let (u, s) = (e.U(), e.S().column_vector());
    Mat::from_fn(n, n, |i, j| {
        (0..n)
            .map(|k| u[(i, k)] * s[k].max(0.0).sqrt() * u[(j, k)])
            .sum()
    })
}

/// The Fréchet distance between Gaussians fitted to `a` and `b` (rows of
/// `d` features): `|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^{1/2})`,
/// with `tr (S_a S_b)^{1/2} = tr (S_a^{1/2} S_b S_a^{1/2})^{1/2}`, whose
/// argument is symmetric: the same number FID computes, without a
/// non-symmetric matrix square root.
pub fn frechet(a: &[f32], b: &[f32], d: usize) -> f64 {
    let (ma, sa) = mean_cov(a, d);
    let (mb, sb) = mean_cov(b, d);
    let mean_term: f64 = ma.iter().zip(&mb).map(|(x, y)| (x - y).powi(2)).sum();
    let ra = sqrt_psd(&sa);
    let m = &ra * &sb * &ra;
    // Symmetrize away rounding before the eigenvalues.
    let m = Mat::from_fn(d, d, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
    let cross: f64 = m
        .self_adjoint_eigenvalues(Side::Lower)
        .map(|ev| ev.iter().map(|&v| v.max(0.0).sqrt()).sum())
        .unwrap_or(f64::NAN);
    let tr = |s: &Mat<f64>| (0..d).map(|i| s[(i, i)]).sum::<f64>();
    (mean_term + tr(&sa) + tr(&sb) - 2.0 * cross).max(0.0)
}

/// Squared distances of each row of `q` `(nq, d)` to every row of `r`
/// `(nr, d)`, for rows `lo..hi` of `q`: `(hi - lo, nr)`.
fn sq_dists(q: &[f32], lo: usize, hi: usize, r: &[f32], r_norms: &[f32], d: usize) -> Vec<f32> {
    let nr = r.len() / d;
    let rows = hi - lo;
    let qb = &q[lo * d..hi * d];
    let mut out = vec![0f32; rows * nr];
    gemm(
        &mut out,
        qb,
        false,
        r,
        true,
        (rows, nr, d),
        -2.0,
        false,
        Threads(1),
    );
    for (i, row) in out.chunks_exact_mut(nr).enumerate() {
        let qn: f32 = qb[i * d..(i + 1) * d].iter().map(|v| v * v).sum();
        for (o, &rn) in row.iter_mut().zip(r_norms) {
            *o = (*o + qn + rn).max(0.0);
        }
    }
    out
}

fn norms(x: &[f32], d: usize) -> Vec<f32> {
    x.chunks_exact(d)
        .map(|r| r.iter().map(|v| v * v).sum())
        .collect()
}

const BLOCK: usize = 256;

/// Each row's squared distance to its `k`-th nearest other row of `x`.
fn knn_radii(x: &[f32], d: usize, k: usize) -> Vec<f32> {
    let n = x.len() / d;
    let xn = norms(x, d);
    (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .flat_map_iter(|b| {
            let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(n));
            let dist = sq_dists(x, lo, hi, x, &xn, d);
            (0..hi - lo)
                .map(|i| {
                    let mut row: Vec<f32> = dist[i * n..(i + 1) * n].to_vec();
                    // The row itself sits at distance 0: the k-th other
                    // neighbour is the (k+1)-th smallest.
                    let kk = k.min(n.saturating_sub(1));
                    row.select_nth_unstable_by(kk, f32::total_cmp);
                    row[kk]
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The fraction of rows of `q` inside at least one ball around a row of
/// `manifold` of that row's radius.
fn coverage(q: &[f32], manifold: &[f32], radii: &[f32], d: usize) -> f64 {
    let n = q.len() / d;
    let mn = norms(manifold, d);
    let inside: usize = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let (lo, hi) = (b * BLOCK, ((b + 1) * BLOCK).min(n));
            let dist = sq_dists(q, lo, hi, manifold, &mn, d);
            dist.chunks_exact(radii.len())
                .filter(|row| row.iter().zip(radii).any(|(&dd, &r)| dd <= r))
                .count()
        })
        .sum();
    inside as f64 / n.max(1) as f64
}

/// k-NN precision (the share of generated rows inside the real manifold)
/// and recall (the share of real rows inside the generated manifold).
pub fn precision_recall(real: &[f32], fake: &[f32], d: usize, k: usize) -> (f64, f64) {
    let real_r = knn_radii(real, d, k);
    let fake_r = knn_radii(fake, d, k);
    (
        coverage(fake, real, &real_r, d),
        coverage(real, fake, &fake_r, d),
    )
}

/// `exp(E_x KL(p(y|x) || p(y)))` over rows of class probabilities `(n, k)`:
/// k for confident, evenly spread predictions, 1 for uninformative ones.
pub fn classifier_score(probs: &[f32], k: usize) -> f64 {
    let n = probs.len() / k.max(1);
    let mut marginal = vec![0f64; k];
    for row in probs.chunks_exact(k) {
        for (m, &p) in marginal.iter_mut().zip(row) {
            *m += p as f64 / n.max(1) as f64;
        }
    }
    let kl: f64 = probs
        .chunks_exact(k)
        .map(|row| {
            row.iter()
                .zip(&marginal)
                .filter(|(p, _)| **p > 0.0)
                .map(|(&p, &m)| p as f64 * ((p as f64).ln() - m.max(1e-30).ln()))
                .sum::<f64>()
        })
        .sum::<f64>()
        / n.max(1) as f64;
    kl.exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn frechet_of_known_gaussians() {
        // Two isotropic Gaussians in 3-d: distance |mu|^2 + 3 (s1 - s2)^2.
        let mut r = Rng::new(1);
        let n = 40_000;
        let a: Vec<f32> = (0..n * 3).map(|_| r.normal()).collect();
        let b: Vec<f32> = (0..n * 3)
            .map(|i| 2.0 * r.normal() + if i % 3 == 0 { 1.0 } else { 0.0 })
            .collect();
        let f = frechet(&a, &b, 3);
        assert!((f - 4.0).abs() < 0.1, "{f}");
        assert!(frechet(&a, &a, 3) < 1e-9);
    }

    #[test]
    fn precision_recall_see_a_missing_mode() {
        // Real: two clusters; fake: only the first. Precision 1, recall 1/2.
        let mut r = Rng::new(2);
        let cluster = |r: &mut Rng, c: f32, n: usize| -> Vec<f32> {
            (0..n * 2).map(|_| c + 0.1 * r.normal()).collect()
        };
        let mut real = cluster(&mut r, 0.0, 300);
        real.extend(cluster(&mut r, 10.0, 300));
        let fake = cluster(&mut r, 0.0, 600);
        let (p, rec) = precision_recall(&real, &fake, 2, 3);
        assert!(p > 0.97, "{p}");
        assert!((rec - 0.5).abs() < 0.03, "{rec}");
    }

    #[test]
    fn the_score_is_k_for_confident_balanced_classes_and_1_for_uniform() {
        let k = 4;
        let confident: Vec<f32> = (0..8)
            .flat_map(|i| (0..k).map(move |j| if j == i % k { 1.0 } else { 0.0 }))
            .collect();
        assert!((classifier_score(&confident, k) - 4.0).abs() < 1e-9);
        assert!((classifier_score(&[0.25; 16], k) - 1.0).abs() < 1e-9);
    }
}
