//! The demo's audio stage: a small conditional two-tier GRU (a frame tier
//! drawing each 32 ms frame's log-mel bands, a GRU of samples following
//! them and their linear prediction) on the built-in FSDD sample, exported
//! at every precision, validated step by step across the four engines, and
//! sampled to a WAV file (with its spectrogram) on the device runtime.

use super::demo::DemoArgs;
use crate::data::audio::BUILTIN_FSDD;
use crate::export::{self, Precision};
use crate::train::audio::{self, AudioSettings, AudioTrainer};
use crate::train::config::TrainConfig;
use crate::validate;
use anyhow::{Result, bail};
use std::path::{Path, PathBuf};

/// Steps each validation runs.
const VALIDATE_STEPS: usize = 400;

/// Trains, exports, validates and samples; returns the WAV file written.
pub fn audio_stage(a: &DemoArgs, exp: &Path) -> Result<PathBuf> {
    let run_dir = a.output.join("audio");
    let settings = AudioSettings {
        conditional: true,
        embed: 32,
        hidden: 64,
        window: 128,
        feat_dim: 20,
        lpc_order: 16,
        frame_hidden: 64,
        frame_embed: 16,
        iters: a.audio_iters,
        eval_interval: a.audio_iters.div_ceil(3).max(1),
        ..AudioSettings::default()
    };
    println!(
        "\n== train: conditional two-tier GRU (embed {}, state {}; frames of {} bands by a GRU of state {}, order-{} prediction) over mu-law codes of {BUILTIN_FSDD}, {} steps -> {}",
        settings.embed,
        settings.hidden,
        settings.feat_dim,
        settings.frame_hidden,
        settings.lpc_order,
        a.audio_iters,
        run_dir.display()
    );
    let cfg = TrainConfig {
        data: Some(BUILTIN_FSDD.into()),
        seed: a.seed,
        batch: 16,
        audio: Some(settings),
        ..TrainConfig::for_family(crate::models::Family::Audio)
    };
    let ck = super::demo::train_run::<AudioTrainer>(cfg, &run_dir)?;
    let (m, mc, st) = audio::load(&ck, "the demo")?;
    let tier = audio::frame_tier(&mc)?;
    let aw = export::audio::AudioWeights::new(&m, tier.as_ref(), &mc, &st.groups)?;
    println!(
        "\n== export the audio model (GGUF, ONNX of one step of both tiers), validate it step by step, sample it"
    );
    println!(
        "per export: max |err| of the logits, states and frame outputs over every pair of ONNX Runtime, tract,"
    );
    println!(
        "runtime and host, over {VALIDATE_STEPS} steps (each engine carrying its own state; at q8_0a8 each stepping from the host's)."
    );
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
        let gguf = export::audio::to_gguf(&aw, prec, "demo")?;
        let onnx = export::onnx::audio_to_onnx(&aw, prec, "demo")?;
        crate::fsx::write_atomic(&exp.join(format!("audio-{tag}.gguf")), &gguf)?;
        crate::fsx::write_atomic(&exp.join(format!("audio-{tag}.onnx")), &onnx)?;
        let r = validate::validate(&onnx, &gguf, VALIDATE_STEPS, a.seed)?;
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
                "validation of the {tag} audio model failed: run `edgegen validate` on {} for the table",
                exp.display()
            );
        }
    }
    let model = exp.join("audio-q8_0.gguf");
    let out = a.output.join("audio-seven-q8_0.wav");
    let bytes = std::fs::read(&model)?;
    let dev = edgegen_runtime::models::audio::Audio::from_bytes(&bytes)
        .map_err(|e| anyhow::anyhow!("{}: {e}", model.display()))?;
    super::sample_audio::sample_audio(
        &dev,
        &bytes,
        &super::sample_audio::AudioSample {
            model: &model,
            n: 1,
            seconds: 1.0,
            frame_temperature: None,
            temperature: 1.0,
            seed: 7,
            label: Some(7),
            output: &out,
        },
    )?;
    println!(
        "\nsample (q8_0, the digit 7, at most 1 s: the frame tier ends it; temperature 1, seed 7): {} and its spectrogram {}",
        out.display(),
        out.with_extension("png").display()
    );
    Ok(out)
}
