//! The audio family's recurrent candidate (WaveRNN-like, without its
//! split coarse/fine output): each mu-law code and the clip's class are
//! embedded and added, a GRU carries the state from sample to sample, and
//! a linear head gives the next code's 256 logits.
//!
//! ```text
//! x_t = emb[code_t] + cls[label]      (E)
//! h_t = GRU(x_t, h_{t-1})             (H)
//! logits_t = h_t W^T + b              (V)
//! ```
//!
//! Per generated sample the device does one GRU step and one head,
//! `3H(E + H) + VH` multiply-adds, however long the clip has run; a
//! transformer's step grows with its context.

use super::frames::{FrameActs, FrameRnn};
use crate::nn::embed::Embedding;
use crate::nn::gemm::Threads;
use crate::nn::gru::{Gru, GruActs};
use crate::nn::linear::Linear;
use crate::nn::params::Layout;
use crate::rng::Rng;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// What defines the model's shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RnnConfig {
    /// V: 256 mu-law codes.
    pub vocab: usize,
    /// E: the embeddings' width.
    pub embed: usize,
    /// H: the GRU's state.
    pub hidden: usize,
    /// K classes, 0 for none.
    pub n_classes: usize,
    /// Codes per frame of the frame features.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub frame_len: usize,
    /// C: frame features (log-mel bands of each frame of `frame_len`
    /// codes) projected into the input, 0 for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub feat_dim: usize,
    /// P: the order of the linear prediction each frame's features imply,
    /// whose prediction of the next sample (as a code) is embedded into the
    /// input; 0 for none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub lpc_order: usize,
}

fn is_zero(v: &usize) -> bool {
    *v == 0
}

impl RnnConfig {
    /// Checks sizes before anything is allocated; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        if self.vocab == 0 || self.vocab > 1 << 16 {
            bail!("--vocab: expected 1 to 65536 codes, found {}", self.vocab);
        }
        if self.embed == 0 || self.embed > 4096 {
            bail!("--embed: expected 1 to 4096, found {}", self.embed);
        }
        if self.hidden == 0 || self.hidden > 4096 {
            bail!("--hidden: expected 1 to 4096, found {}", self.hidden);
        }
        if self.n_classes > 1 << 16 {
            bail!(
                "--classes: expected at most 65536, found {}",
                self.n_classes
            );
        }
        if self.feat_dim > 256 {
            bail!(
                "--feat-dim: expected at most 256 bands, found {}",
                self.feat_dim
            );
        }
        if self.feat_dim > 0 && self.frame_len != crate::data::logmel::FRAME {
            bail!(
                "--frame-len: the frame features are of {} codes, found {}",
                crate::data::logmel::FRAME,
                self.frame_len
            );
        }
        if self.lpc_order > 0 && self.feat_dim == 0 {
            bail!(
                "--lpc-order {}: the prediction comes from frame features; set --feat-dim",
                self.lpc_order
            );
        }
        if self.lpc_order > 64 {
            bail!("--lpc-order: expected at most 64, found {}", self.lpc_order);
        }
        Ok(())
    }

    /// Multiply-adds per generated sample.
    pub fn macs_per_sample(&self) -> usize {
        3 * self.hidden * (self.embed + self.hidden) + self.vocab * self.hidden
    }
}

/// The model: its layers' places in one flat buffer.
#[derive(Debug, Clone, PartialEq)]
pub struct Rnn {
    /// Its shape.
    pub cfg: RnnConfig,
    /// Every tensor's name, shape and offset.
    pub layout: Layout,
    /// `tok_embd` `(V, E)`.
    pub emb: Embedding,
    /// `cls_embd` `(K, E)`, if conditional.
    pub cls: Option<Embedding>,
    /// `pred_embd` `(V, E)`, if the model reads a linear prediction.
    pub pred: Option<Embedding>,
    /// `feat_proj` `(E, C)`, if the model follows frame features.
    pub feat: Option<Linear>,
    /// The recurrent layer.
    pub gru: Gru,
    /// `output` `(V, H)` and its bias.
    pub head: Linear,
}

/// Batch buffers for `T` steps of `B` sequences, time-major; allocated
/// once.
#[derive(Debug, Clone, PartialEq)]
pub struct RnnActs {
    /// Steps T.
    pub steps: usize,
    /// Sequences B.
    pub batch: usize,
    /// `(T, B)`: the input codes.
    pub tokens: Vec<u32>,
    /// `(B)`: each sequence's class.
    pub labels: Vec<u32>,
    /// `(T, B)`: each row's class, for the class embedding.
    row_labels: Vec<u32>,
    /// `(T, B)`: each row's linear prediction of the next code.
    pub preds: Vec<u32>,
    /// `(T, B, C)`: each row's frame features, if the model has them.
    pub feats: Vec<f32>,
    /// `(T, B, E)`: their projection.
    fx: Vec<f32>,
    /// `(T, B, E)`: the GRU's inputs, then their gradient.
    x: Vec<f32>,
    dx: Vec<f32>,
    /// The GRU's buffers; set `gru.h`'s first `(B, H)` block for the
    /// initial state.
    pub gru: GruActs,
    /// `(T, B, H)`: the gradient at the GRU's outputs.
    dh: Vec<f32>,
    /// `(T, B, V)`: logits, then (for the backward) their gradient.
    pub logits: Vec<f32>,
}

impl RnnActs {
    /// Buffers for `steps` steps of `batch` sequences of `m`.
    pub fn new(m: &Rnn, steps: usize, batch: usize) -> Self {
        let (tb, c) = (steps * batch, &m.cfg);
        Self {
            steps,
            batch,
            tokens: vec![0; tb],
            labels: vec![0; batch],
            row_labels: vec![0; tb],
            preds: vec![0; tb],
            feats: vec![0.0; tb * c.feat_dim],
            fx: vec![0.0; if c.feat_dim > 0 { tb * c.embed } else { 0 }],
            x: vec![0.0; tb * c.embed],
            dx: vec![0.0; tb * c.embed],
            gru: GruActs::new(&m.gru, steps, batch),
            dh: vec![0.0; tb * c.hidden],
            logits: vec![0.0; tb * c.vocab],
        }
    }
}

impl Rnn {
    /// A model of shape `cfg`.
    pub fn new(cfg: RnnConfig) -> Result<Self> {
        cfg.validate()?;
        let mut layout = Layout::default();
        let emb = Embedding::new(&mut layout, "tok_embd", cfg.vocab, cfg.embed);
        let cls = (cfg.n_classes > 0)
            .then(|| Embedding::new(&mut layout, "cls_embd", cfg.n_classes, cfg.embed));
        let pred = (cfg.lpc_order > 0)
            .then(|| Embedding::new(&mut layout, "pred_embd", cfg.vocab, cfg.embed));
        let feat = (cfg.feat_dim > 0)
            .then(|| Linear::new(&mut layout, "feat_proj", cfg.feat_dim, cfg.embed));
        let gru = Gru::new(&mut layout, "gru", cfg.embed, cfg.hidden);
        let head = Linear::new(&mut layout, "output", cfg.hidden, cfg.vocab);
        Ok(Self {
            cfg,
            layout,
            emb,
            cls,
            pred,
            feat,
            gru,
            head,
        })
    }

    /// Embeddings N(0, 0.1) (a unit-variance input saturates the gates
    /// from the first step), the GRU and the head as PyTorch initializes
    /// them.
    pub fn init(&self, p: &mut [f32], rng: &mut Rng) {
        self.emb.init(p, rng);
        if let Some(c) = self.cls {
            c.init(p, rng);
        }
        if let Some(e) = self.pred {
            e.init(p, rng);
        }
        for e in [Some(self.emb), self.cls, self.pred].into_iter().flatten() {
            p[e.offset..e.offset + e.n * e.d]
                .iter_mut()
                .for_each(|v| *v *= 0.1);
        }
        if let Some(f) = self.feat {
            f.init(p, rng);
        }
        self.gru.init(p, rng);
        self.head.init(p, rng);
    }

    /// Makes every matrix quantize its input to int8 (`on`), as a `q8_0a8`
    /// model does on a device: the GRU's two, the output layer and the
    /// bands' projection (the blend with the previous state keeps it whole,
    /// as the runtime does). For evaluating and validating that precision,
    /// never for training.
    pub fn set_int8_inputs(&mut self, on: bool) {
        if let Some(f) = &mut self.feat {
            f.int8_inputs = on;
        }
        self.gru.ih.int8_inputs = on;
        self.gru.hh.int8_inputs = on;
        self.head.int8_inputs = on;
    }

    /// Logits for every step of `a.tokens` from the state in `a.gru.h`'s
    /// first block.
    pub fn forward(&self, p: &[f32], a: &mut RnnActs, th: Threads) {
        let b = a.batch;
        self.emb.forward(p, &mut a.x, &a.tokens);
        if let Some(c) = self.cls {
            for rows in a.row_labels.chunks_exact_mut(b) {
                rows.copy_from_slice(&a.labels);
            }
            c.forward_add(p, &mut a.x, &a.row_labels);
        }
        let tb = a.steps * b;
        if let Some(e) = self.pred {
            e.forward_add(p, &mut a.x, &a.preds);
        }
        if let Some(f) = self.feat {
            f.forward(p, &mut a.fx, &a.feats, tb, th);
            crate::nn::fastmath::add_assign(&mut a.x, &a.fx);
        }
        self.gru.forward(p, &mut a.gru, &a.x, th);
        self.head.forward(p, &mut a.logits, a.gru.out(), tb, th);
    }

    /// Adds every parameter's gradient, given the logits' gradient in
    /// `a.logits`, to `grads`.
    pub fn backward(&self, p: &[f32], grads: &mut [f32], a: &mut RnnActs, th: Threads) {
        let tb = a.steps * a.batch;
        self.head
            .backward_into(p, grads, &mut a.dh, &a.logits, a.gru.out(), tb, th);
        self.gru
            .backward(p, grads, &mut a.gru, &a.dh, &a.x, Some(&mut a.dx), th);
        self.emb.backward(grads, &a.dx, &a.tokens);
        if let Some(f) = self.feat {
            f.backward(p, grads, None, &a.dx, &a.feats, tb, th);
        }
        if let Some(e) = self.pred {
            e.backward(grads, &a.dx, &a.preds);
        }
        if let Some(c) = self.cls {
            c.backward(grads, &a.dx, &a.row_labels);
        }
    }
}

/// One clip to score or follow: its codes, class and frame features
/// (`frames * C` values; empty for a model without them).
#[derive(Debug, Clone, Copy)]
pub struct Clip<'a> {
    /// The codes.
    pub codes: &'a [u32],
    /// Its class.
    pub label: u32,
    /// Frame features, frame-major.
    pub feats: &'a [f32],
    /// The linear prediction of each next code ([`lpc_predictions`]).
    pub preds: &'a [u32],
}

/// For each position `t` of a clip whose samples are `x`, the code of
/// the linear prediction of sample `t + 1` from samples `..= t`, with the
/// coefficients of the frame that holds `t + 1` (the last frame's past
/// the features). What a model with `lpc_order > 0` reads at step `t`.
pub fn lpc_predictions(
    m: &RnnConfig,
    lpc: &crate::data::lpc::BandLpc,
    x: &[f32],
    feats: &[f32],
) -> Vec<u32> {
    let c = m.feat_dim.max(1);
    let frames = feats.len() / c;
    let mut out = Vec::with_capacity(x.len());
    let mut coef: Vec<f64> = vec![];
    let mut at = usize::MAX;
    for t in 0..x.len() {
        let f = ((t + 1) / m.frame_len.max(1)).min(frames.saturating_sub(1));
        if f != at && frames > 0 {
            coef = lpc.coefficients(&feats[f * c..(f + 1) * c]);
            at = f;
        }
        out.push(predict_code(&coef, &x[..=t]));
    }
    out
}

/// The code of `sum_i a[i] x[t - i]` over the last samples of `x`, clamped
/// to [-1, 1].
pub fn predict_code(a: &[f64], x: &[f32]) -> u32 {
    let p: f64 = a
        .iter()
        .zip(x.iter().rev())
        .map(|(a, &s)| a * s as f64)
        .sum();
    crate::data::audio::mulaw_encode(p.clamp(-1.0, 1.0) as f32) as u32
}

impl Rnn {
    /// Writes into `out` (`C` values) the features a step at code `pos`
    /// of a clip with `feats` follows: its frame's, or the last frame's
    /// past them (silence's if there are none).
    pub fn frame_feats(&self, feats: &[f32], pos: usize, out: &mut [f32]) {
        let c = self.cfg.feat_dim;
        if c == 0 {
            return;
        }
        let f = pos / self.cfg.frame_len.max(1);
        match feats.get(f * c..(f + 1) * c) {
            Some(row) => out.copy_from_slice(row),
            None => match feats.len().checked_sub(c) {
                Some(last) => out.copy_from_slice(&feats[last..]),
                None => out.fill(crate::data::logmel::SILENT_FEATURE),
            },
        }
    }
}

/// Test bits per code of `m` over whole clips, each from a zero state:
/// the clips run `batch` at a time in chunks of `steps`, the state
/// carried from chunk to chunk, and a clip's codes are scored from its
/// second (its first has nothing before it). Returns (bits per code,
/// codes scored).
pub fn nll_bits(
    m: &Rnn,
    p: &[f32],
    clips: &[Clip<'_>],
    steps: usize,
    batch: usize,
    th: Threads,
) -> (f64, usize) {
    use crate::nn::loss::softmax_cross_entropy;
    let (h, v, cf) = (m.cfg.hidden, m.cfg.vocab, m.cfg.feat_dim);
    let mut a = RnnActs::new(m, steps, batch);
    let mut targets = vec![0u32; steps * batch];
    let mut scored = vec![false; steps * batch];
    let mut loss = vec![0f32; steps * batch];
    let (mut nats, mut count) = (0f64, 0usize);
    for group in clips.chunks(batch) {
        let longest = group.iter().map(|c| c.codes.len()).max().unwrap_or(0);
        a.gru.h[..batch * h].fill(0.0);
        for j in 0..batch {
            a.labels[j] = group.get(j).map_or(0, |c| c.label);
        }
        for s in (0..longest.saturating_sub(1)).step_by(steps) {
            for t in 0..steps {
                for j in 0..batch {
                    let c = group.get(j).map_or(&[][..], |c| c.codes);
                    let i = t * batch + j;
                    // Past a clip's end: padding, not scored.
                    a.tokens[i] = c.get(s + t).copied().unwrap_or(0);
                    targets[i] = c.get(s + t + 1).copied().unwrap_or(0);
                    scored[i] = s + t + 1 < c.len();
                    let f = group.get(j).map_or(&[][..], |c| c.feats);
                    m.frame_feats(f, s + t, &mut a.feats[i * cf..(i + 1) * cf]);
                    let pr = group.get(j).map_or(&[][..], |c| c.preds);
                    a.preds[i] = pr.get(s + t).copied().unwrap_or(128);
                }
            }
            m.forward(p, &mut a, th);
            softmax_cross_entropy(&mut loss, None, &a.logits, &targets, v, 1.0);
            for (&l, &ok) in loss.iter().zip(&scored) {
                if ok {
                    nats += l as f64;
                    count += 1;
                }
            }
            // The last state starts the next chunk.
            let last = steps * batch * h;
            a.gru.h.copy_within(last..last + batch * h, 0);
        }
    }
    (nats / std::f64::consts::LN_2 / count.max(1) as f64, count)
}

/// Where the frames that a model with frame features follows come from
/// when it generates.
#[derive(Debug, Clone, Copy)]
pub enum Frames<'a> {
    /// None: the model has no frame features.
    None,
    /// Clip `j` follows `feats[j]` (frame-major) and ends with them: a
    /// resynthesis of the clips they were computed from.
    Given(&'a [&'a [f32]]),
    /// The frame tier draws each clip's frames, at `temperature` times
    /// their sigma, and says when the clip ends.
    Drawn {
        /// The frame tier.
        tier: &'a FrameRnn,
        /// Its parameters.
        params: &'a [f32],
        /// Scales each band's drawn deviation from its mean.
        temperature: f32,
    },
}

/// Generates up to `n` codes for each clip of `labels` on the host, all
/// clips at once (one batched step per sample), each from a zero state:
/// the first input is `start` (the mu-law code of silence, 128, for
/// audio), and each code is drawn from the softmax of the logits over
/// `temperature` with the clip's own generator in `rngs`, then fed back.
/// An unconditional model ignores the labels. A model with frame features
/// follows `frames`, and a clip ends (shorter than `n`) where they do.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    m: &Rnn,
    p: &[f32],
    labels: &[u32],
    frames: Frames<'_>,
    start: u32,
    n: usize,
    temperature: f32,
    rngs: &mut [Rng],
    th: Threads,
) -> Vec<Vec<u32>> {
    let (b, h, v) = (labels.len().min(rngs.len()), m.cfg.hidden, m.cfg.vocab);
    let (c, fl) = (m.cfg.feat_dim, m.cfg.frame_len.max(1));
    // A model with frame features given none reads silence throughout.
    let silence = vec![crate::data::logmel::SILENT_FEATURE; c];
    let frames = if c == 0 { Frames::None } else { frames };
    let mut a = RnnActs::new(m, 1, b);
    a.labels.copy_from_slice(&labels[..b]);
    a.tokens.fill(start);
    let mut out = vec![Vec::with_capacity(n); b];
    let mut w = vec![0f64; v];
    let t = temperature.max(1e-6);
    let lpc =
        (m.cfg.lpc_order > 0).then(|| crate::data::lpc::BandLpc::new(c, 8000, m.cfg.lpc_order));
    // Each clip's samples so far, from the start code; its frames (drawn or
    // given), and whether it has ended.
    let mut hist: Vec<Vec<f32>> = vec![vec![crate::data::audio::mulaw_decode(start as u8)]; b];
    let mut drawn: Vec<Vec<f32>> = vec![vec![]; b];
    let mut n_frames: Vec<usize> = match frames {
        Frames::Given(f) => (0..b)
            .map(|j| f.get(j).map_or(0, |f| f.len() / c))
            .collect(),
        _ => vec![usize::MAX; b],
    };
    let mut done = vec![false; b];
    let mut coef: Vec<(usize, Vec<f64>)> = vec![(usize::MAX, vec![]); b];
    let mut tier = match frames {
        Frames::Drawn { tier, .. } => Some(FrameActs::new(tier, 1, b)),
        _ => None,
    };
    if let Some(fa) = tier.as_mut() {
        fa.labels.copy_from_slice(&labels[..b]);
    }
    let mut frames_drawn = 0;
    for i in 0..n {
        // Frames up to the one holding position i + 1, which the linear
        // prediction made at step i belongs to.
        let next = (i + 1) / fl;
        while let (
            Some(fa),
            Frames::Drawn {
                tier: ft,
                params,
                temperature: ftemp,
            },
        ) = (tier.as_mut(), frames)
        {
            if frames_drawn > next {
                break;
            }
            for (row, d) in fa.inputs.chunks_exact_mut(c).zip(&drawn) {
                match d.len().checked_sub(c) {
                    Some(last) => row.copy_from_slice(&d[last..]),
                    None => row.fill(crate::data::logmel::SILENT_FEATURE),
                }
            }
            ft.forward(params, fa, th);
            let hf = ft.cfg.hidden;
            fa.gru.h.copy_within(b * hf..2 * b * hf, 0);
            let o = ft.cfg.outputs();
            let mut bands = vec![0f32; c];
            for j in 0..b {
                if n_frames[j] != usize::MAX {
                    continue;
                }
                let outj = &fa.out[j * o..(j + 1) * o];
                match super::frames::draw_frame(outj, ftemp, &mut rngs[j], &mut bands) {
                    Some(()) => drawn[j].extend_from_slice(&bands),
                    None => n_frames[j] = frames_drawn,
                }
            }
            frames_drawn += 1;
        }
        let frame = |j: usize, f: usize| -> &[f32] {
            match frames {
                Frames::Given(g) => &g[j][f * c..(f + 1) * c],
                Frames::Drawn { .. } => &drawn[j][f * c..(f + 1) * c],
                Frames::None => &silence,
            }
        };
        for j in 0..b {
            // Past its last frame, a clip has ended.
            if c > 0 && next >= n_frames[j] {
                done[j] = true;
            }
            if done[j] || c == 0 {
                continue;
            }
            a.feats[j * c..(j + 1) * c].copy_from_slice(frame(j, i / fl));
            if let Some(l) = &lpc {
                if coef[j].0 != next {
                    coef[j] = (next, l.coefficients(frame(j, next)));
                }
                a.preds[j] = predict_code(&coef[j].1, &hist[j]);
            }
        }
        if done.iter().all(|&d| d) {
            break;
        }
        m.forward(p, &mut a, th);
        a.gru.h.copy_within(b * h..2 * b * h, 0);
        for (j, rng) in rngs.iter_mut().enumerate().take(b) {
            if done[j] {
                continue;
            }
            let logits = &a.logits[j * v..(j + 1) * v];
            let max = logits.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
            for (wi, &x) in w.iter_mut().zip(logits) {
                *wi = (((x - max) / t) as f64).exp();
            }
            let mut u = rng.uniform() as f64 * w.iter().sum::<f64>();
            let mut code = (v - 1) as u32;
            for (i, &wi) in w.iter().enumerate() {
                if u < wi {
                    code = i as u32;
                    break;
                }
                u -= wi;
            }
            a.tokens[j] = code;
            out[j].push(code);
            hist[j].push(crate::data::audio::mulaw_decode(code as u8));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::loss::softmax_cross_entropy;

    /// Test NLL does not depend on how the clips are batched and chunked:
    /// the state carried across chunks is the state a single pass has.
    #[test]
    fn nll_is_the_same_in_any_chunks_and_batches() {
        let m = Rnn::new(RnnConfig {
            vocab: 16,
            embed: 4,
            hidden: 6,
            n_classes: 3,
            ..RnnConfig::default()
        })
        .unwrap();
        let mut p = vec![0f32; m.layout.total()];
        m.init(&mut p, &mut Rng::new(8));
        let clips: Vec<Vec<u32>> = (0..5)
            .map(|c| (0..20 + 7 * c).map(|i| ((i * 7 + c) % 16) as u32).collect())
            .collect();
        let refs: Vec<Clip> = clips
            .iter()
            .enumerate()
            .map(|(i, c)| Clip {
                codes: &c[..],
                label: i as u32 % 3,
                feats: &[],
                preds: &[],
            })
            .collect();
        let (a, n) = nll_bits(&m, &p, &refs, 64, 5, Threads(1));
        assert_eq!(n, clips.iter().map(|c| c.len() - 1).sum::<usize>());
        for (steps, batch) in [(3, 2), (7, 1), (50, 4)] {
            let (b, k) = nll_bits(&m, &p, &refs, steps, batch, Threads(1));
            assert_eq!(k, n);
            assert!((a - b).abs() < 1e-5, "{steps} x {batch}: {a} vs {b}");
        }
        // Generation stays in the vocabulary and follows the seed; a clip
        // generated in a batch is the clip generated alone.
        // Class embeddings as large as a trained model's, so that the
        // label moves the draws.
        let cls = m.layout.get("cls_embd.weight").unwrap().range();
        p[cls].iter_mut().for_each(|v| *v *= 100.0);
        let g = |seeds: &[u64], labels: &[u32]| {
            let mut rngs: Vec<Rng> = seeds.iter().map(|&s| Rng::new(s)).collect();
            generate(
                &m,
                &p,
                labels,
                Frames::None,
                0,
                30,
                1.0,
                &mut rngs,
                Threads(1),
            )
        };
        let one = g(&[1], &[1]).remove(0);
        assert!(one.iter().all(|&c| c < 16));
        assert_eq!(one, g(&[1], &[1])[0]);
        assert_ne!(one, g(&[2], &[1])[0]);
        let batch = g(&[5, 1, 1], &[0, 1, 2]);
        assert_eq!(batch[1], one);
        assert_ne!(batch[2], one, "the label matters");
    }

    /// Given frames end a clip with them (none given: no end); a frame tier whose end logit is
    /// high ends every clip before its first code, and one whose end logit
    /// is low never does; a drawn clip follows its seed.
    #[test]
    fn frames_end_the_clips_that_follow_them() {
        use crate::models::frames::{FrameConfig, FrameRnn};
        let m = Rnn::new(RnnConfig {
            vocab: 256,
            embed: 4,
            hidden: 6,
            n_classes: 2,
            feat_dim: 3,
            frame_len: crate::data::logmel::FRAME,
            lpc_order: 2,
        })
        .unwrap();
        let mut p = vec![0f32; m.layout.total()];
        m.init(&mut p, &mut Rng::new(2));
        let draw = |frames: Frames, n: usize, seed: u64| {
            let mut rngs = vec![Rng::new(seed), Rng::new(seed + 1)];
            generate(&m, &p, &[0, 1], frames, 128, n, 1.0, &mut rngs, Threads(1))
        };
        let (three, one) = (vec![-0.5f32; 9], vec![-0.5f32; 3]);
        let given = [&three[..], &one[..]];
        let lens: Vec<usize> = draw(Frames::Given(&given), 5000, 1)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(lens, [3 * 256 - 1, 255]);
        // No frames: silence's throughout, and no end.
        assert!(draw(Frames::None, 300, 1).iter().all(|c| c.len() == 300));
        let tier = FrameRnn::new(FrameConfig {
            bands: 3,
            embed: 4,
            hidden: 5,
            n_classes: 2,
            max_frames: 8,
        })
        .unwrap();
        let mut fp = vec![0f32; tier.layout.total()];
        tier.init(&mut fp, &mut Rng::new(3));
        let end_bias = tier.head.offset + tier.head.out * tier.head.inp + 2 * 3;
        for (bias, want) in [(30.0, 0), (-30.0, 2000)] {
            fp[end_bias] = bias;
            let drawn = Frames::Drawn {
                tier: &tier,
                params: &fp,
                temperature: 0.5,
            };
            let clips = draw(drawn, 2000, 4);
            assert!(clips.iter().all(|c| c.len() == want), "bias {bias}");
            if want > 0 {
                assert_eq!(clips, draw(drawn, 2000, 4));
                assert_ne!(clips[0], draw(drawn, 2000, 5)[0]);
            }
        }
    }

    /// Every parameter's gradient through the whole model (class
    /// embedding, frame features, linear prediction embedding, GRU through
    /// time, head, cross-entropy) against central differences.
    #[test]
    fn gradients_match_finite_differences() {
        let m = Rnn::new(RnnConfig {
            vocab: 7,
            embed: 3,
            hidden: 4,
            n_classes: 2,
            feat_dim: 2,
            frame_len: crate::data::logmel::FRAME,
            lpc_order: 2,
        })
        .unwrap();
        let mut rng = Rng::new(4);
        let mut p = vec![0f32; m.layout.total()];
        m.init(&mut p, &mut rng);
        let (t, b) = (4, 2);
        let tokens: Vec<u32> = (0..t * b).map(|i| (i * 5 % 7) as u32).collect();
        let targets: Vec<u32> = (0..t * b).map(|i| (i * 3 % 7) as u32).collect();
        let preds: Vec<u32> = (0..t * b).map(|i| (i * 2 % 7) as u32).collect();
        let feats: Vec<f32> = (0..t * b * 2).map(|_| rng.normal()).collect();
        let loss = |p: &[f32], grads: Option<&mut [f32]>| {
            let mut a = RnnActs::new(&m, t, b);
            a.tokens.copy_from_slice(&tokens);
            a.labels.copy_from_slice(&[1, 0]);
            a.preds.copy_from_slice(&preds);
            a.feats.copy_from_slice(&feats);
            m.forward(p, &mut a, Threads(1));
            let mut l = vec![0f32; t * b];
            let mut d = vec![0f32; t * b * 7];
            softmax_cross_entropy(&mut l, Some(&mut d), &a.logits, &targets, 7, 1.0);
            if let Some(g) = grads {
                a.logits.copy_from_slice(&d);
                m.backward(p, g, &mut a, Threads(1));
            }
            l.iter().map(|&v| v as f64).sum::<f64>()
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
}
