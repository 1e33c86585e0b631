//! The GAN family (DCGAN): a generator that maps noise (and a label) to an
//! image, and a discriminator that scores images (and, conditional, their
//! labels through a projection).
//!
//! Generator: `[z, onehot(y)] -> dense -> (C0, H/4, W/4)` (BN, ReLU)
//! `-> ConvT k4 s2 p1 -> (C0/2, H/2, W/2)` (BN, ReLU) `-> ConvT k4 s2 p1
//! -> (C, H, W) -> tanh`. Discriminator: `x -> Conv k4 s2 p1 -> (D0, H/2,
//! W/2)` (LeakyReLU 0.2) `-> Conv k4 s2 p1 -> (2 D0, H/4, W/4)` (BN,
//! LeakyReLU 0.2) `= phi -> dense -> 1`, plus `<embed(y), phi>` when
//! conditional (Miyato and Koyama's projection discriminator). With
//! `spectral_norm`, D's convolutions and dense layers are spectrally
//! normalized and its batch norm is gone (SNGAN's discriminator). With
//! `d_hidden`, a dense layer (LeakyReLU) sits between phi and the heads,
//! which then read its output in phi's place.
//!
//! Images are in [-1, 1] inside the GAN (tanh's range); pixels in [0, 1]
//! outside it. B batch, Z latent size, K classes (0 if unconditional).

use crate::nn::act::{self, Activation};
use crate::nn::conv::{Conv2d, ConvTranspose2d, Geom};
use crate::nn::embed::Embedding;
use crate::nn::gemm::Threads;
use crate::nn::linear::Linear;
use crate::nn::norm::BatchNorm;
use crate::nn::params::Layout;
use crate::nn::spectral::SpectralNorm;
use crate::rng::Rng;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// What defines a GAN's shape; stored in checkpoints and the GGUF file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GanConfig {
    /// `[C, H, W]`; H and W are multiples of 4.
    pub image_shape: [usize; 3],
    /// Z.
    pub latent: usize,
    /// K; 0 for an unconditional model.
    pub n_classes: usize,
    /// C0: the generator's widest channel count (after its dense layer).
    pub g_width: usize,
    /// D0: the discriminator's first channel count (its second is 2 D0).
    pub d_width: usize,
    /// Spectral norm on the discriminator's convolutions and dense layer,
    /// in place of its batch norm (SNGAN). Training only: the generator,
    /// all that is exported, is the same either way. Stored only when
    /// set, so that the runs from before it existed still resume and
    /// fine-tune (their stored model must equal the one they rebuild).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub spectral_norm: bool,
    /// A hidden dense layer of this width (LeakyReLU 0.2) between phi and
    /// the discriminator's heads, so that D judges how the local features
    /// go together rather than only summing them; 0 for none. Training
    /// only, and stored only when set, as `spectral_norm`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub d_hidden: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl GanConfig {
    /// D = C*H*W.
    pub fn image_len(&self) -> usize {
        self.image_shape.iter().product()
    }

    /// `(H/4, W/4)`: the generator's first plane.
    pub fn base(&self) -> (usize, usize) {
        (self.image_shape[1] / 4, self.image_shape[2] / 4)
    }

    /// Checks sizes before anything is allocated; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        let [c, h, w] = self.image_shape;
        if c == 0 || h < 4 || w < 4 || h % 4 != 0 || w % 4 != 0 {
            bail!(
                "the GAN needs images whose height and width are multiples of 4 (it upsamples twice by 2), found {h}x{w}; resize them with --image-size, such as 28x28 or 32x32"
            );
        }
        if self.latent == 0 {
            bail!("--latent: expected at least 1, found 0");
        }
        if self.g_width < 2 {
            bail!("--g-width: expected at least 2, found {}", self.g_width);
        }
        if self.d_width == 0 {
            bail!("--d-width: expected at least 1, found 0");
        }
        Ok(())
    }
}

pub use crate::nn::norm::Mode;

/// The generator's layers and their places in its parameter group.
#[derive(Debug, Clone)]
pub struct Generator {
    /// The group's tensors (`gen.*`).
    pub layout: Layout,
    /// `[z, onehot] -> C0 * H/4 * W/4`.
    pub fc: Linear,
    /// Over the dense output's C0 channels.
    pub bn0: BatchNorm,
    /// C0 -> C0/2, to (H/2, W/2).
    pub up0: ConvTranspose2d,
    /// Over C0/2 channels.
    pub bn1: BatchNorm,
    /// C0/2 -> C, to (H, W).
    pub up1: ConvTranspose2d,
}

/// The discriminator's layers and their places in its parameter group.
#[derive(Debug, Clone)]
pub struct Discriminator {
    /// The group's tensors (`disc.*`).
    pub layout: Layout,
    /// C -> D0, to (H/2, W/2).
    pub conv0: Conv2d,
    /// D0 -> 2 D0, to (H/4, W/4).
    pub conv1: Conv2d,
    /// Over 2 D0 channels; none with spectral norm.
    pub bn: Option<BatchNorm>,
    /// The spectrally normalized weights (conv0, conv1, the hidden layer
    /// when there is one, fc), when asked:
    /// the layers then run on [`Discriminator::normalized`]'s copy.
    pub sn: Vec<SpectralNorm>,
    /// `phi -> d_hidden` (LeakyReLU), when asked: the features `f` the
    /// heads read are its output, else phi itself.
    pub hidden: Option<Linear>,
    /// `f -> 1`.
    pub fc: Linear,
    /// The projection's class embeddings `(K, |f|)`, when conditional.
    pub embed: Option<Embedding>,
}

/// A GAN: both networks, and the buffers (running statistics) of both.
#[derive(Debug, Clone)]
pub struct Gan {
    /// The configuration.
    pub cfg: GanConfig,
    /// The generator.
    pub gen_: Generator,
    /// The discriminator.
    pub disc: Discriminator,
    /// Every batch norm's running statistics, G's then D's.
    pub buffers: Layout,
}

/// LeakyReLU's slope in the discriminator.
const LEAKY: Activation = Activation::LeakyRelu;

impl Gan {
    /// Lays out both networks with the names of `formats/README.md`.
    pub fn new(cfg: GanConfig) -> Result<Self> {
        cfg.validate()?;
        let [c, h, w] = cfg.image_shape;
        let (h0, w0) = cfg.base();
        let (z, k, c0, d0) = (cfg.latent, cfg.n_classes, cfg.g_width, cfg.d_width);
        let c1 = c0 / 2;
        let mut buffers = Layout::default();

        let mut g = Layout::default();
        let gfc = Linear::new(&mut g, "gen.fc", z + k, c0 * h0 * w0);
        let bn0 = BatchNorm::new(&mut g, &mut buffers, "gen.bn.0", c0, h0 * w0);
        let up0 = ConvTranspose2d::new(&mut g, "gen.up.0", (c0, h0, w0), c1, 4, 2, 1);
        let bn1 = BatchNorm::new(&mut g, &mut buffers, "gen.bn.1", c1, 4 * h0 * w0);
        let up1 = ConvTranspose2d::new(&mut g, "gen.up.1", (c1, 2 * h0, 2 * w0), c, 4, 2, 1);
        let (Some(up0), Some(up1)) = (up0, up1) else {
            bail!("the generator's upsampling does not reach {h}x{w}");
        };

        let mut d = Layout::default();
        let g0 = Geom::new(c, h, w, 4, 2, 1);
        let g1 = Geom::new(d0, h / 2, w / 2, 4, 2, 1);
        let (Some(g0), Some(g1)) = (g0, g1) else {
            bail!("the discriminator's windows do not fit {h}x{w}");
        };
        let conv0 = Conv2d::new(&mut d, "disc.conv.0", g0, d0);
        let conv1 = Conv2d::new(&mut d, "disc.conv.1", g1, 2 * d0);
        let bn = (!cfg.spectral_norm)
            .then(|| BatchNorm::new(&mut d, &mut buffers, "disc.bn.1", 2 * d0, g1.positions()));
        let phi = conv1.out_len();
        let hidden =
            (cfg.d_hidden > 0).then(|| Linear::new(&mut d, "disc.hidden", phi, cfg.d_hidden));
        let feat = hidden.map_or(phi, |h| h.out);
        let fc = Linear::new(&mut d, "disc.fc", feat, 1);
        let mut sn = vec![];
        if cfg.spectral_norm {
            sn.push(SpectralNorm::new(
                &mut buffers,
                "disc.conv.0",
                conv0.offset,
                d0,
                g0.taps(),
            ));
            sn.push(SpectralNorm::new(
                &mut buffers,
                "disc.conv.1",
                conv1.offset,
                2 * d0,
                g1.taps(),
            ));
            if let Some(h) = hidden {
                sn.push(SpectralNorm::new(
                    &mut buffers,
                    "disc.hidden",
                    h.offset,
                    h.out,
                    phi,
                ));
            }
            sn.push(SpectralNorm::new(
                &mut buffers,
                "disc.fc",
                fc.offset,
                1,
                feat,
            ));
        }
        let embed = (k > 0).then(|| Embedding::new(&mut d, "disc.embed", k, feat));
        Ok(Self {
            cfg,
            gen_: Generator {
                layout: g,
                fc: gfc,
                bn0,
                up0,
                bn1,
                up1,
            },
            disc: Discriminator {
                layout: d,
                conv0,
                conv1,
                bn,
                sn,
                hidden,
                fc,
                embed,
            },
            buffers,
        })
    }

    /// DCGAN's initialization: convolution and dense weights N(0, 0.02),
    /// biases 0, batch-norm scales N(1, 0.02) and shifts 0; embeddings
    /// N(0, 0.02) too, so that the projection starts small.
    pub fn init(&self, gp: &mut [f32], dp: &mut [f32], buffers: &mut [f32], rng: &mut Rng) {
        for (layout, p) in [(&self.gen_.layout, gp), (&self.disc.layout, dp)] {
            for e in &layout.entries {
                let t = &mut p[e.range()];
                if e.name.ends_with(".bias") {
                    t.fill(0.0);
                } else if e.name.contains(".bn.") {
                    t.iter_mut().for_each(|v| *v = 1.0 + 0.02 * rng.normal());
                } else {
                    t.iter_mut().for_each(|v| *v = 0.02 * rng.normal());
                }
            }
        }
        for bn in [self.gen_.bn0, self.gen_.bn1].iter().chain(&self.disc.bn) {
            bn.init_running(buffers);
        }
        for sn in &self.disc.sn {
            sn.init(buffers, rng);
        }
    }
}

/// The generator's per-batch buffers, allocated once for `cap` rows.
#[derive(Debug, Clone)]
pub struct GenActs {
    /// Rows the buffers hold.
    pub cap: usize,
    /// (B, Z+K) `[z, onehot]`.
    pub zin: Vec<f32>,
    /// (B, F0) dense output, its normalized form and its ReLU.
    pub fc: Vec<f32>,
    /// See `fc`.
    pub bn0: Vec<f32>,
    /// See `fc`.
    pub a0: Vec<f32>,
    /// (B, F1) first upsampling, its normalized form and its ReLU.
    pub up0: Vec<f32>,
    /// See `up0`.
    pub bn1: Vec<f32>,
    /// See `up0`.
    pub a1: Vec<f32>,
    /// (B, D) before tanh.
    pub up1: Vec<f32>,
    /// (B, D) images in [-1, 1].
    pub out: Vec<f32>,
    /// Saved batch statistics of the two norms.
    pub saved0: Vec<f32>,
    /// See `saved0`.
    pub saved1: Vec<f32>,
    /// (B, D) dL/d(out), set by the caller before [`Generator::backward`].
    pub d_out: Vec<f32>,
    /// Gradient buffers, one per activation.
    pub d_up1: Vec<f32>,
    /// See `d_up1`.
    pub d_a1: Vec<f32>,
    /// See `d_up1`.
    pub d_bn1: Vec<f32>,
    /// See `d_up1`.
    pub d_up0: Vec<f32>,
    /// See `d_up1`.
    pub d_a0: Vec<f32>,
    /// See `d_up1`.
    pub d_bn0: Vec<f32>,
    /// See `d_up1`.
    pub d_fc: Vec<f32>,
    /// Shared scratch of the convolutions.
    pub scratch: Vec<f32>,
}

impl GenActs {
    /// Buffers for up to `cap` rows.
    pub fn new(m: &Gan, cap: usize) -> Self {
        let g = &m.gen_;
        let (zk, f0, f1, d) = (
            m.cfg.latent + m.cfg.n_classes,
            g.fc.out,
            g.up0.out_len(),
            m.cfg.image_len(),
        );
        let v = |n: usize| vec![0f32; cap * n];
        // The convolutions' scratch is per thread, for the pool in use.
        let t = rayon::current_num_threads();
        Self {
            cap,
            zin: v(zk),
            fc: v(f0),
            bn0: v(f0),
            a0: v(f0),
            up0: v(f1),
            bn1: v(f1),
            a1: v(f1),
            up1: v(d),
            out: v(d),
            saved0: vec![0.0; g.bn0.saved_len()],
            saved1: vec![0.0; g.bn1.saved_len()],
            d_out: v(d),
            d_up1: v(d),
            d_a1: v(f1),
            d_bn1: v(f1),
            d_up0: v(f1),
            d_a0: v(f0),
            d_bn0: v(f0),
            d_fc: v(f0),
            scratch: vec![0.0; g.up0.scratch_len(t).max(g.up1.scratch_len(t))],
        }
    }

    /// Writes `[z, onehot(label)]` rows for `z` `(n, Z)`; a label past the
    /// classes wraps around.
    pub fn set_input(&mut self, cfg: &GanConfig, z: &[f32], labels: &[u32]) {
        let (zd, k) = (cfg.latent, cfg.n_classes);
        for (i, row) in self
            .zin
            .chunks_exact_mut(zd + k)
            .take(z.len() / zd)
            .enumerate()
        {
            row[..zd].copy_from_slice(&z[i * zd..(i + 1) * zd]);
            row[zd..].fill(0.0);
            if k > 0 {
                row[zd + labels.get(i).copied().unwrap_or(0) as usize % k] = 1.0;
            }
        }
    }
}

impl Generator {
    /// Makes every layer quantize its input to int8 (`on`), as a `q8_0a8`
    /// generator does on a device (the batch norms folded into the layers
    /// before, so the inputs are the same), or not: for evaluating and
    /// validating that precision, never for training.
    pub fn set_int8_inputs(&mut self, on: bool) {
        self.fc.int8_inputs = on;
        self.up0.int8_inputs = on;
        self.up1.int8_inputs = on;
    }
}

impl Generator {
    /// `a.zin` (n rows) to images `a.out` in [-1, 1].
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        p: &[f32],
        buffers: &mut [f32],
        a: &mut GenActs,
        n: usize,
        mode: Mode,
        th: Threads,
    ) {
        let (f0, f1, d) = (self.fc.out, self.up0.out_len(), self.up1.out_len());
        self.fc.forward(p, &mut a.fc, &a.zin, n, th);
        match mode {
            Mode::Train => self
                .bn0
                .forward_train(p, buffers, &mut a.bn0, &a.fc, n, &mut a.saved0),
            Mode::Eval => self.bn0.forward_eval(p, buffers, &mut a.bn0, &a.fc, n),
        }
        act::forward(Activation::Relu, &mut a.a0[..n * f0], &a.bn0[..n * f0]);
        self.up0
            .forward(p, &mut a.up0, &a.a0, n, &mut a.scratch, th);
        match mode {
            Mode::Train => self
                .bn1
                .forward_train(p, buffers, &mut a.bn1, &a.up0, n, &mut a.saved1),
            Mode::Eval => self.bn1.forward_eval(p, buffers, &mut a.bn1, &a.up0, n),
        }
        act::forward(Activation::Relu, &mut a.a1[..n * f1], &a.bn1[..n * f1]);
        self.up1
            .forward(p, &mut a.up1, &a.a1, n, &mut a.scratch, th);
        act::forward(Activation::Tanh, &mut a.out[..n * d], &a.up1[..n * d]);
    }

    /// Backward of a training-mode forward from `a.d_out`; *adds* into `g`.
    pub fn backward(&self, p: &[f32], g: &mut [f32], a: &mut GenActs, n: usize, th: Threads) {
        let (f0, f1, d) = (self.fc.out, self.up0.out_len(), self.up1.out_len());
        let zero = |v: &mut Vec<f32>, len: usize| v[..len].fill(0.0);
        zero(&mut a.d_up1, n * d);
        act::backward(
            Activation::Tanh,
            &mut a.d_up1[..n * d],
            &a.up1[..n * d],
            &a.out[..n * d],
            &a.d_out[..n * d],
        );
        zero(&mut a.d_a1, n * f1);
        self.up1.backward(
            p,
            Some(&mut *g),
            Some(&mut a.d_a1),
            &a.d_up1,
            &a.a1,
            n,
            &mut a.scratch,
            th,
        );
        zero(&mut a.d_bn1, n * f1);
        act::backward(
            Activation::Relu,
            &mut a.d_bn1[..n * f1],
            &a.bn1[..n * f1],
            &a.a1[..n * f1],
            &a.d_a1[..n * f1],
        );
        zero(&mut a.d_up0, n * f1);
        self.bn1
            .backward(p, g, &mut a.d_up0, &a.d_bn1, &a.up0, n, &a.saved1);
        zero(&mut a.d_a0, n * f0);
        self.up0.backward(
            p,
            Some(&mut *g),
            Some(&mut a.d_a0),
            &a.d_up0,
            &a.a0,
            n,
            &mut a.scratch,
            th,
        );
        zero(&mut a.d_bn0, n * f0);
        act::backward(
            Activation::Relu,
            &mut a.d_bn0[..n * f0],
            &a.bn0[..n * f0],
            &a.a0[..n * f0],
            &a.d_a0[..n * f0],
        );
        zero(&mut a.d_fc, n * f0);
        self.bn0
            .backward(p, g, &mut a.d_fc, &a.d_bn0, &a.fc, n, &a.saved0);
        self.fc.backward(p, g, None, &a.d_fc, &a.zin, n, th);
    }
}

/// The discriminator's per-batch buffers, allocated once for `cap` rows.
#[derive(Debug, Clone)]
pub struct DiscActs {
    /// Rows the buffers hold.
    pub cap: usize,
    /// (B, D) images in [-1, 1].
    pub x: Vec<f32>,
    /// (B) labels (conditional models).
    pub labels: Vec<u32>,
    /// (B, E0) first convolution and its LeakyReLU.
    pub c0: Vec<f32>,
    /// See `c0`.
    pub a0: Vec<f32>,
    /// (B, E1) second convolution, normalized, and its LeakyReLU (phi).
    pub c1: Vec<f32>,
    /// See `c1`.
    pub bn: Vec<f32>,
    /// See `c1`.
    pub phi: Vec<f32>,
    /// (B, d_hidden) the hidden layer and its LeakyReLU (the features
    /// `f`), when there is one.
    pub h: Vec<f32>,
    /// See `h`.
    pub ha: Vec<f32>,
    /// (B) scores (logits).
    pub logit: Vec<f32>,
    /// The norm's saved batch statistics.
    pub saved: Vec<f32>,
    /// (B) dL/d(logit), set by the caller before [`Discriminator::backward`].
    pub d_logit: Vec<f32>,
    /// Gradient buffers.
    pub d_phi: Vec<f32>,
    /// See `d_phi`.
    pub d_h: Vec<f32>,
    /// See `d_phi`.
    pub d_ha: Vec<f32>,
    /// See `d_phi`.
    pub d_bn: Vec<f32>,
    /// See `d_phi`.
    pub d_c1: Vec<f32>,
    /// See `d_phi`.
    pub d_a0: Vec<f32>,
    /// See `d_phi`.
    pub d_c0: Vec<f32>,
    /// (B, D) the gradient reaching the images, when asked for.
    pub d_x: Vec<f32>,
    /// Each convolution's scratch, kept from its forward for its
    /// backward (its columns).
    pub scratch0: Vec<f32>,
    /// See `scratch0`.
    pub scratch1: Vec<f32>,
    /// Where a backward without parameter gradients writes the dense and
    /// norm layers' (never read).
    pub sink: Vec<f32>,
}

impl DiscActs {
    /// Buffers for up to `cap` rows.
    pub fn new(m: &Gan, cap: usize) -> Self {
        let dn = &m.disc;
        let (d, e0, e1) = (m.cfg.image_len(), dn.conv0.out_len(), dn.conv1.out_len());
        let v = |n: usize| vec![0f32; cap * n];
        let t = rayon::current_num_threads();
        Self {
            cap,
            x: v(d),
            labels: vec![0; cap],
            c0: v(e0),
            a0: v(e0),
            c1: v(e1),
            bn: v(e1),
            phi: v(e1),
            h: v(m.cfg.d_hidden),
            ha: v(m.cfg.d_hidden),
            logit: v(1),
            saved: vec![0.0; dn.bn.map_or(0, |b| b.saved_len())],
            d_logit: v(1),
            d_phi: v(e1),
            d_h: v(m.cfg.d_hidden),
            d_ha: v(m.cfg.d_hidden),
            d_bn: v(e1),
            d_c1: v(e1),
            d_a0: v(e0),
            d_c0: v(e0),
            d_x: v(d),
            scratch0: vec![0.0; dn.conv0.scratch_len(t)],
            scratch1: vec![0.0; dn.conv1.scratch_len(t)],
            sink: vec![0.0; dn.layout.total()],
        }
    }
}

impl Discriminator {
    /// With spectral norm, the parameters the layers run on: `eff` is
    /// `p` with every normalized weight `W / sigma`, after one power
    /// iteration per weight when `iterate` (once per update of `p`, as
    /// PyTorch does once per training forward). Returns `eff`, or `p`
    /// itself without spectral norm.
    pub fn normalized<'a>(
        &self,
        p: &'a [f32],
        eff: &'a mut Vec<f32>,
        buffers: &mut [f32],
        iterate: bool,
    ) -> &'a [f32] {
        if self.sn.is_empty() {
            return p;
        }
        eff.clear();
        eff.extend_from_slice(p);
        for sn in &self.sn {
            if iterate {
                sn.iterate(p, buffers);
            }
            sn.apply(p, eff, buffers);
        }
        eff
    }

    /// Turns the gradients [`Discriminator::backward`] added for the
    /// normalized weights (of `eff`, from [`Discriminator::normalized`])
    /// into gradients for the weights themselves.
    pub fn normalized_backward(&self, grads: &mut [f32], eff: &[f32], buffers: &[f32]) {
        for sn in &self.sn {
            sn.backward(grads, eff, buffers);
        }
    }

    /// Scores the first `n` rows of `a.x` (with `a.labels`) into `a.logit`.
    pub fn forward(
        &self,
        p: &[f32],
        buffers: &mut [f32],
        a: &mut DiscActs,
        n: usize,
        mode: Mode,
        th: Threads,
    ) {
        let (e0, e1) = (self.conv0.out_len(), self.conv1.out_len());
        self.conv0
            .forward(p, &mut a.c0, &a.x, n, &mut a.scratch0, th);
        act::forward(LEAKY, &mut a.a0[..n * e0], &a.c0[..n * e0]);
        self.conv1
            .forward(p, &mut a.c1, &a.a0, n, &mut a.scratch1, th);
        match (&self.bn, mode) {
            (Some(bn), Mode::Train) => {
                bn.forward_train(p, buffers, &mut a.bn, &a.c1, n, &mut a.saved)
            }
            (Some(bn), Mode::Eval) => bn.forward_eval(p, buffers, &mut a.bn, &a.c1, n),
            (None, _) => a.bn[..n * e1].copy_from_slice(&a.c1[..n * e1]),
        }
        act::forward(LEAKY, &mut a.phi[..n * e1], &a.bn[..n * e1]);
        let (f, fl): (&[f32], usize) = match &self.hidden {
            Some(h) => {
                h.forward(p, &mut a.h, &a.phi, n, th);
                act::forward(LEAKY, &mut a.ha[..n * h.out], &a.h[..n * h.out]);
                (&a.ha, h.out)
            }
            None => (&a.phi, e1),
        };
        self.fc.forward(p, &mut a.logit, f, n, th);
        if let Some(e) = &self.embed {
            let table = &p[e.offset..e.offset + e.n * e.d];
            for i in 0..n {
                let y = a.labels[i] as usize % e.n;
                let row = &table[y * fl..(y + 1) * fl];
                let fi = &f[i * fl..(i + 1) * fl];
                a.logit[i] += row.iter().zip(fi).map(|(w, v)| w * v).sum::<f32>();
            }
        }
    }

    /// Backward of the training-mode forward just run (its columns are
    /// reused) from `a.d_logit`. *Adds* the parameter gradients into `g`
    /// when given (the generator's update needs none), and writes the
    /// images' gradient into `a.d_x` when `input_grad`.
    pub fn backward(
        &self,
        p: &[f32],
        g: Option<&mut [f32]>,
        a: &mut DiscActs,
        n: usize,
        input_grad: bool,
        th: Threads,
    ) {
        // Without parameter gradients, the dense and norm layers write
        // theirs into a scratch that is dropped.
        let want = g.is_some();
        let mut sink = std::mem::take(&mut a.sink);
        let gl: &mut [f32] = match g {
            Some(g) => g,
            None => &mut sink,
        };
        let (e0, e1) = (self.conv0.out_len(), self.conv1.out_len());
        // The heads read the features f: the hidden layer's, or phi.
        let (f, d_f, fl) = match &self.hidden {
            Some(h) => (&a.ha, &mut a.d_ha, h.out),
            None => (&a.phi, &mut a.d_phi, e1),
        };
        d_f[..n * fl].fill(0.0);
        self.fc
            .backward(p, gl, Some(&mut d_f[..]), &a.d_logit, f, n, th);
        if let Some(e) = &self.embed {
            for i in 0..n {
                let y = a.labels[i] as usize % e.n;
                let dl = a.d_logit[i];
                let row = e.offset + y * fl;
                for (j, &v) in f[i * fl..(i + 1) * fl].iter().enumerate() {
                    d_f[i * fl + j] += dl * p[row + j];
                    gl[row + j] += dl * v;
                }
            }
        }
        if let Some(h) = &self.hidden {
            let hl = n * h.out;
            a.d_h[..hl].fill(0.0);
            act::backward(
                LEAKY,
                &mut a.d_h[..hl],
                &a.h[..hl],
                &a.ha[..hl],
                &a.d_ha[..hl],
            );
            a.d_phi[..n * e1].fill(0.0);
            h.backward(p, gl, Some(&mut a.d_phi), &a.d_h, &a.phi, n, th);
        }
        a.d_bn[..n * e1].fill(0.0);
        act::backward(
            LEAKY,
            &mut a.d_bn[..n * e1],
            &a.bn[..n * e1],
            &a.phi[..n * e1],
            &a.d_phi[..n * e1],
        );
        match &self.bn {
            Some(bn) => {
                a.d_c1[..n * e1].fill(0.0);
                bn.backward(p, gl, &mut a.d_c1, &a.d_bn, &a.c1, n, &a.saved);
            }
            None => a.d_c1[..n * e1].copy_from_slice(&a.d_bn[..n * e1]),
        }
        a.d_a0[..n * e0].fill(0.0);
        let keep = want.then_some(&mut *gl);
        self.conv1.backward(
            p,
            keep,
            Some(&mut a.d_a0),
            &a.d_c1,
            &a.a0,
            n,
            &mut a.scratch1,
            th,
        );
        a.d_c0[..n * e0].fill(0.0);
        act::backward(
            LEAKY,
            &mut a.d_c0[..n * e0],
            &a.c0[..n * e0],
            &a.a0[..n * e0],
            &a.d_a0[..n * e0],
        );
        let d_x = if input_grad {
            let d = self.conv0.geom.image_len();
            a.d_x[..n * d].fill(0.0);
            Some(&mut a.d_x[..])
        } else {
            None
        };
        let keep = want.then_some(&mut *gl);
        self.conv0
            .backward(p, keep, d_x, &a.d_c0, &a.x, n, &mut a.scratch0, th);
        a.sink = sink;
    }
}

/// Images in [-1, 1] to pixels in [0, 1].
pub fn to_pixels(out: &mut [f32], images: &[f32]) {
    for (o, &v) in out.iter_mut().zip(images) {
        *o = (0.5 * (v + 1.0)).clamp(0.0, 1.0);
    }
}
