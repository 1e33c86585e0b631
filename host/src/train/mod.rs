//! Training runs. The run loop ([`run::run`]) is the same for every family:
//! config, `--resume`, `--init-from`, `metrics.jsonl`, the progress bar,
//! the atomic checkpoints and the per-epoch pictures. A family plugs in
//! through [`Trainer`]: it builds its model, steps an epoch, validates and
//! draws its pictures.

pub mod audio;
pub mod checkpoint;
pub mod classifier;
pub mod config;
pub mod gan;
pub mod run;
pub mod rundir;
pub mod text;
pub mod twin;
pub mod vae;

use crate::models::Family;
use crate::nn::gemm::Threads;
use crate::nn::optim::{self, AdamConfig};
use crate::nn::params::Layout;
use crate::provenance::Source;
use crate::rng::Rng;
use anyhow::Result;
use checkpoint::{GroupState, Spec, TrainState};
use config::TrainConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// One line of `metrics.jsonl`: the epoch, the family's named values
/// (`train_loss`, `d_loss`, ...) and the timings every run records.
///
/// An "epoch" is one round of training between two validations: a pass
/// over the data for the image families, `--eval-interval` steps for text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// 1-based epoch (round) number.
    pub epoch: usize,
    /// The family's values, by name: numbers, and text such as a sample.
    #[serde(flatten)]
    pub values: BTreeMap<String, serde_json::Value>,
    /// Wall time of the epoch's training steps, without validation.
    pub seconds: f64,
    /// Training examples per second (tokens for sequence models).
    pub samples_per_s: f64,
    /// Wall time of the validation pass.
    pub val_seconds: f64,
    /// Learning rate (of the first parameter group) at the epoch's last step.
    pub lr: f32,
}

impl EpochMetrics {
    /// The value named `key`, NaN if the family does not record it.
    pub fn get(&self, key: &str) -> f64 {
        self.values
            .get(key)
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(f64::NAN)
    }

    /// The text named `key`, if the family records it.
    pub fn text(&self, key: &str) -> Option<&str> {
        self.values.get(key).and_then(serde_json::Value::as_str)
    }
}

/// What a family's validation pass found.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    /// Named values for the metrics line.
    pub values: Vec<(&'static str, f64)>,
    /// Named texts for the metrics line (a sample of a text model).
    pub texts: Vec<(&'static str, String)>,
    /// The score that picks `best.safetensors` (lower is better); `None`
    /// when the family has none, and then every epoch's state is the best.
    pub score: Option<f64>,
}

/// `loss.png`: its title, its axes, and `(label, metric key)` per curve.
/// The per-epoch line prints the same values.
#[derive(Debug, Clone, Copy)]
pub struct Curves {
    /// Chart title.
    pub title: &'static str,
    /// The metric on the x axis: `epoch`, or a family's value such as
    /// `iter`.
    pub x: &'static str,
    /// Y-axis label.
    pub y: &'static str,
    /// `(label, key)` of each curve.
    pub series: &'static [(&'static str, &'static str)],
}

/// The curves `family`'s runs draw in their `loss.png`, which `edgegen
/// curves` draws by default.
pub fn curves_of(family: Family) -> Curves {
    match family {
        Family::Vae => vae::VaeTrainer::CURVES,
        Family::Gan => gan::GanTrainer::CURVES,
        Family::Classifier => classifier::ClassifierTrainer::CURVES,
        Family::Text => text::TextTrainer::CURVES,
        Family::Audio => audio::AudioTrainer::CURVES,
    }
}

/// A model family's part of a training run.
pub trait Trainer: Sized {
    /// The family, stored in the checkpoint.
    const FAMILY: Family;
    /// What the family trains on.
    type Data;
    /// `loss.png` and the per-epoch line.
    const CURVES: Curves;
    /// The built-in sample a run trains on without `--data`.
    const BUILTIN_DATA: &'static str = crate::data::BUILTIN_MNIST;

    /// The rounds of training (each followed by validation) the run does
    /// in all: `--epochs` unless the family counts its run otherwise.
    fn rounds(cfg: &TrainConfig) -> usize {
        cfg.epochs
    }

    /// What a round is called, and the flag and value that set how many
    /// there are, for messages: ("epochs", "--epochs is 10").
    fn length(cfg: &TrainConfig) -> (&'static str, String) {
        ("epochs", format!("--epochs is {}", cfg.epochs))
    }

    /// Loads (and splits) the data `cfg` names.
    fn load_data(cfg: &TrainConfig) -> Result<Self::Data>;
    /// Notes from loading that the user should see.
    fn notes(data: &Self::Data) -> &[String];
    /// Training examples in all (0 stops the run before it starts).
    fn n_train(data: &Self::Data) -> usize;
    /// Examples (symbols for a sequence model) the round starting at `st`
    /// trains on: the progress bar's length and the rate's numerator.
    fn round_len(&self, _st: &TrainState, data: &Self::Data) -> usize {
        Self::n_train(data)
    }
    /// The model the settings and the data imply, with its buffers.
    fn build(cfg: &TrainConfig, data: &Self::Data, threads: Threads) -> Result<Self>;
    /// What the checkpoint stores of the model.
    fn spec(&self) -> Spec<'_>;
    /// Fresh parameters and buffers, drawn from `rng`.
    fn init(&self, rng: &mut Rng) -> (Vec<GroupState>, Vec<f32>);
    /// What `config.json` says of the model besides the settings.
    fn describe(&self, data: &Self::Data) -> serde_json::Value;
    /// One pass over the training data; `progress(done, loss)` after each
    /// batch. Returns the epoch's named values.
    fn train_epoch(
        &mut self,
        st: &mut TrainState,
        data: &Self::Data,
        progress: &mut dyn FnMut(usize, f64),
    ) -> Vec<(&'static str, f64)>;
    /// The validation pass after an epoch.
    fn validate(&mut self, st: &TrainState, data: &Self::Data) -> Validation;
    /// The learning rate of the first group at the state's step.
    fn lr(&self, st: &TrainState) -> f32;
    /// The family's pictures (`samples.png`, ...) drawn from `st`, tagged
    /// as coming from `from`.
    fn pictures(&self, st: &TrainState, data: &Self::Data, dir: &Path, from: &Source)
    -> Result<()>;
}

/// Rounds of a run counted in optimizer steps (text, audio): `iters`
/// steps, a validation every `every`; one round if the table is absent.
pub fn step_rounds(iters_every: Option<(u64, u64)>) -> usize {
    iters_every.map_or(1, |(iters, every)| iters.div_ceil(every.max(1)) as usize)
}

/// [`Trainer::length`] of a run counted in steps.
pub fn step_length(iters_every: Option<(u64, u64)>) -> (&'static str, String) {
    let (iters, every) = iters_every.unwrap_or((0, 1));
    (
        "rounds",
        format!(
            "--iters {iters} makes {} rounds of --eval-interval {every}",
            step_rounds(iters_every)
        ),
    )
}

/// One parameter group's optimizer: Adam(W) with its own settings.
#[derive(Debug, Clone, Copy)]
pub struct GroupOptimizer {
    /// Betas, epsilon and weight decay.
    pub adam: AdamConfig,
    /// Peak learning rate.
    pub lr: f32,
}

impl GroupOptimizer {
    /// The run's common optimizer settings at `lr`.
    pub fn from_config(cfg: &TrainConfig, lr: f32) -> Self {
        Self {
            adam: AdamConfig {
                beta1: cfg.beta1,
                beta2: cfg.beta2,
                weight_decay: cfg.weight_decay,
                ..AdamConfig::default()
            },
            lr,
        }
    }

    /// One step of group `g` with its gradients `grads` (left zeroed) at
    /// learning rate `lr`. Weight decay skips the tensors its layout marks
    /// (norms, biases, embeddings).
    pub fn step(&self, layout: &Layout, g: &mut GroupState, grads: &mut [f32], lr: f32) {
        g.step += 1;
        optim::adam_step_layout(
            &self.adam,
            layout,
            &mut g.params,
            grads,
            &mut g.m,
            &mut g.v,
            g.step,
            lr,
        );
    }
}

/// The learning rate at run step `step` of `total` for peak `peak`, by the
/// run's schedule.
pub fn lr_at(cfg: &TrainConfig, peak: f32, step: u64, total: u64) -> f32 {
    optim::lr_at(cfg.schedule, peak, step, cfg.warmup_steps, total)
}
