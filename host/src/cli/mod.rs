//! Command-line parsing and dispatch.

mod data;
mod demo;
mod latent;
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
    /// Evaluate a trained run on its test split.
    Eval(train::EvalArgs),
    /// Explore a VAE's latent space: interpolations and maps.
    Latent(latent::LatentArgs),
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
        Command::Eval(a) => train::eval(a),
        Command::Latent(a) => latent::run(a),
        Command::Demo(a) => demo::run(a),
    }
}
