//! Command-line parsing and dispatch.

mod bench;
mod bench_audio;
mod curves;
mod data;
mod demo;
mod demo_audio;
mod eval;
mod export;
mod latent;
mod sample;
mod sample_audio;
mod train;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Train small generative models, export them, and sample them on the edge.
#[derive(Debug, Parser)]
#[command(name = "edgegen", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Parsed once per process, so the size of its largest variant is moot.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and preview datasets.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
    /// Train a model.
    Train {
        #[command(subcommand)]
        command: train::TrainCommand,
    },
    /// Draw the training curves of runs side by side on one chart: edgegen
    /// runs, and the PyTorch twin's.
    Curves(curves::CurvesArgs),
    /// Evaluate a trained run on its test split; image models also by a
    /// classifier run (--classifier), side by side.
    Eval(eval::EvalArgs),
    /// Explore a VAE's latent space: interpolations and maps.
    Latent(latent::LatentArgs),
    /// Export a run as GGUF weights and/or an ONNX graph, or its weights as
    /// safetensors for the PyTorch twin.
    Export(export::ExportArgs),
    /// Make a run folder from weights trained elsewhere (the PyTorch twin):
    /// a safetensors file under edgegen's tensor names, and a run config.
    Import(export::ImportArgs),
    /// Check an exported decoder or encoder against ONNX Runtime, tract, the device runtime and the host.
    Validate(export::ValidateArgs),
    /// Sample a GGUF model with the device runtime: a PNG grid, text, or WAV clips.
    Sample(sample::SampleArgs),
    /// Show what a GGUF model holds and what it costs on a device.
    Inspect(sample::InspectArgs),
    /// Time a GGUF model here: the device runtime, and ONNX Runtime and tract on its ONNX export.
    Bench(bench::BenchArgs),
    /// Read the provenance tag of a file edgegen generated.
    Provenance(sample::ProvenanceArgs),
    /// The main job: train, export, validate and sample on the built-in data.
    Demo(demo::DemoArgs),
}

/// Parses the command line and runs it.
pub fn run() -> Result<()> {
    run_with(Cli::parse())
}

/// Runs an already parsed command line.
pub fn run_with(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Data { command } => data::run(command),
        Command::Train { command } => train::run(command),
        Command::Curves(a) => curves::run(a),
        Command::Eval(a) => eval::run(a),
        Command::Latent(a) => latent::run(a),
        Command::Export(a) => export::export(a),
        Command::Import(a) => export::import(a),
        Command::Validate(a) => export::validate(a),
        Command::Sample(a) => sample::sample(a),
        Command::Inspect(a) => sample::inspect(a),
        Command::Bench(a) => bench::run(a),
        Command::Provenance(a) => sample::provenance(a),
        Command::Demo(a) => demo::run(a),
    }
}
