//! The GAN's part of a training run: its settings (`[gan]`), its step (a
//! discriminator update on real and generated images, then a generator
//! update through the updated discriminator, as PyTorch's DCGAN example
//! does), the optional moving average of the generator's weights, and its
//! pictures.
//!
//! Two parameter groups, `gen` and `disc`, each with its own Adam; the
//! batch norms' running statistics are buffers, and so is the moving
//! average (`ema.` + the generator's names) with its own statistics.

use super::checkpoint::{Checkpoint, GroupState, Spec, TrainState};
use super::config::TrainConfig;
use super::run::files;
use super::vae::load_images;
use super::{Curves, GroupOptimizer, Trainer, Validation};
use crate::data::inputs::ImageSplits;
use crate::models::Family;
use crate::models::gan::{self, DiscActs, Gan, GanConfig, GenActs, Mode};
use crate::nn::act::{sigmoid, softplus};
use crate::nn::gemm::Threads;
use crate::nn::optim;
use crate::nn::params::Layout;
use crate::plot;
use crate::provenance::{Provenance, Source};
use crate::rng::Rng;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The generator's parameter group.
pub const GEN: &str = "gen";
/// The discriminator's parameter group.
pub const DISC: &str = "disc";
/// The prefix of the moving average's buffers.
pub const EMA: &str = "ema.";

/// The GAN's model and loss settings: the `[gan]` table of a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GanSettings {
    /// Condition both networks on the class label.
    pub conditional: bool,
    /// Noise size Z.
    pub latent: usize,
    /// C0, the generator's widest channel count.
    pub g_width: usize,
    /// D0, the discriminator's first channel count.
    pub d_width: usize,
    /// The width of a hidden dense layer in the discriminator between its
    /// convolutions' features and its score; 0 for none. On by default:
    /// on MNIST it lifted the unconditional GAN's precision and Frechet
    /// distance at every epoch count tried (see the issue 9 notes), for
    /// about a third more time per epoch at the reference widths (a
    /// 6272 x 512 layer beside the 6.4M-MAC second convolution, and D
    /// runs three times a step). Runs stored before it existed
    /// had none ([`TrainConfig::from_stored`]).
    pub d_hidden: usize,
    /// `ns` (non-saturating) or `hinge`.
    pub loss: String,
    /// The discriminator's learning rate; `None` takes `lr` (the
    /// generator's). Different rates are the two time-scale rule.
    pub d_lr: Option<f32>,
    /// Decay of the moving average of the generator's weights that
    /// samples and exports use; 0 turns it off. On by default: on MNIST
    /// the average's samples scored higher than the last weights' (see
    /// the issue 9 notes), at the cost of a second copy of G.
    pub ema: f32,
    /// Spectral norm in the discriminator in place of its batch norm.
    pub spectral_norm: bool,
}

impl Default for GanSettings {
    fn default() -> Self {
        Self {
            conditional: false,
            latent: 64,
            g_width: 128,
            d_width: 64,
            d_hidden: 512,
            loss: "ns".into(),
            d_lr: None,
            ema: 0.999,
            spectral_norm: false,
        }
    }
}

/// The adversarial losses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// `D: -log s(l_real) - log(1 - s(l_fake))`, `G: -log s(l_fake)`.
    NonSaturating,
    /// `D: relu(1 - l_real) + relu(1 + l_fake)`, `G: -l_fake`.
    Hinge,
}

impl Loss {
    /// The loss named `s`.
    pub fn from_name(s: &str) -> Option<Self> {
        match s {
            "ns" => Some(Loss::NonSaturating),
            "hinge" => Some(Loss::Hinge),
            _ => None,
        }
    }

    /// The discriminator's loss on one score, and its derivative, for a
    /// real image (`real`) or a generated one.
    fn disc(self, l: f32, real: bool) -> (f32, f32) {
        match (self, real) {
            (Loss::NonSaturating, true) => (softplus(-l), -sigmoid(-l)),
            (Loss::NonSaturating, false) => (softplus(l), sigmoid(l)),
            (Loss::Hinge, true) => ((1.0 - l).max(0.0), if l < 1.0 { -1.0 } else { 0.0 }),
            (Loss::Hinge, false) => ((1.0 + l).max(0.0), if l > -1.0 { 1.0 } else { 0.0 }),
        }
    }

    /// The generator's loss on one score of a generated image, and its
    /// derivative.
    fn gen_(self, l: f32) -> (f32, f32) {
        match self {
            Loss::NonSaturating => (softplus(-l), -sigmoid(-l)),
            Loss::Hinge => (-l, -1.0),
        }
    }

    /// What the metrics report of a score: D's probability for the
    /// non-saturating loss, the raw score for the hinge.
    fn report(self, l: f32) -> f32 {
        match self {
            Loss::NonSaturating => sigmoid(l),
            Loss::Hinge => l,
        }
    }
}

impl GanSettings {
    /// Checks the settings; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        if self.latent == 0 || self.latent > 1 << 16 {
            bail!("--latent: expected 1 to 65536, found {}", self.latent);
        }
        if self.g_width < 2 || self.g_width > 4096 {
            bail!("--g-width: expected 2 to 4096, found {}", self.g_width);
        }
        if self.d_width == 0 || self.d_width > 4096 {
            bail!("--d-width: expected 1 to 4096, found {}", self.d_width);
        }
        if self.d_hidden > 1 << 16 {
            bail!(
                "--d-hidden: expected 0 (none) to 65536, found {}",
                self.d_hidden
            );
        }
        if Loss::from_name(&self.loss).is_none() {
            bail!("--loss: expected ns or hinge, found {:?}", self.loss);
        }
        if let Some(lr) = self.d_lr
            && !(lr > 0.0 && lr.is_finite())
        {
            bail!("--d-lr: expected a positive number, found {lr}");
        }
        if !(0.0..1.0).contains(&self.ema) {
            bail!("--ema: expected 0 (off) <= value < 1, found {}", self.ema);
        }
        Ok(())
    }
}

/// The model a config and its data imply.
pub fn model_config(cfg: &TrainConfig, d: &ImageSplits) -> Result<GanConfig> {
    let s = cfg.gan_settings()?;
    Ok(GanConfig {
        image_shape: d.shape,
        latent: s.latent,
        n_classes: if s.conditional { d.classes.len() } else { 0 },
        g_width: s.g_width,
        d_width: s.d_width,
        spectral_norm: s.spectral_norm,
        d_hidden: s.d_hidden,
    })
}

/// The buffers a GAN run stores: the running statistics of both networks,
/// then, with a moving average, its generator weights and their own
/// statistics.
pub fn stored_buffers(m: &Gan, ema: bool) -> Layout {
    let mut l = m.buffers.clone();
    if ema {
        for e in m.gen_.layout.entries.iter() {
            l.push(format!("{EMA}{}", e.name), &e.shape);
        }
        for e in m
            .buffers
            .entries
            .iter()
            .filter(|e| e.name.starts_with("gen."))
        {
            l.push(format!("{EMA}{}", e.name), &e.shape);
        }
    }
    l
}

/// A GAN's checkpoint contents.
pub fn spec<'a>(m: &'a Gan, buffers: &'a Layout) -> Spec<'a> {
    Spec {
        family: Family::Gan,
        model: serde_json::to_value(&m.cfg).unwrap_or_default(),
        groups: vec![(GEN, &m.gen_.layout), (DISC, &m.disc.layout)],
        buffers,
    }
}

/// A GAN, its training state and whether it keeps a moving average, from
/// a checkpoint; `by` names what needs a GAN.
pub fn load(ck: &Checkpoint, by: &str) -> Result<(Gan, TrainState, bool)> {
    ck.expect(&[Family::Gan], by)?;
    let m = Gan::new(ck.model_config()?)
        .map_err(|e| anyhow::anyhow!("{}: model config: {e:#}", ck.path.display()))?;
    let ema = ck.train.gan_settings()?.ema > 0.0;
    let buffers = stored_buffers(&m, ema);
    let st = ck.state(&spec(&m, &buffers))?;
    Ok((m, st, ema))
}

/// The generator a run samples and exports: its parameters and the
/// buffers (running statistics in `m.buffers`' layout) that go with them,
/// the moving average's when the run keeps one.
pub fn sampling_generator(m: &Gan, st: &TrainState, ema: bool) -> (Vec<f32>, Vec<f32>) {
    let gp = &st.groups[0].params;
    let nb = m.buffers.total();
    if !ema || st.buffers.len() < nb + gp.len() {
        return (gp.clone(), st.buffers[..nb].to_vec());
    }
    let params = st.buffers[nb..nb + gp.len()].to_vec();
    // The average's statistics replace the generator's; D's stay.
    let mut bufs = st.buffers[..nb].to_vec();
    let mut at = nb + gp.len();
    for e in m
        .buffers
        .entries
        .iter()
        .filter(|e| e.name.starts_with("gen."))
    {
        bufs[e.range()].copy_from_slice(&st.buffers[at..at + e.len()]);
        at += e.len();
    }
    (params, bufs)
}

/// Generates pixels in [0, 1], `(n, D)`, from `z` rows and labels, with
/// the generator in eval mode.
pub fn generate(
    m: &Gan,
    gp: &[f32],
    buffers: &[f32],
    z: &[f32],
    labels: &[u32],
    th: Threads,
) -> Vec<f32> {
    let (zd, d) = (m.cfg.latent, m.cfg.image_len());
    let n = z.len() / zd;
    let mut out = vec![0f32; n * d];
    // In chunks, so that a large grid does not allocate a batch of n.
    let chunk = 256.min(n.max(1));
    let mut a = GenActs::new(m, chunk);
    let mut bufs = buffers.to_vec();
    for start in (0..n).step_by(chunk) {
        let rows = chunk.min(n - start);
        a.set_input(
            &m.cfg,
            &z[start * zd..(start + rows) * zd],
            labels.get(start..start + rows).unwrap_or(&[]),
        );
        m.gen_.forward(gp, &mut bufs, &mut a, rows, Mode::Eval, th);
        gan::to_pixels(&mut out[start * d..(start + rows) * d], &a.out[..rows * d]);
    }
    out
}

/// Everything that changes while a GAN trains, besides its state.
pub struct GanTrainer {
    /// The model.
    pub model: Gan,
    /// The settings.
    pub cfg: TrainConfig,
    /// The `[gan]` table.
    pub settings: GanSettings,
    /// Threads in use.
    pub threads: Threads,
    /// Steps in the whole run, for the schedule.
    pub total_steps: u64,
    buffers: Layout,
    loss: Loss,
    g_opt: GroupOptimizer,
    d_opt: GroupOptimizer,
    ga: GenActs,
    da: DiscActs,
    g_grads: Vec<f32>,
    d_grads: Vec<f32>,
    /// D's parameters with its weights spectrally normalized (empty
    /// without spectral norm).
    d_eff: Vec<f32>,
    order: Vec<usize>,
    z: Vec<f32>,
    fake_labels: Vec<u32>,
}

impl GanTrainer {
    /// Moves the moving average toward the generator's weights. The decay
    /// warms up as `(1 + t) / (10 + t)` over the generator's steps `t`
    /// (as TensorFlow's `num_updates`): a fixed 0.999 would still hold 69%
    /// of the random initial weights after the 376 steps of a short run
    /// on 6,000 images; from step 8,990 on it is the set decay.
    fn update_ema(&self, st: &mut TrainState) {
        let t = st.groups[0].step as f32;
        let decay = self.settings.ema.min((1.0 + t) / (10.0 + t));
        let nb = self.model.buffers.total();
        let gp = &st.groups[0].params;
        let ema = &mut st.buffers[nb..nb + gp.len()];
        for (e, &p) in ema.iter_mut().zip(gp) {
            *e = decay * *e + (1.0 - decay) * p;
        }
    }

    /// Recomputes the moving average's batch-norm statistics as the mean
    /// of the batch statistics over fresh noise: the averaged weights
    /// never ran, so the generator's own running statistics do not fit
    /// them, and eval mode (what samples and exports use) needs statistics
    /// that do.
    fn recalibrate_ema(&mut self, st: &mut TrainState, rng: &mut Rng) {
        const BATCHES: usize = 16;
        let m = &self.model;
        let (zd, k) = (m.cfg.latent, m.cfg.n_classes);
        let nb = m.buffers.total();
        let np = st.groups[0].params.len();
        let params = st.buffers[nb..nb + np].to_vec();
        let n = self.ga.cap;
        let mut scratch_buffers = st.buffers[..nb].to_vec();
        let g = &m.gen_;
        let norms = [g.bn0, g.bn1];
        let mut sums: Vec<Vec<(f64, f64)>> = norms.iter().map(|b| vec![(0.0, 0.0); b.c]).collect();
        for _ in 0..BATCHES {
            let z: Vec<f32> = (0..n * zd).map(|_| rng.normal()).collect();
            let labels: Vec<u32> = (0..n)
                .map(|_| if k > 0 { rng.below(k) as u32 } else { 0 })
                .collect();
            self.ga.set_input(&m.cfg, &z, &labels);
            g.forward(
                &params,
                &mut scratch_buffers,
                &mut self.ga,
                n,
                Mode::Train,
                self.threads,
            );
            for (i, (bn, saved)) in norms
                .iter()
                .zip([&self.ga.saved0, &self.ga.saved1])
                .enumerate()
            {
                let count = (n * bn.s) as f64;
                let unbias = if count > 1.0 {
                    count / (count - 1.0)
                } else {
                    1.0
                };
                for ch in 0..bn.c {
                    let rstd = saved[bn.c + ch] as f64;
                    let var = 1.0 / (rstd * rstd) - crate::nn::norm::EPS as f64;
                    sums[i][ch].0 += saved[ch] as f64;
                    sums[i][ch].1 += var.max(0.0) * unbias;
                }
            }
        }
        // The average's statistics follow its weights in the buffers, in
        // the order of the generator's norms.
        let mut at = nb + np;
        for (bn, s) in norms.iter().zip(&sums) {
            for (ch, &(mean, var)) in s.iter().enumerate() {
                st.buffers[at + ch] = (mean / BATCHES as f64) as f32;
                st.buffers[at + bn.c + ch] = (var / BATCHES as f64) as f32;
            }
            at += 2 * bn.c;
        }
    }
}

impl Trainer for GanTrainer {
    const FAMILY: Family = Family::Gan;
    type Data = ImageSplits;
    const CURVES: Curves = Curves {
        x: "epoch",
        title: "GAN losses",
        y: "loss per image",
        series: &[("discriminator", "d_loss"), ("generator", "g_loss")],
    };

    fn load_data(cfg: &TrainConfig) -> Result<ImageSplits> {
        let cond = cfg.gan_settings()?.conditional;
        load_images(cfg, cond.then_some("--conditional"))
    }

    fn notes(data: &ImageSplits) -> &[String] {
        &data.notes
    }

    fn n_train(data: &ImageSplits) -> usize {
        data.train.len()
    }

    fn build(cfg: &TrainConfig, data: &ImageSplits, threads: Threads) -> Result<Self> {
        let settings = cfg.gan_settings()?.clone();
        let model = Gan::new(model_config(cfg, data)?)?;
        let b = cfg.batch;
        let buffers = stored_buffers(&model, settings.ema > 0.0);
        let total_steps = (cfg.epochs * data.train.len().div_ceil(b)) as u64;
        Ok(Self {
            loss: Loss::from_name(&settings.loss).unwrap_or(Loss::NonSaturating),
            g_opt: GroupOptimizer::from_config(cfg, cfg.lr),
            d_opt: GroupOptimizer::from_config(cfg, settings.d_lr.unwrap_or(cfg.lr)),
            ga: GenActs::new(&model, b),
            da: DiscActs::new(&model, b),
            g_grads: vec![0.0; model.gen_.layout.total()],
            d_grads: vec![0.0; model.disc.layout.total()],
            d_eff: vec![],
            order: vec![],
            z: vec![0.0; b * model.cfg.latent],
            fake_labels: vec![0; b],
            buffers,
            model,
            cfg: cfg.clone(),
            settings,
            threads,
            total_steps,
        })
    }

    fn spec(&self) -> Spec<'_> {
        spec(&self.model, &self.buffers)
    }

    fn init(&self, rng: &mut Rng) -> (Vec<GroupState>, Vec<f32>) {
        let m = &self.model;
        let mut g = GroupState::zeros(GEN, m.gen_.layout.total());
        let mut d = GroupState::zeros(DISC, m.disc.layout.total());
        let mut buffers = vec![0f32; self.buffers.total()];
        let nb = m.buffers.total();
        m.init(&mut g.params, &mut d.params, &mut buffers[..nb], rng);
        if self.settings.ema > 0.0 {
            let np = g.params.len();
            buffers[nb..nb + np].copy_from_slice(&g.params);
            let gen_stats: Vec<f32> = m
                .buffers
                .entries
                .iter()
                .filter(|e| e.name.starts_with("gen."))
                .flat_map(|e| buffers[e.range()].to_vec())
                .collect();
            buffers[nb + np..].copy_from_slice(&gen_stats);
        }
        (vec![g, d], buffers)
    }

    fn describe(&self, data: &ImageSplits) -> serde_json::Value {
        serde_json::json!({
            "model": self.model.cfg,
            "classes": data.classes,
            "parameters": {
                "gen": self.model.gen_.layout.total(),
                "disc": self.model.disc.layout.total(),
            },
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
        let (d, zd, k) = (train.d, self.model.cfg.latent, self.model.cfg.n_classes);
        let th = self.threads;
        self.order.clear();
        self.order.extend(0..train.len());
        rng.shuffle(&mut self.order);
        let nb = self.model.buffers.total();
        let (mut d_sum, mut g_sum, mut real_sum, mut fake_sum) = (0f64, 0f64, 0f64, 0f64);
        let mut done = 0;
        let order = std::mem::take(&mut self.order);
        for chunk in order.chunks(self.cfg.batch) {
            let n = chunk.len();
            for v in &mut self.z[..n * zd] {
                *v = rng.normal();
            }
            for l in &mut self.fake_labels[..n] {
                *l = if k > 0 { rng.below(k) as u32 } else { 0 };
            }
            let (g_state, rest) = st.groups.split_at_mut(1);
            let (gp, dp) = (&mut g_state[0], &mut rest[0]);
            let buffers = &mut st.buffers[..nb];
            let m = &self.model;
            let (ga, da) = (&mut self.ga, &mut self.da);

            // The generator's images, kept for both updates.
            ga.set_input(&m.cfg, &self.z[..n * zd], &self.fake_labels[..n]);
            m.gen_.forward(&gp.params, buffers, ga, n, Mode::Train, th);

            // Discriminator: real images, then generated ones (separate
            // batches, so separate batch-norm statistics, as PyTorch).
            for (i, &j) in chunk.iter().enumerate() {
                for (o, &v) in da.x[i * d..(i + 1) * d].iter_mut().zip(train.row(j)) {
                    *o = 2.0 * v - 1.0;
                }
                da.labels[i] = train.labels[j];
            }
            let mut d_loss = 0f64;
            let dpar = m
                .disc
                .normalized(&dp.params, &mut self.d_eff, buffers, true);
            for real in [true, false] {
                if !real {
                    da.x[..n * d].copy_from_slice(&ga.out[..n * d]);
                    da.labels[..n].copy_from_slice(&self.fake_labels[..n]);
                }
                m.disc.forward(dpar, buffers, da, n, Mode::Train, th);
                for i in 0..n {
                    let (l, g) = self.loss.disc(da.logit[i], real);
                    d_loss += l as f64;
                    da.d_logit[i] = g / n as f32;
                    let r = self.loss.report(da.logit[i]) as f64;
                    if real {
                        real_sum += r;
                    } else {
                        fake_sum += r;
                    }
                }
                m.disc
                    .backward(dpar, Some(&mut self.d_grads), da, n, false, th);
            }
            m.disc
                .normalized_backward(&mut self.d_grads, &self.d_eff, buffers);
            if self.cfg.clip > 0.0 {
                optim::clip_grad_norm(&mut self.d_grads, self.cfg.clip);
            }
            st.step += 1;
            let lr_of =
                |opt: &GroupOptimizer| super::lr_at(&self.cfg, opt.lr, st.step, self.total_steps);
            let (g_lr, d_lr) = (lr_of(&self.g_opt), lr_of(&self.d_opt));
            self.d_opt.step(&m.disc.layout, dp, &mut self.d_grads, d_lr);

            // Generator, through the updated discriminator.
            let dpar = m
                .disc
                .normalized(&dp.params, &mut self.d_eff, buffers, true);
            m.disc.forward(dpar, buffers, da, n, Mode::Train, th);
            let mut g_loss = 0f64;
            for i in 0..n {
                let (l, g) = self.loss.gen_(da.logit[i]);
                g_loss += l as f64;
                da.d_logit[i] = g / n as f32;
            }
            // Only the images' gradient is wanted from this pass.
            m.disc.backward(dpar, None, da, n, true, th);
            ga.d_out[..n * d].copy_from_slice(&da.d_x[..n * d]);
            m.gen_.backward(&gp.params, &mut self.g_grads, ga, n, th);
            if self.cfg.clip > 0.0 {
                optim::clip_grad_norm(&mut self.g_grads, self.cfg.clip);
            }
            self.g_opt.step(&m.gen_.layout, gp, &mut self.g_grads, g_lr);
            if self.settings.ema > 0.0 {
                self.update_ema(st);
            }
            d_sum += d_loss;
            g_sum += g_loss;
            done += n;
            progress(done, d_loss / n as f64);
        }
        self.order = order;
        if self.settings.ema > 0.0 {
            self.recalibrate_ema(st, &mut rng);
        }
        st.rng = rng.state();
        let n = train.len().max(1) as f64;
        vec![
            ("d_loss", d_sum / n),
            ("g_loss", g_sum / n),
            ("d_real", real_sum / n),
            ("d_fake", fake_sum / n),
        ]
    }

    fn validate(&mut self, _st: &TrainState, _data: &ImageSplits) -> Validation {
        // A GAN's losses say little about its samples; `edgegen eval
        // --classifier` scores them. The latest state is the best.
        Validation::default()
    }

    fn lr(&self, st: &TrainState) -> f32 {
        super::lr_at(&self.cfg, self.g_opt.lr, st.step, self.total_steps)
    }

    fn pictures(
        &self,
        st: &TrainState,
        data: &ImageSplits,
        dir: &Path,
        from: &Source,
    ) -> Result<()> {
        write_samples(
            &self.model,
            st,
            self.settings.ema > 0.0,
            data.shape,
            &dir.join(files::SAMPLES_PNG),
            self.cfg.seed,
            self.threads,
            from,
        )
    }
}

/// `samples.png`: the same noise every epoch, one row per class when
/// conditional, else an 8 x 8 sheet.
#[allow(clippy::too_many_arguments)]
pub fn write_samples(
    m: &Gan,
    st: &TrainState,
    ema: bool,
    shape: [usize; 3],
    path: &Path,
    seed: u64,
    th: Threads,
    from: &Source,
) -> Result<()> {
    let (zd, k, d) = (m.cfg.latent, m.cfg.n_classes, m.cfg.image_len());
    let noise_seed = seed ^ 0x5A3B1E;
    let mut rng = Rng::new(noise_seed);
    let (rows, cols) = if k > 0 { (k, 8) } else { (8, 8) };
    let z: Vec<f32> = (0..rows * cols * zd).map(|_| rng.normal()).collect();
    let labels: Vec<u32> = (0..rows * cols).map(|i| (i / cols) as u32).collect();
    let (gp, bufs) = sampling_generator(m, st, ema);
    let px = generate(m, &gp, &bufs, &z, &labels, th);
    let imgs: Vec<Vec<u8>> = px
        .chunks_exact(d)
        .map(|c| c.iter().map(|&v| (v * 255.0).round() as u8).collect())
        .collect();
    let refs: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
    let scale = (56 / shape[1].max(1)).clamp(1, 4);
    let mut tag = Provenance::samples(from, noise_seed, rows * cols);
    if k > 0 {
        tag = tag.with_row_labels((0..rows as u32).collect());
    }
    plot::save_png(
        &plot::grid::image_grid(&refs, shape, cols, scale),
        path,
        &tag,
    )
}
