//! `edgegen export` and `edgegen validate`.

use crate::export::{self, Part, Precision};
use crate::models::Family;
use crate::train::checkpoint;
use crate::train::run::files;
use crate::train::vae;
use crate::validate;
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// A run folder from `edgegen train`.
    run: PathBuf,
    /// Write the GGUF weight file here.
    #[arg(long)]
    gguf: Option<PathBuf>,
    /// Write the ONNX graph here.
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// Write the weights here as safetensors, under edgegen's tensor names
    /// (f32, no optimizer state), for the PyTorch twin; the run's
    /// config.json describes them.
    #[arg(long)]
    safetensors: Option<PathBuf>,
    /// Weight storage.
    #[arg(long, value_enum, default_value = "f32")]
    precision: Precision,
    /// Which network.
    #[arg(long, value_enum, default_value = "decoder")]
    part: Part,
    /// Export the last checkpoint instead of the best.
    #[arg(long)]
    last: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The weights: a safetensors file under edgegen's tensor names (the
    /// PyTorch twin's checkpoint, or `export --safetensors`).
    weights: PathBuf,
    /// The run config describing them (a run folder's config.json:
    /// "family", "model", "train").
    #[arg(long)]
    config: PathBuf,
    /// The run folder to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace a run already in the output folder.
    #[arg(long)]
    force: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// `edgegen import`: a run folder from weights and a config.
pub fn import(a: ImportArgs) -> Result<()> {
    let r = crate::train::twin::import(&a.weights, &a.config, &a.output, a.force)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "imported {} ({} model, {} tensors, {} values) into {}",
            a.weights.display(),
            r.family,
            r.tensors,
            r.values,
            a.output.display()
        );
    }
    Ok(())
}

pub fn export(a: ExportArgs) -> Result<()> {
    if a.gguf.is_none() && a.onnx.is_none() && a.safetensors.is_none() {
        bail!("nothing to write: give --gguf FILE, --onnx FILE, --safetensors FILE or several");
    }
    let path = a.run.join(if a.last {
        files::CHECKPOINT
    } else {
        files::BEST
    });
    let ck = checkpoint::load(&path)?;
    if let Some(out) = &a.safetensors {
        let bytes = crate::train::twin::export(&ck)?;
        crate::fsx::write_atomic(out, &bytes)?;
        println!(
            "wrote {} ({} bytes, the {} weights of {}; its config: {})",
            out.display(),
            bytes.len(),
            ck.family.name(),
            path.display(),
            a.run.join(files::CONFIG).display()
        );
        if a.gguf.is_none() && a.onnx.is_none() {
            return Ok(());
        }
    }
    match ck.family {
        Family::Vae => export_vae(&a, &ck),
        Family::Gan => export_gan(&a, &ck),
        Family::Classifier => bail!(
            "{}: a classifier stays on the host (it scores models with `eval --classifier`); export takes generative models",
            path.display()
        ),
        Family::Text => export_text(&a, &ck),
        Family::Audio => export_audio(&a, &ck),
    }
}

/// A GAN's generator (its moving average, when the run keeps one), with
/// its batch norms folded in. `--part` is a VAE's choice.
fn export_gan(a: &ExportArgs, ck: &checkpoint::Checkpoint) -> Result<()> {
    if a.part != Part::Decoder {
        bail!("--part: a GAN exports its generator only; --part encoder is a VAE's");
    }
    let (m, st, ema) = crate::train::gan::load(ck, "`export`")?;
    let (gp, bufs) = crate::train::gan::sampling_generator(&m, &st, ema);
    let name = a
        .run
        .file_name()
        .map_or("gan".into(), |n| n.to_string_lossy().into_owned());
    if let Some(out) = &a.gguf {
        let bytes = export::gan::to_gguf(&m, &gp, &bufs, a.precision, &name)?;
        crate::fsx::write_atomic(out, &bytes)?;
        println!(
            "wrote {} ({} bytes, generator {:?}{})",
            out.display(),
            bytes.len(),
            a.precision,
            if ema { ", moving-average weights" } else { "" }
        );
    }
    if let Some(out) = &a.onnx {
        let bytes = export::onnx::gan_to_onnx(&m, &gp, &bufs, a.precision, &name)?;
        crate::fsx::write_atomic(out, &bytes)?;
        println!(
            "wrote {} ({} bytes, opset {})",
            out.display(),
            bytes.len(),
            export::onnx::OPSET
        );
    }
    Ok(())
}

fn export_vae(a: &ExportArgs, ck: &checkpoint::Checkpoint) -> Result<()> {
    let (m, st) = vae::load(ck, "`export`")?;
    let params = &st.groups[0].params;
    let name = a
        .run
        .file_name()
        .map_or("vae".into(), |n| n.to_string_lossy().into_owned());
    if let Some(out) = &a.gguf {
        let bytes = export::gguf::vae_to_gguf(&m, params, a.part, a.precision, &name)?;
        crate::fsx::write_atomic(out, &bytes)?;
        println!(
            "wrote {} ({} bytes, {:?} {:?})",
            out.display(),
            bytes.len(),
            a.part,
            a.precision
        );
    }
    if let Some(out) = &a.onnx {
        let bytes = export::onnx::vae_to_onnx(&m, params, a.part, a.precision, &name)?;
        crate::fsx::write_atomic(out, &bytes)?;
        println!(
            "wrote {} ({} bytes, opset {})",
            out.display(),
            bytes.len(),
            export::onnx::OPSET
        );
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The ONNX graph of a decoder or an encoder.
    onnx: PathBuf,
    /// The GGUF file of the same network.
    gguf: PathBuf,
    /// Random inputs to run: latents for a decoder, images for an encoder.
    #[arg(long, default_value_t = 1000)]
    n: usize,
    /// Seed of the inputs.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn validate(a: ValidateArgs) -> Result<()> {
    let read = |p: &PathBuf| {
        std::fs::read(p).map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", p.display()))
    };
    let (onnx, gguf) = (read(&a.onnx)?, read(&a.gguf)?);
    const MAX_N: usize = 1_000_000;
    if a.n == 0 || a.n > MAX_N {
        bail!(
            "--n: expected at most {MAX_N} inputs and at least 1, found {}",
            a.n
        );
    }
    let r = validate::validate(&onnx, &gguf, a.n, a.seed).map_err(|e| {
        anyhow::anyhow!(
            "validating {} against {}: {e:#}",
            a.onnx.display(),
            a.gguf.display()
        )
    })?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "{} {} {} inputs, {} weights, {} activations; engines: {}",
            r.family,
            r.part,
            r.n,
            r.precision,
            r.activations,
            r.engines.join(", ")
        );
        if let Some(t) = r.ties {
            let pct = |k: usize| 100.0 * k as f64 / t.values.max(1) as f64;
            println!(
                "int8 activations: {} quantized on the host, {} ({:.3}%) exactly on a rounding tie, {} ({:.3}%) within 2^-12 of one",
                t.values,
                t.exact,
                pct(t.exact),
                t.near,
                pct(t.near)
            );
        }
        println!(
            "{:<8} {:<17} {:<16} {:>12} {:>12} {:>10}",
            "output", "engine", "vs engine", "max abs", "mean abs", "tolerance"
        );
        for p in &r.pairs {
            println!(
                "{:<8} {:<17} {:<16} {:>12.3e} {:>12.3e} {:>10.0e} {}",
                p.output,
                p.a,
                p.b,
                p.max_abs,
                p.mean_abs,
                p.tolerance,
                match (p.ok, p.gating) {
                    (true, _) if p.max_abs <= p.tolerance => "ok".to_string(),
                    (true, _) => format!(
                        "ok: {} of {} inputs apart by rounding flips",
                        p.inputs_apart, r.n
                    ),
                    (false, true) => "FAIL".to_string(),
                    (false, false) => "over (an approximation, reported only)".to_string(),
                }
            );
        }
    }
    if !r.ok {
        bail!("validation failed: an error exceeds its tolerance");
    }
    Ok(())
}

/// A text model: its weights, and ONNX of one decode step with the KV
/// cache as explicit inputs and outputs.
fn export_text(a: &ExportArgs, ck: &checkpoint::Checkpoint) -> Result<()> {
    if a.part != Part::Decoder {
        bail!("--part: a text model exports as one network; --part encoder is a VAE's");
    }
    let (m, mc, st) = crate::train::text::load(ck, "`export`")?;
    let name = a
        .run
        .file_name()
        .map_or("text".into(), |n| n.to_string_lossy().into_owned());
    if let Some(out) = &a.gguf {
        let bytes = export::text::to_gguf(&m, &mc, &st.groups[0].params, a.precision, &name)?;
        crate::fsx::write_atomic(out, &bytes)?;
        println!(
            "wrote {} ({} bytes, text model {:?})",
            out.display(),
            bytes.len(),
            a.precision
        );
    }
    if let Some(out) = &a.onnx {
        let bytes = export::onnx::text_to_onnx(&m, &st.groups[0].params, a.precision, &name)?;
        crate::fsx::write_atomic(out, &bytes)?;
        println!(
            "wrote {} ({} bytes, one decode step, {:?} weights)",
            out.display(),
            bytes.len(),
            a.precision
        );
    }
    Ok(())
}

/// An audio model: its weights, and ONNX of one GRU step with the state
/// as an input and an output (of both tiers' steps for a two-tier model).
fn export_audio(a: &ExportArgs, ck: &checkpoint::Checkpoint) -> Result<()> {
    if a.part != Part::Decoder {
        bail!("--part: an audio model exports as one network; --part encoder is a VAE's");
    }
    let (m, mc, st) = crate::train::audio::load(ck, "`export`")?;
    let tier = crate::train::audio::frame_tier(&mc)?;
    let aw = export::audio::AudioWeights::new(&m, tier.as_ref(), &mc, &st.groups)?;
    let name = a
        .run
        .file_name()
        .map_or("audio".into(), |n| n.to_string_lossy().into_owned());
    if let Some(out) = &a.gguf {
        let bytes = export::audio::to_gguf(&aw, a.precision, &name)?;
        crate::fsx::write_atomic(out, &bytes)?;
        println!(
            "wrote {} ({} bytes, audio model {:?})",
            out.display(),
            bytes.len(),
            a.precision
        );
    }
    if let Some(out) = &a.onnx {
        let bytes = export::onnx::audio_to_onnx(&aw, a.precision, &name)?;
        crate::fsx::write_atomic(out, &bytes)?;
        println!(
            "wrote {} ({} bytes, one GRU step, {:?} weights)",
            out.display(),
            bytes.len(),
            a.precision
        );
    }
    Ok(())
}
