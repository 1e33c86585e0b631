//! The classifier: a LeNet-style CNN that the evaluation suite scores every
//! image model with. `x -> Conv k5 s2 p2 -> (W0, H/2, W/2)` (BN, ReLU)
//! `-> Conv k5 s2 p2 -> (W1, H/4, W/4)` (BN, ReLU) `-> dense -> F` (ReLU;
//! these F values are the features the suite compares) `-> dropout ->
//! dense -> K` logits.
//!
//! Strided convolutions instead of LeNet's pooling: the engine has them
//! already, and they learn their downsampling. Inputs are pixels in
//! [0, 1], mapped to [-1, 1].

use crate::nn::act::{self, Activation};
use crate::nn::conv::{Conv2d, Geom};
use crate::nn::gemm::Threads;
use crate::nn::linear::Linear;
use crate::nn::norm::{BatchNorm, Mode};
use crate::nn::params::Layout;
use crate::rng::Rng;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// What defines a classifier's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifierConfig {
    /// `[C, H, W]`.
    pub image_shape: [usize; 3],
    /// K.
    pub n_classes: usize,
    /// Channels of the two convolutions.
    pub widths: [usize; 2],
    /// F, the feature width.
    pub features: usize,
    /// Dropout before the last layer, in training.
    pub dropout: f32,
    /// For an audio classifier: the log-mel features its "images" are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_mel: Option<crate::data::logmel::LogMel>,
}

impl ClassifierConfig {
    /// D = C*H*W.
    pub fn image_len(&self) -> usize {
        self.image_shape.iter().product()
    }

    /// Checks sizes; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        let [c, h, w] = self.image_shape;
        if c == 0 || h == 0 || w == 0 {
            bail!("the classifier needs non-empty images, found {c}x{h}x{w}");
        }
        if self.n_classes < 2 {
            bail!(
                "the classifier needs at least 2 classes, and the data has {}",
                self.n_classes
            );
        }
        if self.widths.contains(&0) || self.features == 0 {
            bail!("--widths and --features: expected non-zero sizes");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("--dropout: expected 0 <= value < 1, found {}", self.dropout);
        }
        Ok(())
    }
}

/// The classifier's layers and their places in its one parameter group.
#[derive(Debug, Clone)]
pub struct Classifier {
    /// The configuration.
    pub cfg: ClassifierConfig,
    /// The parameters (`cls.*`).
    pub layout: Layout,
    /// The norms' running statistics.
    pub buffers: Layout,
    /// First convolution.
    pub conv0: Conv2d,
    /// Its norm.
    pub bn0: BatchNorm,
    /// Second convolution.
    pub conv1: Conv2d,
    /// Its norm.
    pub bn1: BatchNorm,
    /// To the features.
    pub fc0: Linear,
    /// To the logits.
    pub fc1: Linear,
}

impl Classifier {
    /// Lays out the network.
    pub fn new(cfg: ClassifierConfig) -> Result<Self> {
        cfg.validate()?;
        let [c, h, w] = cfg.image_shape;
        let [w0, w1] = cfg.widths;
        let (mut l, mut b) = (Layout::default(), Layout::default());
        let g0 = Geom::new(c, h, w, 5, 2, 2).ok_or_else(|| anyhow::anyhow!("image too small"))?;
        let conv0 = Conv2d::new(&mut l, "cls.conv.0", g0, w0);
        let bn0 = BatchNorm::new(&mut l, &mut b, "cls.bn.0", w0, g0.positions());
        let g1 = Geom::new(w0, g0.oh, g0.ow, 5, 2, 2)
            .ok_or_else(|| anyhow::anyhow!("image too small"))?;
        let conv1 = Conv2d::new(&mut l, "cls.conv.1", g1, w1);
        let bn1 = BatchNorm::new(&mut l, &mut b, "cls.bn.1", w1, g1.positions());
        let fc0 = Linear::new(&mut l, "cls.fc.0", conv1.out_len(), cfg.features);
        let fc1 = Linear::new(&mut l, "cls.fc.1", cfg.features, cfg.n_classes);
        Ok(Self {
            cfg,
            layout: l,
            buffers: b,
            conv0,
            bn0,
            conv1,
            bn1,
            fc0,
            fc1,
        })
    }

    /// PyTorch's default initialization; norms at scale 1, shift 0.
    pub fn init(&self, p: &mut [f32], buffers: &mut [f32], rng: &mut Rng) {
        self.conv0.init(p, rng);
        self.conv1.init(p, rng);
        self.fc0.init(p, rng);
        self.fc1.init(p, rng);
        self.bn0.init(p, buffers);
        self.bn1.init(p, buffers);
    }
}

/// The classifier's per-batch buffers, allocated once for `cap` rows.
#[derive(Debug, Clone)]
pub struct ClassifierActs {
    /// Rows the buffers hold.
    pub cap: usize,
    /// (B, D) inputs in [-1, 1].
    pub x: Vec<f32>,
    /// (B) labels.
    pub labels: Vec<u32>,
    /// First block: convolution, norm, ReLU.
    pub c0: Vec<f32>,
    /// See `c0`.
    pub n0: Vec<f32>,
    /// See `c0`.
    pub a0: Vec<f32>,
    /// Second block.
    pub c1: Vec<f32>,
    /// See `c1`.
    pub n1: Vec<f32>,
    /// See `c1`.
    pub a1: Vec<f32>,
    /// (B, F) before the ReLU.
    pub f: Vec<f32>,
    /// (B, F) the features.
    pub h: Vec<f32>,
    /// (B, F) after dropout, and its mask.
    pub hd: Vec<f32>,
    /// See `hd`.
    pub mask: Vec<f32>,
    /// (B, K).
    pub logits: Vec<f32>,
    /// (B) loss per row.
    pub loss: Vec<f32>,
    /// Saved batch statistics.
    pub saved0: Vec<f32>,
    /// See `saved0`.
    pub saved1: Vec<f32>,
    /// Gradient buffers.
    pub d_logits: Vec<f32>,
    /// See `d_logits`.
    pub d_hd: Vec<f32>,
    /// See `d_logits`.
    pub d_h: Vec<f32>,
    /// See `d_logits`.
    pub d_f: Vec<f32>,
    /// See `d_logits`.
    pub d_a1: Vec<f32>,
    /// See `d_logits`.
    pub d_n1: Vec<f32>,
    /// See `d_logits`.
    pub d_c1: Vec<f32>,
    /// See `d_logits`.
    pub d_a0: Vec<f32>,
    /// See `d_logits`.
    pub d_n0: Vec<f32>,
    /// See `d_logits`.
    pub d_c0: Vec<f32>,
    /// The convolutions' scratch.
    pub scratch0: Vec<f32>,
    /// See `scratch0`.
    pub scratch1: Vec<f32>,
}

impl ClassifierActs {
    /// Buffers for up to `cap` rows.
    pub fn new(m: &Classifier, cap: usize) -> Self {
        let (d, e0, e1, f, k) = (
            m.cfg.image_len(),
            m.conv0.out_len(),
            m.conv1.out_len(),
            m.cfg.features,
            m.cfg.n_classes,
        );
        let v = |n: usize| vec![0f32; cap * n];
        let t = rayon::current_num_threads();
        Self {
            cap,
            x: v(d),
            labels: vec![0; cap],
            c0: v(e0),
            n0: v(e0),
            a0: v(e0),
            c1: v(e1),
            n1: v(e1),
            a1: v(e1),
            f: v(f),
            h: v(f),
            hd: v(f),
            mask: v(f),
            logits: v(k),
            loss: v(1),
            saved0: vec![0.0; m.bn0.saved_len()],
            saved1: vec![0.0; m.bn1.saved_len()],
            d_logits: v(k),
            d_hd: v(f),
            d_h: v(f),
            d_f: v(f),
            d_a1: v(e1),
            d_n1: v(e1),
            d_c1: v(e1),
            d_a0: v(e0),
            d_n0: v(e0),
            d_c0: v(e0),
            scratch0: vec![0.0; m.conv0.scratch_len(t)],
            scratch1: vec![0.0; m.conv1.scratch_len(t)],
        }
    }

    /// Copies pixel rows in [0, 1] into `x`, mapped to [-1, 1].
    pub fn set_pixels(&mut self, rows: &[f32]) {
        for (o, &v) in self.x.iter_mut().zip(rows) {
            *o = 2.0 * v - 1.0;
        }
    }
}

impl Classifier {
    /// Logits (and features `a.h`) of the first `n` rows of `a.x`. In
    /// training mode the norms use batch statistics and dropout draws its
    /// mask from `rng`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        p: &[f32],
        buffers: &mut [f32],
        a: &mut ClassifierActs,
        n: usize,
        mode: Mode,
        rng: &mut Rng,
        th: Threads,
    ) {
        let (e0, e1, f) = (
            self.conv0.out_len(),
            self.conv1.out_len(),
            self.cfg.features,
        );
        self.conv0
            .forward(p, &mut a.c0, &a.x, n, &mut a.scratch0, th);
        self.bn0
            .forward(p, buffers, &mut a.n0, &a.c0, n, &mut a.saved0, mode);
        act::forward(Activation::Relu, &mut a.a0[..n * e0], &a.n0[..n * e0]);
        self.conv1
            .forward(p, &mut a.c1, &a.a0, n, &mut a.scratch1, th);
        self.bn1
            .forward(p, buffers, &mut a.n1, &a.c1, n, &mut a.saved1, mode);
        act::forward(Activation::Relu, &mut a.a1[..n * e1], &a.n1[..n * e1]);
        self.fc0.forward(p, &mut a.f, &a.a1, n, th);
        act::forward(Activation::Relu, &mut a.h[..n * f], &a.f[..n * f]);
        let input = if mode == Mode::Train && self.cfg.dropout > 0.0 {
            crate::nn::dropout::forward(
                &mut a.hd[..n * f],
                &a.h[..n * f],
                &mut a.mask[..n * f],
                self.cfg.dropout,
                rng,
            );
            &a.hd
        } else {
            &a.h
        };
        self.fc1.forward(p, &mut a.logits, input, n, th);
    }

    /// The cross-entropy of each row (`a.loss`), with its gradient (mean
    /// over the batch) in `a.d_logits` when `grad`.
    pub fn loss(&self, a: &mut ClassifierActs, n: usize, grad: bool) {
        let k = self.cfg.n_classes;
        crate::nn::loss::softmax_cross_entropy(
            &mut a.loss[..n],
            grad.then_some(&mut a.d_logits[..n * k]),
            &a.logits[..n * k],
            &a.labels[..n],
            k,
            1.0 / n as f32,
        );
    }

    /// Backward of a training-mode forward from `a.d_logits`; *adds* into `g`.
    pub fn backward(
        &self,
        p: &[f32],
        g: &mut [f32],
        a: &mut ClassifierActs,
        n: usize,
        th: Threads,
    ) {
        let (e0, e1, f) = (
            self.conv0.out_len(),
            self.conv1.out_len(),
            self.cfg.features,
        );
        let dropped = self.cfg.dropout > 0.0;
        let zero = |v: &mut Vec<f32>, len: usize| v[..len].fill(0.0);
        zero(&mut a.d_hd, n * f);
        let input = if dropped { &a.hd } else { &a.h };
        self.fc1
            .backward(p, g, Some(&mut a.d_hd), &a.d_logits, input, n, th);
        zero(&mut a.d_h, n * f);
        if dropped {
            crate::nn::dropout::backward(&mut a.d_h[..n * f], &a.d_hd[..n * f], &a.mask[..n * f]);
        } else {
            a.d_h[..n * f].copy_from_slice(&a.d_hd[..n * f]);
        }
        zero(&mut a.d_f, n * f);
        act::backward(
            Activation::Relu,
            &mut a.d_f[..n * f],
            &a.f[..n * f],
            &a.h[..n * f],
            &a.d_h[..n * f],
        );
        zero(&mut a.d_a1, n * e1);
        self.fc0
            .backward(p, g, Some(&mut a.d_a1), &a.d_f, &a.a1, n, th);
        zero(&mut a.d_n1, n * e1);
        act::backward(
            Activation::Relu,
            &mut a.d_n1[..n * e1],
            &a.n1[..n * e1],
            &a.a1[..n * e1],
            &a.d_a1[..n * e1],
        );
        zero(&mut a.d_c1, n * e1);
        self.bn1
            .backward(p, g, &mut a.d_c1, &a.d_n1, &a.c1, n, &a.saved1);
        zero(&mut a.d_a0, n * e0);
        self.conv1.backward(
            p,
            Some(&mut *g),
            Some(&mut a.d_a0),
            &a.d_c1,
            &a.a0,
            n,
            &mut a.scratch1,
            th,
        );
        zero(&mut a.d_n0, n * e0);
        act::backward(
            Activation::Relu,
            &mut a.d_n0[..n * e0],
            &a.n0[..n * e0],
            &a.a0[..n * e0],
            &a.d_a0[..n * e0],
        );
        zero(&mut a.d_c0, n * e0);
        self.bn0
            .backward(p, g, &mut a.d_c0, &a.d_n0, &a.c0, n, &a.saved0);
        self.conv0.backward(
            p,
            Some(&mut *g),
            None,
            &a.d_c0,
            &a.x,
            n,
            &mut a.scratch0,
            th,
        );
    }

    /// Eval-mode features `(n, F)` and class probabilities `(n, K)` of pixel
    /// rows in [0, 1], in batches of `a.cap`.
    pub fn features_and_probs(
        &self,
        p: &[f32],
        buffers: &[f32],
        pixels: &[f32],
        a: &mut ClassifierActs,
        th: Threads,
    ) -> (Vec<f32>, Vec<f32>) {
        let (d, f, k) = (self.cfg.image_len(), self.cfg.features, self.cfg.n_classes);
        let n = pixels.len() / d;
        let (mut feats, mut probs) = (vec![0f32; n * f], vec![0f32; n * k]);
        let mut bufs = buffers.to_vec();
        let mut rng = Rng::new(0);
        for start in (0..n).step_by(a.cap) {
            let rows = a.cap.min(n - start);
            a.set_pixels(&pixels[start * d..(start + rows) * d]);
            self.forward(p, &mut bufs, a, rows, Mode::Eval, &mut rng, th);
            feats[start * f..(start + rows) * f].copy_from_slice(&a.h[..rows * f]);
            for r in 0..rows {
                let l = &a.logits[r * k..(r + 1) * k];
                let m = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let e: Vec<f32> = l.iter().map(|&v| (v - m).exp()).collect();
                let s: f32 = e.iter().sum();
                for (o, v) in probs[(start + r) * k..(start + r + 1) * k]
                    .iter_mut()
                    .zip(e)
                {
                    *o = v / s;
                }
            }
        }
        (feats, probs)
    }
}
