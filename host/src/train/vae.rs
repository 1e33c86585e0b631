//! The VAE's part of a training run: its settings (`[vae]`), its step
//! (the batch split across replicas or the GEMMs across threads), its
//! validation (the ELBO) and its pictures.

use super::checkpoint::{Checkpoint, GroupState, Spec, TrainState};
use super::config::TrainConfig;
use super::run::files;
use super::{Curves, GroupOptimizer, Trainer, Validation};
use crate::data::inputs::{self, ImageSplits};
use crate::eval;
use crate::models::Family;
use crate::models::vae::{Vae, VaeActs, VaeConfig};
use crate::nn::gemm::Threads;
use crate::nn::optim;
use crate::plot;
use crate::provenance::{Provenance, Source};
use crate::rng::Rng;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The VAE's one parameter group.
pub const GROUP: &str = "vae";

/// The VAE's model settings: the `[vae]` table of a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VaeSettings {
    /// Condition on the class label.
    pub conditional: bool,
    /// Latent size Z.
    pub latent: usize,
    /// Hidden widths, encoder order; `None` takes [`VaeSettings::hidden`]'s
    /// default for the kind of model.
    pub hidden: Option<Vec<usize>>,
    /// `bernoulli` or `gaussian`.
    pub likelihood: String,
    /// Hidden activation.
    pub activation: String,
    /// How a step uses the threads.
    pub parallel: Parallel,
    /// Conditional models: the label also enters every decoder layer after
    /// the first (see `models::vae`). Runs stored before this key had false.
    pub label_every_layer: bool,
}

impl Default for VaeSettings {
    fn default() -> Self {
        Self {
            conditional: false,
            latent: 20,
            hidden: None,
            likelihood: "bernoulli".into(),
            activation: "relu".into(),
            parallel: Parallel::Gemm,
            label_every_layer: true,
        }
    }
}

impl VaeSettings {
    /// The hidden widths: as set, else 400 (PyTorch's example VAE), or
    /// 512, 512 for a conditional model. With one hidden layer, samples
    /// of a conditional VAE drawn for a label came out as that class only
    /// 67% of the time on MNIST (the classifier of `eval`); two layers of
    /// 512 reached 92% in the same 10 epochs, so that a label shapes the
    /// digit rather than only shifting one layer's biases.
    pub fn hidden(&self) -> Vec<usize> {
        match &self.hidden {
            Some(h) => h.clone(),
            None if self.conditional => vec![512, 512],
            None => vec![400],
        }
    }

    /// Checks the model settings; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        let hidden = self.hidden();
        if self.latent == 0 {
            bail!("--latent: expected at least 1, found 0");
        }
        let max_hidden = edgegen_format::arch::vae::MAX_HIDDEN;
        if hidden.is_empty() || hidden.len() > max_hidden {
            bail!(
                "--hidden: expected 1 to {max_hidden} comma-separated widths, found {}",
                hidden.len()
            );
        }
        if let Some(i) = hidden.iter().position(|&h| h == 0) {
            bail!(
                "--hidden: expected every width to be at least 1, found 0 at position {}",
                i + 1
            );
        }
        const MAX_WIDTH: usize = 1 << 16;
        for (flag, v) in [
            ("--latent", self.latent),
            ("--hidden", hidden.iter().copied().max().unwrap_or(0)),
        ] {
            if v > MAX_WIDTH {
                bail!("{flag}: expected at most {MAX_WIDTH}, found {v}");
            }
        }
        if crate::models::vae::Likelihood::from_name(&self.likelihood).is_none() {
            bail!(
                "--likelihood: expected bernoulli or gaussian, found {:?}",
                self.likelihood
            );
        }
        if crate::nn::act::Activation::from_name(&self.activation).is_none() {
            bail!(
                "--activation: expected relu, leaky_relu, tanh, sigmoid, gelu or softplus, found {:?}",
                self.activation
            );
        }
        Ok(())
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

/// The image splits a config names, as every image family loads them.
pub fn load_images(cfg: &TrainConfig, labels_for: Option<&str>) -> Result<ImageSplits> {
    let path = crate::data::resolve(cfg.data.as_deref());
    inputs::load_images(&inputs::ImageRequest {
        path: &path,
        shaping: cfg.shaping(),
        val_frac: cfg.val_frac,
        seed: cfg.seed,
        max_train: cfg.max_train,
        labels_for,
    })
}

/// The model a config and its data imply.
pub fn model_config(cfg: &TrainConfig, d: &ImageSplits) -> Result<VaeConfig> {
    let s = cfg.vae_settings()?;
    Ok(VaeConfig {
        image_shape: d.shape,
        hidden: s.hidden(),
        latent: s.latent,
        n_classes: if s.conditional { d.classes.len() } else { 0 },
        likelihood: s.likelihood.clone(),
        activation: s.activation.clone(),
        label_every_layer: s.conditional && s.label_every_layer,
    })
}

/// A VAE and its training state from a checkpoint; `by` names what needs
/// a VAE, for the error a run of another family gets.
pub fn load(ck: &Checkpoint, by: &str) -> Result<(Vae, TrainState)> {
    ck.expect(&[Family::Vae], by)?;
    let cfg: VaeConfig = ck.model_config()?;
    let m =
        Vae::new(cfg).map_err(|e| anyhow::anyhow!("{}: model config: {e:#}", ck.path.display()))?;
    let st = ck.state(&spec(&m))?;
    Ok((m, st))
}

/// A VAE's checkpoint contents: one group, no buffers.
pub fn spec(m: &Vae) -> Spec<'_> {
    static NO_BUFFERS: crate::nn::params::Layout = crate::nn::params::Layout {
        entries: Vec::new(),
    };
    Spec {
        family: Family::Vae,
        model: serde_json::to_value(&m.cfg).unwrap_or_default(),
        groups: vec![(GROUP, &m.layout)],
        buffers: &NO_BUFFERS,
    }
}

/// One thread's share of a batch: its buffers and its gradient sum.
struct Replica {
    acts: VaeActs,
    grads: Vec<f32>,
    loss: f64,
}

/// Everything that changes while a VAE trains, besides its state.
pub struct VaeTrainer {
    /// The model.
    pub model: Vae,
    /// The settings.
    pub cfg: TrainConfig,
    /// Threads in use.
    pub threads: Threads,
    /// Steps in the whole run, for the schedule.
    pub total_steps: u64,
    opt: GroupOptimizer,
    replicas: Vec<Replica>,
    /// (B, Z) noise for the whole batch, drawn on one thread so that the
    /// stream does not depend on how the batch is split.
    eps: Vec<f32>,
    order: Vec<usize>,
}

impl VaeTrainer {
    /// A trainer for `model` on `n_train` images.
    pub fn new(model: Vae, cfg: TrainConfig, threads: Threads, n_train: usize) -> Result<Self> {
        let parallel = cfg.vae_settings()?.parallel;
        let n_rep = match parallel {
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
        Ok(Self {
            opt: GroupOptimizer::from_config(&cfg, cfg.lr),
            model,
            cfg,
            threads,
            total_steps,
            replicas,
            eps,
            order: vec![],
        })
    }
}

impl Trainer for VaeTrainer {
    const FAMILY: Family = Family::Vae;
    type Data = ImageSplits;
    const CURVES: Curves = Curves {
        x: "epoch",
        title: "VAE loss",
        y: "nats per image",
        series: &[("train", "train_loss"), ("validation", "val_loss")],
    };

    fn load_data(cfg: &TrainConfig) -> Result<ImageSplits> {
        let cond = cfg.vae_settings()?.conditional;
        load_images(cfg, cond.then_some("--conditional"))
    }

    fn notes(data: &ImageSplits) -> &[String] {
        &data.notes
    }

    fn n_train(data: &ImageSplits) -> usize {
        data.train.len()
    }

    fn build(cfg: &TrainConfig, data: &ImageSplits, threads: Threads) -> Result<Self> {
        let m = Vae::new(model_config(cfg, data)?)?;
        Self::new(m, cfg.clone(), threads, data.train.len())
    }

    fn spec(&self) -> Spec<'_> {
        spec(&self.model)
    }

    fn init(&self, rng: &mut Rng) -> (Vec<GroupState>, Vec<f32>) {
        let mut g = GroupState::zeros(GROUP, self.model.n_params());
        self.model.init(&mut g.params, rng);
        (vec![g], vec![])
    }

    fn describe(&self, data: &ImageSplits) -> serde_json::Value {
        serde_json::json!({
            "model": self.model.cfg,
            "classes": data.classes,
            "parameters": self.model.n_params(),
        })
    }

    fn train_epoch(
        &mut self,
        st: &mut TrainState,
        data: &ImageSplits,
        progress: &mut dyn FnMut(usize, f64),
    ) -> Vec<(&'static str, f64)> {
        use rayon::prelude::*;
        let train = &data.train;
        let mut rng = Rng::from_state(st.rng);
        let (d, z, b) = (train.d, self.model.cfg.latent, self.cfg.batch);
        self.order.clear();
        self.order.extend(0..train.len());
        rng.shuffle(&mut self.order);
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
            let (model, params, eps) = (&self.model, &st.groups[0].params, &self.eps);
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
                        a.x[j * d..(j + 1) * d].copy_from_slice(train.row(i));
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
            st.step += 1;
            let lr = super::lr_at(&self.cfg, self.opt.lr, st.step, self.total_steps);
            self.opt
                .step(&self.model.layout, &mut st.groups[0], grads, lr);
            done += n;
            progress(done, batch_loss / n as f64);
        }
        st.rng = rng.state();
        vec![("train_loss", sum / train.len().max(1) as f64)]
    }

    fn validate(&mut self, st: &TrainState, data: &ImageSplits) -> Validation {
        let val_seed = self.cfg.seed ^ 0x5EED_F7A1;
        let (val_loss, _, _) = eval::vae::elbo(
            &self.model,
            &st.groups[0].params,
            &data.val,
            val_seed,
            self.threads,
        );
        Validation {
            values: vec![("val_loss", val_loss)],
            score: Some(val_loss),
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
        write_pictures(
            &self.model,
            &st.groups[0].params,
            data,
            dir,
            self.cfg.seed,
            self.threads,
            from,
        )
    }
}

/// Decodes `z` rows (with labels when conditional) into byte images.
pub fn decode_images(m: &Vae, p: &[f32], z: &[f32], labels: &[u32], th: Threads) -> Vec<Vec<u8>> {
    let d = m.cfg.input_dim();
    let px = m.decode_pixels(p, z, labels, th);
    px.chunks_exact(d)
        .map(|c| c.iter().map(|&v| (v * 255.0).round() as u8).collect())
        .collect()
}

/// `samples.png` and `recon.png`, tagged with the checkpoint `from` that
/// holds the parameters `p`.
pub fn write_pictures(
    m: &Vae,
    p: &[f32],
    data: &ImageSplits,
    out: &Path,
    seed: u64,
    th: Threads,
    from: &Source,
) -> Result<()> {
    let (z, k) = (m.cfg.latent, m.cfg.n_classes);
    let noise_seed = seed ^ 0x5A3B1E;
    let mut rng = Rng::new(noise_seed);
    // One row per class when conditional, else an 8 x 8 sheet.
    let (rows, cols) = if k > 0 { (k, 8) } else { (8, 8) };
    let zs: Vec<f32> = (0..rows * cols * z).map(|_| rng.normal()).collect();
    let labels: Vec<u32> = (0..rows * cols).map(|i| (i / cols) as u32).collect();
    let imgs = decode_images(m, p, &zs, &labels, th);
    let refs: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
    let scale = (56 / data.shape[1].max(1)).clamp(1, 4);
    let mut tag = Provenance::samples(from, noise_seed, rows * cols);
    if k > 0 {
        tag = tag.with_row_labels((0..rows as u32).collect());
    }
    plot::save_png(
        &plot::grid::image_grid(&refs, data.shape, cols, scale),
        &out.join(files::SAMPLES_PNG),
        &tag,
    )?;

    // Inputs (odd rows) above their reconstructions from z = mu (even rows).
    let n = 16.min(data.test.len());
    let mut a = VaeActs::new(m, n.max(1));
    let d = data.test.d;
    a.x[..n * d].copy_from_slice(&data.test.x[..n * d]);
    a.labels[..n].copy_from_slice(&data.test.labels[..n]);
    a.eps.fill(0.0);
    m.forward(p, &mut a, n, false, th);
    let mut px = vec![0f32; n * d];
    m.to_pixels(&mut px, &a.out[..n * d]);
    let to_u8 = |v: &[f32]| {
        v.iter()
            .map(|&x| (x * 255.0).round() as u8)
            .collect::<Vec<u8>>()
    };
    let mut pair_rows: Vec<Vec<u8>> = vec![];
    for r in 0..n.div_ceil(8) {
        let idx: Vec<usize> = (r * 8..((r + 1) * 8).min(n)).collect();
        pair_rows.extend(idx.iter().map(|&i| to_u8(&a.x[i * d..(i + 1) * d])));
        pair_rows.extend(idx.iter().map(|&i| to_u8(&px[i * d..(i + 1) * d])));
    }
    let refs: Vec<&[u8]> = pair_rows.iter().map(|v| v.as_slice()).collect();
    plot::save_png(
        &plot::grid::image_grid(&refs, data.shape, 8, scale),
        &out.join(files::RECON_PNG),
        &Provenance::reconstructions(from, n),
    )
}
