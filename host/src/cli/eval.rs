//! `edgegen eval`: each family's own measures on its test split, and for
//! every image model, with `--classifier`, the evaluation suite.

use crate::data::inputs::ImageSplits;
use crate::eval::suite::{self, Scorer, SuiteReport};
use crate::eval::vae::VaeEval;
use crate::models::Family;
use crate::nn::gemm::Threads;
use crate::rng::Rng;
use crate::train::checkpoint::{self, Checkpoint};
use crate::train::classifier::{self, TestReport};
use crate::train::run::{self, files};
use crate::train::{gan, vae};
use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A run folder from `edgegen train`.
    run: PathBuf,
    /// A classifier run (`edgegen train classifier`) to score generated
    /// images with (classifier_score, fd_classifier, precision, recall and
    /// conditional_accuracy), or for an audio model, one trained on audio
    /// to hear generated clips with (conditional_accuracy).
    #[arg(long)]
    classifier: Option<PathBuf>,
    /// Images to generate for the suite [default: 10000], or audio clips
    /// [default: 100].
    #[arg(long)]
    n: Option<usize>,
    /// Audio models, with --classifier: seconds of each generated clip
    /// [default: 1].
    #[arg(long)]
    seconds: Option<f32>,
    /// Audio models, with --classifier: the sampling temperature
    /// [default: 1].
    #[arg(long)]
    temperature: Option<f32>,

    /// Audio models with a frame tier, with --classifier: how far drawn frames stray from their means, in sigmas [default: 0.3]
    #[arg(long)]
    frame_temperature: Option<f32>,
    /// Audio models, with --classifier: generate the clips with the device
    /// runtime, from the model exported at --precision (what a device
    /// plays), rather than with the host's model.
    #[arg(long)]
    runtime: bool,
    /// Dataset whose splits to use (default: the one the run trained on).
    #[arg(long)]
    data: Option<String>,
    /// Importance samples per image for a VAE's NLL estimate [default:
    /// 100].
    #[arg(long)]
    k: Option<usize>,
    /// Evaluate the last checkpoint instead of the best one.
    #[arg(long)]
    last: bool,
    /// Seed of the evaluation noise [default: 1].
    #[arg(long)]
    seed: Option<u64>,
    /// Threads (0 = all cores).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Evaluate a VAE with its decoder's weights, or a text or audio model
    /// with all of its matrices, as this precision stores them, and with
    /// q8_0a8 their inputs quantized to int8 too (what a device running
    /// that export computes); a GAN's samples are then drawn by the
    /// runtime from its export at this precision.
    #[arg(long, value_enum, default_value = "f32", visible_alias = "precision")]
    decoder_precision: crate::export::Precision,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Everything `eval` found, for `--json`.
#[derive(Debug, Serialize)]
struct Report {
    family: &'static str,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    vae: Option<VaeEval>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    classifier: Option<TestReport>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    suite: Option<SuiteReport>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    text: Option<TextEval>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    audio: Option<AudioEval>,
}

/// An audio model on its test clips (FSDD's takes 0 to 4; the held-out
/// clips for other data), beside the baselines on the same codes.
#[derive(Debug, Serialize)]
struct AudioEval {
    /// Which clips: `test` or `validation`.
    split: &'static str,
    /// Clips scored.
    clips: usize,
    /// Codes scored: all but each clip's first.
    samples: usize,
    /// Mean next-code cross-entropy, in bits. For a two-tier model, of the
    /// model of samples given each clip's own frames: not the likelihood
    /// of the clip alone, since its frames are computed from it.
    nll_bits_per_sample: f64,
    /// For a two-tier model: the frame tier's negative log-likelihood of
    /// the same clips' frames (a density: nats per frame, negative where
    /// it exceeds 1) and ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    frame_nats_per_frame: Option<f64>,
    /// The weights' storage the NLL was computed with.
    precision: crate::export::Precision,
    /// With `--classifier`: how the generated clips sound to it.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    heard: Option<crate::eval::audio::Heard>,
    /// The baselines of `eval::audio` on the same clips (every code).
    #[serde(flatten)]
    baselines: AudioBaselines,
}

/// [`crate::eval::audio::Baselines`] under the report's names.
#[derive(Debug, Serialize)]
struct AudioBaselines {
    baseline_uniform_bits: f64,
    baseline_unigram_bits: f64,
    baseline_lpc_bits: f64,
    baseline_lpc_laplace_scale: f64,
}

/// A text model on its held-out text.
#[derive(Debug, Serialize)]
struct TextEval {
    /// Symbols predicted (every held-out symbol but each class's first).
    val_symbols: usize,
    /// The UTF-8 bytes they stand for.
    val_bytes: usize,
    /// Mean next-symbol cross-entropy.
    val_loss_nats: f64,
    /// The same per byte of text, in bits: comparable across vocabularies.
    bits_per_byte: f64,
    /// The matrices' storage (`--decoder-precision`).
    precision: crate::export::Precision,
}

/// Most images the suite generates: its k-NN pass is quadratic.
const MAX_N: usize = 100_000;

impl EvalArgs {
    /// `--seed`, or 1.
    fn seed(&self) -> u64 {
        self.seed.unwrap_or(1)
    }
}

pub fn run(a: EvalArgs) -> Result<()> {
    let path = a.run.join(if a.last {
        files::CHECKPOINT
    } else {
        files::BEST
    });
    let ck = checkpoint::load(&path)?;
    if let Some(n) = a.n
        && !(2..=MAX_N).contains(&n)
    {
        bail!("--n: expected 2 to {MAX_N} images or clips, found {n}");
    }
    if a.k == Some(0) {
        bail!("--k: expected at least 1 importance sample");
    }
    // A flag that another family's evaluation reads would be ignored here:
    // say so rather than report numbers it did not change.
    use Family::{Audio, Gan, Vae};
    let only: [(&str, bool, &[Family]); 7] = [
        ("--k", a.k.is_some(), &[Vae]),
        ("--seconds", a.seconds.is_some(), &[Audio]),
        ("--temperature", a.temperature.is_some(), &[Audio]),
        (
            "--frame-temperature",
            a.frame_temperature.is_some(),
            &[Audio],
        ),
        ("--runtime", a.runtime, &[Audio]),
        ("--n", a.n.is_some(), &[Vae, Gan, Audio]),
        ("--seed", a.seed.is_some(), &[Vae, Gan, Audio]),
    ];
    for (flag, given, families) in only {
        if given {
            ck.family.expect(a.run.display(), families, flag)?;
        }
    }
    if a.decoder_precision != crate::export::Precision::F32 && ck.family == Family::Classifier {
        bail!(
            "--decoder-precision {:?}: a classifier run is evaluated at f32",
            a.decoder_precision,
        );
    }
    let th = Threads(run::init_threads(a.threads));
    let mut cfg = ck.train.clone();
    if a.data.is_some() {
        cfg.data = a.data.clone();
    }
    if matches!(ck.family, Family::Text | Family::Audio) {
        let report = if ck.family == Family::Text {
            eval_text(&a, &ck, &cfg, th)?
        } else {
            eval_audio(&a, &ck, &cfg, th)?
        };
        if a.json {
            println!("{}", serde_json::to_string_pretty(&report)?);
        } else {
            print_report(&report);
        }
        return Ok(());
    }
    // The other families train on images, split as the run split them (a
    // classifier's may be the log-mel images of clips).
    let data = if ck.family == Family::Classifier {
        <classifier::ClassifierTrainer as crate::train::Trainer>::load_data(&cfg)?
    } else {
        vae::load_images(&cfg, None)?
    };
    let report = match ck.family {
        Family::Vae => eval_vae(&a, &ck, &data, th)?,
        Family::Gan => eval_gan(&a, &ck, &data, th)?,
        Family::Classifier => eval_classifier(&a, &ck, &data, th)?,
        Family::Text | Family::Audio => unreachable!("sequences are evaluated above"),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    Ok(())
}

/// The suite for `pixels`, when `--classifier` was given.
fn suite_for(
    a: &EvalArgs,
    pixels: &[f32],
    labels: Option<&[u32]>,
    data: &ImageSplits,
    th: Threads,
) -> Result<Option<SuiteReport>> {
    let Some(dir) = &a.classifier else {
        return Ok(None);
    };
    let ck = checkpoint::load(&dir.join(files::BEST))?;
    let (m, p, b) = classifier::load(&ck, "--classifier")?;
    if m.cfg.log_mel.is_some() {
        bail!(
            "--classifier {}: an audio classifier (it hears log-mel features of clips); an image model needs one trained on images",
            dir.display()
        );
    }
    if m.cfg.image_shape != data.shape {
        bail!(
            "--classifier {}: it takes images of shape {:?}, and this run's are {:?}",
            dir.display(),
            m.cfg.image_shape,
            data.shape
        );
    }
    if let Some(l) = labels
        && l.iter().any(|&y| y as usize >= m.cfg.n_classes)
    {
        bail!(
            "--classifier {}: it knows {} classes, fewer than the model's labels",
            dir.display(),
            m.cfg.n_classes
        );
    }
    let s = Scorer {
        model: &m,
        params: &p,
        buffers: &b,
        path: ck.path.display().to_string(),
    };
    suite::score(&s, pixels, labels, &data.train, &data.test, th).map(Some)
}

fn eval_vae(a: &EvalArgs, ck: &Checkpoint, data: &ImageSplits, th: Threads) -> Result<Report> {
    let (mut model, st) = vae::load(ck, "`eval`")?;
    let cfg = ck.train.clone();
    if vae::model_config(&cfg, data)? != model.cfg {
        bail!(
            "{}: the model does not fit this data (image shape or classes differ)",
            ck.path.display()
        );
    }
    let mut params = st.groups[0].params.clone();
    crate::export::store_decoder(&mut model, &mut params, a.decoder_precision);
    let r = crate::eval::vae::evaluate(
        &model,
        &params,
        &data.test,
        a.k.unwrap_or(100),
        a.seed(),
        th,
    );
    let suite = if a.classifier.is_some() {
        let n = a.n.unwrap_or(10_000);
        let (z, k) = (model.cfg.latent, model.cfg.n_classes);
        let mut rng = Rng::new(a.seed() ^ 0x5A3B1E);
        let zs: Vec<f32> = (0..n * z).map(|_| rng.normal()).collect();
        let labels = suite::balanced_labels(n, k);
        // In chunks: a VAE's batch buffers for 10,000 rows are large.
        let mut px = Vec::with_capacity(n * model.cfg.input_dim());
        for (zc, lc) in zs.chunks(1000 * z).zip(labels.chunks(1000)) {
            px.extend(model.decode_pixels(&params, zc, lc, th));
        }
        suite_for(a, &px, (k > 0).then_some(&labels[..]), data, th)?
    } else {
        None
    };
    Ok(Report {
        family: "vae",
        vae: Some(r),
        classifier: None,
        suite,
        text: None,
        audio: None,
    })
}

fn eval_gan(a: &EvalArgs, ck: &Checkpoint, data: &ImageSplits, th: Threads) -> Result<Report> {
    if a.classifier.is_none() {
        bail!(
            "{}: a GAN has no likelihood to measure; give --classifier CLS_RUN (from `edgegen train classifier`) to score its samples",
            ck.path.display()
        );
    }
    let (m, st, ema) = gan::load(ck, "`eval`")?;
    if m.cfg.image_shape != data.shape {
        bail!(
            "{}: the model makes {:?} images, this data has {:?}",
            ck.path.display(),
            m.cfg.image_shape,
            data.shape
        );
    }
    let (zd, k, n) = (m.cfg.latent, m.cfg.n_classes, a.n.unwrap_or(10_000));
    let mut rng = Rng::new(a.seed() ^ 0x5A3B1E);
    let z: Vec<f32> = (0..n * zd).map(|_| rng.normal()).collect();
    let labels = suite::balanced_labels(n, k);
    let (gp, bufs) = gan::sampling_generator(&m, &st, ema);
    let px = if a.decoder_precision == crate::export::Precision::F32 {
        gan::generate(&m, &gp, &bufs, &z, &labels, th)
    } else {
        runtime_samples(&m, (&gp, &bufs), a.decoder_precision, &z, &labels)?
    };
    Ok(Report {
        family: "gan",
        vae: None,
        classifier: None,
        suite: suite_for(a, &px, (k > 0).then_some(&labels[..]), data, th)?,
        text: None,
        audio: None,
    })
}

/// The images the runtime draws from `z` and `labels` with the generator
/// exported at `prec` (its batch norms folded, as on a device): what
/// `--decoder-precision` scores for a GAN.
fn runtime_samples(
    m: &crate::models::gan::Gan,
    (gp, bufs): (&[f32], &[f32]),
    prec: crate::export::Precision,
    z: &[f32],
    labels: &[u32],
) -> Result<Vec<f32>> {
    use edgegen_runtime::models::gan::Generator;
    use rayon::prelude::*;
    let bytes = crate::export::gan::to_gguf(m, gp, bufs, prec, "eval")?;
    let g = Generator::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("the generator exported at {prec:?}: {e}"))?;
    let (zd, d) = (g.latent_dim(), g.output_len());
    let conditional = m.cfg.n_classes > 0;
    let mut px = vec![0f32; labels.len() * d];
    px.par_chunks_mut(d)
        .enumerate()
        .try_for_each_init(
            || vec![0f32; g.scratch_len()],
            |scratch, (i, out)| {
                let label = conditional.then_some(labels[i]);
                g.generate(&z[i * zd..(i + 1) * zd], label, scratch, out)
            },
        )
        .map_err(|e| anyhow::anyhow!("the runtime's generator: {e}"))?;
    Ok(px)
}

/// The test takes of an audio run (or its held-out clips when the data
/// has no takes), with the baselines on the same clips.
fn eval_audio(
    a: &EvalArgs,
    ck: &Checkpoint,
    cfg: &crate::train::config::TrainConfig,
    th: Threads,
) -> Result<Report> {
    use crate::train::audio::{self, AudioData};
    let (mut m, mc, st) = audio::load(ck, "`eval`")?;
    let data = AudioData::load(cfg)?;
    if data.classes != mc.classes {
        bail!(
            "{}: the model's classes {:?} are not this data's {:?}",
            ck.path.display(),
            mc.classes,
            data.classes
        );
    }
    let (split, clips) = if data.test.is_empty() {
        ("validation", &data.val)
    } else {
        ("test", &data.test)
    };
    let mut p = st.groups[0].params.clone();
    crate::export::audio::store(&m, &mut p, a.decoder_precision);
    m.set_int8_inputs(a.decoder_precision.int8_activations());
    let (bits, samples) = audio::nll(&m, &p, clips, th);
    // The frame tier as the file stores it, as the model of samples.
    let frame_tier = audio::frame_tier(&mc)?.map(|mut t| {
        t.set_int8_inputs(a.decoder_precision.int8_activations());
        t
    });
    let fp = st.groups.get(1).map(|g| {
        let mut fp = g.params.clone();
        if let Some(t) = &frame_tier {
            crate::export::audio::store_tier(t, &mut fp, a.decoder_precision);
        }
        fp
    });
    let tier = frame_tier.as_ref().zip(fp.as_deref());
    if a.runtime && a.classifier.is_none() {
        bail!("--runtime: the runtime's clips are heard by --classifier; give one");
    }
    let heard = match &a.classifier {
        None => None,
        Some(dir) => {
            let cck = checkpoint::load(&dir.join(files::BEST))?;
            let (cm, cp, cb) = classifier::load(&cck, "--classifier")?;
            let scorer = Scorer {
                model: &cm,
                params: &cp,
                buffers: &cb,
                path: cck.path.display().to_string(),
            };
            let (seconds, temperature) = (a.seconds.unwrap_or(1.0), a.temperature.unwrap_or(1.0));
            if !(seconds > 0.0 && seconds <= 60.0) {
                bail!("--seconds: expected more than 0 and at most 60, found {seconds}");
            }
            if !(temperature > 0.0 && temperature.is_finite()) {
                bail!("--temperature: expected a positive number, found {temperature}");
            }
            let frame_temperature = a
                .frame_temperature
                .unwrap_or(crate::train::audio::FRAME_TEMPERATURE);
            if !(0.0..=10.0).contains(&frame_temperature) {
                bail!("--frame-temperature: expected 0 to 10, found {frame_temperature}");
            }
            if a.frame_temperature.is_some() && mc.frames.is_none() {
                bail!(
                    "--frame-temperature: {} has no frame tier (train audio --feat-dim)",
                    ck.path.display()
                );
            }
            let g = crate::eval::audio::Generation {
                n: a.n.unwrap_or(100),
                seconds,
                temperature,
                frame_temperature,
                seed: a.seed(),
            };
            if a.runtime {
                let aw = crate::export::audio::AudioWeights::new(
                    &m,
                    frame_tier.as_ref(),
                    &mc,
                    &st.groups,
                )?;
                let bytes = crate::export::audio::to_gguf(&aw, a.decoder_precision, "eval")?;
                let dev = edgegen_runtime::models::audio::Audio::from_bytes(&bytes)
                    .map_err(|e| anyhow::anyhow!("the runtime, loading the export: {e}"))?;
                Some(crate::eval::audio::runtime_accuracy(&dev, &scorer, g, th)?)
            } else {
                Some(crate::eval::audio::conditional_accuracy(
                    &m, &p, tier, clips, &scorer, g, th,
                )?)
            }
        }
    };
    let bytes = |c: &[audio::Codes]| -> Vec<Vec<u8>> {
        c.iter()
            .map(|c| c.codes.iter().map(|&q| q as u8).collect())
            .collect()
    };
    let (train, test) = (bytes(&data.train), bytes(clips));
    let tr: Vec<&[u8]> = train.iter().map(|c| &c[..]).collect();
    let te: Vec<&[u8]> = test.iter().map(|c| &c[..]).collect();
    let b = crate::eval::audio::baselines(&tr, &te);
    Ok(Report {
        family: "audio",
        vae: None,
        classifier: None,
        suite: None,
        text: None,
        audio: Some(AudioEval {
            split,
            clips: clips.len(),
            samples,
            nll_bits_per_sample: bits,
            frame_nats_per_frame: tier.map(|(t, fp)| audio::frame_nats(t, fp, clips, th)),
            precision: a.decoder_precision,
            heard,
            baselines: AudioBaselines {
                baseline_uniform_bits: b.uniform_bits,
                baseline_unigram_bits: b.unigram_bits,
                baseline_lpc_bits: b.lpc_bits,
                baseline_lpc_laplace_scale: b.lpc_laplace_scale,
            },
        }),
    })
}

/// The held-out end of each text, split as the run split it (or of the
/// text `--data` names, which the model's vocabulary must cover).
fn eval_text(
    a: &EvalArgs,
    ck: &Checkpoint,
    cfg: &crate::train::config::TrainConfig,
    th: Threads,
) -> Result<Report> {
    if a.classifier.is_some() {
        bail!(
            "--classifier scores image models; {} is a text run",
            a.run.display()
        );
    }
    let (mut m, mc, st) = crate::train::text::load(ck, "`eval`")?;
    let data = crate::train::text::TextData::load(cfg)?;
    if data.vocab != mc.vocab() {
        bail!(
            "{}: the model's vocabulary ({}, {} symbols) is not this text's ({}, {} symbols)",
            ck.path.display(),
            mc.vocab,
            mc.vocab().len(),
            data.vocab.kind(),
            data.vocab.len()
        );
    }
    if data.classes != mc.classes {
        bail!(
            "{}: the model's classes {:?} are not this data's {:?}",
            ck.path.display(),
            mc.classes,
            data.classes
        );
    }
    let mut p = st.groups[0].params.clone();
    crate::export::text::store(&m, &mut p, a.decoder_precision);
    m.set_int8_inputs(a.decoder_precision.int8_activations());
    let mut acts = crate::models::transformer::Acts::new(&m, 16);
    let (nats, bytes) = crate::train::text::val_loss(&m, &p, &mut acts, &data.vocab, &data.val, th);
    let symbols: usize = data.val.iter().map(|s| s.len() - 1).sum();
    Ok(Report {
        family: "text",
        vae: None,
        classifier: None,
        suite: None,
        text: Some(TextEval {
            val_symbols: symbols,
            val_bytes: bytes,
            val_loss_nats: nats,
            bits_per_byte: nats * symbols as f64 / (bytes.max(1) as f64 * std::f64::consts::LN_2),
            precision: a.decoder_precision,
        }),
        audio: None,
    })
}

fn eval_classifier(
    a: &EvalArgs,
    ck: &Checkpoint,
    data: &ImageSplits,
    th: Threads,
) -> Result<Report> {
    if a.classifier.is_some() {
        bail!(
            "--classifier scores generative models; {} is a classifier run",
            a.run.display()
        );
    }
    let (m, p, b) = classifier::load(ck, "`eval`")?;
    if m.cfg.image_shape != data.shape {
        bail!(
            "{}: the classifier takes {:?} images, this data has {:?}",
            ck.path.display(),
            m.cfg.image_shape,
            data.shape
        );
    }
    let mut acts = crate::models::classifier::ClassifierActs::new(&m, 256);
    let (loss, acc, confusion) = classifier::evaluate(&m, &p, &b, &data.test, &mut acts, th);
    Ok(Report {
        family: "classifier",
        vae: None,
        classifier: Some(TestReport {
            epoch: ck.epoch,
            n: data.test.len(),
            test_accuracy: acc,
            test_loss: loss,
            classes: data.classes.clone(),
            confusion,
        }),
        suite: None,
        text: None,
        audio: None,
    })
}

fn print_report(r: &Report) {
    if let Some(t) = &r.audio {
        println!(
            "{} clips          {} ({} samples)",
            t.split, t.clips, t.samples
        );
        println!(
            "nll_bits_per_sample {:.4} ({:?} weights)",
            t.nll_bits_per_sample, t.precision
        );
        if let Some(f) = t.frame_nats_per_frame {
            println!(
                "                    given each clip's own frames; the frame tier's NLL of them {f:.3} nats per frame"
            );
        }
        let b = &t.baselines;
        println!(
            "baselines          uniform {:.2}, unigram {:.4}, LPC-{} {:.4} bits per sample",
            b.baseline_uniform_bits,
            b.baseline_unigram_bits,
            crate::eval::audio::LPC_ORDER,
            b.baseline_lpc_bits
        );
        if let Some(h) = &t.heard {
            println!(
                "conditional_accuracy {:.4} ({} clips generated by the {}, of {} s at most, {:.2} s on average, at temperature {}, heard by {})",
                h.conditional_accuracy,
                h.generated_clips,
                h.generated_by,
                h.seconds,
                h.mean_seconds,
                h.temperature,
                h.classifier
            );
            if let (Some(r), Some(ft)) = (h.resynthesis_accuracy, h.frame_temperature) {
                println!(
                    "                     frames drawn at temperature {ft}; the test clips resynthesized from their own frames: {r:.4}"
                );
            }
        }
        return;
    }
    if let Some(t) = &r.text {
        println!(
            "held-out symbols   {} ({} bytes)",
            t.val_symbols, t.val_bytes
        );
        println!(
            "val_loss_nats      {:.4} per symbol ({:?} matrices)",
            t.val_loss_nats, t.precision
        );
        println!("bits_per_byte      {:.4}", t.bits_per_byte);
        return;
    }
    if let Some(v) = &r.vae {
        println!("test images        {}", v.n);
        println!(
            "test_loss_nats     {:.3}  (reconstruction {:.3} + KL {:.3})",
            v.test_loss_nats, v.test_rec_nats, v.test_kl_nats
        );
        println!(
            "iwae_nll_nats      {:.3}  (k = {})",
            v.iwae_nll_nats, v.iwae_k
        );
        println!(
            "recon_mse          {:.5} per pixel, {:.3} nats per image at z = mu",
            v.recon_mse, v.recon_nats_at_mu
        );
    }
    if let Some(c) = &r.classifier {
        println!("test images        {}", c.n);
        println!("test_accuracy      {:.4}", c.test_accuracy);
        println!("test_loss          {:.4} nats", c.test_loss);
    }
    match &r.suite {
        Some(s) => {
            println!("generated images   {} (scored by {})", s.n, s.classifier);
            println!(
                "classifier_score   {:.3}  (real test images: {:.3}; classifier accuracy {:.4})",
                s.classifier_score, s.real_test_score, s.classifier_test_accuracy
            );
            println!(
                "fd_classifier      {:.3}  (fd_real_baseline {:.3}, ratio {:.1})",
                s.fd_classifier,
                s.fd_real_baseline,
                s.fd_classifier / s.fd_real_baseline.max(1e-12)
            );
            println!("precision          {:.4}  (k = {})", s.precision, s.k);
            println!("recall             {:.4}", s.recall);
            match s.conditional_accuracy {
                Some(c) => println!("conditional_acc.   {c:.4}"),
                None => println!("conditional_acc.   n/a (an unconditional model)"),
            }
            let shares: Vec<String> = s
                .class_shares
                .iter()
                .map(|v| format!("{:.1}", 100.0 * v))
                .collect();
            println!("class shares, %    {}", shares.join(" "));
        }
        None if r.family != "classifier" => {
            println!("classifier_score, fd_classifier, precision, recall, conditional_accuracy:");
            println!("                   give --classifier CLS_RUN (edgegen train classifier)");
        }
        None => {}
    }
}
