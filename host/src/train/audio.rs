//! The audio family's part of a training run: its settings (`[audio]`),
//! clips as 8-bit mu-law codes at 8 kHz split by take (FSDD's takes 0 to 4
//! are the test set), the step, the validation pass over whole held-out
//! clips in bits per sample, and spectrograms of samples from the same
//! seeds after each round.
//!
//! The step is truncated backpropagation through time over streams: each
//! of the batch's rows plays a clip from its first code to its last, a
//! window at a time, and carries the GRU's state from one window to the
//! next (gradients stop at a window's start); a row whose clip has ended
//! starts another from a zero state, as generation does. Then next-code
//! cross-entropy, global-norm clipping, and AdamW with a cosine schedule.
//! This trainer's first form, random windows each from a zero state, never
//! ran the state past a window (32 ms), while a sampler runs it for a whole
//! clip. Measured on FSDD with the defaults: test NLL 4.410 (windows)
//! against 4.427 (streams) bits per sample, and neither model's clips are
//! yet heard as the digit they were asked for (20% and 13% of 100 clips,
//! chance being 10%); the streams' clips at least start in silence and
//! then speak, as FSDD's do.
//!
//! The model is [`crate::models::rnn`]: `benches/audio_arch.rs` measured it
//! against the text family's transformer over the same codes.
//!
//! With `--feat-dim C` the model has two tiers, LPCNet-like: the model of
//! samples also reads each frame's C log-mel bands and (`--lpc-order`) the
//! linear prediction of the next sample they imply, and a frame tier
//! ([`crate::models::frames`]) trains beside it, in its own parameter
//! group, on whole clips' frames; generation draws the frames and the
//! samples follow. Measured on FSDD (`--feat-dim 20 --lpc-order 16`, 3,000
//! steps): generated digits heard as the digit asked for 70-73% of the
//! time at frame temperature 0.3 (62% at 0.5), 89-90% after 8,000 steps,
//! against 11% for the same model of samples with a class embedding
//! alone. Such a model does not export yet.

use super::checkpoint::{Checkpoint, GroupState, Spec, TrainState};
use super::config::TrainConfig;
use super::{Curves, GroupOptimizer, Trainer, Validation};
use crate::data::audio::{
    AudioSet, BUILTIN_FSDD, mulaw_decode, mulaw_encode, resample, trim_silence,
};
use crate::data::split::split_audio;
use crate::data::{self, Dataset};
use crate::models::Family;
use crate::models::frames::{FrameActs, FrameConfig, FrameRnn, FrameTarget, frame_loss};
use crate::models::rnn::{self, Rnn, RnnActs, RnnConfig};
use crate::nn::gemm::Threads;
use crate::nn::loss::softmax_cross_entropy_in_place;
use crate::nn::optim::clip_grad_norm;
use crate::nn::params::Layout;
use crate::provenance::{Provenance, Source};
use crate::rng::Rng;
use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The parameter group of the model of samples.
pub const MODEL: &str = "model";
/// The frame tier's parameter group.
pub const FRAMES: &str = "frames";
/// How far drawn frames stray from their means, in sigmas, by default.
/// Measured on FSDD (`--feat-dim 20 --lpc-order 16`, 300 clips heard by
/// the audio classifier): conditional_accuracy after 3,000 steps 0.53 at
/// 0.7, 0.62 at 0.5, 0.67 at 0.4, 0.70-0.73 at 0.3; after 8,000 steps
/// 0.82 at 0.5 and 0.89-0.90 at 0.3. Lower is clearer and less varied.
pub const FRAME_TEMPERATURE: f32 = 0.3;
/// The rate every clip is brought to.
pub const SAMPLE_RATE: u32 = 8000;
/// The code the generator starts from: mu-law's zero.
pub const SILENCE: u32 = 128;

/// The audio model's settings: the `[audio]` table of a config file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AudioSettings {
    /// Condition on the clip's class (FSDD: the digit).
    pub conditional: bool,
    /// Width of the code and class embeddings.
    pub embed: usize,
    /// The GRU's state.
    pub hidden: usize,
    /// Codes per training window (backpropagation through this many steps).
    pub window: usize,
    /// Optimizer steps in all.
    pub iters: u64,
    /// Steps between two validations (one round of the run).
    pub eval_interval: u64,
    /// Trim leading and trailing silence quieter than this many dB below a
    /// clip's loudest 10 ms (0: keep the clips whole).
    pub trim_db: f32,
    /// Seconds of each sample drawn after every round.
    pub sample_seconds: f32,
    /// Log-mel bands of each frame the model follows (0: none).
    pub feat_dim: usize,
    /// Order of the linear prediction from those bands (0: none).
    pub lpc_order: usize,
    /// The frame tier's GRU state (with `feat_dim`).
    pub frame_hidden: usize,
    /// The frame tier's input width.
    pub frame_embed: usize,
    /// Frames of a clip the frame tier trains on (32 ms each).
    pub max_frames: usize,
}

impl Default for AudioSettings {
    fn default() -> Self {
        Self {
            conditional: false,
            embed: 64,
            hidden: 128,
            window: 256,
            iters: 3000,
            eval_interval: 500,
            trim_db: 0.0,
            sample_seconds: 0.75,
            feat_dim: 0,
            lpc_order: 0,
            frame_hidden: 128,
            frame_embed: 32,
            max_frames: 48,
        }
    }
}

impl AudioSettings {
    /// Checks the settings alone; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        if self.iters == 0 {
            bail!("--iters: expected at least 1, found 0");
        }
        if self.eval_interval == 0 {
            bail!("--eval-interval: expected at least 1, found 0");
        }
        if !(1..=1 << 16).contains(&self.window) {
            bail!("--window: expected 1 to 65536 codes, found {}", self.window);
        }
        if !(0.0..=120.0).contains(&self.trim_db) {
            bail!("--trim-db: expected 0 (off) to 120, found {}", self.trim_db);
        }
        if !(0.0..=30.0).contains(&self.sample_seconds) {
            bail!(
                "--sample-seconds: expected 0 to 30, found {}",
                self.sample_seconds
            );
        }
        self.rnn(0).validate()?;
        if let Some(f) = self.frames(0) {
            f.validate()?;
        }
        Ok(())
    }

    /// The frame tier over `k` classes, if the model has frame features.
    pub fn frames(&self, k: usize) -> Option<FrameConfig> {
        (self.feat_dim > 0).then_some(FrameConfig {
            bands: self.feat_dim,
            embed: self.frame_embed,
            hidden: self.frame_hidden,
            n_classes: k,
            max_frames: self.max_frames,
        })
    }

    /// The network over `k` classes.
    pub fn rnn(&self, k: usize) -> RnnConfig {
        RnnConfig {
            vocab: 256,
            embed: self.embed,
            hidden: self.hidden,
            n_classes: k,
            frame_len: if self.feat_dim > 0 {
                crate::data::logmel::FRAME
            } else {
                0
            },
            feat_dim: self.feat_dim,
            lpc_order: self.lpc_order,
        }
    }
}

/// What an audio model is, as its checkpoint stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioModelConfig {
    /// The network.
    pub rnn: RnnConfig,
    /// The frame tier, for a model with frame features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frames: Option<FrameConfig>,
    /// Hz of the codes.
    pub sample_rate: u32,
    /// The class names, for a conditional model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

/// One clip as codes.
#[derive(Debug, Clone, PartialEq)]
pub struct Codes {
    /// Mu-law codes at [`SAMPLE_RATE`].
    pub codes: Vec<u32>,
    /// Its class (0 unless the run is conditional).
    pub label: u32,
    /// Its frame features, if the model follows them.
    pub feats: Vec<f32>,
    /// Its linear predictions, if the model reads them.
    pub preds: Vec<u32>,
}

impl Codes {
    /// The clip as the model reads it.
    pub fn clip(&self) -> rnn::Clip<'_> {
        rnn::Clip {
            codes: &self.codes,
            label: self.label,
            feats: &self.feats,
            preds: &self.preds,
        }
    }
}

/// Clips as mu-law codes, split.
#[derive(Debug, Clone)]
pub struct AudioData {
    /// Class names; empty when the clips are not labeled.
    pub classes: Vec<String>,
    /// Training clips.
    pub train: Vec<Codes>,
    /// Validation clips (cut from the training takes).
    pub val: Vec<Codes>,
    /// Test clips: FSDD's takes 0 to 4, or none for other data.
    pub test: Vec<Codes>,
    /// What the user should know.
    pub notes: Vec<String>,
}

impl AudioData {
    /// Splits `set` (FSDD's takes, else at random by `seed`) and encodes
    /// it: resampled to 8 kHz, silence trimmed if asked, mu-law.
    pub fn new(
        set: &AudioSet,
        s: &AudioSettings,
        val_frac: f64,
        seed: u64,
        name: &str,
    ) -> Result<Self> {
        if val_frac <= 0.0 {
            bail!(
                "--val-frac: an audio run validates on held-out clips; expected more than 0, found {val_frac}"
            );
        }
        let classes = if s.conditional {
            if set.classes.is_empty() {
                bail!(
                    "{name}: --conditional needs labeled clips (one sub-folder per class, or names like FSDD's {{digit}}_{{speaker}}_{{take}}.wav)"
                );
            }
            set.classes.clone()
        } else {
            vec![]
        };
        let split = split_audio(set, val_frac, 0.0, seed);
        let lpc = (s.lpc_order > 0)
            .then(|| crate::data::lpc::BandLpc::new(s.feat_dim, SAMPLE_RATE, s.lpc_order));
        let encode = |idx: &[usize]| -> Vec<Codes> {
            idx.iter()
                .map(|&i| {
                    let c = &set.clips[i];
                    let x = resample(&c.samples, c.rate, SAMPLE_RATE);
                    let r = if s.trim_db > 0.0 {
                        trim_silence(&x, SAMPLE_RATE as usize / 100, s.trim_db)
                    } else {
                        0..x.len()
                    };
                    let codes: Vec<u32> = x[r].iter().map(|&v| mulaw_encode(v) as u32).collect();
                    // Features of what the codes sound like, as generated
                    // clips will.
                    let (feats, preds) = if s.feat_dim > 0 {
                        let y: Vec<f32> = codes.iter().map(|&q| mulaw_decode(q as u8)).collect();
                        let f = crate::data::logmel::frame_features(&y, s.feat_dim, SAMPLE_RATE);
                        let p = match &lpc {
                            Some(l) => rnn::lpc_predictions(&s.rnn(0), l, &y, &f),
                            None => vec![],
                        };
                        (f, p)
                    } else {
                        (vec![], vec![])
                    };
                    Codes {
                        codes,
                        feats,
                        preds,
                        // One label for all when the model ignores it.
                        label: if s.conditional {
                            c.label.unwrap_or(0)
                        } else {
                            0
                        },
                    }
                })
                .filter(|c| c.codes.len() >= 2)
                .collect()
        };
        let (train, val, test) = (
            encode(&split.train),
            encode(&split.val),
            encode(&split.test),
        );
        if !train.iter().any(|c| c.codes.len() > s.window) {
            bail!(
                "{name}: no training clip is longer than a window (--window {} codes at 8 kHz)",
                s.window
            );
        }
        if val.is_empty() {
            bail!("{name}: no clips to validate on (--val-frac {val_frac})");
        }
        let secs = |c: &[Codes]| {
            c.iter().map(|c| c.codes.len()).sum::<usize>() as f64 / SAMPLE_RATE as f64
        };
        let notes = vec![format!(
            "{} training clips ({:.0} s), {} validation, {} test{}",
            train.len(),
            secs(&train),
            val.len(),
            test.len(),
            if test.is_empty() {
                ""
            } else {
                " (FSDD takes 0 to 4)"
            }
        )];
        Ok(Self {
            classes,
            train,
            val,
            test,
            notes,
        })
    }

    /// Loads and splits the clips `cfg` names.
    pub fn load(cfg: &TrainConfig) -> Result<Self> {
        let s = cfg.audio_settings()?;
        let path = data::resolve_or(cfg.data.as_deref(), BUILTIN_FSDD);
        let set = match data::load(&path)? {
            Dataset::Audio(a) => a,
            _ => bail!(
                "{path}: an audio run needs .wav files (here or one folder down); this is not audio"
            ),
        };
        Self::new(&set, s, cfg.val_frac, cfg.seed, &path)
    }

    /// Training codes in all.
    pub fn train_len(&self) -> usize {
        self.train.iter().map(|c| c.codes.len()).sum()
    }
}

/// The model a checkpoint holds.
/// Its parameter groups are the model's, then the frame tier's if any.
pub fn load(ck: &Checkpoint, by: &str) -> Result<(Rnn, AudioModelConfig, TrainState)> {
    ck.expect(&[Family::Audio], by)?;
    let mc: AudioModelConfig = ck.model_config()?;
    let bad = |e: anyhow::Error| anyhow::anyhow!("{}: model config: {e:#}", ck.path.display());
    let m = Rnn::new(mc.rnn.clone()).map_err(bad)?;
    let tier = frame_tier(&mc).map_err(bad)?;
    let st = ck.state(&spec(&m, tier.as_ref(), &mc, &EMPTY))?;
    Ok((m, mc, st))
}

/// The frame tier a model config describes, if any.
pub fn frame_tier(mc: &AudioModelConfig) -> Result<Option<FrameRnn>> {
    mc.frames.clone().map(FrameRnn::new).transpose()
}

static EMPTY: Layout = Layout {
    entries: Vec::new(),
};

/// An audio model's checkpoint contents: one group, and in a training run
/// the streams' buffers (a model loaded to be used needs none).
pub fn spec<'a>(
    m: &'a Rnn,
    tier: Option<&'a FrameRnn>,
    mc: &AudioModelConfig,
    buffers: &'a Layout,
) -> Spec<'a> {
    let mut groups = vec![(MODEL, &m.layout)];
    if let Some(t) = tier {
        groups.push((FRAMES, &t.layout));
    }
    Spec {
        family: Family::Audio,
        model: serde_json::to_value(mc).unwrap_or_default(),
        groups,
        buffers,
    }
}

/// Nats per frame of the frame tier over whole clips (cut to its
/// `max_frames`), each from a zero state: each frame's bands and the end
/// after the last.
pub fn frame_nats(t: &FrameRnn, p: &[f32], clips: &[Codes], th: Threads) -> f64 {
    let mut a = FrameActs::new(t, t.cfg.max_frames + 1, 32);
    let (mut nats, mut frames) = (0f64, 0usize);
    for group in clips.chunks(a.batch) {
        let refs: Vec<&Codes> = group.iter().collect();
        let (n, f, _) = score_frames(t, p, &mut a, &refs, None, th);
        nats += n;
        frames += f;
    }
    nats / frames.max(1) as f64
}

/// Runs the frame tier over `clips` (one a column, each from a zero
/// state) and scores it: (nats in all, frames with bands, steps scored).
/// With `dout` (as long as `a.out`), leaves in `a.out` the gradient of
/// the mean loss per scored step, for [`FrameRnn::backward`].
fn score_frames(
    t: &FrameRnn,
    p: &[f32],
    a: &mut FrameActs,
    clips: &[&Codes],
    dout: Option<&mut [f32]>,
    th: Threads,
) -> (f64, usize, usize) {
    fill_frames(t, a, clips);
    a.gru.h[..a.batch * t.cfg.hidden].fill(0.0);
    t.forward(p, a, th);
    let (o, batch) = (t.cfg.outputs(), a.batch);
    // Columns past the clips are not scored.
    let target = |k: usize| match clips.get(k % batch) {
        Some(c) => frame_target(t, c, k / batch),
        None => FrameTarget::Skip,
    };
    let n = a.steps * batch;
    let frames = (0..n)
        .filter(|&k| matches!(target(k), FrameTarget::Frame(_)))
        .count();
    let scored = (0..n)
        .filter(|&k| !matches!(target(k), FrameTarget::Skip))
        .count()
        .max(1);
    let mut nats = 0f64;
    let mut dout = dout;
    for k in 0..n {
        let d = dout.as_deref_mut().map(|d| &mut d[k * o..(k + 1) * o]);
        nats += frame_loss(
            &a.out[k * o..(k + 1) * o],
            target(k),
            d,
            1.0 / scored as f32,
        ) as f64;
    }
    if let Some(d) = dout {
        a.out.copy_from_slice(d);
    }
    (nats, frames, scored)
}

/// What step `s` of clip `c` is scored on.
fn frame_target<'c>(t: &FrameRnn, c: &'c Codes, s: usize) -> FrameTarget<'c> {
    let b = t.cfg.bands;
    let n = (c.feats.len() / b).min(t.cfg.max_frames);
    match s.cmp(&n) {
        std::cmp::Ordering::Less => FrameTarget::Frame(&c.feats[s * b..(s + 1) * b]),
        std::cmp::Ordering::Equal if c.feats.len() / b <= t.cfg.max_frames => FrameTarget::End,
        _ => FrameTarget::Skip,
    }
}

/// The frame tier's inputs for `clips` (one a column): step `s` reads
/// frame `s - 1`, silence before the first; columns past the clips read
/// silence.
fn fill_frames(t: &FrameRnn, a: &mut FrameActs, clips: &[&Codes]) {
    let (b, batch) = (t.cfg.bands, a.batch);
    for s in 0..a.steps {
        for j in 0..batch {
            let k = s * batch + j;
            let row = &mut a.inputs[k * b..(k + 1) * b];
            match clips.get(j).and_then(|c| {
                s.checked_sub(1)
                    .and_then(|f| c.feats.get(f * b..(f + 1) * b))
            }) {
                Some(prev) => row.copy_from_slice(prev),
                None => row.fill(crate::data::logmel::SILENT_FEATURE),
            }
        }
    }
    for j in 0..batch {
        a.labels[j] = clips.get(j).map_or(0, |c| c.label);
    }
}

/// Bits per code of `m` over whole clips, each from a zero state.
pub fn nll(m: &Rnn, p: &[f32], clips: &[Codes], th: Threads) -> (f64, usize) {
    let refs: Vec<rnn::Clip> = clips.iter().map(Codes::clip).collect();
    rnn::nll_bits(m, p, &refs, 256, 32, th)
}

/// The audio family's trainer.
pub struct AudioTrainer {
    model: Rnn,
    /// The frame tier, its buffers, gradients and per-step losses.
    tier: Option<(FrameRnn, FrameActs, Vec<f32>, Vec<f32>)>,
    mc: AudioModelConfig,
    settings: AudioSettings,
    cfg: TrainConfig,
    opt: GroupOptimizer,
    acts: RnnActs,
    grads: Vec<f32>,
    loss: Vec<f32>,
    targets: Vec<u32>,
    /// Which positions of a window hold a code of the clip.
    scored: Vec<bool>,
    /// The streams' state: `stream.h` `(B, H)`, `stream.clip` and
    /// `stream.pos` `(B)` (indices as f32, exact below 2^24).
    buffers: Layout,
    threads: Threads,
}

impl AudioTrainer {
    fn round_steps(&self, st: &TrainState) -> u64 {
        self.settings
            .eval_interval
            .min(self.settings.iters.saturating_sub(st.step))
    }
}

impl Trainer for AudioTrainer {
    const FAMILY: Family = Family::Audio;
    type Data = AudioData;
    const CURVES: Curves = Curves {
        x: "iter",
        title: "audio model loss",
        y: "bits per sample",
        series: &[
            ("train", "train_bits"),
            ("validation", "val_bits_per_sample"),
        ],
    };
    const BUILTIN_DATA: &'static str = BUILTIN_FSDD;

    fn rounds(cfg: &TrainConfig) -> usize {
        super::step_rounds(cfg.audio.as_ref().map(|s| (s.iters, s.eval_interval)))
    }

    fn length(cfg: &TrainConfig) -> (&'static str, String) {
        super::step_length(cfg.audio.as_ref().map(|s| (s.iters, s.eval_interval)))
    }

    fn load_data(cfg: &TrainConfig) -> Result<AudioData> {
        AudioData::load(cfg)
    }

    fn notes(data: &AudioData) -> &[String] {
        &data.notes
    }

    fn n_train(data: &AudioData) -> usize {
        data.train_len()
    }

    fn round_len(&self, st: &TrainState, _data: &AudioData) -> usize {
        self.round_steps(st) as usize * self.cfg.batch * self.settings.window
    }

    fn build(cfg: &TrainConfig, data: &AudioData, threads: Threads) -> Result<Self> {
        let settings = cfg.audio_settings()?.clone();
        let rc = settings.rnn(data.classes.len());
        let model = Rnn::new(rc.clone())?;
        let (b, t) = (cfg.batch, settings.window);
        let fc = settings.frames(data.classes.len());
        let tier = fc
            .clone()
            .map(|c| -> Result<_> {
                let f = FrameRnn::new(c)?;
                let acts = FrameActs::new(&f, f.cfg.max_frames + 1, b);
                let n = f.layout.total();
                let d = vec![0f32; acts.out.len()];
                Ok((f, acts, vec![0f32; n], d))
            })
            .transpose()?;
        Ok(Self {
            tier,
            acts: RnnActs::new(&model, t, b),
            grads: vec![0.0; model.layout.total()],
            loss: vec![0.0; b * t],
            targets: vec![0; b * t],
            scored: vec![false; b * t],
            buffers: {
                let mut l = Layout::default();
                l.push("stream.h", &[b, settings.hidden]);
                l.push("stream.clip", &[b]);
                l.push("stream.pos", &[b]);
                l
            },
            opt: GroupOptimizer::from_config(cfg, cfg.lr),
            mc: AudioModelConfig {
                rnn: rc,
                frames: fc,
                sample_rate: SAMPLE_RATE,
                classes: data.classes.clone(),
            },
            model,
            settings,
            cfg: cfg.clone(),
            threads,
        })
    }

    fn spec(&self) -> Spec<'_> {
        spec(
            &self.model,
            self.tier.as_ref().map(|t| &t.0),
            &self.mc,
            &self.buffers,
        )
    }

    fn init(&self, rng: &mut Rng) -> (Vec<GroupState>, Vec<f32>) {
        let mut g = GroupState::zeros(MODEL, self.model.layout.total());
        self.model.init(&mut g.params, rng);
        let mut groups = vec![g];
        if let Some((t, ..)) = &self.tier {
            let mut f = GroupState::zeros(FRAMES, t.layout.total());
            t.init(&mut f.params, rng);
            groups.push(f);
        }
        let mut buffers = vec![0f32; self.buffers.total()];
        // No clip yet: every stream starts one at the first step.
        if let Some(e) = self.buffers.get("stream.clip") {
            buffers[e.range()].fill(-1.0);
        }
        (groups, buffers)
    }

    fn describe(&self, data: &AudioData) -> serde_json::Value {
        serde_json::json!({
            "model": self.mc,
            "parameters": self.model.layout.total(),
            "macs_per_sample": self.mc.rnn.macs_per_sample(),
            "train_codes": data.train_len(),
            "val_clips": data.val.len(),
            "test_clips": data.test.len(),
        })
    }

    fn train_epoch(
        &mut self,
        st: &mut TrainState,
        data: &AudioData,
        progress: &mut dyn FnMut(usize, f64),
    ) -> Vec<(&'static str, f64)> {
        let mut rng = Rng::from_state(st.rng);
        let (b, t, v, h) = (
            self.cfg.batch,
            self.settings.window,
            256,
            self.settings.hidden,
        );
        let n = b * t;
        let steps = self.round_steps(st);
        let (mut sum, mut frame_sum) = (0f64, 0f64);
        // The streams, in the checkpoint's buffers so that a resumed run
        // takes the same steps: each row's carried state, clip and
        // position.
        let (carried, rest) = st.buffers.split_at_mut(b * h);
        let (clip_of, pos_of) = rest.split_at_mut(b);
        for i in 0..steps {
            let cf = self.settings.feat_dim;
            for j in 0..b {
                let ended = clip_of[j] < 0.0
                    || pos_of[j] as usize + 1 >= data.train[clip_of[j] as usize].codes.len();
                if ended {
                    // A new clip from its first code and a zero state, as
                    // generation starts.
                    clip_of[j] = rng.below(data.train.len()) as f32;
                    pos_of[j] = 0.0;
                    carried[j * h..(j + 1) * h].fill(0.0);
                }
                let c = &data.train[clip_of[j] as usize];
                let at = pos_of[j] as usize;
                for s in 0..t {
                    let k = s * b + j;
                    self.scored[k] = at + s + 1 < c.codes.len();
                    // Past the clip's end: padding, not scored.
                    self.acts.tokens[k] = c.codes.get(at + s).copied().unwrap_or(SILENCE);
                    self.targets[k] = c.codes.get(at + s + 1).copied().unwrap_or(0);
                    self.model.frame_feats(
                        &c.feats,
                        at + s,
                        &mut self.acts.feats[k * cf..(k + 1) * cf],
                    );
                    self.acts.preds[k] = c.preds.get(at + s).copied().unwrap_or(SILENCE);
                }
                self.acts.labels[j] = c.label;
                pos_of[j] = (at + t) as f32;
            }
            let scored = self.scored.iter().filter(|&&s| s).count().max(1);
            self.acts.gru.h[..b * h].copy_from_slice(carried);
            let g = &mut st.groups[0];
            let th = self.threads;
            self.model.forward(&g.params, &mut self.acts, th);
            softmax_cross_entropy_in_place(
                &mut self.loss,
                &mut self.acts.logits[..n * v],
                &self.targets,
                v,
                1.0 / scored as f32,
            );
            for (k, _) in self.scored.iter().enumerate().filter(|(_, s)| !**s) {
                self.loss[k] = 0.0;
                self.acts.logits[k * v..(k + 1) * v].fill(0.0);
            }
            let bits = self.loss.iter().map(|&l| l as f64).sum::<f64>()
                / scored as f64
                / std::f64::consts::LN_2;
            // The state the next window starts from (gradients stop here:
            // truncated backpropagation through time).
            carried.copy_from_slice(&self.acts.gru.h[n * h..(n + b) * h]);
            self.model
                .backward(&g.params, &mut self.grads, &mut self.acts, th);
            clip_grad_norm(&mut self.grads, self.cfg.clip);
            st.step += 1;
            let lr = super::lr_at(&self.cfg, self.opt.lr, st.step, self.settings.iters);
            self.opt.step(&self.model.layout, g, &mut self.grads, lr);
            // The frame tier: a batch of whole clips' frames, drawn apart
            // from the streams.
            if let Some((t, fa, fg, fd)) = self.tier.as_mut() {
                let clips: Vec<&Codes> = (0..b)
                    .map(|_| &data.train[rng.below(data.train.len())])
                    .collect();
                let fp = &st.groups[1].params;
                let (nats, _, scored) = score_frames(t, fp, fa, &clips, Some(fd), th);
                frame_sum += nats / scored as f64;
                t.backward(fp, fg, fa, th);
                clip_grad_norm(fg, self.cfg.clip);
                self.opt.step(&t.layout, &mut st.groups[1], fg, lr);
            }
            sum += bits;
            progress((i as usize + 1) * n, bits);
        }
        st.rng = rng.state();
        let mut out = vec![
            ("iter", st.step as f64),
            ("train_bits", sum / steps.max(1) as f64),
        ];
        if self.tier.is_some() {
            out.push(("train_frame_nats", frame_sum / steps.max(1) as f64));
        }
        out
    }

    fn validate(&mut self, st: &TrainState, data: &AudioData) -> Validation {
        let p = &st.groups[0].params;
        let (bits, _) = nll(&self.model, p, &data.val, self.threads);
        let mut values = vec![("val_bits_per_sample", bits)];
        if let Some((t, ..)) = &self.tier {
            let fp = &st.groups[1].params;
            values.push(("val_frame_nats", frame_nats(t, fp, &data.val, self.threads)));
        }
        Validation {
            values,
            texts: vec![],
            score: Some(bits),
        }
    }

    fn lr(&self, st: &TrainState) -> f32 {
        super::lr_at(&self.cfg, self.opt.lr, st.step, self.settings.iters)
    }

    fn pictures(&self, st: &TrainState, _: &AudioData, dir: &Path, from: &Source) -> Result<()> {
        let n_samples = (self.settings.sample_seconds * SAMPLE_RATE as f32) as usize;
        if n_samples == 0 {
            return Ok(());
        }
        // The same seeds every round, so that rounds compare: one clip per
        // class (the first four), or four from seeds 0 to 3.
        let k = self.mc.classes.len();
        let labels: Vec<Option<u32>> = if k > 0 {
            (0..k.min(4) as u32).map(Some).collect()
        } else {
            vec![None; 4]
        };
        let p = &st.groups[0].params;
        let mut rngs: Vec<Rng> = (0..labels.len() as u64)
            .map(|i| Rng::new(self.cfg.seed.wrapping_add(i)))
            .collect();
        let ids: Vec<u32> = labels.iter().map(|l| l.unwrap_or(0)).collect();
        let codes = rnn::generate(
            &self.model,
            p,
            &ids,
            match (&self.tier, st.groups.get(1)) {
                (Some((t, ..)), Some(g)) => rnn::Frames::Drawn {
                    tier: t,
                    params: &g.params,
                    temperature: FRAME_TEMPERATURE,
                },
                _ => rnn::Frames::None,
            },
            SILENCE,
            n_samples,
            1.0,
            &mut rngs,
            self.threads,
        );
        let clips: Vec<(String, Vec<f32>)> = labels
            .iter()
            .zip(codes)
            .enumerate()
            .map(|(i, (&l, codes))| {
                let title = match l {
                    Some(l) => format!("class {}", self.mc.classes[l as usize]),
                    None => format!("seed {i}"),
                };
                (
                    title,
                    codes.iter().map(|&c| mulaw_decode(c as u8)).collect(),
                )
            })
            .collect();
        let waves: Vec<crate::plot::wave::Wave> = clips
            .iter()
            .map(|(title, x)| crate::plot::wave::Wave {
                title: title.clone(),
                samples: x,
                rate: SAMPLE_RATE,
            })
            .collect();
        crate::plot::spectrogram::spectrogram_png(
            &waves,
            &dir.join("samples.png"),
            &Provenance::samples(from, self.cfg.seed, waves.len()),
        )
    }
}
