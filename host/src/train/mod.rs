//! Training runs: the epoch loop, validation, checkpoints, metrics and the
//! pictures a run leaves in its folder.

pub mod checkpoint;
pub mod config;
pub mod run;

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

/// Everything that changes while a VAE trains.
pub struct VaeTrainer {
    /// The model.
    pub model: Vae,
    /// Batch buffers.
    pub acts: VaeActs,
    /// Parameters, Adam moments and counters.
    pub state: TrainState,
    /// Gradients.
    pub grads: Vec<f32>,
    /// The settings.
    pub cfg: TrainConfig,
    /// GEMM threads.
    pub threads: Threads,
    /// Steps in the whole run, for the schedule.
    pub total_steps: u64,
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
        let acts = VaeActs::new(&model, cfg.batch);
        let grads = vec![0.0; model.n_params()];
        let total_steps = (cfg.epochs * n_train.div_ceil(cfg.batch)) as u64;
        Self {
            model,
            acts,
            state,
            grads,
            cfg,
            threads,
            total_steps,
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
        let mut rng = Rng::from_state(self.state.rng);
        let (d, z, b) = (train.d, self.model.cfg.latent, self.cfg.batch);
        self.order.clear();
        self.order.extend(0..train.len());
        rng.shuffle(&mut self.order);
        let adam = AdamConfig {
            weight_decay: self.cfg.weight_decay,
            ..AdamConfig::default()
        };
        let mut sum = 0f64;
        let mut done = 0;
        for chunk in self.order.chunks(b) {
            let n = chunk.len();
            for (r, &i) in chunk.iter().enumerate() {
                self.acts.x[r * d..(r + 1) * d].copy_from_slice(&train.x[i * d..(i + 1) * d]);
                self.acts.labels[r] = train.labels[i];
            }
            self.acts.draw_eps(&mut rng, n, z);
            // The gradients are zero here: the optimizer step clears them.
            let (m, th) = (&self.model, self.threads);
            m.forward(&self.state.params, &mut self.acts, n, true, th);
            m.backward(&self.state.params, &mut self.grads, &mut self.acts, n, th);
            let batch_loss: f64 = self.acts.rec[..n]
                .iter()
                .chain(&self.acts.kl[..n])
                .map(|&v| v as f64)
                .sum();
            sum += batch_loss;
            if self.cfg.clip > 0.0 {
                optim::clip_grad_norm(&mut self.grads, self.cfg.clip);
            }
            self.state.step += 1;
            let lr = self.lr();
            let s = &mut self.state;
            optim::adam_step(
                &adam,
                &mut s.params,
                &mut self.grads,
                &mut s.m,
                &mut s.v,
                s.step,
                lr,
            );
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
