//! The main job of the README's first command. It runs every stage that
//! exists and says plainly which stages are not built yet.

use crate::data::{self, Dataset, info, split};
use crate::train::config::TrainConfig;
use crate::train::run::{RunOptions, run_vae};
use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Dataset path (default: `EDGEGEN_DATA`, else the built-in MNIST sample).
    #[arg(long)]
    data: Option<String>,
    /// Where to write outputs.
    #[arg(short, long, default_value = "out/demo")]
    output: PathBuf,
    /// Seed for splits and training.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Training epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
}

pub fn run(a: DemoArgs) -> Result<()> {
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
    let preview = a.output.join("data.png");
    super::data::preview(&path, Some(preview), Some(64))?;
    let run_dir = a.output.join("vae");
    println!(
        "== train: VAE 784-400-20 on {path}, {} epochs -> {}",
        a.epochs,
        run_dir.display()
    );
    let cfg = TrainConfig {
        data: Some(path.clone()),
        epochs: a.epochs,
        seed: a.seed,
        ..TrainConfig::default()
    };
    let m = run_vae(
        cfg,
        &RunOptions {
            out: run_dir.clone(),
            ..Default::default()
        },
    )?;
    let last = m.last().map(|e| e.val_loss).unwrap_or(f64::NAN);
    println!(
        "   validation loss {last:.2} nats/image; samples.png, recon.png and loss.png are in {}",
        run_dir.display()
    );
    println!(
        "== export, validate, sample: not built yet (issue 4: runtime, GGUF/ONNX export, validation)"
    );
    Ok(())
}
