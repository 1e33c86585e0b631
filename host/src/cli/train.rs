//! `edgegen train vae|gan|classifier|text|audio`.

use crate::nn::optim::Schedule;
use crate::train::Trainer;
use crate::train::audio::AudioTrainer;
use crate::train::classifier::ClassifierTrainer;
use crate::train::config::TrainConfig;
use crate::train::gan::GanTrainer;
use crate::train::run::{self, RunOptions};
use crate::train::text::TextTrainer;
use crate::train::vae::{Parallel, VaeTrainer};
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// A variational autoencoder on images.
    #[command(args_override_self = true)]
    Vae(VaeArgs),
    /// A DCGAN on images (Adam 2e-4, beta1 0.5 by default).
    #[command(args_override_self = true)]
    Gan(GanArgs),
    /// A CNN classifier for a labeled image set: what `eval --classifier`
    /// scores image models with.
    #[command(args_override_self = true)]
    Classifier(ClassifierArgs),
    /// A byte-level transformer on text: a UTF-8 file, or a folder of .txt
    /// files (one class each) for a class-conditional model. nanoGPT's CPU
    /// "baby" recipe by default; the run counts steps (--iters).
    #[command(args_override_self = true)]
    Text(TextArgs),
    /// A GRU over 8-bit mu-law audio at 8 kHz: a folder of .wav files
    /// (FSDD's `{digit}_{speaker}_{take}.wav`: takes 0 to 4 are the test
    /// set), conditioned on the class with --conditional. The run counts
    /// steps (--iters).
    #[command(args_override_self = true)]
    Audio(AudioArgs),
}

/// The flags every family shares: data, run and optimizer. Flags override
/// the config file, which overrides the family's defaults.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Dataset path (default: EDGEGEN_DATA, else the family's built-in sample).
    #[arg(long)]
    data: Option<String>,
    /// Settings from a TOML or JSON file: common keys at the top level,
    /// model keys under the family's table ([vae]).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Epochs in total, for the image families [default: 10].
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size [default: 128].
    #[arg(long)]
    batch: Option<usize>,
    /// Peak learning rate [default: the family's].
    #[arg(long, allow_negative_numbers = true)]
    lr: Option<f32>,
    /// Adam's beta1 [default: the family's].
    #[arg(long, allow_negative_numbers = true)]
    beta1: Option<f32>,
    /// Adam's beta2 [default: 0.999].
    #[arg(long, allow_negative_numbers = true)]
    beta2: Option<f32>,
    /// Learning-rate schedule [default: constant].
    #[arg(long, value_enum)]
    schedule: Option<Schedule>,
    /// Warm-up steps for the cosine schedule.
    #[arg(long)]
    warmup_steps: Option<u64>,
    /// AdamW weight decay, never on biases, norms or embeddings [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    weight_decay: Option<f32>,
    /// Clip the global gradient norm to this (0 = off).
    #[arg(long, allow_negative_numbers = true)]
    clip: Option<f32>,
    /// Seed for splits, init, shuffles and noise [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Threads (0 = all cores) [default: 0].
    #[arg(long)]
    threads: Option<usize>,
    /// Validation fraction of the training images (0 validates on the test
    /// split), or the end of each text held out [default: 0.1].
    #[arg(long, allow_negative_numbers = true)]
    val_frac: Option<f64>,
    /// Train on at most this many images.
    #[arg(long)]
    max_train: Option<usize>,
    /// Bring every image to this many channels: 1 grey, 2 grey + alpha,
    /// 3 RGB, 4 RGBA [default: the count most files have].
    #[arg(long)]
    channels: Option<usize>,
    /// Resize every image to HxW pixels, such as 32x32.
    #[arg(long, value_parser = crate::data::images::parse_size)]
    image_size: Option<[usize; 2]>,
    /// The run folder.
    #[arg(short, long, required_unless_present = "resume")]
    output: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint. Only
    /// --epochs (a larger total) and --threads may change; any other
    /// setting given must equal the run's own.
    #[arg(long, conflicts_with_all = ["output", "init_from", "force"])]
    resume: Option<PathBuf>,
    /// Replace a run already in the -o folder. The old run is deleted only
    /// once the new run's first checkpoint is written.
    #[arg(long)]
    force: bool,
    /// Fine-tune from this run's best parameters.
    #[arg(long)]
    init_from: Option<PathBuf>,
    /// No progress bar or per-epoch lines.
    #[arg(long)]
    quiet: bool,
    /// Print the metrics as JSON at the end.
    #[arg(long)]
    json: bool,
}

/// Sets each field of `$c` whose flag `$a` has.
macro_rules! over {
    ($c:expr, $a:expr; $($f:ident),*) => {$( if let Some(v) = &$a.$f { $c.$f = v.clone(); } )*};
}

impl RunArgs {
    /// The settings: `base` (the family's defaults, or a resumed run's
    /// own), then the config file, then the common flags.
    fn config(&self, base: TrainConfig) -> Result<TrainConfig> {
        let mut c = match &self.config {
            Some(p) => TrainConfig::from_file_over(p, &base)?,
            None => base,
        };
        over!(c, self; epochs, batch, lr, beta1, beta2, schedule, warmup_steps, weight_decay,
            clip, seed, threads, val_frac);
        if self.data.is_some() {
            c.data = self.data.clone();
        }
        if self.max_train.is_some() {
            c.max_train = self.max_train;
        }
        if self.channels.is_some() {
            c.channels = self.channels;
        }
        if self.image_size.is_some() {
            c.image_size = self.image_size;
        }
        Ok(c)
    }

    /// Trains a `T` run: a fresh one from the family's defaults, or the run
    /// `--resume` names from its own settings; `model` applies the family's
    /// flags.
    fn train<T: Trainer>(&self, model: impl Fn(&mut TrainConfig) -> Result<()>) -> Result<()> {
        let base = match &self.resume {
            Some(dir) => {
                // Unless told, a resumed run goes on to its own epoch
                // target on its own threads.
                let (family, stored, _) = run::resume_point(dir)?;
                if family != T::FAMILY {
                    return Err(family.refuse(
                        format_args!("--resume {}", dir.display()),
                        &[T::FAMILY],
                        &format!("`train {}`", T::FAMILY),
                    ));
                }
                stored
            }
            None => TrainConfig::for_family(T::FAMILY),
        };
        let mut cfg = self.config(base)?;
        model(&mut cfg)?;
        if self.resume.is_some() {
            cfg.data = cfg.data.as_deref().map(crate::data::canonical);
        }
        let opts = RunOptions {
            out: self
                .resume
                .clone()
                .or(self.output.clone())
                .context("-o RUN_DIR is required")?,
            resume: self.resume.is_some(),
            init_from: self.init_from.clone(),
            quiet: self.quiet || self.json,
            force: self.force,
        };
        let metrics = run::run::<T>(cfg, &opts)?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&metrics)?);
        } else {
            println!("run saved in {}", opts.out.display());
        }
        Ok(())
    }
}

/// `train vae`: the common flags and the `[vae]` table's.
#[derive(Debug, Args)]
pub struct VaeArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Condition on the class label (conditional VAE).
    #[arg(long)]
    conditional: bool,
    /// Latent size [default: 20].
    #[arg(long)]
    latent: Option<usize>,
    /// Hidden widths, comma-separated, encoder order [default: 400; 512,512 when conditional].
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set)]
    hidden: Option<Vec<usize>>,
    /// bernoulli or gaussian [default: bernoulli].
    #[arg(long)]
    likelihood: Option<String>,
    /// Hidden activation [default: relu].
    #[arg(long)]
    activation: Option<String>,
    /// How a step uses the threads: split each GEMM, or split the batch [default: gemm].
    #[arg(long, value_enum)]
    parallel: Option<Parallel>,
    /// Conditional only: the label also enters every decoder layer after the
    /// first, as a per-class bias; false puts it beside z only [default: true].
    #[arg(long)]
    label_every_layer: Option<bool>,
}

/// `train gan`: the common flags and the `[gan]` table's.
#[derive(Debug, Args)]
pub struct GanArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Condition both networks on the class label (projection discriminator).
    #[arg(long)]
    conditional: bool,
    /// Noise size [default: 64].
    #[arg(long)]
    latent: Option<usize>,
    /// The generator's widest channel count, after its dense layer [default: 128].
    #[arg(long)]
    g_width: Option<usize>,
    /// The discriminator's first channel count (its second is twice it) [default: 64].
    #[arg(long)]
    d_width: Option<usize>,
    /// A hidden dense layer of this width (LeakyReLU) in the discriminator
    /// between its convolutions and its score; 0 is none [default: 512].
    #[arg(long)]
    d_hidden: Option<usize>,
    /// ns (non-saturating) or hinge [default: ns].
    #[arg(long)]
    loss: Option<String>,
    /// The discriminator's learning rate [default: --lr].
    #[arg(long, allow_negative_numbers = true)]
    d_lr: Option<f32>,
    /// Decay of the moving average of the generator's weights that samples
    /// and exports use, warmed up over the first steps; 0 is off [default: 0.999].
    #[arg(long, allow_negative_numbers = true)]
    ema: Option<f32>,
    /// Spectral norm on the discriminator's weights, in place of its batch
    /// norm (SNGAN) [default: false].
    #[arg(long)]
    spectral_norm: Option<bool>,
}

/// `train text`: the common flags and the `[text]` table's.
#[derive(Debug, Args)]
pub struct TextArgs {
    #[command(flatten)]
    run: RunArgs,
    /// bytes (256 symbols, any text) or chars (the corpus's characters) [default: bytes].
    #[arg(long)]
    vocab: Option<String>,
    /// Transformer blocks [default: 4].
    #[arg(long)]
    layers: Option<usize>,
    /// Attention heads [default: 4].
    #[arg(long)]
    heads: Option<usize>,
    /// Key/value heads, dividing --heads (grouped-query attention: the
    /// device's KV cache shrinks by heads / kv-heads) [default: --heads].
    #[arg(long)]
    kv_heads: Option<usize>,
    /// Width [default: 128].
    #[arg(long)]
    dim: Option<usize>,
    /// Symbols of context, fixed at export [default: 64].
    #[arg(long)]
    context: Option<usize>,
    /// The MLP's width [default: 4 x dim].
    #[arg(long)]
    ffn: Option<usize>,
    /// Tie the output layer to the token embedding [default: true].
    #[arg(long)]
    tied: Option<bool>,
    /// Optimizer steps in all; a resumed run may raise it [default: 2000].
    #[arg(long)]
    iters: Option<u64>,
    /// Steps between validations [default: 250].
    #[arg(long)]
    eval_interval: Option<u64>,
    /// Symbols in the sample kept in the metrics after each validation (0: none) [default: 200].
    #[arg(long)]
    sample_tokens: Option<usize>,
    /// What those samples start from [default: a newline].
    #[arg(long)]
    sample_prompt: Option<String>,
}

/// `train audio`: the common flags and the `[audio]` table's.
#[derive(Debug, Args)]
pub struct AudioArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Condition on the clip's class (the folder, or the name up to its first `_`).
    #[arg(long)]
    conditional: bool,
    /// Width of the code and class embeddings [default: 64].
    #[arg(long)]
    embed: Option<usize>,
    /// The GRU's state [default: 128].
    #[arg(long)]
    hidden: Option<usize>,
    /// Codes per training window (steps of backpropagation through time) [default: 256].
    #[arg(long)]
    window: Option<usize>,
    /// Optimizer steps in all; a resumed run may raise it [default: 3000].
    #[arg(long)]
    iters: Option<u64>,
    /// Steps between validations [default: 500].
    #[arg(long)]
    eval_interval: Option<u64>,
    /// Trim leading and trailing silence this many dB below a clip's loudest 10 ms (0: off) [default: 0].
    #[arg(long)]
    trim_db: Option<f32>,
    /// Seconds of each sample drawn (as spectrograms) after every round [default: 0.75].
    #[arg(long)]
    sample_seconds: Option<f32>,
    /// Log-mel bands of each frame that the model follows [default: 0].
    #[arg(long)]
    feat_dim: Option<usize>,
    /// Order of the linear prediction the model reads, from those bands [default: 0].
    #[arg(long)]
    lpc_order: Option<usize>,
    /// The frame tier's GRU state, with --feat-dim [default: 128].
    #[arg(long)]
    frame_hidden: Option<usize>,
    /// The frame tier's input width [default: 32].
    #[arg(long)]
    frame_embed: Option<usize>,
    /// Frames of a clip (32 ms each) the frame tier trains on [default: 48].
    #[arg(long)]
    max_frames: Option<usize>,
}

/// `train classifier`: the common flags and the `[classifier]` table's.
#[derive(Debug, Args)]
pub struct ClassifierArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Channels of the two convolutions, comma-separated [default: 32,64].
    #[arg(long, value_delimiter = ',', action = clap::ArgAction::Set)]
    widths: Option<Vec<usize>>,
    /// Width of the feature layer the evaluation suite compares [default: 128].
    #[arg(long)]
    features: Option<usize>,
    /// Dropout before the last layer [default: 0.3].
    #[arg(long, allow_negative_numbers = true)]
    dropout: Option<f32>,
}

pub fn run(cmd: TrainCommand) -> Result<()> {
    match cmd {
        TrainCommand::Vae(a) => a.run.train::<VaeTrainer>(|c| {
            let t = c.vae.get_or_insert_with(Default::default);
            over!(t, a; latent, likelihood, activation, parallel, label_every_layer);
            if let Some(h) = &a.hidden {
                t.hidden = Some(h.clone());
            }
            t.conditional |= a.conditional;
            Ok(())
        }),
        TrainCommand::Classifier(a) => a.run.train::<ClassifierTrainer>(|c| {
            let t = c.classifier.get_or_insert_with(Default::default);
            over!(t, a; features, dropout);
            if let Some(w) = &a.widths {
                t.widths = w.as_slice().try_into().map_err(|_| {
                    anyhow::anyhow!(
                        "--widths: expected two comma-separated widths, found {}",
                        w.len()
                    )
                })?;
            }
            Ok(())
        }),
        TrainCommand::Text(a) => a.run.train::<TextTrainer>(|c| {
            let t = c.text.get_or_insert_with(Default::default);
            over!(t, a; vocab, layers, heads, dim, context, tied, iters, eval_interval,
                sample_tokens, sample_prompt);
            if a.ffn.is_some() {
                t.ffn = a.ffn;
            }
            if a.kv_heads.is_some() {
                t.kv_heads = a.kv_heads;
            }
            Ok(())
        }),
        TrainCommand::Audio(a) => a.run.train::<AudioTrainer>(|c| {
            let t = c.audio.get_or_insert_with(Default::default);
            over!(t, a; embed, hidden, window, iters, eval_interval, trim_db, sample_seconds, feat_dim, lpc_order, frame_hidden, frame_embed, max_frames);
            t.conditional |= a.conditional;
            Ok(())
        }),
        TrainCommand::Gan(a) => a.run.train::<GanTrainer>(|c| {
            let t = c.gan.get_or_insert_with(Default::default);
            over!(t, a; latent, g_width, d_width, d_hidden, loss, ema, spectral_norm);
            if a.d_lr.is_some() {
                t.d_lr = a.d_lr;
            }
            t.conditional |= a.conditional;
            Ok(())
        }),
    }
}
