//! AdamW with bias correction, global-norm gradient clipping, and learning
//! rate schedules.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// Adam hyperparameters. With `weight_decay = 0` this is PyTorch's Adam.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// beta1.
    pub beta1: f32,
    /// beta2.
    pub beta2: f32,
    /// epsilon.
    pub eps: f32,
    /// Decoupled weight decay (AdamW); 0 for Adam.
    pub weight_decay: f32,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

/// Elements per parallel chunk: large enough that rayon's overhead vanishes.
const CHUNK: usize = 1 << 15;

/// One AdamW step at step number `t` (1-based) with learning rate `lr`:
/// `m = b1 m + (1-b1) g`, `v = b2 v + (1-b2) g^2`,
/// `p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps) + lr wd p`.
pub fn adam_step(
    cfg: &AdamConfig,
    params: &mut [f32],
    grads: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    t: u64,
    lr: f32,
) {
    let bc1 = 1.0 - cfg.beta1.powi(t as i32);
    let bc2 = 1.0 - cfg.beta2.powi(t as i32);
    let (b1, b2, eps, wd) = (cfg.beta1, cfg.beta2, cfg.eps, cfg.weight_decay);
    params
        .par_chunks_mut(CHUNK)
        .zip(grads.par_chunks_mut(CHUNK))
        .zip(m.par_chunks_mut(CHUNK).zip(v.par_chunks_mut(CHUNK)))
        .for_each(|((p, g), (m, v))| {
            adam_chunk(p, g, m, v, [b1, b2, eps, wd, lr, 1.0 / bc1, 1.0 / bc2])
        });
}

/// [`adam_step`] over a model's flat buffers, with weight decay only on
/// the tensors `layout` marks for it.
#[allow(clippy::too_many_arguments)]
pub fn adam_step_layout(
    cfg: &AdamConfig,
    layout: &super::params::Layout,
    params: &mut [f32],
    grads: &mut [f32],
    m: &mut [f32],
    v: &mut [f32],
    t: u64,
    lr: f32,
) {
    if cfg.weight_decay == 0.0 || layout.entries.iter().all(|e| e.decay) {
        return adam_step(cfg, params, grads, m, v, t, lr);
    }
    // Runs of neighbouring tensors that share the flag take one call each.
    let mut start = 0;
    let entries = &layout.entries;
    while start < entries.len() {
        let decay = entries[start].decay;
        let mut end = start;
        while end < entries.len() && entries[end].decay == decay {
            end += 1;
        }
        let r = entries[start].offset..entries[end - 1].range().end;
        let c = AdamConfig {
            weight_decay: if decay { cfg.weight_decay } else { 0.0 },
            ..*cfg
        };
        adam_step(
            &c,
            &mut params[r.clone()],
            &mut grads[r.clone()],
            &mut m[r.clone()],
            &mut v[r],
            t,
            lr,
        );
        start = end;
    }
}

super::fastmath::dispatch! {
    fn adam_chunk(p: &mut [f32], g: &mut [f32], m: &mut [f32], v: &mut [f32], k: [f32; 7]) {
        let [b1, b2, eps, wd, lr, ibc1, ibc2] = k;
        let n = p.len().min(g.len()).min(m.len()).min(v.len());
        let (p, g, m, v) = (&mut p[..n], &mut g[..n], &mut m[..n], &mut v[..n]);
        for i in 0..n {
            let gi = g[i];
            g[i] = 0.0;
            m[i] = b1 * m[i] + (1.0 - b1) * gi;
            v[i] = b2 * v[i] + (1.0 - b2) * gi * gi;
            let mhat = m[i] * ibc1;
            let vhat = v[i] * ibc2;
            p[i] -= lr * (mhat / (vhat.sqrt() + eps) + wd * p[i]);
        }
    }
}

/// `dst += src`, then `src = 0`: sums one replica's gradients into another's
/// and leaves it ready for the next step.
pub fn add_and_clear(dst: &mut [f32], src: &mut [f32]) {
    dst.par_chunks_mut(CHUNK)
        .zip(src.par_chunks_mut(CHUNK))
        .for_each(|(d, s)| add_clear_chunk(d, s));
}

super::fastmath::dispatch! {
    fn add_clear_chunk(d: &mut [f32], s: &mut [f32]) {
        for (d, s) in d.iter_mut().zip(s.iter_mut()) {
            *d += *s;
            *s = 0.0;
        }
    }
}

/// Scales `grads` so their global L2 norm is at most `max_norm`; returns
/// the norm before clipping. `max_norm <= 0` only measures.
pub fn clip_grad_norm(grads: &mut [f32], max_norm: f32) -> f32 {
    let sq: f64 = grads.par_chunks(CHUNK).map(sum_sq).sum();
    let norm = sq.sqrt() as f32;
    if max_norm > 0.0 && norm > max_norm {
        let s = max_norm / (norm + 1e-6);
        grads.par_chunks_mut(CHUNK).for_each(|c| scale(c, s));
    }
    norm
}

// `sum g^2` in f64, in eight lanes (one f64 running sum is a chain of
// dependent adds, and was a tenth of a small model's optimizer step).
super::fastmath::dispatch! {
    fn sum_sq(c: &[f32]) -> f64 {
        let mut acc = [0f64; 8];
        let chunks = c.chunks_exact(8);
        let tail = chunks.remainder();
        for ch in chunks {
            for (a, &g) in acc.iter_mut().zip(ch) {
                *a += (g as f64) * (g as f64);
            }
        }
        acc.iter().sum::<f64>() + tail.iter().map(|&g| (g as f64) * (g as f64)).sum::<f64>()
    }
}

super::fastmath::dispatch! {
    fn scale(c: &mut [f32], s: f32) {
        c.iter_mut().for_each(|g| *g *= s);
    }
}

/// How the learning rate moves over training.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// The same rate throughout.
    #[default]
    Constant,
    /// Linear warm-up, then a cosine decay to a tenth of the peak.
    Cosine,
}

/// The learning rate at step `t` (1-based) of `total`.
pub fn lr_at(schedule: Schedule, peak: f32, t: u64, warmup: u64, total: u64) -> f32 {
    match schedule {
        Schedule::Constant => peak,
        Schedule::Cosine => {
            if t <= warmup && warmup > 0 {
                return peak * t as f32 / warmup as f32;
            }
            let min = 0.1 * peak;
            let span = total.saturating_sub(warmup).max(1);
            let progress = ((t - warmup.min(t)) as f32 / span as f32).min(1.0);
            min + 0.5 * (peak - min) * (1.0 + (std::f32::consts::PI * progress).cos())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adam_first_step_moves_by_lr_against_the_gradient() {
        // After one step with bias correction, mhat/sqrt(vhat) = sign(g).
        let cfg = AdamConfig::default();
        let mut p = vec![1.0f32, -2.0, 0.5];
        let mut g = vec![0.3f32, -4.0, 0.0];
        let (mut m, mut v) = (vec![0.0; 3], vec![0.0; 3]);
        adam_step(&cfg, &mut p, &mut g, &mut m, &mut v, 1, 0.01);
        assert_eq!(g, [0.0; 3], "the step leaves the gradients zeroed");
        assert!(
            (p[0] - 0.99).abs() < 1e-6 && (p[1] + 1.99).abs() < 1e-6 && p[2] == 0.5,
            "{p:?}"
        );
        // Decoupled weight decay shrinks a parameter with zero gradient.
        let cfg = AdamConfig {
            weight_decay: 0.1,
            ..cfg
        };
        let mut q = vec![2.0f32];
        adam_step(&cfg, &mut q, &mut [0.0], &mut [0.0], &mut [0.0], 1, 0.5);
        assert!((q[0] - 1.9).abs() < 1e-6);
    }

    #[test]
    fn weight_decay_skips_vectors_and_embeddings() {
        let mut l = super::super::params::Layout::default();
        l.push("w", &[1, 2]);
        l.push("b", &[1]);
        l.push_no_decay("emb", &[1, 1]);
        let cfg = AdamConfig {
            weight_decay: 0.1,
            ..AdamConfig::default()
        };
        let mut p = vec![2.0f32; 4];
        let (mut m, mut v) = (vec![0.0; 4], vec![0.0; 4]);
        adam_step_layout(&cfg, &l, &mut p, &mut [0.0; 4], &mut m, &mut v, 1, 0.5);
        assert_eq!(p, [1.9, 1.9, 2.0, 2.0]);
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let mut g = vec![3.0f32, 4.0];
        assert_eq!(clip_grad_norm(&mut g, 0.0), 5.0);
        assert_eq!(g, [3.0, 4.0]);
        clip_grad_norm(&mut g, 1.0);
        assert!((g[0] - 0.6).abs() < 1e-5 && (g[1] - 0.8).abs() < 1e-5);
    }

    #[test]
    fn cosine_schedule_warms_up_and_decays() {
        let s = Schedule::Cosine;
        assert_eq!(lr_at(s, 1.0, 5, 10, 110), 0.5);
        assert_eq!(lr_at(s, 1.0, 10, 10, 110), 1.0);
        assert!((lr_at(s, 1.0, 60, 10, 110) - 0.55).abs() < 1e-6);
        assert!((lr_at(s, 1.0, 110, 10, 110) - 0.1).abs() < 1e-6);
        assert_eq!(lr_at(Schedule::Constant, 0.3, 7, 0, 9), 0.3);
    }
}
