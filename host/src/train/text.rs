//! The text family's part of a training run: its settings (`[text]`), the
//! corpus as symbols split per class, nanoGPT's step (a batch of windows at
//! random offsets, next-symbol cross-entropy, global-norm clipping, AdamW
//! with a cosine schedule), the validation pass over the held-out text in
//! nats and bits per byte, and a short sample after every round.
//!
//! A run counts optimizer steps (`--iters`) rather than epochs: one round
//! of the run loop is `--eval-interval` steps, then a validation.

use super::checkpoint::{Checkpoint, GroupState, Spec, TrainState};
use super::config::TrainConfig;
use super::{Curves, GroupOptimizer, Trainer, Validation};
use crate::data::text::{BUILTIN_SHAKESPEARE, TextSet, Vocab};
use crate::data::{self, Dataset};
use crate::models::Family;
use crate::models::transformer::{Acts, Transformer, TransformerConfig};
use crate::nn::gemm::Threads;
use crate::nn::loss::{softmax_cross_entropy, softmax_cross_entropy_in_place};
use crate::nn::optim::clip_grad_norm;
use crate::nn::params::Layout;
use crate::provenance::Source;
use crate::rng::Rng;
use anyhow::{Result, bail};
use edgegen_runtime::sample::{self as dev, Sampling};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The one parameter group.
pub const MODEL: &str = "model";

/// The text model's settings: the `[text]` table of a config file. The
/// defaults are nanoGPT's CPU "baby" config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TextSettings {
    /// `bytes` (256 symbols) or `chars` (the corpus's characters).
    pub vocab: String,
    /// Transformer blocks.
    pub layers: usize,
    /// Attention heads per block.
    pub heads: usize,
    /// Key/value heads (grouped-query attention, dividing `heads`): the
    /// device's KV cache shrinks by heads / kv_heads. `None` is `heads`.
    pub kv_heads: Option<usize>,
    /// Width of the residual stream.
    pub dim: usize,
    /// Symbols per window: the longest context, fixed at export.
    pub context: usize,
    /// The MLP's width; `None` is 4 x dim.
    pub ffn: Option<usize>,
    /// The output layer is the token embedding (GPT-2's tying).
    pub tied: bool,
    /// Optimizer steps in all.
    pub iters: u64,
    /// Steps between two validations (one round of the run).
    pub eval_interval: u64,
    /// Symbols in the sample written after each round (0: none).
    pub sample_tokens: usize,
    /// What the samples start from.
    pub sample_prompt: String,
}

impl Default for TextSettings {
    fn default() -> Self {
        Self {
            vocab: "bytes".into(),
            layers: 4,
            heads: 4,
            kv_heads: None,
            dim: 128,
            context: 64,
            ffn: None,
            tied: true,
            iters: 2000,
            eval_interval: 250,
            sample_tokens: 200,
            sample_prompt: "\n".into(),
        }
    }
}

impl TextSettings {
    /// Checks the settings alone; errors name the flag.
    pub fn validate(&self) -> Result<()> {
        if !matches!(self.vocab.as_str(), "bytes" | "chars") {
            bail!("--vocab: expected bytes or chars, found {:?}", self.vocab);
        }
        if self.iters == 0 {
            bail!("--iters: expected at least 1, found 0");
        }
        if self.eval_interval == 0 {
            bail!("--eval-interval: expected at least 1, found 0");
        }
        if self.sample_tokens > 1 << 16 {
            bail!(
                "--sample-tokens: expected at most 65536, found {}",
                self.sample_tokens
            );
        }
        self.transformer(256, 0).validate()
    }

    /// The transformer these settings make over `vocab` symbols and `k`
    /// classes.
    pub fn transformer(&self, vocab: usize, k: usize) -> TransformerConfig {
        TransformerConfig {
            vocab,
            context: self.context,
            dim: self.dim,
            layers: self.layers,
            heads: self.heads,
            kv_heads: self.kv_heads.unwrap_or(self.heads),
            ffn: self.ffn.unwrap_or(4 * self.dim),
            n_classes: k,
            tied: self.tied,
        }
    }
}

/// What a text model is, as its checkpoint stores it: the transformer,
/// how its symbols read, and its classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextModelConfig {
    /// The network.
    pub transformer: TransformerConfig,
    /// `bytes` or `chars`.
    pub vocab: String,
    /// With `chars`: symbol `i` is the i-th character of this string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub chars: String,
    /// The class names, for a conditional model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<String>,
}

impl TextModelConfig {
    /// The vocabulary the model reads and writes.
    pub fn vocab(&self) -> Vocab {
        match self.vocab.as_str() {
            "chars" => Vocab::Chars(self.chars.chars().collect()),
            _ => Vocab::Bytes,
        }
    }

    /// The class named or numbered `s`; an error lists the classes.
    pub fn class(&self, s: &str) -> Result<u32> {
        if self.classes.is_empty() {
            bail!("--label {s}: this model is unconditional (it was trained on one text)");
        }
        if let Some(i) = self.classes.iter().position(|c| c == s) {
            return Ok(i as u32);
        }
        match s.parse::<usize>() {
            Ok(i) if i < self.classes.len() => Ok(i as u32),
            _ => bail!(
                "--label {s}: expected a class name or number below {}: {}",
                self.classes.len(),
                self.classes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| format!("{i} {c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// A corpus as symbols, split per class into its leading part (training)
/// and its trailing part (validation).
#[derive(Debug, Clone)]
pub struct TextData {
    /// The vocabulary, learned from all of the text for `chars`.
    pub vocab: Vocab,
    /// Class names; empty for a single text.
    pub classes: Vec<String>,
    /// Each class's training symbols.
    pub train: Vec<Vec<u32>>,
    /// Each class's validation symbols.
    pub val: Vec<Vec<u32>>,
    /// What the user should know.
    pub notes: Vec<String>,
}

impl TextData {
    /// Splits `set` and turns it into symbols. Every class needs a window
    /// of training text and at least two symbols of validation text.
    pub fn new(
        set: &TextSet,
        vocab: &str,
        val_frac: f64,
        context: usize,
        name: &str,
    ) -> Result<Self> {
        if val_frac <= 0.0 {
            bail!(
                "--val-frac: a text run validates on the end of each text; expected more than 0, found {val_frac}"
            );
        }
        let vocab = Vocab::new(vocab, set.as_str())?;
        let (mut train, mut val) = (vec![], vec![]);
        for k in 0..set.spans.len() {
            let what = match set.classes.get(k) {
                Some(c) => format!("{name}: class {c:?}"),
                None => name.to_string(),
            };
            let (a, b) = TextSet::split(set.class_text(k), val_frac);
            let (a, b) = (vocab.encode(a, &what)?, vocab.encode(b, &what)?);
            if a.len() <= context {
                bail!(
                    "{what}: {} symbols to train on after the split; a window needs {} (--context {context} plus one)",
                    a.len(),
                    context + 1
                );
            }
            if b.len() < 2 {
                bail!(
                    "{what}: {} symbols to validate on after the split (--val-frac {val_frac}); expected at least 2",
                    b.len()
                );
            }
            train.push(a);
            val.push(b);
        }
        let mut notes = vec![];
        if let Vocab::Chars(c) = &vocab {
            notes.push(format!("vocabulary: {} characters", c.len()));
        }
        Ok(Self {
            vocab,
            classes: set.classes.clone(),
            train,
            val,
            notes,
        })
    }

    /// Loads and splits the text `cfg` names.
    pub fn load(cfg: &TrainConfig) -> Result<Self> {
        let s = cfg.text_settings()?;
        let path = data::resolve_or(cfg.data.as_deref(), BUILTIN_SHAKESPEARE);
        let set = match data::load(&path)? {
            Dataset::Text(t) => t,
            _ => bail!(
                "{path}: a text run needs a UTF-8 text file, or a folder of .txt files (one per class); this is not text"
            ),
        };
        Self::new(&set, &s.vocab, cfg.val_frac, s.context, &path)
    }

    /// Training symbols in all.
    pub fn train_len(&self) -> usize {
        self.train.iter().map(Vec::len).sum()
    }
}

/// The model a checkpoint holds.
pub fn load(ck: &Checkpoint, by: &str) -> Result<(Transformer, TextModelConfig, TrainState)> {
    ck.expect(&[Family::Text], by)?;
    let mc: TextModelConfig = ck.model_config()?;
    let m = Transformer::new(mc.transformer.clone())
        .map_err(|e| anyhow::anyhow!("{}: model config: {e:#}", ck.path.display()))?;
    let st = ck.state(&spec(&m, &mc, &EMPTY))?;
    Ok((m, mc, st))
}

static EMPTY: Layout = Layout {
    entries: Vec::new(),
};

/// A text model's checkpoint contents: one group, no buffers.
pub fn spec<'a>(m: &'a Transformer, mc: &TextModelConfig, buffers: &'a Layout) -> Spec<'a> {
    Spec {
        family: Family::Text,
        model: serde_json::to_value(mc).unwrap_or_default(),
        groups: vec![(MODEL, &m.layout)],
        buffers,
    }
}

/// Continues `prompt` by `n` symbols on the host, the reference that the
/// runtime's KV-cache decoder is checked against: each symbol is the last
/// row of a full forward pass over the latest `context` symbols (when the
/// text outgrows the context, the window slides and positions restart at
/// 0, the runtime's `Slide` policy). `stop` ends it early.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    m: &Transformer,
    p: &[f32],
    prompt: &[u32],
    label: Option<u32>,
    n: usize,
    sampling: &Sampling,
    rng: &mut dev::Rng,
    on_symbol: &mut dyn FnMut(u32) -> bool,
) -> Vec<u32> {
    let c = &m.cfg;
    let mut a = Acts::new(m, 1);
    a.labels[0] = label.unwrap_or(0);
    let mut seq: Vec<u32> = prompt.to_vec();
    if seq.is_empty() {
        seq.push(0);
    }
    let mut out = vec![];
    let mut logits = vec![0f32; c.vocab];
    for _ in 0..n {
        let start = seq.len().saturating_sub(c.context);
        let win = &seq[start..];
        let t = win.len();
        a.tokens[..t].copy_from_slice(win);
        m.forward(p, &mut a, 1, t, Threads(1));
        logits.copy_from_slice(&a.logits[(t - 1) * c.vocab..t * c.vocab]);
        let recent = &seq[seq.len().saturating_sub(64)..];
        let s = dev::sample_logits(&mut logits, recent, sampling, rng) as u32;
        seq.push(s);
        out.push(s);
        if !on_symbol(s) {
            break;
        }
    }
    out
}

/// Mean next-symbol loss in nats over every symbol of `val` (per class)
/// but the first, in windows of the context that do not overlap, `acts`'
/// batch at a time, and the UTF-8 bytes those symbols stand for.
pub fn val_loss(
    m: &Transformer,
    p: &[f32],
    acts: &mut Acts,
    vocab: &Vocab,
    val: &[Vec<u32>],
    th: Threads,
) -> (f64, usize) {
    let (t, v) = (m.cfg.context, m.cfg.vocab);
    let per = (acts.cap / t).max(1);
    // (class, start, length) of every window.
    let mut wins: Vec<(usize, usize, usize)> = vec![];
    for (k, s) in val.iter().enumerate() {
        let mut at = 0;
        while at + 1 < s.len() {
            let len = t.min(s.len() - 1 - at);
            wins.push((k, at, len));
            at += len;
        }
    }
    let mut loss = vec![0f32; acts.cap];
    let mut targets = vec![0u32; acts.cap];
    let (mut nats, mut symbols, mut bytes) = (0f64, 0usize, 0usize);
    let mut buf = vec![];
    let mut i = 0;
    while i < wins.len() {
        // Full windows go together; a short one (a class's last) alone.
        let len = wins[i].2;
        let mut b = 1;
        while b < per && i + b < wins.len() && wins[i + b].2 == len && len == t {
            b += 1;
        }
        for (j, &(k, at, _)) in wins[i..i + b].iter().enumerate() {
            acts.tokens[j * len..(j + 1) * len].copy_from_slice(&val[k][at..at + len]);
            targets[j * len..(j + 1) * len].copy_from_slice(&val[k][at + 1..at + 1 + len]);
            acts.labels[j] = k as u32;
        }
        let n = b * len;
        m.forward(p, acts, b, len, th);
        softmax_cross_entropy(
            &mut loss[..n],
            None,
            &acts.logits[..n * v],
            &targets[..n],
            v,
            1.0,
        );
        nats += loss[..n].iter().map(|&l| l as f64).sum::<f64>();
        symbols += n;
        for &s in &targets[..n] {
            buf.clear();
            vocab.bytes_of(s, &mut buf);
            bytes += buf.len();
        }
        i += b;
    }
    (nats / symbols.max(1) as f64, bytes)
}

/// The text family's trainer.
pub struct TextTrainer {
    model: Transformer,
    mc: TextModelConfig,
    settings: TextSettings,
    cfg: TrainConfig,
    opt: GroupOptimizer,
    acts: Acts,
    grads: Vec<f32>,
    loss: Vec<f32>,
    targets: Vec<u32>,
    prompt: Vec<u32>,
    threads: Threads,
}

impl TextTrainer {
    /// Steps in round `epoch` (1-based) of a run of `iters` steps.
    fn round_steps(&self, st: &TrainState) -> u64 {
        self.settings
            .eval_interval
            .min(self.settings.iters.saturating_sub(st.step))
    }
}

impl Trainer for TextTrainer {
    const FAMILY: Family = Family::Text;
    type Data = TextData;
    const CURVES: Curves = Curves {
        x: "iter",
        title: "text model loss",
        y: "nats per symbol",
        series: &[("train", "train_loss"), ("validation", "val_loss_nats")],
    };
    const BUILTIN_DATA: &'static str = BUILTIN_SHAKESPEARE;

    fn rounds(cfg: &TrainConfig) -> usize {
        super::step_rounds(cfg.text.as_ref().map(|s| (s.iters, s.eval_interval)))
    }

    fn length(cfg: &TrainConfig) -> (&'static str, String) {
        super::step_length(cfg.text.as_ref().map(|s| (s.iters, s.eval_interval)))
    }

    fn load_data(cfg: &TrainConfig) -> Result<TextData> {
        TextData::load(cfg)
    }

    fn notes(data: &TextData) -> &[String] {
        &data.notes
    }

    fn n_train(data: &TextData) -> usize {
        data.train_len()
    }

    fn round_len(&self, st: &TrainState, _data: &TextData) -> usize {
        self.round_steps(st) as usize * self.cfg.batch * self.settings.context
    }

    fn build(cfg: &TrainConfig, data: &TextData, threads: Threads) -> Result<Self> {
        let settings = cfg.text_settings()?.clone();
        let tc = settings.transformer(data.vocab.len(), data.classes.len());
        let model = Transformer::new(tc.clone())?;
        let mc = TextModelConfig {
            transformer: tc,
            vocab: data.vocab.kind().into(),
            chars: match &data.vocab {
                Vocab::Chars(c) => c.iter().collect(),
                Vocab::Bytes => String::new(),
            },
            classes: data.classes.clone(),
        };
        let prompt = data
            .vocab
            .encode(&settings.sample_prompt, "--sample-prompt")?;
        let (b, t) = (cfg.batch, settings.context);
        Ok(Self {
            acts: Acts::new(&model, b),
            grads: vec![0.0; model.layout.total()],
            loss: vec![0.0; b * t],
            targets: vec![0; b * t],
            opt: GroupOptimizer::from_config(cfg, cfg.lr),
            model,
            mc,
            settings,
            cfg: cfg.clone(),
            prompt,
            threads,
        })
    }

    fn spec(&self) -> Spec<'_> {
        spec(&self.model, &self.mc, &EMPTY)
    }

    fn init(&self, rng: &mut Rng) -> (Vec<GroupState>, Vec<f32>) {
        let mut g = GroupState::zeros(MODEL, self.model.layout.total());
        self.model.init(&mut g.params, rng);
        (vec![g], vec![])
    }

    fn describe(&self, data: &TextData) -> serde_json::Value {
        serde_json::json!({
            "model": self.mc,
            "parameters": self.model.layout.total(),
            "train_symbols": data.train_len(),
            "val_symbols": data.val.iter().map(Vec::len).sum::<usize>(),
        })
    }

    fn train_epoch(
        &mut self,
        st: &mut TrainState,
        data: &TextData,
        progress: &mut dyn FnMut(usize, f64),
    ) -> Vec<(&'static str, f64)> {
        let mut rng = Rng::from_state(st.rng);
        let (b, t, v) = (self.cfg.batch, self.settings.context, data.vocab.len());
        let n = b * t;
        // Windows start anywhere a whole one fits, every start equally
        // likely across the classes.
        let starts: Vec<usize> = data.train.iter().map(|s| s.len() - t).collect();
        let all: usize = starts.iter().sum();
        let steps = self.round_steps(st);
        let mut sum = 0f64;
        for i in 0..steps {
            for j in 0..b {
                let mut at = rng.below(all);
                let mut k = 0;
                while at >= starts[k] {
                    at -= starts[k];
                    k += 1;
                }
                let s = &data.train[k];
                self.acts.tokens[j * t..(j + 1) * t].copy_from_slice(&s[at..at + t]);
                self.targets[j * t..(j + 1) * t].copy_from_slice(&s[at + 1..at + 1 + t]);
                self.acts.labels[j] = k as u32;
            }
            let g = &mut st.groups[0];
            let th = self.threads;
            self.model.forward(&g.params, &mut self.acts, b, t, th);
            softmax_cross_entropy_in_place(
                &mut self.loss,
                &mut self.acts.logits[..n * v],
                &self.targets,
                v,
                1.0 / n as f32,
            );
            let loss = self.loss.iter().map(|&l| l as f64).sum::<f64>() / n as f64;
            self.model
                .backward(&g.params, &mut self.grads, &mut self.acts, b, t, th);
            clip_grad_norm(&mut self.grads, self.cfg.clip);
            st.step += 1;
            let total = self.settings.iters;
            let lr = super::lr_at(&self.cfg, self.opt.lr, st.step, total);
            self.opt.step(&self.model.layout, g, &mut self.grads, lr);
            sum += loss;
            progress((i as usize + 1) * n, loss);
        }
        st.rng = rng.state();
        vec![
            ("iter", st.step as f64),
            ("train_loss", sum / steps.max(1) as f64),
        ]
    }

    fn validate(&mut self, st: &TrainState, data: &TextData) -> Validation {
        let p = &st.groups[0].params;
        let (nats, bytes) = val_loss(
            &self.model,
            p,
            &mut self.acts,
            &data.vocab,
            &data.val,
            self.threads,
        );
        let symbols: usize = data.val.iter().map(|s| s.len() - 1).sum();
        let bpb = nats * symbols as f64 / (bytes as f64 * std::f64::consts::LN_2);
        let mut texts = vec![];
        if self.settings.sample_tokens > 0 {
            // The same seed every round, so that rounds compare; classes
            // take turns (round r samples class (r - 1) mod K: the state's
            // epoch is not yet advanced here).
            let k = data.classes.len();
            let label = (k > 0).then(|| (st.epoch % k) as u32);
            let s = Sampling {
                temperature: 0.8,
                top_k: 40,
                ..Sampling::default()
            };
            let mut rng = dev::Rng::new(self.cfg.seed);
            let out = generate(
                &self.model,
                p,
                &self.prompt,
                label,
                self.settings.sample_tokens,
                &s,
                &mut rng,
                &mut |_| true,
            );
            let mut all = self.prompt.clone();
            all.extend(out);
            texts.push(("sample", data.vocab.decode(&all)));
            if let Some(l) = label {
                texts.push(("sample_class", data.classes[l as usize].clone()));
            }
        }
        Validation {
            values: vec![("val_loss_nats", nats), ("bits_per_byte", bpb)],
            texts,
            score: Some(nats),
        }
    }

    fn lr(&self, st: &TrainState) -> f32 {
        super::lr_at(&self.cfg, self.opt.lr, st.step, self.settings.iters)
    }

    fn pictures(&self, _: &TrainState, _: &TextData, _: &Path, _: &Source) -> Result<()> {
        // The samples are text, kept in the metrics.
        Ok(())
    }
}
