//! What an audio model's test NLL is worth: three baselines in bits per
//! mu-law code on the same test clips, which `eval` reports beside it.
//!
//! - **uniform**: 8 bits, every code equally likely;
//! - **unigram**: the cross-entropy of the test codes under the training
//!   codes' frequencies (add-one smoothed, so that no code has probability 0);
//! - **LPC**: an order-[`LPC_ORDER`] linear predictor fitted to each test
//!   clip itself (autocorrelation method, Levinson-Durbin) on the decoded
//!   mu-law samples. The next sample is modeled as Laplace around the
//!   prediction, with the scale `b` set to the mean absolute residual of the
//!   same predictor fitted to each training clip; a code's probability is
//!   the Laplace mass over the interval of samples that encode to it. It is
//!   a strong, cheap baseline (speech is locally predictable), and it cheats
//!   in its favor by fitting on the test clip, so a model below it has
//!   learned more than a per-clip linear filter.

use crate::data::audio::MU;

/// The LPC baseline's order.
pub const LPC_ORDER: usize = 16;

/// The three baselines over a test set, in bits per code.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Baselines {
    /// log2(256).
    pub uniform_bits: f64,
    /// Test codes under the training codes' smoothed frequencies.
    pub unigram_bits: f64,
    /// The per-clip LPC with a Laplace residual.
    pub lpc_bits: f64,
    /// The Laplace scale, the training clips' mean absolute residual.
    pub lpc_laplace_scale: f64,
    /// Test codes scored.
    pub test_samples: usize,
}

/// All three baselines for mu-law `train` and `test` clips.
pub fn baselines(train: &[&[u8]], test: &[&[u8]]) -> Baselines {
    let b = mean_abs_residual(train, LPC_ORDER);
    Baselines {
        uniform_bits: 8.0,
        unigram_bits: unigram_bits(train, test),
        lpc_bits: lpc_bits(test, LPC_ORDER, b),
        lpc_laplace_scale: b,
        test_samples: test.iter().map(|c| c.len()).sum(),
    }
}

/// Mean bits per test code under the add-one smoothed unigram of `train`.
pub fn unigram_bits(train: &[&[u8]], test: &[&[u8]]) -> f64 {
    let mut count = [1f64; 256];
    for &q in train.iter().flat_map(|c| c.iter()) {
        count[q as usize] += 1.0;
    }
    let total: f64 = count.iter().sum();
    let (mut bits, mut n) = (0.0, 0usize);
    for &q in test.iter().flat_map(|c| c.iter()) {
        bits -= (count[q as usize] / total).log2();
        n += 1;
    }
    bits / n.max(1) as f64
}

/// A code's value, in [-1, 1], in f64.
fn decode(q: u8) -> f64 {
    companded_to_linear(q as f64 / MU as f64 * 2.0 - 1.0)
}

/// `y` in the companded domain to the linear one.
fn companded_to_linear(y: f64) -> f64 {
    let mu = MU as f64;
    y.signum() * ((1.0 + mu).powf(y.abs()) - 1.0) / mu
}

/// The linear interval `[lo, hi)` of samples that encode to `q` (the end
/// codes take the tails).
fn bin(q: u8) -> (f64, f64) {
    (edge(q as usize), edge(q as usize + 1))
}

/// The boundary between codes `e - 1` and `e`: halfway between them in the
/// companded domain, where the encoder rounds.
fn edge(e: usize) -> f64 {
    match e {
        0 => f64::NEG_INFINITY,
        256.. => f64::INFINITY,
        _ => companded_to_linear((e as f64 - 0.5) * 2.0 / MU as f64 - 1.0),
    }
}

/// Laplace(0, b) CDF.
fn laplace_cdf(x: f64, b: f64) -> f64 {
    if x < 0.0 {
        0.5 * (x / b).exp()
    } else {
        1.0 - 0.5 * (-x / b).exp()
    }
}

/// Prediction coefficients `a` (`x_t ~ sum_i a[i] x[t - 1 - i]`) of order
/// `p` by the autocorrelation method, solved by Levinson-Durbin. A tiny
/// white-noise floor on the zero lag keeps silent or short clips stable.
pub fn lpc(x: &[f64], p: usize) -> Vec<f64> {
    let r: Vec<f64> = (0..=p)
        .map(|k| x.iter().zip(x.iter().skip(k)).map(|(a, b)| a * b).sum())
        .collect();
    crate::data::lpc::levinson(&r)
}

/// `x`'s prediction at `t` from the samples before it (zeros before 0).
fn predict(a: &[f64], x: &[f64], t: usize) -> f64 {
    a.iter()
        .enumerate()
        .take(t)
        .map(|(i, c)| c * x[t - 1 - i])
        .sum()
}

/// Mean absolute residual of the order-`p` predictor fitted to each clip.
pub fn mean_abs_residual(clips: &[&[u8]], p: usize) -> f64 {
    let (mut sum, mut n) = (0.0, 0usize);
    for c in clips {
        let x: Vec<f64> = c.iter().map(|&q| decode(q)).collect();
        let a = lpc(&x, p);
        for t in 0..x.len() {
            sum += (x[t] - predict(&a, &x, t)).abs();
        }
        n += x.len();
    }
    // A floor: an all-silent training set must not give a zero scale.
    (sum / n.max(1) as f64).max(1e-6)
}

/// Mean bits per code of the order-`p` per-clip predictor with a Laplace
/// residual of scale `b`.
pub fn lpc_bits(clips: &[&[u8]], p: usize, b: f64) -> f64 {
    let (mut bits, mut n) = (0.0, 0usize);
    for c in clips {
        let x: Vec<f64> = c.iter().map(|&q| decode(q)).collect();
        let a = lpc(&x, p);
        for (t, &q) in c.iter().enumerate() {
            let pred = predict(&a, &x, t);
            let (lo, hi) = bin(q);
            let mass = laplace_cdf(hi - pred, b) - laplace_cdf(lo - pred, b);
            // Far in a tail the difference underflows: 2^-64 is a floor
            // no real prediction reaches.
            bits -= mass.max(f64::powi(2.0, -64)).log2();
        }
        n += c.len();
    }
    bits / n.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::audio::mulaw_encode;
    use crate::rng::Rng;

    #[test]
    fn bins_tile_the_line_and_hold_their_codes() {
        let mut prev = f64::NEG_INFINITY;
        for q in 0..=255u8 {
            let (lo, hi) = bin(q);
            assert_eq!(lo, prev, "code {q}");
            assert!(hi > lo);
            prev = hi;
            // The code's own value, and points just inside its edges,
            // encode back to it.
            for x in [decode(q), lo.max(-1.0) + 1e-6, hi.min(1.0) - 1e-6] {
                assert_eq!(mulaw_encode(x as f32), q, "code {q} at {x}");
            }
        }
        assert_eq!(prev, f64::INFINITY);
    }

    #[test]
    fn lpc_recovers_an_ar2_process() {
        let mut rng = Rng::new(5);
        let (a1, a2) = (1.3, -0.6);
        let mut x = vec![0f64; 200_000];
        for t in 2..x.len() {
            x[t] = a1 * x[t - 1] + a2 * x[t - 2] + 0.01 * rng.normal() as f64;
        }
        let a = lpc(&x, 4);
        assert!(
            (a[0] - a1).abs() < 0.03 && (a[1] - a2).abs() < 0.03,
            "{a:?}"
        );
        assert!(a[2].abs() < 0.03 && a[3].abs() < 0.03, "{a:?}");
    }

    #[test]
    fn unigram_of_a_constant_is_near_zero_and_uniform_data_near_eight() {
        let c = vec![7u8; 100_000];
        assert!(unigram_bits(&[&c], &[&c]) < 0.01);
        let u: Vec<u8> = (0..256 * 400).map(|i| (i % 256) as u8).collect();
        assert!((unigram_bits(&[&u], &[&u]) - 8.0).abs() < 1e-9);
    }

    #[test]
    fn a_predictable_signal_costs_fewer_bits_than_noise() {
        let mut rng = Rng::new(9);
        let tone: Vec<u8> = (0..8000)
            .map(|t| mulaw_encode(0.5 * (t as f32 * 0.07).sin() + 0.001 * rng.normal()))
            .collect();
        let noise: Vec<u8> = (0..8000)
            .map(|_| mulaw_encode((0.3 * rng.normal()).clamp(-1.0, 1.0)))
            .collect();
        let bt = baselines(&[&tone], &[&tone]);
        let bn = baselines(&[&noise], &[&noise]);
        assert!(bt.lpc_bits < 4.0, "{bt:?}");
        assert!(bn.lpc_bits > 6.0, "{bn:?}");
        // Noise is close to its unigram; the tone far below.
        assert!(bt.lpc_bits < bt.unigram_bits - 2.0, "{bt:?}");
        assert!(bn.lpc_bits > bn.unigram_bits - 0.5, "{bn:?}");
    }
}

/// How a conditional audio model's generated clips sound to the audio
/// classifier.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Heard {
    /// Clips generated, balanced over the classes.
    pub generated_clips: usize,
    /// Seconds of each (at most, for a model whose frames end its clips).
    pub seconds: f32,
    /// The sampling temperature.
    pub temperature: f32,
    /// The frame tier's temperature, for a model with one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub frame_temperature: Option<f32>,
    /// Their mean length: `seconds`, unless frames end them.
    pub mean_seconds: f64,
    /// How often the classifier hears the class a clip was conditioned on.
    pub conditional_accuracy: f64,
    /// `confusion[conditioned][heard]`.
    pub confusion: Vec<Vec<u64>>,
    /// For a model with frame features: how often the classifier hears the
    /// test clips' own digit in their resynthesis, the model of samples
    /// following each test clip's frames in place of drawn ones. What the
    /// model of samples loses, apart from the frame tier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resynthesis_accuracy: Option<f64>,
    /// The classifier's checkpoint.
    pub classifier: String,
    /// What generated the clips: `host` (the host's model at the stored
    /// precision) or `runtime` (the device runtime, from the model's GGUF).
    pub generated_by: &'static str,
}

/// What a generation for [`conditional_accuracy`] asks for.
#[derive(Debug, Clone, Copy)]
pub struct Generation {
    /// Clips in all.
    pub n: usize,
    /// Seconds of each.
    pub seconds: f32,
    /// Softmax temperature.
    pub temperature: f32,
    /// The frame tier's temperature.
    pub frame_temperature: f32,
    /// Clip `i` draws with seed `seed + i`.
    pub seed: u64,
}

/// Generates `g.n` clips of `m` on parameters `p` (frames drawn by `tier`
/// if the model has one), the labels cycling over the classes, and
/// classifies each by its log-mel features with the audio classifier `cls`
/// (whose features settings it stores). With a frame tier, `test` clips
/// are also resynthesized from their own frames (`resynthesis_accuracy`).
pub fn conditional_accuracy(
    m: &crate::models::rnn::Rnn,
    p: &[f32],
    tier: Option<(&crate::models::frames::FrameRnn, &[f32])>,
    test: &[crate::train::audio::Codes],
    cls: &crate::eval::suite::Scorer<'_>,
    g: Generation,
    th: crate::nn::gemm::Threads,
) -> anyhow::Result<Heard> {
    use crate::models::rnn::Frames;
    let k = m.cfg.n_classes;
    let lm = audio_features(cls, k)?;
    let labels = crate::eval::suite::balanced_labels(g.n, k);
    let frames = match tier {
        Some((tier, params)) => Frames::Drawn {
            tier,
            params,
            temperature: g.frame_temperature,
        },
        None => Frames::None,
    };
    let (acc, confusion, mean_seconds) = hear(m, p, &labels, |_| frames, lm, cls, g, th);
    let resynthesis_accuracy = match tier {
        Some(_) if !test.is_empty() => {
            let labels: Vec<u32> = test.iter().map(|c| c.label).collect();
            let feats: Vec<&[f32]> = test.iter().map(|c| &c.feats[..]).collect();
            let g = Generation { n: test.len(), ..g };
            Some(
                hear(
                    m,
                    p,
                    &labels,
                    |from| Frames::Given(&feats[from..]),
                    lm,
                    cls,
                    g,
                    th,
                )
                .0,
            )
        }
        _ => None,
    };
    Ok(Heard {
        generated_clips: g.n,
        seconds: g.seconds,
        temperature: g.temperature,
        frame_temperature: tier.map(|_| g.frame_temperature),
        mean_seconds,
        conditional_accuracy: acc,
        confusion,
        resynthesis_accuracy,
        classifier: cls.path.clone(),
        generated_by: "host",
    })
}

/// [`conditional_accuracy`] of clips the device runtime generates from an
/// audio model's GGUF bytes (`dev`, of `k` classes), as a device plays
/// them: clip `i` from the runtime's generator seeded `g.seed + i`, frames
/// drawn by the runtime's frame tier if the model has one. No
/// resynthesis: the runtime draws its own frames.
pub fn runtime_accuracy(
    dev: &edgegen_runtime::models::audio::Audio<'_>,
    cls: &crate::eval::suite::Scorer<'_>,
    g: Generation,
    th: crate::nn::gemm::Threads,
) -> anyhow::Result<Heard> {
    use edgegen_runtime::models::audio::{SILENCE, State, mulaw_decode};
    use edgegen_runtime::sample::{Rng, Sampling};
    use rayon::prelude::*;
    let k = dev.hp.n_classes as usize;
    let lm = audio_features(cls, k)?;
    let labels = crate::eval::suite::balanced_labels(g.n, k);
    let len = (g.seconds * dev.hp.sample_rate as f32).round().max(1.0) as usize;
    let sampling = Sampling {
        temperature: g.temperature,
        ..Sampling::default()
    };
    let clips: Vec<Vec<f32>> = labels
        .par_iter()
        .enumerate()
        .map(|(i, &l)| {
            let mut buf = vec![0f32; dev.state_len()];
            let mut scratch = vec![0f32; dev.scratch_len()];
            let mut st = State::new(&mut buf, Some(l));
            st.set_frame_temperature(g.frame_temperature);
            let mut out = vec![0u8; len];
            let mut rng = Rng::new(g.seed.wrapping_add(i as u64));
            let n = dev
                .generate(
                    &mut st,
                    SILENCE,
                    &sampling,
                    &mut rng,
                    &mut scratch,
                    &mut out,
                )
                .map_err(|e| anyhow::anyhow!("the runtime, clip {i}: {e}"))?;
            Ok(out[..n].iter().map(|&q| mulaw_decode(q)).collect())
        })
        .collect::<anyhow::Result<_>>()?;
    let samples: usize = clips.iter().map(Vec::len).sum();
    let refs: Vec<&[f32]> = clips.iter().map(|c| &c[..]).collect();
    let (acc, confusion) = classify(lm.features_of(&refs), &labels, lm, cls, th);
    Ok(Heard {
        generated_clips: g.n,
        seconds: g.seconds,
        temperature: g.temperature,
        frame_temperature: dev.frame_hparams().map(|_| g.frame_temperature),
        mean_seconds: samples as f64 / lm.sample_rate as f64 / labels.len().max(1) as f64,
        conditional_accuracy: acc,
        confusion,
        resynthesis_accuracy: None,
        classifier: cls.path.clone(),
        generated_by: "runtime",
    })
}

/// The audio classifier's log-mel settings, checked against a model of
/// `k` classes.
fn audio_features(
    cls: &crate::eval::suite::Scorer<'_>,
    k: usize,
) -> anyhow::Result<crate::data::logmel::LogMel> {
    let Some(lm) = cls.model.cfg.log_mel else {
        anyhow::bail!(
            "--classifier {}: an image classifier; an audio model needs one trained on audio (edgegen train classifier --data FSDD_DIR)",
            cls.path
        );
    };
    if k == 0 {
        anyhow::bail!(
            "--classifier: conditional_accuracy needs a conditional model (train audio --conditional)"
        );
    }
    if cls.model.cfg.n_classes != k {
        anyhow::bail!(
            "--classifier {}: it knows {} classes, the model {k}",
            cls.path,
            cls.model.cfg.n_classes
        );
    }
    Ok(lm)
}

/// The classifier's accuracy and confusion on clips' log-mel `feats`
/// (`lm.mels * lm.frames` values each), whose classes are `labels`.
fn classify(
    feats: Vec<f32>,
    labels: &[u32],
    lm: crate::data::logmel::LogMel,
    cls: &crate::eval::suite::Scorer<'_>,
    th: crate::nn::gemm::Threads,
) -> (f64, Vec<Vec<u64>>) {
    let images = crate::data::inputs::Images {
        x: feats,
        labels: labels.to_vec(),
        d: lm.mels * lm.frames,
    };
    let mut acts = crate::models::classifier::ClassifierActs::new(cls.model, 256);
    let (_, acc, confusion) = crate::train::classifier::evaluate(
        cls.model,
        cls.params,
        cls.buffers,
        &images,
        &mut acts,
        th,
    );
    (acc, confusion)
}

/// Generates a clip for each of `labels` (`frames(i)` gives the frames of
/// the clips from the `i`-th on) and classifies them: (accuracy,
/// confusion, mean seconds).
#[allow(clippy::too_many_arguments)]
fn hear<'f>(
    m: &crate::models::rnn::Rnn,
    p: &[f32],
    labels: &[u32],
    frames: impl Fn(usize) -> crate::models::rnn::Frames<'f>,
    lm: crate::data::logmel::LogMel,
    cls: &crate::eval::suite::Scorer<'_>,
    g: Generation,
    th: crate::nn::gemm::Threads,
) -> (f64, Vec<Vec<u64>>, f64) {
    use crate::data::audio::mulaw_decode;
    use crate::rng::Rng;
    let len = (g.seconds * lm.sample_rate as f32).round().max(1.0) as usize;
    let mut feats = Vec::with_capacity(labels.len() * lm.mels * lm.frames);
    let mut codes_in_all = 0usize;
    // A few hundred clips at a time: one batched step per sample.
    for (c, chunk) in labels.chunks(256).enumerate() {
        let mut rngs: Vec<Rng> = (0..chunk.len())
            .map(|i| Rng::new(g.seed.wrapping_add((c * 256 + i) as u64)))
            .collect();
        let codes = crate::models::rnn::generate(
            m,
            p,
            chunk,
            frames(c * 256),
            crate::train::audio::SILENCE,
            len,
            g.temperature,
            &mut rngs,
            th,
        );
        codes_in_all += codes.iter().map(Vec::len).sum::<usize>();
        let clips: Vec<Vec<f32>> = codes
            .iter()
            .map(|c| c.iter().map(|&q| mulaw_decode(q as u8)).collect())
            .collect();
        let refs: Vec<&[f32]> = clips.iter().map(|c| &c[..]).collect();
        feats.extend(lm.features_of(&refs));
    }
    let (acc, confusion) = classify(feats, labels, lm, cls, th);
    let secs = codes_in_all as f64 / lm.sample_rate as f64 / labels.len().max(1) as f64;
    (acc, confusion, secs)
}
