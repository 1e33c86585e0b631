//! The VAE family: an MLP encoder `[x, onehot] -> h_0 .. h_{n-1} -> (mu, logvar)`
//! and a mirrored decoder `[z, onehot] -> h_{n-1} .. h_0 -> D` (logits for a
//! Bernoulli likelihood, means for a Gaussian one).
//!
//! A conditional decoder can also take its label at every later layer, as a
//! per-class bias `dec.{i}.label.weight` `(K, out_i)` added before the
//! activation. With the label only beside z, samples from the prior came
//! out as another class's digit a third of the time on MNIST; measured, the
//! per-layer bias adds about one point of conditional accuracy and a second
//! hidden layer most of the rest (see `train::vae::VaeSettings::hidden`).
//!
//! B batch, D pixels per image, Z latent size, K classes (0 if unconditional).

use crate::nn::act::{self, Activation};
use crate::nn::embed::Embedding;
use crate::nn::gemm::Threads;
use crate::nn::linear::Linear;
use crate::nn::loss;
use crate::nn::params::Layout;
use crate::rng::Rng;
use anyhow::{Result, bail};
pub use edgegen_format::arch::vae::Likelihood;
use serde::{Deserialize, Serialize};

/// What defines a VAE's shape; stored in `config.json` and in the GGUF file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaeConfig {
    /// `[C, H, W]`.
    pub image_shape: [usize; 3],
    /// Hidden widths, encoder order (1 to 4).
    pub hidden: Vec<usize>,
    /// Z.
    pub latent: usize,
    /// K; 0 for an unconditional model.
    pub n_classes: usize,
    /// `bernoulli` or `gaussian`.
    pub likelihood: String,
    /// Hidden activation name.
    pub activation: String,
    /// Conditional decoders only: the label also enters every decoder layer
    /// after the first. Runs stored before it existed have `false`.
    #[serde(default)]
    pub label_every_layer: bool,
}

impl VaeConfig {
    /// D = C*H*W.
    pub fn input_dim(&self) -> usize {
        self.image_shape.iter().product()
    }
    /// The parsed likelihood.
    pub fn likelihood(&self) -> Result<Likelihood> {
        Likelihood::from_name(&self.likelihood).ok_or_else(|| {
            anyhow::anyhow!(
                "likelihood: expected bernoulli or gaussian, found {:?}",
                self.likelihood
            )
        })
    }
    /// The parsed activation.
    pub fn activation(&self) -> Result<Activation> {
        Activation::from_name(&self.activation).ok_or_else(|| {
            anyhow::anyhow!(
                "activation: expected relu, leaky_relu, tanh, sigmoid, gelu or softplus, found {:?}",
                self.activation
            )
        })
    }
    /// Checks sizes before anything is allocated.
    pub fn validate(&self) -> Result<()> {
        self.likelihood()?;
        self.activation()?;
        if self.hidden.is_empty() || self.hidden.len() > edgegen_format::arch::vae::MAX_HIDDEN {
            bail!(
                "hidden: expected 1 to 4 widths, found {}",
                self.hidden.len()
            );
        }
        if self.hidden.contains(&0) || self.latent == 0 || self.input_dim() == 0 {
            bail!("hidden, latent and image shape must all be non-zero");
        }
        if self.label_every_layer && self.n_classes == 0 {
            bail!("label_every_layer: expected false for an unconditional model, found true");
        }
        Ok(())
    }
}

/// A VAE's layers and their places in the flat buffers.
#[derive(Debug, Clone)]
pub struct Vae {
    /// The configuration.
    pub cfg: VaeConfig,
    /// The size table of every tensor.
    pub layout: Layout,
    /// Encoder layers `enc.0 ..`.
    pub enc: Vec<Linear>,
    /// The two heads as one layer of 2Z outputs: rows `[mu; logvar]`.
    pub heads: Linear,
    /// Decoder layers `dec.0 .. dec.n`.
    pub dec: Vec<Linear>,
    /// Per decoder layer, its label table (`dec.{i}.label.weight`), for
    /// layers after the first of a decoder with `label_every_layer`.
    pub dec_label: Vec<Option<Embedding>>,
    act: Activation,
    lik: Likelihood,
}

impl Vae {
    /// Lays out the tensors, with the names of `formats/README.md`.
    pub fn new(cfg: VaeConfig) -> Result<Self> {
        cfg.validate()?;
        let (d, z, k) = (cfg.input_dim(), cfg.latent, cfg.n_classes);
        let h = &cfg.hidden;
        let mut layout = Layout::default();
        let mut enc = vec![];
        let mut inp = d + k;
        for (i, &w) in h.iter().enumerate() {
            enc.push(Linear::new(&mut layout, &format!("enc.{i}"), inp, w));
            inp = w;
        }
        // mu and logvar weights, then both biases: one (2Z, H) layer.
        let offset = layout.push("enc.mu.weight", &[z, inp]);
        layout.push("enc.logvar.weight", &[z, inp]);
        layout.push("enc.mu.bias", &[z]);
        layout.push("enc.logvar.bias", &[z]);
        let heads = Linear {
            offset,
            inp,
            out: 2 * z,
            int8_inputs: false,
        };
        let mut dec = vec![];
        let mut dec_label = vec![];
        let mut inp = z + k;
        let widths = h.iter().rev().copied().chain([d]);
        for (i, w) in widths.enumerate() {
            dec.push(Linear::new(&mut layout, &format!("dec.{i}"), inp, w));
            let label = cfg.label_every_layer && i > 0;
            dec_label
                .push(label.then(|| Embedding::new(&mut layout, &format!("dec.{i}.label"), k, w)));
            inp = w;
        }
        Ok(Self {
            act: cfg.activation()?,
            lik: cfg.likelihood()?,
            cfg,
            layout,
            enc,
            heads,
            dec,
            dec_label,
        })
    }

    /// Total parameters.
    pub fn n_params(&self) -> usize {
        self.layout.total()
    }

    /// PyTorch's default initialization for every layer.
    pub fn init(&self, params: &mut [f32], rng: &mut Rng) {
        for l in self.enc.iter().chain([&self.heads]).chain(&self.dec) {
            l.init(params, rng);
        }
        // The fused heads draw their bound from H, as two nn.Linear(H, Z) would.
        // The label tables start at zero: the decoder begins as the one with
        // the label beside z only.
        for t in self.dec_label.iter().flatten() {
            params[t.offset..t.offset + t.n * t.d].fill(0.0);
        }
    }

    /// The likelihood.
    pub fn likelihood(&self) -> Likelihood {
        self.lik
    }

    fn set_onehot(row: &mut [f32], k: usize, label: u32) {
        let start = row.len() - k;
        let oh = &mut row[start..];
        oh.fill(0.0);
        if let Some(v) = oh.get_mut(label as usize) {
            *v = 1.0;
        }
    }

    /// Encoder: fills `a.stats` with rows `[mu, logvar]` for the first `n`
    /// rows of `a.x` (and `a.labels` when conditional).
    pub fn encode(&self, p: &[f32], a: &mut VaeActs, n: usize, th: Threads) {
        let (d, k) = (self.cfg.input_dim(), self.cfg.n_classes);
        if k > 0 {
            for (i, row) in a.enc_in.chunks_exact_mut(d + k).take(n).enumerate() {
                row[..d].copy_from_slice(&a.x[i * d..(i + 1) * d]);
                Self::set_onehot(row, k, a.labels[i]);
            }
        }
        for (i, l) in self.enc.iter().enumerate() {
            let input: &[f32] = match i {
                0 if k > 0 => &a.enc_in,
                0 => &a.x,
                _ => &a.enc_post[i - 1],
            };
            l.forward(p, &mut a.enc_pre[i], input, n, th);
            act::forward(
                self.act,
                &mut a.enc_post[i][..n * l.out],
                &a.enc_pre[i][..n * l.out],
            );
        }
        self.heads
            .forward(p, &mut a.stats, a.enc_post.last().unwrap(), n, th);
    }

    /// Decoder: from the first `n` rows of `a.dec_in` (z, then the one-hot)
    /// to `a.out` (logits or means).
    pub fn decode(&self, p: &[f32], a: &mut VaeActs, n: usize, th: Threads) {
        let last = self.dec.len() - 1;
        for (i, l) in self.dec.iter().enumerate() {
            let input: &[f32] = if i == 0 {
                &a.dec_in
            } else {
                &a.dec_post[i - 1]
            };
            let labels = &a.labels[..n];
            if i == last {
                l.forward(p, &mut a.out, input, n, th);
                if let Some(t) = self.dec_label[i] {
                    t.forward_add(p, &mut a.out[..n * l.out], labels);
                }
            } else {
                l.forward(p, &mut a.dec_pre[i], input, n, th);
                if let Some(t) = self.dec_label[i] {
                    t.forward_add(p, &mut a.dec_pre[i][..n * l.out], labels);
                }
                act::forward(
                    self.act,
                    &mut a.dec_post[i][..n * l.out],
                    &a.dec_pre[i][..n * l.out],
                );
            }
        }
    }

    /// Writes z rows (and the one-hot labels) into `a.dec_in` via the
    /// reparameterization with `a.eps`.
    pub fn sample_z(&self, a: &mut VaeActs, n: usize) {
        let (z, k) = (self.cfg.latent, self.cfg.n_classes);
        loss::reparam_forward(
            &mut a.dec_in[..n * (z + k)],
            z + k,
            &a.stats[..n * 2 * z],
            &a.eps[..n * z],
            z,
        );
        if k > 0 {
            for (i, row) in a.dec_in.chunks_exact_mut(z + k).take(n).enumerate() {
                Self::set_onehot(row, k, a.labels[i]);
            }
        }
    }

    /// The reconstruction loss of each row (nats), with its gradient into
    /// `a.d_out` when `grad` is set.
    pub fn reconstruction(&self, a: &mut VaeActs, n: usize, grad: bool) {
        let d = self.cfg.input_dim();
        let (out, x) = (&a.out[..n * d], &a.x[..n * d]);
        let dout = grad.then_some(&mut a.d_out[..n * d]);
        match self.lik {
            Likelihood::Bernoulli => loss::bce_with_logits(&mut a.rec[..n], dout, out, x, d, 1.0),
            Likelihood::Gaussian => loss::gaussian_nll(&mut a.rec[..n], dout, out, x, d, 1.0),
        }
    }

    /// Full forward pass with the noise in `a.eps`: fills `a.rec` and `a.kl`
    /// per row. With `grad`, also seeds the gradients for [`Vae::backward`].
    pub fn forward(&self, p: &[f32], a: &mut VaeActs, n: usize, grad: bool, th: Threads) {
        let z = self.cfg.latent;
        self.encode(p, a, n, th);
        self.sample_z(a, n);
        self.decode(p, a, n, th);
        self.reconstruction(a, n, grad);
        let dstats = if grad {
            a.d_stats[..n * 2 * z].fill(0.0);
            Some(&mut a.d_stats[..n * 2 * z])
        } else {
            None
        };
        loss::kl_diag_gaussian(&mut a.kl[..n], dstats, &a.stats[..n * 2 * z], z, 1.0);
    }

    /// Backward of the summed batch loss; *adds* into `grads`.
    pub fn backward(&self, p: &[f32], g: &mut [f32], a: &mut VaeActs, n: usize, th: Threads) {
        let (z, k) = (self.cfg.latent, self.cfg.n_classes);
        let last = self.dec.len() - 1;
        // Decoder, last layer first. `d_out` holds dL/d(out).
        for i in (0..=last).rev() {
            let l = self.dec[i];
            let (dcur, input): (&[f32], &[f32]) = if i == last {
                (
                    &a.d_out,
                    if i == 0 {
                        &a.dec_in
                    } else {
                        &a.dec_post[i - 1]
                    },
                )
            } else {
                (
                    &a.d_dec_pre[i],
                    if i == 0 {
                        &a.dec_in
                    } else {
                        &a.dec_post[i - 1]
                    },
                )
            };
            if let Some(t) = self.dec_label[i] {
                t.backward(g, &dcur[..n * l.out], &a.labels[..n]);
            }
            if i == 0 {
                a.d_dec_in[..n * (z + k)].fill(0.0);
                l.backward(p, g, Some(&mut a.d_dec_in), dcur, input, n, th);
            } else {
                let w = self.dec[i - 1].out;
                a.d_dec_post[..n * w].fill(0.0);
                l.backward(p, g, Some(&mut a.d_dec_post), dcur, input, n, th);
                a.d_dec_pre[i - 1][..n * w].fill(0.0);
                act::backward(
                    self.act,
                    &mut a.d_dec_pre[i - 1][..n * w],
                    &a.dec_pre[i - 1][..n * w],
                    &a.dec_post[i - 1][..n * w],
                    &a.d_dec_post[..n * w],
                );
            }
        }
        // Through the sampling step into (mu, logvar); the KL's share is already there.
        loss::reparam_backward(
            &mut a.d_stats[..n * 2 * z],
            &a.d_dec_in[..n * (z + k)],
            z + k,
            &a.stats,
            &a.eps,
            z,
        );
        let hl = self.enc.len() - 1;
        let w = self.enc[hl].out;
        a.d_enc_post[..n * w].fill(0.0);
        self.heads.backward(
            p,
            g,
            Some(&mut a.d_enc_post),
            &a.d_stats,
            &a.enc_post[hl],
            n,
            th,
        );
        for i in (0..=hl).rev() {
            let l = self.enc[i];
            a.d_enc_pre[..n * l.out].fill(0.0);
            act::backward(
                self.act,
                &mut a.d_enc_pre[..n * l.out],
                &a.enc_pre[i][..n * l.out],
                &a.enc_post[i][..n * l.out],
                &a.d_enc_post[..n * l.out],
            );
            let input: &[f32] = match i {
                0 if k > 0 => &a.enc_in,
                0 => &a.x,
                _ => &a.enc_post[i - 1],
            };
            if i == 0 {
                l.backward(p, g, None, &a.d_enc_pre, input, n, th);
            } else {
                let wp = self.enc[i - 1].out;
                a.d_enc_post[..n * wp].fill(0.0);
                // d_enc_post is both this layer's upstream gradient (already
                // consumed into d_enc_pre) and the next one's output.
                l.backward(p, g, Some(&mut a.d_enc_post), &a.d_enc_pre, input, n, th);
            }
        }
    }

    /// Decodes rows of `z` (with `labels` when conditional; a label past the
    /// classes wraps around) into pixels in [0, 1], `(n, D)`.
    pub fn decode_pixels(&self, p: &[f32], z: &[f32], labels: &[u32], th: Threads) -> Vec<f32> {
        let (zd, k, d) = (self.cfg.latent, self.cfg.n_classes, self.cfg.input_dim());
        let n = z.len() / zd;
        let mut a = VaeActs::new(self, n.max(1));
        for i in 0..n {
            let row = &mut a.dec_in[i * (zd + k)..(i + 1) * (zd + k)];
            row[..zd].copy_from_slice(&z[i * zd..(i + 1) * zd]);
            row[zd..].fill(0.0);
            if k > 0 {
                a.labels[i] = labels[i] % k as u32;
                row[zd + a.labels[i] as usize] = 1.0;
            }
        }
        self.decode(p, &mut a, n, th);
        let mut px = vec![0f32; n * d];
        self.to_pixels(&mut px, &a.out[..n * d]);
        px
    }

    /// Turns decoder outputs into pixels in [0, 1].
    pub fn to_pixels(&self, out: &mut [f32], raw: &[f32]) {
        match self.lik {
            Likelihood::Bernoulli => loss::logits_to_pixels(out, raw),
            Likelihood::Gaussian => out
                .iter_mut()
                .zip(raw)
                .for_each(|(o, &r)| *o = r.clamp(0.0, 1.0)),
        }
    }
}

/// Every per-batch buffer of a VAE, allocated once for `cap` rows.
#[derive(Debug, Clone)]
pub struct VaeActs {
    /// Rows the buffers hold.
    pub cap: usize,
    /// (B, D) inputs, which are also the reconstruction targets.
    pub x: Vec<f32>,
    /// (B) class labels (conditional models).
    pub labels: Vec<u32>,
    /// (B, D+K) encoder input with the one-hot (conditional models).
    pub enc_in: Vec<f32>,
    /// Per encoder layer: (B, h_i) before and after the activation.
    pub enc_pre: Vec<Vec<f32>>,
    /// See `enc_pre`.
    pub enc_post: Vec<Vec<f32>>,
    /// (B, 2Z) rows of `[mu, logvar]`.
    pub stats: Vec<f32>,
    /// (B, Z) standard normal noise.
    pub eps: Vec<f32>,
    /// (B, Z+K) decoder input.
    pub dec_in: Vec<f32>,
    /// Per hidden decoder layer: before and after the activation.
    pub dec_pre: Vec<Vec<f32>>,
    /// See `dec_pre`.
    pub dec_post: Vec<Vec<f32>>,
    /// (B, D) decoder output: logits or means.
    pub out: Vec<f32>,
    /// (B) reconstruction loss per row.
    pub rec: Vec<f32>,
    /// (B) KL per row.
    pub kl: Vec<f32>,
    /// Gradients: (B, D).
    pub d_out: Vec<f32>,
    /// (B, max width) scratch for a decoder layer's output gradient.
    pub d_dec_post: Vec<f32>,
    /// Per hidden decoder layer.
    pub d_dec_pre: Vec<Vec<f32>>,
    /// (B, Z+K).
    pub d_dec_in: Vec<f32>,
    /// (B, 2Z).
    pub d_stats: Vec<f32>,
    /// (B, max width).
    pub d_enc_post: Vec<f32>,
    /// (B, max width).
    pub d_enc_pre: Vec<f32>,
}

impl VaeActs {
    /// Buffers for up to `cap` rows.
    pub fn new(m: &Vae, cap: usize) -> Self {
        let c = &m.cfg;
        let (d, z, k) = (c.input_dim(), c.latent, c.n_classes);
        let wmax = *c.hidden.iter().max().unwrap_or(&1);
        let v = |n: usize| vec![0f32; cap * n];
        Self {
            cap,
            x: v(d),
            labels: vec![0; cap],
            enc_in: if k > 0 { v(d + k) } else { vec![] },
            enc_pre: c.hidden.iter().map(|&w| v(w)).collect(),
            enc_post: c.hidden.iter().map(|&w| v(w)).collect(),
            stats: v(2 * z),
            eps: v(z),
            dec_in: v(z + k),
            dec_pre: c.hidden.iter().rev().map(|&w| v(w)).collect(),
            dec_post: c.hidden.iter().rev().map(|&w| v(w)).collect(),
            out: v(d),
            rec: v(1),
            kl: v(1),
            d_out: v(d),
            d_dec_post: v(wmax),
            d_dec_pre: c.hidden.iter().rev().map(|&w| v(w)).collect(),
            d_dec_in: v(z + k),
            d_stats: v(2 * z),
            d_enc_post: v(wmax),
            d_enc_pre: v(wmax),
        }
    }

    /// Fills the noise for `n` rows with standard normals.
    pub fn draw_eps(&mut self, rng: &mut Rng, n: usize, z: usize) {
        for e in &mut self.eps[..n * z] {
            *e = rng.normal();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(k: usize, hidden: Vec<usize>) -> VaeConfig {
        VaeConfig {
            image_shape: [1, 2, 3],
            hidden,
            latent: 2,
            n_classes: k,
            likelihood: "bernoulli".into(),
            activation: "tanh".into(),
            label_every_layer: false,
        }
    }

    /// The whole model's gradient against finite differences of its loss,
    /// for plain and conditional, one and two hidden layers.
    #[test]
    fn vae_backward_matches_finite_differences() {
        for (k, hidden, every) in [
            (0, vec![4], false),
            (3, vec![5, 4], false),
            (3, vec![5, 4], true),
        ] {
            let m = Vae::new(VaeConfig {
                label_every_layer: every,
                ..cfg(k, hidden)
            })
            .unwrap();
            let mut rng = Rng::new(9);
            let mut p = vec![0.0; m.n_params()];
            m.init(&mut p, &mut rng);
            // Non-zero label tables, so their gradients are checked too.
            for t in m.dec_label.iter().flatten() {
                for v in &mut p[t.offset..t.offset + t.n * t.d] {
                    *v = rng.normal() * 0.3;
                }
            }
            let n = 3;
            let mut a = VaeActs::new(&m, n);
            for v in a.x.iter_mut() {
                *v = rng.uniform();
            }
            a.labels.copy_from_slice(&[0, 2, 1]);
            a.draw_eps(&mut rng, n, 2);
            let th = Threads(1);
            let total = |p: &[f32], a: &mut VaeActs| {
                m.forward(p, a, n, false, th);
                a.rec.iter().chain(&a.kl).map(|&v| v as f64).sum::<f64>()
            };
            m.forward(&p, &mut a, n, true, th);
            let mut g = vec![0.0; p.len()];
            m.backward(&p, &mut g, &mut a, n, th);
            let h = 1e-2f32;
            let mut pp = p.clone();
            for i in 0..p.len() {
                pp[i] = p[i] + h;
                let up = total(&pp, &mut a);
                pp[i] = p[i] - h;
                let down = total(&pp, &mut a);
                pp[i] = p[i];
                let num = (up - down) / (2.0 * h as f64);
                let err = (g[i] as f64 - num).abs() / num.abs().max(1.0);
                assert!(
                    err < 2e-2,
                    "k={k} param {i} ({}): {} vs {num}",
                    name(&m, i),
                    g[i]
                );
            }
        }
    }

    fn name(m: &Vae, i: usize) -> &str {
        &m.layout
            .entries
            .iter()
            .find(|e| e.range().contains(&i))
            .unwrap()
            .name
    }

    #[test]
    fn layout_follows_the_format_names() {
        let m = Vae::new(cfg(10, vec![400])).unwrap();
        let names: Vec<&str> = m.layout.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "enc.0.weight",
                "enc.0.bias",
                "enc.mu.weight",
                "enc.logvar.weight",
                "enc.mu.bias",
                "enc.logvar.bias",
                "dec.0.weight",
                "dec.0.bias",
                "dec.1.weight",
                "dec.1.bias"
            ]
        );
        assert_eq!(m.layout.get("dec.0.weight").unwrap().shape, [400, 12]);
        assert!(
            Vae::new(VaeConfig {
                activation: "swish".into(),
                ..cfg(0, vec![4])
            })
            .is_err()
        );
    }
}
