//! `edgegen data info` and `edgegen data preview`.

use crate::data::{self, Dataset, info};
use crate::plot;
use anyhow::{Result, bail};
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// What a dataset holds: counts, shape or length, classes, statistics.
    Info {
        /// A dataset folder or file, or `builtin:mnist-sample`.
        path: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// A grid of images or a waveform plot as PNG; for text, the first lines.
    Preview {
        /// A dataset folder or file, or `builtin:mnist-sample`.
        path: String,
        /// The PNG to write (not needed for text).
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// How many images, clips or lines.
        #[arg(short, long)]
        n: Option<usize>,
    },
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Info { path, json } => {
            let d = data::load(&path)?;
            let summary = info::summarize(&path, &d);
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", info::render(&summary));
            }
            Ok(())
        }
        DataCommand::Preview { path, output, n } => preview(&path, output, n),
    }
}

/// Writes a preview of `path`; returns what was written, for messages.
pub fn preview(path: &str, output: Option<PathBuf>, n: Option<usize>) -> Result<()> {
    let d = data::load(path)?;
    if let Dataset::Text(t) = &d {
        for line in t.as_str().lines().take(n.unwrap_or(20)) {
            println!("{line}");
        }
        return Ok(());
    }
    let Some(out) = output else {
        bail!("preview of {path}: -o FILE.png is required for images and audio");
    };
    match &d {
        Dataset::Images(im) => {
            let n = n.unwrap_or(64).min(im.train.len());
            let imgs: Vec<&[u8]> = (0..n).map(|i| im.train.image(i)).collect();
            let scale = (112 / im.train.shape[1].max(1)).clamp(1, 4);
            let grid = plot::grid::image_grid(&imgs, im.train.shape, 8, scale);
            plot::save_png(&grid, &out)?;
            println!("wrote {} ({n} images)", out.display());
        }
        Dataset::Audio(a) => {
            let n = n.unwrap_or(4).min(a.clips.len());
            let waves: Vec<plot::wave::Wave> = a.clips[..n]
                .iter()
                .map(|c| plot::wave::Wave {
                    title: format!(
                        "{} ({} Hz, {:.2} s)",
                        c.path.file_name().unwrap_or_default().to_string_lossy(),
                        c.rate,
                        c.seconds()
                    ),
                    samples: &c.samples,
                    rate: c.rate,
                })
                .collect();
            plot::wave::waveform_png(&waves, &out)?;
            println!("wrote {} ({n} clips)", out.display());
        }
        Dataset::Text(_) => unreachable!("handled above"),
    }
    Ok(())
}
