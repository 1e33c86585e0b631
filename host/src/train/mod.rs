//! Training runs: the epoch loop, validation, checkpoints, metrics and the
//! pictures a run leaves in its folder.

pub mod checkpoint;
pub mod config;
pub mod run;
pub mod rundir;

use crate::data::{self, split};
use crate::models::vae::{Vae, VaeActs};
use crate::nn::gemm::Threads;
use crate::nn::optim::{self, AdamConfig};
use crate::rng::Rng;
use checkpoint::TrainState;
use config::TrainConfig;
use serde::{Deserialize, Serialize};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss per image over the epoch (nats).
    pub train_loss: f64,
    /// Mean validation loss per image (nats).
    pub val_loss: f64,
    /// Wall time of the epoch's training steps, without validation.
    pub seconds: f64,
    /// Training images per second.
    pub samples_per_s: f64,
    /// Wall time of the validation pass.
    pub val_seconds: f64,
    /// Learning rate at the epoch's last step.
    pub lr: f32,
}

/// Images as model inputs: `(N, D)` values in [0, 1] and labels.
#[derive(Debug, Clone)]
pub struct Images {
    /// Row-major `(N, D)`.
    pub x: Vec<f32>,
    /// One label per row (zeros if unlabeled).
    pub labels: Vec<u32>,
    /// D.
    pub d: usize,
}

impl Images {
    /// Normalizes an image set to [0, 1].
    pub fn from_set(s: &data::images::ImageSet) -> Self {
        Self {
            x: split::Normalize::UnitRange.apply(s),
            labels: if s.labels.is_empty() {
                vec![0; s.len()]
            } else {
                s.labels.clone()
            },
            d: s.image_len(),
        }
    }
    /// Row count.
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// How a training step uses the threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Parallel {
    /// One copy of the network; every GEMM is split across the threads by
    /// faer. The default: `cargo bench --bench vae` measured it as fast as
    /// `batch` or faster on the 2-core machine (1.83 vs 2.04 s per epoch).
    #[default]
    Gemm,
    /// Split each batch across the threads; each runs the whole network on
    /// its rows with single-threaded GEMMs, then the gradients are summed.
    Batch,
}

/// One thread's share of a batch: its buffers and its gradient sum.
struct Replica {
    acts: VaeActs,
    grads: Vec<f32>,
    loss: f64,
}

/// Everything that changes while a VAE trains.
pub struct VaeTrainer {
    /// The model.
    pub model: Vae,
    /// Parameters, Adam moments and counters.
    pub state: TrainState,
    /// The settings.
    pub cfg: TrainConfig,
    /// Threads in use.
    pub threads: Threads,
    /// Steps in the whole run, for the schedule.
    pub total_steps: u64,
    replicas: Vec<Replica>,
    /// (B, Z) noise for the whole batch, drawn on one thread so that the
    /// stream does not depend on how the batch is split.
    eps: Vec<f32>,
    order: Vec<usize>,
}

impl VaeTrainer {
    /// A trainer for `model` starting from `state`.
    pub fn new(
        model: Vae,
        state: TrainState,
        cfg: TrainConfig,
        threads: Threads,
        n_train: usize,
    ) -> Self {
        let n_rep = match cfg.parallel {
            Parallel::Batch => threads.0.clamp(1, cfg.batch),
            Parallel::Gemm => 1,
        };
        let cap = cfg.batch.div_ceil(n_rep);
        let replicas = (0..n_rep)
            .map(|_| Replica {
                acts: VaeActs::new(&model, cap),
                grads: vec![0.0; model.n_params()],
                loss: 0.0,
            })
            .collect();
        let total_steps = (cfg.epochs * n_train.div_ceil(cfg.batch)) as u64;
        let eps = vec![0.0; cfg.batch * model.cfg.latent];
        Self {
            model,
            state,
            cfg,
            threads,
            total_steps,
            replicas,
            eps,
            order: vec![],
        }
    }

    /// Fresh parameters (PyTorch's initialization) and a zeroed optimizer.
    pub fn fresh_state(model: &Vae, seed: u64) -> TrainState {
        let mut rng = Rng::new(seed);
        let n = model.n_params();
        let mut params = vec![0.0; n];
        model.init(&mut params, &mut rng);
        TrainState {
            params,
            m: vec![0.0; n],
            v: vec![0.0; n],
            epoch: 0,
            step: 0,
            rng: rng.state(),
            best_val: f64::INFINITY,
        }
    }

    /// One pass over `train` in a fresh random order; returns the mean loss
    /// per image. `on_batch(done, loss_per_image)` reports progress.
    pub fn train_epoch(&mut self, train: &Images, mut on_batch: impl FnMut(usize, f64)) -> f64 {
        use rayon::prelude::*;
        let mut rng = Rng::from_state(self.state.rng);
        let (d, z, b) = (train.d, self.model.cfg.latent, self.cfg.batch);
        self.order.clear();
        self.order.extend(0..train.len());
        rng.shuffle(&mut self.order);
        let adam = AdamConfig {
            weight_decay: self.cfg.weight_decay,
            ..AdamConfig::default()
        };
        // Within a replica the GEMMs get the threads the replicas leave.
        let inner = Threads((self.threads.0 / self.replicas.len()).max(1));
        let mut sum = 0f64;
        let mut done = 0;
        for chunk in self.order.chunks(b) {
            let n = chunk.len();
            for e in &mut self.eps[..n * z] {
                *e = rng.normal();
            }
            let per = n.div_ceil(self.replicas.len());
            let (model, params, eps) = (&self.model, &self.state.params, &self.eps);
            self.replicas
                .par_iter_mut()
                .enumerate()
                .for_each(|(r, rep)| {
                    let (lo, hi) = ((r * per).min(n), ((r + 1) * per).min(n));
                    let rows = hi - lo;
                    rep.loss = 0.0;
                    if rows == 0 {
                        return;
                    }
                    let a = &mut rep.acts;
                    for (j, &i) in chunk[lo..hi].iter().enumerate() {
                        a.x[j * d..(j + 1) * d].copy_from_slice(&train.x[i * d..(i + 1) * d]);
                        a.labels[j] = train.labels[i];
                    }
                    a.eps[..rows * z].copy_from_slice(&eps[lo * z..hi * z]);
                    model.forward(params, a, rows, true, inner);
                    // The gradients are zero here: the optimizer step clears them.
                    model.backward(params, &mut rep.grads, a, rows, inner);
                    rep.loss = a.rec[..rows]
                        .iter()
                        .chain(&a.kl[..rows])
                        .map(|&v| v as f64)
                        .sum();
                });
            let batch_loss: f64 = self.replicas.iter().map(|r| r.loss).sum();
            sum += batch_loss;
            let (first, rest) = self.replicas.split_at_mut(1);
            let grads = &mut first[0].grads;
            for r in rest {
                optim::add_and_clear(grads, &mut r.grads);
            }
            if self.cfg.clip > 0.0 {
                optim::clip_grad_norm(grads, self.cfg.clip);
            }
            self.state.step += 1;
            let lr = optim::lr_at(
                self.cfg.schedule,
                self.cfg.lr,
                self.state.step,
                self.cfg.warmup_steps,
                self.total_steps,
            );
            let s = &mut self.state;
            optim::adam_step(&adam, &mut s.params, grads, &mut s.m, &mut s.v, s.step, lr);
            done += n;
            on_batch(done, batch_loss / n as f64);
        }
        self.state.rng = rng.state();
        sum / train.len().max(1) as f64
    }

    /// The learning rate at the current step.
    pub fn lr(&self) -> f32 {
        optim::lr_at(
            self.cfg.schedule,
            self.cfg.lr,
            self.state.step,
            self.cfg.warmup_steps,
            self.total_steps,
        )
    }
}
