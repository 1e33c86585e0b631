//! The main job of the README's first command. It runs every stage that
//! exists and says plainly which stages are not built yet.

use crate::data::{self, Dataset, info, split};
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
    /// Seed for splits (and, later, training).
    #[arg(long, default_value_t = 1)]
    seed: u64,
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
    println!("== train, export, validate, sample: not built yet");
    println!("   the VAE trainer comes with issue 3, export/runtime/validation with issue 4");
    Ok(())
}
