//! The classifier's part of a training run: its settings (`[classifier]`),
//! a cross-entropy step, validation accuracy, and after every epoch the
//! test accuracy (`test.json`) and confusion matrix (`confusion.png`) of
//! the state being saved.

use super::checkpoint::{Checkpoint, GroupState, Spec, TrainState};
use super::config::TrainConfig;
use super::run::files;
use super::vae::load_images;
use super::{Curves, GroupOptimizer, Trainer, Validation};
use crate::data::inputs::{ImageSplits, Images};
use crate::models::Family;
use crate::models::classifier::{Classifier, ClassifierActs, ClassifierConfig};
use crate::nn::gemm::Threads;
use crate::nn::norm::Mode;
use crate::nn::optim;
use crate::plot;
use crate::provenance::{Provenance, Source};
use crate::rng::Rng;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The classifier's one parameter group.
pub const GROUP: &str = "cls";

/// The classifier's settings: the `[classifier]` table of a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClassifierSettings {
    /// Channels of the two convolutions.
    pub widths: [usize; 2],
    /// The feature width the evaluation suite compares.
    pub features: usize,
    /// Dropout before the last layer.
    pub dropout: f32,
}

impl Default for ClassifierSettings {
    fn default() -> Self {
        Self {
            widths: [32, 64],
            features: 128,
            dropout: 0.3,
        }
    }
}

impl ClassifierSettings {
    /// Checks the settings; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        if self.widths.iter().any(|&w| w == 0 || w > 4096) {
            bail!(
                "--widths: expected two widths from 1 to 4096, found {:?}",
                self.widths
            );
        }
        if self.features == 0 || self.features > 1 << 16 {
            bail!("--features: expected 1 to 65536, found {}", self.features);
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("--dropout: expected 0 <= value < 1, found {}", self.dropout);
        }
        Ok(())
    }
}

/// The test-split report of `test.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestReport {
    /// The epoch whose state this is.
    pub epoch: usize,
    /// Test images.
    pub n: usize,
    /// Fraction classified right.
    pub test_accuracy: f64,
    /// Mean cross-entropy (nats).
    pub test_loss: f64,
    /// The classes, in label order.
    pub classes: Vec<String>,
    /// `confusion[true][predicted]`.
    pub confusion: Vec<Vec<u64>>,
}

/// The model a config and its data imply.
pub fn model_config(cfg: &TrainConfig, d: &ImageSplits) -> Result<ClassifierConfig> {
    let s = cfg.classifier_settings()?;
    Ok(ClassifierConfig {
        image_shape: d.shape,
        n_classes: d.classes.len(),
        widths: s.widths,
        features: s.features,
        dropout: s.dropout,
        log_mel: d.log_mel,
    })
}

/// A classifier's checkpoint contents.
pub fn spec(m: &Classifier) -> Spec<'_> {
    Spec {
        family: Family::Classifier,
        model: serde_json::to_value(&m.cfg).unwrap_or_default(),
        groups: vec![(GROUP, &m.layout)],
        buffers: &m.buffers,
    }
}

/// A classifier, its parameters and its buffers from a checkpoint; `by`
/// names what needs one.
pub fn load(ck: &Checkpoint, by: &str) -> Result<(Classifier, Vec<f32>, Vec<f32>)> {
    ck.expect(&[Family::Classifier], by)?;
    let m = Classifier::new(ck.model_config()?)
        .map_err(|e| anyhow::anyhow!("{}: model config: {e:#}", ck.path.display()))?;
    let st = ck.state(&spec(&m))?;
    let params = st
        .groups
        .into_iter()
        .next()
        .map(|g| g.params)
        .unwrap_or_default();
    Ok((m, params, st.buffers))
}

/// `(mean loss, accuracy, confusion)` of eval-mode predictions on `data`.
pub fn evaluate(
    m: &Classifier,
    p: &[f32],
    buffers: &[f32],
    data: &Images,
    a: &mut ClassifierActs,
    th: Threads,
) -> (f64, f64, Vec<Vec<u64>>) {
    let k = m.cfg.n_classes;
    let mut bufs = buffers.to_vec();
    let mut rng = Rng::new(0);
    let mut confusion = vec![vec![0u64; k]; k];
    let (mut loss, mut right) = (0f64, 0usize);
    for start in (0..data.len()).step_by(a.cap) {
        let n = a.cap.min(data.len() - start);
        a.set_pixels(&data.x[start * data.d..(start + n) * data.d]);
        a.labels[..n].copy_from_slice(&data.labels[start..start + n]);
        m.forward(p, &mut bufs, a, n, Mode::Eval, &mut rng, th);
        m.loss(a, n, false);
        for r in 0..n {
            loss += a.loss[r] as f64;
            let pred = argmax(&a.logits[r * k..(r + 1) * k]);
            let y = a.labels[r] as usize;
            right += usize::from(pred == y);
            if let Some(row) = confusion.get_mut(y) {
                row[pred] += 1;
            }
        }
    }
    let n = data.len().max(1) as f64;
    (loss / n, right as f64 / n, confusion)
}

/// The index of the largest value (the first, on ties).
pub fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv { (i, x) } else { (bi, bv) }
        })
        .0
}

/// Everything that changes while a classifier trains, besides its state.
pub struct ClassifierTrainer {
    /// The model.
    pub model: Classifier,
    /// The settings.
    pub cfg: TrainConfig,
    /// Threads in use.
    pub threads: Threads,
    /// Steps in the whole run, for the schedule.
    pub total_steps: u64,
    opt: GroupOptimizer,
    acts: ClassifierActs,
    grads: Vec<f32>,
    order: Vec<usize>,
    classes: Vec<String>,
}

impl Trainer for ClassifierTrainer {
    const FAMILY: Family = Family::Classifier;
    type Data = ImageSplits;
    const CURVES: Curves = Curves {
        x: "epoch",
        title: "classifier loss",
        y: "cross-entropy (nats)",
        series: &[("train", "train_loss"), ("validation", "val_loss")],
    };

    /// Images, or the log-mel images of labeled audio clips.
    fn load_data(cfg: &TrainConfig) -> Result<ImageSplits> {
        let path = crate::data::resolve(cfg.data.as_deref());
        let audio = path.starts_with(crate::data::audio::BUILTIN_FSDD)
            || crate::data::audio::is_audio_dir(std::path::Path::new(&path));
        if audio {
            let lm = crate::data::logmel::LogMel::default();
            return crate::data::inputs::load_audio_features(&path, lm, cfg.val_frac, cfg.seed);
        }
        load_images(cfg, Some("a classifier"))
    }

    fn notes(data: &ImageSplits) -> &[String] {
        &data.notes
    }

    fn n_train(data: &ImageSplits) -> usize {
        data.train.len()
    }

    fn build(cfg: &TrainConfig, data: &ImageSplits, threads: Threads) -> Result<Self> {
        let model = Classifier::new(model_config(cfg, data)?)?;
        Ok(Self {
            opt: GroupOptimizer::from_config(cfg, cfg.lr),
            acts: ClassifierActs::new(&model, cfg.batch),
            grads: vec![0.0; model.layout.total()],
            total_steps: (cfg.epochs * data.train.len().div_ceil(cfg.batch)) as u64,
            order: vec![],
            classes: data.classes.clone(),
            model,
            cfg: cfg.clone(),
            threads,
        })
    }

    fn spec(&self) -> Spec<'_> {
        spec(&self.model)
    }

    fn init(&self, rng: &mut Rng) -> (Vec<GroupState>, Vec<f32>) {
        let mut g = GroupState::zeros(GROUP, self.model.layout.total());
        let mut b = vec![0f32; self.model.buffers.total()];
        self.model.init(&mut g.params, &mut b, rng);
        (vec![g], b)
    }

    fn describe(&self, data: &ImageSplits) -> serde_json::Value {
        serde_json::json!({
            "model": self.model.cfg,
            "classes": data.classes,
            "parameters": self.model.layout.total(),
        })
    }

    fn train_epoch(
        &mut self,
        st: &mut TrainState,
        data: &ImageSplits,
        progress: &mut dyn FnMut(usize, f64),
    ) -> Vec<(&'static str, f64)> {
        let train = &data.train;
        let mut rng = Rng::from_state(st.rng);
        let (d, k, th) = (train.d, self.model.cfg.n_classes, self.threads);
        self.order.clear();
        self.order.extend(0..train.len());
        rng.shuffle(&mut self.order);
        let (mut loss, mut right, mut done) = (0f64, 0usize, 0usize);
        let order = std::mem::take(&mut self.order);
        for chunk in order.chunks(self.cfg.batch) {
            let n = chunk.len();
            let a = &mut self.acts;
            for (i, &j) in chunk.iter().enumerate() {
                for (o, &v) in a.x[i * d..(i + 1) * d].iter_mut().zip(train.row(j)) {
                    *o = 2.0 * v - 1.0;
                }
                a.labels[i] = train.labels[j];
            }
            let g = &mut st.groups[0];
            self.model
                .forward(&g.params, &mut st.buffers, a, n, Mode::Train, &mut rng, th);
            self.model.loss(a, n, true);
            self.model.backward(&g.params, &mut self.grads, a, n, th);
            let batch_loss: f64 = a.loss[..n].iter().map(|&v| v as f64).sum();
            for r in 0..n {
                right += usize::from(argmax(&a.logits[r * k..(r + 1) * k]) == a.labels[r] as usize);
            }
            if self.cfg.clip > 0.0 {
                optim::clip_grad_norm(&mut self.grads, self.cfg.clip);
            }
            st.step += 1;
            let lr = super::lr_at(&self.cfg, self.opt.lr, st.step, self.total_steps);
            self.opt.step(&self.model.layout, g, &mut self.grads, lr);
            loss += batch_loss;
            done += n;
            progress(done, batch_loss / n as f64);
        }
        self.order = order;
        st.rng = rng.state();
        let n = train.len().max(1) as f64;
        vec![("train_loss", loss / n), ("train_acc", right as f64 / n)]
    }

    fn validate(&mut self, st: &TrainState, data: &ImageSplits) -> Validation {
        let (loss, acc, _) = evaluate(
            &self.model,
            &st.groups[0].params,
            &st.buffers,
            &data.val,
            &mut self.acts,
            self.threads,
        );
        Validation {
            values: vec![("val_loss", loss), ("val_acc", acc)],
            score: Some(loss),
            texts: vec![],
        }
    }

    fn lr(&self, st: &TrainState) -> f32 {
        super::lr_at(&self.cfg, self.opt.lr, st.step, self.total_steps)
    }

    fn pictures(
        &self,
        st: &TrainState,
        data: &ImageSplits,
        dir: &Path,
        from: &Source,
    ) -> Result<()> {
        // The activations are the trainer's own; a copy keeps `&self`.
        let mut a = ClassifierActs::new(&self.model, self.acts.cap);
        let (loss, acc, confusion) = evaluate(
            &self.model,
            &st.groups[0].params,
            &st.buffers,
            &data.test,
            &mut a,
            self.threads,
        );
        let report = TestReport {
            epoch: st.epoch,
            n: data.test.len(),
            test_accuracy: acc,
            test_loss: loss,
            classes: self.classes.clone(),
            confusion: confusion.clone(),
        };
        crate::fsx::write_atomic(
            &dir.join(files::TEST_JSON),
            serde_json::to_string_pretty(&report)?.as_bytes(),
        )?;
        plot::confusion::confusion_png(
            &format!(
                "test set, epoch {}: {:.2}% of {} right",
                st.epoch,
                100.0 * acc,
                data.test.len()
            ),
            &confusion,
            &self.classes,
            &dir.join(files::CONFUSION_PNG),
            &Provenance::plot_of(from),
        )
    }
}
