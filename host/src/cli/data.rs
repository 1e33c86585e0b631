//! `edgegen data info` and `edgegen data preview`.

use crate::data::{self, Dataset, info};
use crate::plot;
use crate::provenance::Provenance;
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
        #[command(flatten)]
        shape: ShapeArgs,
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
        #[command(flatten)]
        shape: ShapeArgs,
    },
}

/// How images are brought to one shape, as `train` does it.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ShapeArgs {
    /// Bring every image to this many channels: 1 grey, 2 grey + alpha,
    /// 3 RGB, 4 RGBA [default: the count most files have].
    #[arg(long)]
    channels: Option<usize>,
    /// Resize every image to HxW pixels, such as 32x32.
    #[arg(long, value_parser = data::images::parse_size)]
    image_size: Option<[usize; 2]>,
}

impl ShapeArgs {
    fn shaping(&self) -> data::images::Shaping {
        data::images::Shaping {
            channels: self.channels,
            size: self.image_size,
        }
    }
}

/// Loads `path` and tells the user what loading changed.
fn load(path: &str, shape: &ShapeArgs) -> Result<Dataset> {
    let d = data::load_with(path, &shape.shaping())?;
    if let Dataset::Images(im) = &d {
        for n in &im.notes {
            eprintln!("note: {n}");
        }
    }
    Ok(d)
}

pub fn run(cmd: DataCommand) -> Result<()> {
    match cmd {
        DataCommand::Info { path, json, shape } => {
            let d = load(&path, &shape)?;
            let summary = info::summarize(&path, &d);
            if json {
                println!("{}", serde_json::to_string_pretty(&summary)?);
            } else {
                print!("{}", info::render(&summary));
            }
            Ok(())
        }
        DataCommand::Preview {
            path,
            output,
            n,
            shape,
        } => preview(&path, output, n, &shape),
    }
}

/// Writes a preview of `path`; returns what was written, for messages.
pub fn preview(
    path: &str,
    output: Option<PathBuf>,
    n: Option<usize>,
    shape: &ShapeArgs,
) -> Result<()> {
    let d = load(path, shape)?;
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
            let set = &im.train;
            let want = n.unwrap_or(64).max(1);
            let k = set.classes.len();
            let blank = vec![0u8; set.image_len()];
            // A few from each class, one row per class (a class with fewer
            // images gets a short row); the first ones of an unlabeled set.
            let (cells, shown, cols) = if let Some(per) = want.checked_div(k) {
                let per = per.max(1);
                let mut rows: Vec<Vec<&[u8]>> = vec![vec![]; k];
                for i in 0..set.len() {
                    let row = &mut rows[set.labels[i] as usize];
                    if row.len() < per {
                        row.push(set.image(i));
                    }
                }
                let shown = rows.iter().map(Vec::len).sum::<usize>();
                let cells: Vec<&[u8]> = rows
                    .into_iter()
                    .filter(|r| !r.is_empty())
                    .flat_map(|mut r| {
                        r.resize(per, &blank);
                        r
                    })
                    .collect();
                (cells, shown, per)
            } else {
                let n = want.min(set.len());
                ((0..n).map(|i| set.image(i)).collect(), n, 8)
            };
            let scale = (112 / set.shape[1].max(1)).clamp(1, 4);
            let grid = plot::grid::image_grid(&cells, set.shape, cols, scale);
            plot::save_png(&grid, &out, &Provenance::preview(shown))?;
            println!(
                "wrote {} ({shown} images{})",
                out.display(),
                if k > 0 {
                    format!(", up to {cols} from each of {k} classes, a row each")
                } else {
                    String::new()
                }
            );
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
            plot::wave::waveform_png(&waves, &out, &Provenance::preview(n))?;
            println!("wrote {} ({n} clips)", out.display());
        }
        Dataset::Text(_) => unreachable!("handled above"),
    }
    Ok(())
}
