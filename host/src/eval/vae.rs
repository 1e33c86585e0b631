//! VAE evaluation: the test ELBO loss (as PyTorch's example defines it), an
//! importance-weighted NLL estimate, and the reconstruction error.

use crate::data::inputs::Images;
use crate::models::vae::{Vae, VaeActs};
use crate::nn::gemm::Threads;
use crate::rng::Rng;
use serde::Serialize;

/// Rows per evaluation batch.
const EVAL_BATCH: usize = 1000;

/// The ELBO loss over a set: `(loss, reconstruction, kl)`, each the mean per
/// image in nats. z is sampled once per image, as in PyTorch's example;
/// `seed` fixes that noise.
pub fn elbo(m: &Vae, p: &[f32], data: &Images, seed: u64, th: Threads) -> (f64, f64, f64) {
    let mut a = VaeActs::new(m, EVAL_BATCH.min(data.len().max(1)));
    let mut rng = Rng::new(seed);
    let (d, z) = (data.d, m.cfg.latent);
    let (mut rec, mut kl) = (0f64, 0f64);
    for start in (0..data.len()).step_by(a.cap) {
        let n = a.cap.min(data.len() - start);
        a.x[..n * d].copy_from_slice(&data.x[start * d..(start + n) * d]);
        a.labels[..n].copy_from_slice(&data.labels[start..start + n]);
        a.draw_eps(&mut rng, n, z);
        m.forward(p, &mut a, n, false, th);
        rec += a.rec[..n].iter().map(|&v| v as f64).sum::<f64>();
        kl += a.kl[..n].iter().map(|&v| v as f64).sum::<f64>();
    }
    let n = data.len().max(1) as f64;
    ((rec + kl) / n, rec / n, kl / n)
}

/// The importance-weighted estimate of -log p(x) with `k` samples per image
/// (Burda et al.): `-log (1/k) sum_j p(x|z_j) p(z_j) / q(z_j|x)`, mean per image.
pub fn iwae_nll(m: &Vae, p: &[f32], data: &Images, k: usize, seed: u64, th: Threads) -> f64 {
    let (d, z, nc) = (data.d, m.cfg.latent, m.cfg.n_classes);
    let per = (EVAL_BATCH / k.max(1)).max(1);
    let mut enc = VaeActs::new(m, per);
    let mut dec = VaeActs::new(m, per * k);
    let mut rng = Rng::new(seed);
    let mut total = 0f64;
    let mut logw = vec![0f64; per * k];
    for start in (0..data.len()).step_by(per) {
        let n = per.min(data.len() - start);
        enc.x[..n * d].copy_from_slice(&data.x[start * d..(start + n) * d]);
        enc.labels[..n].copy_from_slice(&data.labels[start..start + n]);
        m.encode(p, &mut enc, n, th);
        for i in 0..n {
            let (mu, lv) = enc.stats[i * 2 * z..(i + 1) * 2 * z].split_at(z);
            for j in 0..k {
                let r = i * k + j;
                dec.x[r * d..(r + 1) * d].copy_from_slice(&enc.x[i * d..(i + 1) * d]);
                dec.labels[r] = enc.labels[i];
                let mut lq = 0f64;
                let mut lp = 0f64;
                for t in 0..z {
                    let e = rng.normal();
                    let zz = mu[t] + e * (0.5 * lv[t]).exp();
                    dec.dec_in[r * (z + nc) + t] = zz;
                    lq += -0.5 * (e as f64).powi(2) - 0.5 * lv[t] as f64;
                    lp += -0.5 * (zz as f64).powi(2);
                }
                if nc > 0 {
                    let row = &mut dec.dec_in[r * (z + nc) + z..(r + 1) * (z + nc)];
                    row.fill(0.0);
                    if let Some(v) = row.get_mut(dec.labels[r] as usize) {
                        *v = 1.0;
                    }
                }
                // The ln(2 pi) terms of p(z) and q(z|x) cancel.
                logw[r] = lp - lq;
            }
        }
        m.decode(p, &mut dec, n * k, th);
        m.reconstruction(&mut dec, n * k, false);
        for i in 0..n {
            let w: Vec<f64> = (0..k)
                .map(|j| logw[i * k + j] - dec.rec[i * k + j] as f64)
                .collect();
            let mx = w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let lse = mx + w.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
            total += -(lse - (k as f64).ln());
        }
    }
    total / data.len().max(1) as f64
}

/// Reconstruction error with z = mu: mean squared error per pixel, and the
/// reconstruction loss per image (nats).
pub fn recon_error(m: &Vae, p: &[f32], data: &Images, th: Threads) -> (f64, f64) {
    let mut a = VaeActs::new(m, EVAL_BATCH.min(data.len().max(1)));
    let d = data.d;
    let (mut se, mut nll) = (0f64, 0f64);
    let mut px = vec![0f32; a.cap * d];
    for start in (0..data.len()).step_by(a.cap) {
        let n = a.cap.min(data.len() - start);
        a.x[..n * d].copy_from_slice(&data.x[start * d..(start + n) * d]);
        a.labels[..n].copy_from_slice(&data.labels[start..start + n]);
        a.eps[..n * m.cfg.latent].fill(0.0);
        m.forward(p, &mut a, n, false, th);
        nll += a.rec[..n].iter().map(|&v| v as f64).sum::<f64>();
        m.to_pixels(&mut px[..n * d], &a.out[..n * d]);
        se += px[..n * d]
            .iter()
            .zip(&a.x[..n * d])
            .map(|(y, x)| ((y - x) as f64).powi(2))
            .sum::<f64>();
    }
    let n = data.len().max(1) as f64;
    (se / (n * d as f64), nll / n)
}

/// What `edgegen eval` reports.
#[derive(Debug, Clone, Serialize)]
pub struct VaeEval {
    /// Test images.
    pub n: usize,
    /// BCE (or Gaussian NLL) summed over pixels plus KL, mean per image.
    pub test_loss_nats: f64,
    /// Its reconstruction part.
    pub test_rec_nats: f64,
    /// Its KL part.
    pub test_kl_nats: f64,
    /// Importance-weighted NLL estimate.
    pub iwae_nll_nats: f64,
    /// Samples per image for it.
    pub iwae_k: usize,
    /// Mean squared error per pixel of reconstructions from z = mu.
    pub recon_mse: f64,
    /// Reconstruction loss per image at z = mu (nats).
    pub recon_nats_at_mu: f64,
}

/// Runs every evaluation.
pub fn evaluate(m: &Vae, p: &[f32], test: &Images, k: usize, seed: u64, th: Threads) -> VaeEval {
    let (loss, rec, kl) = elbo(m, p, test, seed, th);
    let (mse, nll_mu) = recon_error(m, p, test, th);
    VaeEval {
        n: test.len(),
        test_loss_nats: loss,
        test_rec_nats: rec,
        test_kl_nats: kl,
        iwae_nll_nats: iwae_nll(m, p, test, k, seed ^ 0x1A4E, th),
        iwae_k: k,
        recon_mse: mse,
        recon_nats_at_mu: nll_mu,
    }
}
