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

use super::checkpoint::{Checkpoint, GroupState, Spec, TrainState};
use super::config::TrainConfig;
use super::{Curves, GroupOptimizer, Trainer, Validation};
use crate::data::audio::{
    AudioSet, BUILTIN_FSDD, mulaw_decode, mulaw_encode, resample, trim_silence,
};
use crate::data::split::split_audio;
use crate::data::{self, Dataset};
use crate::models::Family;
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

/// The one parameter group.
pub const MODEL: &str = "model";
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
        self.rnn(0).validate()
    }

    /// The network over `k` classes.
    pub fn rnn(&self, k: usize) -> RnnConfig {
        RnnConfig {
            vocab: 256,
            embed: self.embed,
            hidden: self.hidden,
            n_classes: k,
        }
    }
}

/// What an audio model is, as its checkpoint stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioModelConfig {
    /// The network.
    pub rnn: RnnConfig,
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
                    Codes {
                        codes: x[r].iter().map(|&v| mulaw_encode(v) as u32).collect(),
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
pub fn load(ck: &Checkpoint, by: &str) -> Result<(Rnn, AudioModelConfig, TrainState)> {
    ck.expect(&[Family::Audio], by)?;
    let mc: AudioModelConfig = ck.model_config()?;
    let m = Rnn::new(mc.rnn.clone())
        .map_err(|e| anyhow::anyhow!("{}: model config: {e:#}", ck.path.display()))?;
    let st = ck.state(&spec(&m, &mc, &EMPTY))?;
    Ok((m, mc, st))
}

static EMPTY: Layout = Layout {
    entries: Vec::new(),
};

/// An audio model's checkpoint contents: one group, and in a training run
/// the streams' buffers (a model loaded to be used needs none).
pub fn spec<'a>(m: &'a Rnn, mc: &AudioModelConfig, buffers: &'a Layout) -> Spec<'a> {
    Spec {
        family: Family::Audio,
        model: serde_json::to_value(mc).unwrap_or_default(),
        groups: vec![(MODEL, &m.layout)],
        buffers,
    }
}

/// Bits per code of `m` over whole clips, each from a zero state.
pub fn nll(m: &Rnn, p: &[f32], clips: &[Codes], th: Threads) -> (f64, usize) {
    let refs: Vec<(&[u32], u32)> = clips.iter().map(|c| (&c.codes[..], c.label)).collect();
    rnn::nll_bits(m, p, &refs, 256, 32, th)
}

/// The audio family's trainer.
pub struct AudioTrainer {
    model: Rnn,
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
        Ok(Self {
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
        spec(&self.model, &self.mc, &self.buffers)
    }

    fn init(&self, rng: &mut Rng) -> (Vec<GroupState>, Vec<f32>) {
        let mut g = GroupState::zeros(MODEL, self.model.layout.total());
        self.model.init(&mut g.params, rng);
        let mut buffers = vec![0f32; self.buffers.total()];
        // No clip yet: every stream starts one at the first step.
        if let Some(e) = self.buffers.get("stream.clip") {
            buffers[e.range()].fill(-1.0);
        }
        (vec![g], buffers)
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
        let mut sum = 0f64;
        // The streams, in the checkpoint's buffers so that a resumed run
        // takes the same steps: each row's carried state, clip and
        // position.
        let (carried, rest) = st.buffers.split_at_mut(b * h);
        let (clip_of, pos_of) = rest.split_at_mut(b);
        for i in 0..steps {
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
            sum += bits;
            progress((i as usize + 1) * n, bits);
        }
        st.rng = rng.state();
        vec![
            ("iter", st.step as f64),
            ("train_bits", sum / steps.max(1) as f64),
        ]
    }

    fn validate(&mut self, st: &TrainState, data: &AudioData) -> Validation {
        let p = &st.groups[0].params;
        let (bits, _) = nll(&self.model, p, &data.val, self.threads);
        Validation {
            values: vec![("val_bits_per_sample", bits)],
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
