//! A whole training run on disk: `RUN_DIR/` with `config.json`,
//! `checkpoint.safetensors`, `best.safetensors`, `metrics.jsonl`, `loss.png`,
//! `samples.png` and `recon.png`.

use super::checkpoint;
use super::config::TrainConfig;
use super::{EpochMetrics, Images, VaeTrainer};
use crate::data::{self, Dataset, split};
use crate::eval;
use crate::models::vae::{Vae, VaeActs, VaeConfig};
use crate::nn::gemm::Threads;
use crate::plot;
use crate::rng::Rng;
use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where a run goes and what it starts from.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The run folder.
    pub out: PathBuf,
    /// Continue the run in `out` from its last checkpoint.
    pub resume: bool,
    /// Start from another run's best parameters (fine-tuning).
    pub init_from: Option<PathBuf>,
    /// No progress bar.
    pub quiet: bool,
}

/// The file names inside a run folder.
pub mod files {
    /// Latest state, for `--resume`.
    pub const CHECKPOINT: &str = "checkpoint.safetensors";
    /// Best state by validation loss.
    pub const BEST: &str = "best.safetensors";
    /// Training and model configuration.
    pub const CONFIG: &str = "config.json";
    /// One JSON line per epoch.
    pub const METRICS: &str = "metrics.jsonl";
}

/// Sets the global rayon pool (used by faer and the optimizer) to `n`
/// threads, 0 meaning all cores; returns the count in force.
pub fn init_threads(n: usize) -> usize {
    let n = if n == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        n
    };
    // A second call in the same process (tests) keeps the first pool.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .start_handler(|_| crate::nn::fastmath::flush_denormals())
        .build_global();
    crate::nn::fastmath::flush_denormals();
    n
}

/// The image splits a run trains, validates and tests on.
pub struct RunData {
    /// Training images.
    pub train: Images,
    /// Validation images (the test split when `val_frac` is 0).
    pub val: Images,
    /// Test images.
    pub test: Images,
    /// `[C, H, W]`.
    pub shape: [usize; 3],
    /// Class names.
    pub classes: Vec<String>,
}

/// Loads and splits the data a config names.
pub fn load_data(cfg: &TrainConfig) -> Result<RunData> {
    let path = data::resolve(cfg.data.as_deref());
    let Dataset::Images(im) = data::load(&path)? else {
        bail!("{path}: a VAE trains on images; this is another kind of data");
    };
    let s = split::split_images(&im, cfg.val_frac, 0.1, cfg.seed);
    let mut train = s.train;
    if let Some(max) = cfg.max_train {
        let keep: Vec<usize> = (0..train.len().min(max)).collect();
        train = train.subset(&keep);
    }
    if cfg.conditional && train.classes.is_empty() {
        bail!("{path}: --conditional needs class labels, and this dataset has none");
    }
    let test = Images::from_set(&s.test);
    let val = if s.val.is_empty() {
        test.clone()
    } else {
        Images::from_set(&s.val)
    };
    Ok(RunData {
        shape: train.shape,
        classes: train.classes.clone(),
        train: Images::from_set(&train),
        val,
        test,
    })
}

/// The model a config and its data imply.
pub fn model_config(cfg: &TrainConfig, d: &RunData) -> VaeConfig {
    VaeConfig {
        image_shape: d.shape,
        hidden: cfg.hidden.clone(),
        latent: cfg.latent,
        n_classes: if cfg.conditional { d.classes.len() } else { 0 },
        likelihood: cfg.likelihood.clone(),
        activation: cfg.activation.clone(),
    }
}

fn read_metrics(path: &Path) -> Result<Vec<EpochMetrics>> {
    if !path.exists() {
        return Ok(vec![]);
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read", path.display()))?;
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| {
                format!("{}: line {} is not a metrics record", path.display(), i + 1)
            })
        })
        .collect()
}

fn write_metrics(path: &Path, m: &[EpochMetrics]) -> Result<()> {
    let mut s = String::new();
    for r in m {
        s += &serde_json::to_string(r)?;
        s.push('\n');
    }
    crate::fsx::write_atomic(path, s.as_bytes())
}

/// Trains a VAE as `cfg` says, writing everything into `opts.out`.
pub fn run_vae(mut cfg: TrainConfig, opts: &RunOptions) -> Result<Vec<EpochMetrics>> {
    let out = &opts.out;
    let ckpt_path = out.join(files::CHECKPOINT);
    let resumed = if opts.resume {
        Some(checkpoint::load(&ckpt_path)?)
    } else {
        None
    };
    if let Some((_, ck)) = &resumed {
        // The run's own settings, except how long it goes on and on how many threads.
        let mut saved: TrainConfig = serde_json::from_str(&ck.train_json).with_context(|| {
            format!(
                "{}: metadata field \"train\" is not a training config",
                ckpt_path.display()
            )
        })?;
        saved.epochs = cfg.epochs.max(ck.state.epoch);
        saved.threads = cfg.threads;
        cfg = saved;
    }
    cfg.validate()?;
    let threads = init_threads(cfg.threads);
    let data = load_data(&cfg)?;
    let want = model_config(&cfg, &data);
    let (model, state) = match (resumed, &opts.init_from) {
        (Some((m, ck)), _) => {
            if m.cfg != want {
                bail!(
                    "{}: the checkpoint's model {:?} does not fit the data, which needs {:?}",
                    ckpt_path.display(),
                    m.cfg,
                    want
                );
            }
            (m, ck.state)
        }
        (None, Some(from)) => {
            let path = from.join(files::BEST);
            let (m, ck) = checkpoint::load(&path)?;
            if m.cfg != want {
                bail!(
                    "--init-from {}: its model is {:?}, but this run needs {:?}; fine-tuning keeps the architecture",
                    path.display(),
                    m.cfg,
                    want
                );
            }
            let mut st = VaeTrainer::fresh_state(&m, cfg.seed);
            st.params = ck.state.params;
            (m, st)
        }
        (None, None) => {
            let m = Vae::new(want)?;
            let st = VaeTrainer::fresh_state(&m, cfg.seed);
            (m, st)
        }
    };
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create run folder", out.display()))?;
    let train_json = serde_json::to_string(&cfg)?;
    let config = serde_json::json!({"train": cfg, "model": model.cfg, "classes": data.classes, "parameters": model.n_params()});
    crate::fsx::write_atomic(
        &out.join(files::CONFIG),
        serde_json::to_string_pretty(&config)?.as_bytes(),
    )?;
    let mut metrics = read_metrics(&out.join(files::METRICS))?;
    metrics.truncate(state.epoch);

    let th = Threads(threads);
    let n_train = data.train.len();
    let mut t = VaeTrainer::new(model, state, cfg.clone(), th, n_train);
    let val_seed = cfg.seed ^ 0x5EED_F7A1;
    while t.state.epoch < cfg.epochs {
        let epoch = t.state.epoch + 1;
        let bar = if opts.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(n_train as u64)
        };
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{}", cfg.epochs));
        let start = Instant::now();
        let mut last_draw = 0usize;
        let train_loss = t.train_epoch(&data.train, |done, loss| {
            if done - last_draw >= 4096 || done == n_train {
                last_draw = done;
                bar.set_position(done as u64);
                bar.set_message(format!(
                    "loss {loss:.2}  {:.0} img/s",
                    done as f64 / start.elapsed().as_secs_f64()
                ));
            }
        });
        let seconds = start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let vstart = Instant::now();
        let (val_loss, _, _) = eval::vae::elbo(&t.model, &t.state.params, &data.val, val_seed, th);
        let val_seconds = vstart.elapsed().as_secs_f64();
        t.state.epoch = epoch;
        let m = EpochMetrics {
            epoch,
            train_loss,
            val_loss,
            seconds,
            samples_per_s: n_train as f64 / seconds,
            val_seconds,
            lr: t.lr(),
        };
        if !opts.quiet {
            println!(
                "epoch {epoch:>3}: train {train_loss:.3}  val {val_loss:.3}  {seconds:.2} s  {:.0} img/s",
                m.samples_per_s
            );
        }
        let improved = val_loss < t.state.best_val;
        if improved {
            t.state.best_val = val_loss;
        }
        checkpoint::save(&ckpt_path, &t.model, &t.state, &train_json)?;
        if improved {
            checkpoint::save(&out.join(files::BEST), &t.model, &t.state, &train_json)?;
        }
        metrics.push(m);
        write_metrics(&out.join(files::METRICS), &metrics)?;
    }
    write_pictures(
        &t.model,
        &t.state.params,
        &data,
        &metrics,
        out,
        cfg.seed,
        th,
    )?;
    Ok(metrics)
}

/// Decodes `z` rows (with labels when conditional) into byte images.
pub fn decode_images(m: &Vae, p: &[f32], z: &[f32], labels: &[u32], th: Threads) -> Vec<Vec<u8>> {
    let d = m.cfg.input_dim();
    let px = m.decode_pixels(p, z, labels, th);
    px.chunks_exact(d)
        .map(|c| c.iter().map(|&v| (v * 255.0).round() as u8).collect())
        .collect()
}

/// `samples.png`, `recon.png` and `loss.png`.
pub fn write_pictures(
    m: &Vae,
    p: &[f32],
    data: &RunData,
    metrics: &[EpochMetrics],
    out: &Path,
    seed: u64,
    th: Threads,
) -> Result<()> {
    let (z, k) = (m.cfg.latent, m.cfg.n_classes);
    let mut rng = Rng::new(seed ^ 0x5A3B1E);
    // One row per class when conditional, else an 8 x 8 sheet.
    let (rows, cols) = if k > 0 { (k, 8) } else { (8, 8) };
    let zs: Vec<f32> = (0..rows * cols * z).map(|_| rng.normal()).collect();
    let labels: Vec<u32> = (0..rows * cols).map(|i| (i / cols) as u32).collect();
    let imgs = decode_images(m, p, &zs, &labels, th);
    let refs: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
    let scale = (56 / data.shape[1].max(1)).clamp(1, 4);
    plot::save_png(
        &plot::grid::image_grid(&refs, data.shape, cols, scale),
        &out.join("samples.png"),
    )?;

    // Inputs (odd rows) above their reconstructions from z = mu (even rows).
    let n = 16.min(data.test.len());
    let mut a = VaeActs::new(m, n.max(1));
    let d = data.test.d;
    a.x[..n * d].copy_from_slice(&data.test.x[..n * d]);
    a.labels[..n].copy_from_slice(&data.test.labels[..n]);
    a.eps.fill(0.0);
    m.forward(p, &mut a, n, false, th);
    let mut px = vec![0f32; n * d];
    m.to_pixels(&mut px, &a.out[..n * d]);
    let to_u8 = |v: &[f32]| {
        v.iter()
            .map(|&x| (x * 255.0).round() as u8)
            .collect::<Vec<u8>>()
    };
    let mut pair_rows: Vec<Vec<u8>> = vec![];
    for r in 0..n.div_ceil(8) {
        let idx: Vec<usize> = (r * 8..((r + 1) * 8).min(n)).collect();
        pair_rows.extend(idx.iter().map(|&i| to_u8(&a.x[i * d..(i + 1) * d])));
        pair_rows.extend(idx.iter().map(|&i| to_u8(&px[i * d..(i + 1) * d])));
    }
    let refs: Vec<&[u8]> = pair_rows.iter().map(|v| v.as_slice()).collect();
    plot::save_png(
        &plot::grid::image_grid(&refs, data.shape, 8, scale),
        &out.join("recon.png"),
    )?;

    let series = [
        plot::curves::Series {
            label: "train",
            points: metrics
                .iter()
                .map(|m| (m.epoch as f64, m.train_loss))
                .collect(),
        },
        plot::curves::Series {
            label: "validation",
            points: metrics
                .iter()
                .map(|m| (m.epoch as f64, m.val_loss))
                .collect(),
        },
    ];
    plot::curves::line_chart_png(
        "VAE loss",
        "epoch",
        "nats per image",
        &series,
        &out.join("loss.png"),
    )
}
