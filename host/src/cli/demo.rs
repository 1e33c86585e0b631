//! The main job of the README's first command: data, training, export at
//! every precision, validation against ONNX Runtime and tract, and sampling
//! with the device runtime, on the built-in sample unless told otherwise.

use crate::data::{self, Dataset, info, split};
use crate::eval;
use crate::export::{self, Part, Precision};
use crate::nn::gemm::Threads;
use crate::train::checkpoint;
use crate::train::config::TrainConfig;
use crate::train::run::{self, RunOptions, files};
use crate::train::vae::{self, VaeTrainer};
use crate::validate;
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Dataset path (default: `EDGEGEN_DATA`, else the built-in MNIST sample).
    #[arg(long)]
    pub(super) data: Option<String>,
    /// Where to write outputs; a second demo replaces the first one's.
    #[arg(short, long, default_value = "out/demo")]
    pub(super) output: PathBuf,
    /// Seed for splits and training.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Training epochs.
    #[arg(long, default_value_t = 30)]
    epochs: usize,
    /// Latents per validation.
    #[arg(long, default_value_t = 500)]
    validate_n: usize,
    /// Epochs of the conditional GAN.
    #[arg(long, default_value_t = 8)]
    gan_epochs: usize,
    /// Steps of the text model.
    #[arg(long, default_value_t = 600)]
    text_iters: u64,
    /// Steps of the audio model.
    #[arg(long, default_value_t = 600)]
    pub(super) audio_iters: u64,
}

pub fn run(a: DemoArgs) -> Result<()> {
    // Said up front, not after the training: validation needs ONNX Runtime.
    let ort = validate::ort::find_library().map_err(|e| {
        anyhow::anyhow!(
            "the demo validates every export against ONNX Runtime, and cannot find it: {e:#}"
        )
    })?;
    println!(
        "== needs: ONNX Runtime ({}); tract and the runtime are built in",
        ort.display()
    );
    let path = data::resolve(a.data.as_deref());
    println!("== data: {path}");
    let d = data::load(&path)?;
    print!("{}", info::render(&info::summarize(&path, &d)));
    let Dataset::Images(im) = &d else {
        bail!("{path}: the demo trains a VAE and needs images, found another kind of data");
    };
    let s = split::split_images(im, 0.1, 0.1, a.seed);
    println!(
        "split    train {}, val {}, test {} (seed {})",
        s.train.len(),
        s.val.len(),
        s.test.len(),
        a.seed
    );
    super::data::preview(
        &path,
        Some(a.output.join("data.png")),
        Some(64),
        &Default::default(),
    )?;

    let run_dir = a.output.join("vae");
    println!(
        "\n== train: VAE 784-400-20, {} epochs -> {}",
        a.epochs,
        run_dir.display()
    );
    let cfg = TrainConfig {
        data: Some(path.clone()),
        epochs: a.epochs,
        seed: a.seed,
        ..TrainConfig::vae()
    };
    let ck = train_run::<VaeTrainer>(cfg.clone(), &run_dir)?;
    let (m, st) = vae::load(&ck, "the demo")?;
    let p = &st.groups[0].params;

    println!("\n== export the decoder (and the encoder), validate them, sample");
    let exp = a.output.join("export");
    let data = vae::load_images(&cfg, None)?;
    let th = Threads(run::init_threads(0));
    let base = eval::vae::elbo(&m, p, &data.test, 1, th).0;
    println!(
        "test ELBO of the trained model: {base:.3} nats/image. Per export: max |err| over every pair of"
    );
    println!(
        "ONNX Runtime, tract, runtime and host; the fast-math runtime against ONNX Runtime, for information."
    );
    println!(
        "{:<6} {:>10} {:>10} {:>12} {:>14} {:>15}",
        "", "GGUF B", "ONNX B", "max |err|", "test ELBO", "fast-math err"
    );
    for prec in [
        Precision::F32,
        Precision::F16,
        Precision::Q8_0,
        Precision::Q8_0A8,
    ] {
        let tag = format!("{prec:?}").to_lowercase();
        let gguf = export::gguf::vae_to_gguf(&m, p, Part::Decoder, prec, "demo")?;
        let onnx = export::onnx::vae_to_onnx(&m, p, Part::Decoder, prec, "demo")?;
        crate::fsx::write_atomic(&exp.join(format!("decoder-{tag}.gguf")), &gguf)?;
        crate::fsx::write_atomic(&exp.join(format!("decoder-{tag}.onnx")), &onnx)?;
        let r = validate::validate(&onnx, &gguf, a.validate_n, a.seed)?;
        let worst = r.worst_gating();
        let fast = r
            .pairs
            .iter()
            .filter(|p| !p.gating)
            .map(|p| p.max_abs)
            .fold(0f32, f32::max);
        // The test loss with this precision's decoder weights.
        let (mut mq, mut pq) = (m.clone(), p.clone());
        export::store_decoder(&mut mq, &mut pq, prec);
        let elbo = eval::vae::elbo(&mq, &pq, &data.test, 1, th).0;
        println!(
            "{tag:<6} {:>10} {:>10} {:>12.2e} {:>14.3} {:>15.2e}  {}",
            gguf.len(),
            onnx.len(),
            worst,
            elbo,
            fast,
            if r.ok { "valid" } else { "FAILED" }
        );
        if !r.ok {
            bail!(
                "validation of the {tag} decoder failed: run `edgegen validate` on {} for the table",
                exp.display()
            );
        }
    }
    // The encoder, which maps images into the latent space on a device.
    let gguf = export::gguf::vae_to_gguf(&m, p, Part::Encoder, Precision::Q8_0, "demo")?;
    let onnx = export::onnx::vae_to_onnx(&m, p, Part::Encoder, Precision::Q8_0, "demo")?;
    crate::fsx::write_atomic(&exp.join("encoder-q8_0.gguf"), &gguf)?;
    crate::fsx::write_atomic(&exp.join("encoder-q8_0.onnx"), &onnx)?;
    let r = validate::validate(&onnx, &gguf, a.validate_n, a.seed)?;
    let worst = r.worst_gating();
    println!(
        "encoder q8_0: {} B GGUF, (mu, logvar) of {} images agree to {worst:.2e} across the four engines: {}",
        gguf.len(),
        r.n,
        if r.ok { "valid" } else { "FAILED" }
    );
    if !r.ok {
        bail!(
            "validation of the encoder failed: run `edgegen validate` on {} for the table",
            exp.display()
        );
    }
    let grid = a.output.join("samples-q8_0.png");
    super::sample::sample_to(&exp.join("decoder-q8_0.gguf"), 64, 7, None, &grid)?;
    let gan_grid = gan_stage(&a, &path, &exp)?;
    let text = text_stage(&a, &exp)?;
    let wav = super::demo_audio::audio_stage(&a, &exp)?;
    println!(
        "\nall stages ran: {} holds the runs, the exports, the sample grids ({} and {}), the text sample ({}) and the audio sample ({})",
        a.output.display(),
        grid.display(),
        gan_grid.display(),
        text.display(),
        wav.display()
    );
    Ok(())
}

/// Trains a demo run into `run_dir` (the demo's folder is its own: a
/// second demo replaces the first demo's run, once its own first
/// checkpoint exists) and loads its best checkpoint.
pub(super) fn train_run<T: crate::train::Trainer>(
    cfg: TrainConfig,
    run_dir: &std::path::Path,
) -> Result<checkpoint::Checkpoint> {
    run::run::<T>(
        cfg,
        &RunOptions {
            out: run_dir.to_path_buf(),
            force: true,
            ..Default::default()
        },
    )?;
    checkpoint::load(&run_dir.join(files::BEST))
}

/// A small byte-level transformer on the built-in Shakespeare sample,
/// exported at every precision, checked step by step against the host, and
/// sampled on the runtime with its KV cache.
fn text_stage(a: &DemoArgs, exp: &std::path::Path) -> Result<PathBuf> {
    use crate::data::text::BUILTIN_SHAKESPEARE;
    use crate::train::text::{self, TextSettings, TextTrainer};
    let run_dir = a.output.join("text");
    println!(
        "\n== train: byte-level transformer (2 blocks, dim 64, context 64) on {BUILTIN_SHAKESPEARE}, {} steps -> {}",
        a.text_iters,
        run_dir.display()
    );
    let cfg = TrainConfig {
        data: Some(BUILTIN_SHAKESPEARE.into()),
        seed: a.seed,
        batch: 16,
        text: Some(TextSettings {
            layers: 2,
            dim: 64,
            iters: a.text_iters,
            eval_interval: a.text_iters.div_ceil(3).max(1),
            sample_tokens: 100,
            ..TextSettings::default()
        }),
        ..TrainConfig::for_family(crate::models::Family::Text)
    };
    let ck = train_run::<TextTrainer>(cfg, &run_dir)?;
    let (m, mc, st) = text::load(&ck, "the demo")?;
    let p = &st.groups[0].params;
    println!(
        "\n== export the text model (GGUF, ONNX of one decode step), validate it step by step, sample it"
    );
    println!(
        "per export: max |err| of the logits over every pair of ONNX Runtime, tract, runtime and host"
    );
    println!(
        "at each step of a context (each engine's cache carried; at q8_0a8 every engine on the host's cache,\nso that a code rounded apart does not carry); then the runtime's sliding window against the host\n(its relative errors; q8_0a8 passes on the mean: there each engine's cache carries its own rounding)."
    );
    println!(
        "Beside them, for information: the runtime with its KV cache in Q8_0 blocks against ONNX Runtime."
    );
    println!(
        "{:<6} {:>10} {:>10} {:>12} {:>12} {:>12} {:>12}",
        "", "GGUF B", "ONNX B", "max |err|", "slide max", "slide mean", "Q8_0 KV err"
    );
    for prec in [
        Precision::F32,
        Precision::F16,
        Precision::Q8_0,
        Precision::Q8_0A8,
    ] {
        let tag = format!("{prec:?}").to_lowercase();
        let gguf = export::text::to_gguf(&m, &mc, p, prec, "demo")?;
        let onnx = export::onnx::text_to_onnx(&m, p, prec, "demo")?;
        crate::fsx::write_atomic(&exp.join(format!("text-{tag}.gguf")), &gguf)?;
        crate::fsx::write_atomic(&exp.join(format!("text-{tag}.onnx")), &onnx)?;
        let r = validate::validate(&onnx, &gguf, m.cfg.context, a.seed)?;
        let worst = r.worst_gating();
        // Past the context, where the runtime slides its window.
        let slide =
            validate::text::runtime_vs_host(&m, p, prec, &gguf, 2 * m.cfg.context, None, a.seed)?;
        let ok = r.ok && slide.within(1e-4, prec.int8_activations());
        let q8 = r
            .pairs
            .iter()
            .filter(|p| !p.gating)
            .fold(0f32, |m, p| m.max(p.max_abs));
        println!(
            "{tag:<6} {:>10} {:>10} {:>12.2e} {:>12.2e} {:>12.2e} {:>12.2e}  {}",
            gguf.len(),
            onnx.len(),
            worst,
            slide.max_rel,
            slide.mean_rel,
            q8,
            if ok { "valid" } else { "FAILED" }
        );
        if !ok {
            bail!(
                "validation of the {tag} text model failed: run `edgegen validate` on {} for the table",
                exp.display()
            );
        }
    }
    let out = a.output.join("text-sample-q8_0.txt");
    println!("\nsample (q8_0, prompt \"ROMEO:\", temperature 0.8, top-k 40, seed 7):");
    let args = super::sample::text_args(&exp.join("text-q8_0.gguf"), "ROMEO:", 200, 7, &out);
    super::sample::sample(args)?;
    Ok(out)
}

/// The conditional GAN: trained briefly at half the reference widths (so
/// that the demo stays within its two minutes), exported at every
/// precision, validated, and sampled one row per class on the runtime.
fn gan_stage(a: &DemoArgs, data: &str, exp: &std::path::Path) -> Result<PathBuf> {
    use crate::train::gan::{self, GanSettings, GanTrainer};
    let run_dir = a.output.join("gan");
    println!(
        "\n== train: conditional DCGAN (G 64-wide, D 32-wide, batch 32), {} epochs -> {}",
        a.gan_epochs,
        run_dir.display()
    );
    let cfg = TrainConfig {
        data: Some(data.to_string()),
        epochs: a.gan_epochs,
        seed: a.seed,
        // Four times the steps of batch 128 on the 6,000 images, in about
        // the same time: 8 epochs of batch 128 left rows that were not
        // their classes (conditional accuracy 0.37, score 4.5, FD 582 by
        // `eval --classifier`); batch 32 gave 0.85, 8.6 and 176.
        batch: 32,
        gan: Some(GanSettings {
            conditional: true,
            g_width: 64,
            d_width: 32,
            ..GanSettings::default()
        }),
        ..TrainConfig::for_family(crate::models::Family::Gan)
    };
    let ck = train_run::<GanTrainer>(cfg, &run_dir)?;
    let (m, st, ema) = gan::load(&ck, "the demo")?;
    let (gp, bufs) = gan::sampling_generator(&m, &st, ema);
    println!("\n== export the generator, validate it, sample it");
    println!(
        "{:<6} {:>10} {:>10} {:>12}",
        "", "GGUF B", "ONNX B", "max |err|"
    );
    for prec in [
        Precision::F32,
        Precision::F16,
        Precision::Q8_0,
        Precision::Q8_0A8,
    ] {
        let tag = format!("{prec:?}").to_lowercase();
        let gguf = export::gan::to_gguf(&m, &gp, &bufs, prec, "demo")?;
        let onnx = export::onnx::gan_to_onnx(&m, &gp, &bufs, prec, "demo")?;
        crate::fsx::write_atomic(&exp.join(format!("generator-{tag}.gguf")), &gguf)?;
        crate::fsx::write_atomic(&exp.join(format!("generator-{tag}.onnx")), &onnx)?;
        let r = validate::validate(&onnx, &gguf, a.validate_n, a.seed)?;
        let worst = r.worst_gating();
        println!(
            "{tag:<6} {:>10} {:>10} {:>12.2e}  {}",
            gguf.len(),
            onnx.len(),
            worst,
            if r.ok { "valid" } else { "FAILED" }
        );
        if !r.ok {
            bail!(
                "validation of the {tag} generator failed: run `edgegen validate` on {} for the table",
                exp.display()
            );
        }
    }
    let grid = a.output.join("gan-samples-q8_0.png");
    super::sample::sample_to(&exp.join("generator-q8_0.gguf"), 80, 7, None, &grid)?;
    Ok(grid)
}
