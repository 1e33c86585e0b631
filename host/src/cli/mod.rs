//! Command-line parsing and dispatch.

mod data;
mod demo;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// Train small generative models, export them, and sample them on the edge.
#[derive(Debug, Parser)]
#[command(name = "edgegen", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect and preview datasets.
    Data {
        #[command(subcommand)]
        command: data::DataCommand,
    },
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
        Command::Demo(a) => demo::run(a),
    }
}
