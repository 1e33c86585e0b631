//! The audio family's frame tier: a conditional GRU over frames of
//! log-mel bands (one frame per 256 samples, 32 ms at 8 kHz), which says
//! what a clip sounds like frame by frame, and when it ends. The sample
//! tier ([`super::rnn`]) then fills each frame with samples that follow its
//! bands and the linear prediction they imply.
//!
//! Why two tiers: a class label is 3.3 bits for a whole clip of about 3,500
//! samples, so a model of samples alone gains almost nothing in likelihood
//! by heeding it, and on FSDD its clips were heard as the digit asked for
//! 11-20% of the time (chance is 10%). Frames carry the label's effect
//! where a model can see it: the spectral envelope over time, which is
//! what a listener (and the audio classifier) hears a digit by.
//!
//! ```text
//! x_f = W_in bands_{f-1} + cls[label]         (E)   bands_{-1}: silence
//! h_f = GRU(x_f, h_{f-1})                     (H)
//! [mu, log sigma, end] = W_out h_f + b        (2C + 1)
//! ```
//!
//! Each band of frame `f` is Gaussian (`mu`, `sigma`), and `end` is the
//! logit that the clip has ended before frame `f`. Training scores a clip's
//! frames and the first frame after it (its end only).

use crate::nn::embed::Embedding;
use crate::nn::gemm::Threads;
use crate::nn::gru::{Gru, GruActs};
use crate::nn::linear::Linear;
use crate::nn::params::Layout;
use crate::rng::Rng;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// The bounds of a band's log sigma: below, a band would be scored as if
/// known to 0.25% of its range; above, as if unknown.
const LOG_SIGMA: (f32, f32) = (-6.0, 3.0);

/// What defines the frame tier's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameConfig {
    /// C: bands per frame.
    pub bands: usize,
    /// E: the input's width.
    pub embed: usize,
    /// H: the GRU's state.
    pub hidden: usize,
    /// K classes, 0 for none.
    pub n_classes: usize,
    /// Frames a training clip is cut to.
    pub max_frames: usize,
}

impl FrameConfig {
    /// Checks sizes before anything is allocated; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        if !(1..=256).contains(&self.bands) {
            bail!("--feat-dim: expected 1 to 256 bands, found {}", self.bands);
        }
        if !(1..=4096).contains(&self.embed) {
            bail!("--frame-embed: expected 1 to 4096, found {}", self.embed);
        }
        if !(1..=4096).contains(&self.hidden) {
            bail!("--frame-hidden: expected 1 to 4096, found {}", self.hidden);
        }
        if !(1..=4096).contains(&self.max_frames) {
            bail!(
                "--max-frames: expected 1 to 4096, found {}",
                self.max_frames
            );
        }
        Ok(())
    }

    /// Outputs per frame: the bands' means and log sigmas, and the end.
    pub fn outputs(&self) -> usize {
        2 * self.bands + 1
    }
}

/// The frame tier: its layers' places in one flat buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameRnn {
    /// Its shape.
    pub cfg: FrameConfig,
    /// Every tensor's name, shape and offset.
    pub layout: Layout,
    /// `frame.in` `(E, C)`: the last frame's bands in.
    pub inp: Linear,
    /// `frame.cls_embd` `(K, E)`, if conditional.
    pub cls: Option<Embedding>,
    /// The recurrent layer.
    pub gru: Gru,
    /// `frame.out` `(2C + 1, H)`.
    pub head: Linear,
}

/// Batch buffers for `T` frames of `B` clips, time-major.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameActs {
    /// Frames T.
    pub steps: usize,
    /// Clips B.
    pub batch: usize,
    /// `(T, B, C)`: each step's input, the frame before it.
    pub inputs: Vec<f32>,
    /// `(B)`: each clip's class.
    pub labels: Vec<u32>,
    row_labels: Vec<u32>,
    x: Vec<f32>,
    dx: Vec<f32>,
    /// The GRU's buffers; `gru.h`'s first `(B, H)` block is the initial
    /// state.
    pub gru: GruActs,
    dh: Vec<f32>,
    /// `(T, B, 2C + 1)`: the outputs, then (for the backward) their
    /// gradient.
    pub out: Vec<f32>,
}

impl FrameActs {
    /// Buffers for `steps` frames of `batch` clips of `m`.
    pub fn new(m: &FrameRnn, steps: usize, batch: usize) -> Self {
        let (tb, c) = (steps * batch, &m.cfg);
        Self {
            steps,
            batch,
            inputs: vec![0.0; tb * c.bands],
            labels: vec![0; batch],
            row_labels: vec![0; tb],
            x: vec![0.0; tb * c.embed],
            dx: vec![0.0; tb * c.embed],
            gru: GruActs::new(&m.gru, steps, batch),
            dh: vec![0.0; tb * c.hidden],
            out: vec![0.0; tb * c.outputs()],
        }
    }
}

impl FrameRnn {
    /// A frame tier of shape `cfg`, its tensors under `frame.`.
    pub fn new(cfg: FrameConfig) -> Result<Self> {
        cfg.validate()?;
        let mut layout = Layout::default();
        let inp = Linear::new(&mut layout, "frame.in", cfg.bands, cfg.embed);
        let cls = (cfg.n_classes > 0)
            .then(|| Embedding::new(&mut layout, "frame.cls_embd", cfg.n_classes, cfg.embed));
        let gru = Gru::new(&mut layout, "frame.gru", cfg.embed, cfg.hidden);
        let head = Linear::new(&mut layout, "frame.out", cfg.hidden, cfg.outputs());
        Ok(Self {
            cfg,
            layout,
            inp,
            cls,
            gru,
            head,
        })
    }

    /// PyTorch's initializations; the class embedding N(0, 0.1).
    pub fn init(&self, p: &mut [f32], rng: &mut Rng) {
        self.inp.init(p, rng);
        if let Some(c) = self.cls {
            c.init(p, rng);
            p[c.offset..c.offset + c.n * c.d]
                .iter_mut()
                .for_each(|v| *v *= 0.1);
        }
        self.gru.init(p, rng);
        self.head.init(p, rng);
    }

    /// Makes every matrix quantize its input to int8 (`on`), as a `q8_0a8`
    /// file's frame tier does on a device. Never for training.
    pub fn set_int8_inputs(&mut self, on: bool) {
        for l in [
            &mut self.inp,
            &mut self.gru.ih,
            &mut self.gru.hh,
            &mut self.head,
        ] {
            l.int8_inputs = on;
        }
    }

    /// Outputs for every step of `a.inputs` from the state in `a.gru.h`'s
    /// first block.
    pub fn forward(&self, p: &[f32], a: &mut FrameActs, th: Threads) {
        let tb = a.steps * a.batch;
        self.inp.forward(p, &mut a.x, &a.inputs, tb, th);
        if let Some(c) = self.cls {
            for rows in a.row_labels.chunks_exact_mut(a.batch) {
                rows.copy_from_slice(&a.labels);
            }
            c.forward_add(p, &mut a.x, &a.row_labels);
        }
        self.gru.forward(p, &mut a.gru, &a.x, th);
        self.head.forward(p, &mut a.out, a.gru.out(), tb, th);
    }

    /// Adds every parameter's gradient, given the outputs' gradient in
    /// `a.out`, to `grads`.
    pub fn backward(&self, p: &[f32], grads: &mut [f32], a: &mut FrameActs, th: Threads) {
        let tb = a.steps * a.batch;
        self.head
            .backward_into(p, grads, &mut a.dh, &a.out, a.gru.out(), tb, th);
        self.gru
            .backward(p, grads, &mut a.gru, &a.dh, &a.x, Some(&mut a.dx), th);
        self.inp.backward(p, grads, None, &a.dx, &a.inputs, tb, th);
        if let Some(c) = self.cls {
            c.backward(grads, &a.dx, &a.row_labels);
        }
    }
}

/// What a frame step is scored on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FrameTarget<'a> {
    /// A frame of the clip: its bands, and "not ended".
    Frame(&'a [f32]),
    /// The first frame after the clip: "ended" only.
    End,
    /// Later: not scored.
    Skip,
}

/// The frame tier's loss on one step's outputs `out` (`2C + 1`), in nats,
/// and if asked its gradient times `scale` written to `dout`: each band's
/// Gaussian negative log-likelihood (`log sigma + (x - mu)^2 / 2 sigma^2 +
/// ln(2 pi) / 2`, log sigma clamped, with no gradient where it is) and the
/// end's binary cross-entropy.
pub fn frame_loss(
    out: &[f32],
    target: FrameTarget<'_>,
    dout: Option<&mut [f32]>,
    scale: f32,
) -> f32 {
    let c = out.len() / 2;
    let (mu, rest) = out.split_at(c);
    let (log_sigma, end) = rest.split_at(c);
    let end = end.first().copied().unwrap_or(0.0);
    let (bands, ended) = match target {
        FrameTarget::Frame(b) => (Some(b), 0.0),
        FrameTarget::End => (None, 1.0),
        FrameTarget::Skip => {
            if let Some(d) = dout {
                d.fill(0.0);
            }
            return 0.0;
        }
    };
    // BCE with logits: softplus(z) - y z.
    let mut loss = end.max(0.0) - end * ended + (-end.abs()).exp().ln_1p();
    let mut d_end = 1.0 / (1.0 + (-end).exp()) - ended;
    let mut grads = dout;
    if let Some(b) = bands {
        for i in 0..c {
            let raw = log_sigma[i];
            let ls = raw.clamp(LOG_SIGMA.0, LOG_SIGMA.1);
            let z = (b[i] - mu[i]) * (-ls).exp();
            loss += ls + 0.5 * z * z + crate::nn::loss::HALF_LN_2PI;
            if let Some(d) = grads.as_deref_mut() {
                d[i] = scale * -z * (-ls).exp();
                d[c + i] = if raw == ls {
                    scale * (1.0 - z * z)
                } else {
                    0.0
                };
            }
        }
    } else if let Some(d) = grads.as_deref_mut() {
        d[..2 * c].fill(0.0);
    }
    if let Some(d) = grads {
        d_end *= scale;
        d[2 * c] = d_end;
    }
    loss
}

/// A drawn frame: bands `mu + temperature * sigma * eps`, or `None` once
/// the end's probability passes one half.
pub fn draw_frame(out: &[f32], temperature: f32, rng: &mut Rng, bands: &mut [f32]) -> Option<()> {
    let c = bands.len();
    if out.get(2 * c).copied().unwrap_or(0.0) > 0.0 {
        return None;
    }
    for (i, b) in bands.iter_mut().enumerate() {
        let ls = out[c + i].clamp(LOG_SIGMA.0, LOG_SIGMA.1);
        *b = out[i] + temperature * ls.exp() * rng.normal();
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parameter's gradient through the frame tier and its loss
    /// (bands, the end, and skipped steps) against central differences.
    #[test]
    fn gradients_match_finite_differences() {
        let m = FrameRnn::new(FrameConfig {
            bands: 3,
            embed: 4,
            hidden: 5,
            n_classes: 2,
            max_frames: 4,
        })
        .unwrap();
        let mut rng = Rng::new(9);
        let mut p = vec![0f32; m.layout.total()];
        m.init(&mut p, &mut rng);
        let (t, b) = (4, 2);
        let inputs: Vec<f32> = (0..t * b * 3).map(|_| rng.normal()).collect();
        let bands: Vec<f32> = (0..t * b * 3).map(|_| 0.5 * rng.normal()).collect();
        // Clip 0 lasts 2 frames, clip 1 all 4.
        let target = |s: usize, j: usize| match (j, s) {
            (0, 2) => FrameTarget::End,
            (0, 3) => FrameTarget::Skip,
            _ => {
                let k = s * b + j;
                FrameTarget::Frame(&bands[k * 3..(k + 1) * 3])
            }
        };
        let o = m.cfg.outputs();
        let loss = |p: &[f32], grads: Option<&mut [f32]>| {
            let mut a = FrameActs::new(&m, t, b);
            a.inputs.copy_from_slice(&inputs);
            a.labels.copy_from_slice(&[1, 0]);
            m.forward(p, &mut a, Threads(1));
            let mut d = vec![0f32; t * b * o];
            let mut total = 0f64;
            for s in 0..t {
                for j in 0..b {
                    let k = s * b + j;
                    total += frame_loss(
                        &a.out[k * o..(k + 1) * o],
                        target(s, j),
                        Some(&mut d[k * o..(k + 1) * o]),
                        1.0,
                    ) as f64;
                }
            }
            if let Some(g) = grads {
                a.out.copy_from_slice(&d);
                m.backward(p, g, &mut a, Threads(1));
            }
            total
        };
        let mut g = vec![0f32; p.len()];
        loss(&p, Some(&mut g));
        let h = 1e-2f32;
        for i in 0..p.len() {
            let mut q = p.clone();
            q[i] += h;
            let up = loss(&q, None);
            q[i] -= 2.0 * h;
            let down = loss(&q, None);
            let num = (up - down) / (2.0 * h as f64);
            let err = (g[i] as f64 - num).abs() / num.abs().max(1.0);
            assert!(
                err < 2e-2,
                "{} [{i}]: {} vs {num}",
                m.layout
                    .entries
                    .iter()
                    .rfind(|e| e.offset <= i)
                    .unwrap()
                    .name,
                g[i]
            );
        }
    }

    /// The loss is a Gaussian's negative log density (checked at one
    /// point) plus the end's cross-entropy; a clamped log sigma gets no
    /// gradient; a drawn frame is the mean at temperature 0, and none once
    /// the end is likelier than not.
    #[test]
    fn loss_and_draws_are_what_they_say() {
        // mu 1, log sigma ln 2, end logit 0 (ln 2 nats of cross-entropy).
        let out = [1.0, 2f32.ln(), 0.0];
        let l = frame_loss(&out, FrameTarget::Frame(&[3.0]), None, 1.0);
        let density =
            (-(3.0f64 - 1.0).powi(2) / 8.0).exp() / (2.0 * (2.0 * std::f64::consts::PI).sqrt());
        assert!((l as f64 - (-density.ln() + 2f64.ln())).abs() < 1e-5, "{l}");
        assert!((frame_loss(&out, FrameTarget::End, None, 1.0) - 2f32.ln()).abs() < 1e-6);
        let mut d = [9f32; 3];
        frame_loss(
            &[0.0, 7.0, 0.0],
            FrameTarget::Frame(&[1.0]),
            Some(&mut d),
            1.0,
        );
        assert_eq!(d[1], 0.0, "clamped");
        let mut bands = [0f32];
        assert!(draw_frame(&[0.25, 0.0, -1.0], 0.0, &mut Rng::new(1), &mut bands).is_some());
        assert_eq!(bands, [0.25]);
        assert!(draw_frame(&[0.25, 0.0, 1.0], 0.0, &mut Rng::new(1), &mut bands).is_none());
    }
}
