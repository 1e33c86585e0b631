//! A whole training run on disk: `RUN_DIR/` with `config.json`,
//! `checkpoint.safetensors`, `best.safetensors`, `metrics.jsonl`, `loss.png`,
//! `samples.png` and `recon.png`.

use super::checkpoint;
use super::config::TrainConfig;
use super::rundir::Target;
use super::{EpochMetrics, Images, VaeTrainer};
use crate::data::{self, Dataset, split};
use crate::eval;
use crate::models::vae::{Vae, VaeActs, VaeConfig};
use crate::nn::gemm::Threads;
use crate::plot;
use crate::provenance::{Provenance, Source};
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
    /// Replace a run already in `out` (only once the new run's first
    /// checkpoint is written).
    pub force: bool,
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
    /// The loss curves.
    pub const LOSS_PNG: &str = "loss.png";
    /// Samples from fixed noise.
    pub const SAMPLES_PNG: &str = "samples.png";
    /// Test images above their reconstructions.
    pub const RECON_PNG: &str = "recon.png";
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
    /// What loading did that the user should know (see [`data::images::ImageData::notes`]).
    pub notes: Vec<String>,
}

/// Loads and splits the data a config names.
pub fn load_data(cfg: &TrainConfig) -> Result<RunData> {
    let path = data::resolve(cfg.data.as_deref());
    let Dataset::Images(im) = data::load_with(&path, &cfg.shaping())? else {
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
        notes: im.notes,
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

/// The run in `dir`, for `--resume`: its stored settings and the epochs it
/// has done. Settings given on the command line start from these. A run
/// killed before its first checkpoint has only its `config.json`, and
/// starts again from epoch 0.
pub fn resume_point(dir: &Path) -> Result<(TrainConfig, usize)> {
    let path = dir.join(files::CHECKPOINT);
    if path.exists() {
        let m = checkpoint::read_meta(&path)?;
        let cfg = serde_json::from_str(&m.train_json).with_context(|| {
            format!(
                "{}: metadata field \"train\" is not a training config",
                path.display()
            )
        })?;
        return Ok((cfg, m.epoch));
    }
    let config = dir.join(files::CONFIG);
    if !config.exists() {
        bail!(
            "--resume {}: no run to continue here ({} is missing); start one with -o {}",
            dir.display(),
            files::CHECKPOINT,
            dir.display()
        );
    }
    let text = std::fs::read_to_string(&config)
        .with_context(|| format!("{}: cannot read", config.display()))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{}: not JSON", config.display()))?;
    let cfg = serde_json::from_value(v["train"].clone()).with_context(|| {
        format!(
            "{}: field \"train\" is not a training config",
            config.display()
        )
    })?;
    Ok((cfg, 0))
}

/// Refuses a resume that would not continue the stored run as it was: a
/// setting other than [`TrainConfig::RESUMABLE`] that differs, or an epoch
/// target the run has already reached.
fn check_resume(dir: &Path, stored: &TrainConfig, done: usize, cfg: &TrainConfig) -> Result<()> {
    let conflicts = TrainConfig::conflicts(stored, cfg);
    if !conflicts.is_empty() {
        let list: Vec<String> = conflicts
            .iter()
            .map(|(flag, was, now)| format!("{flag} (the run has {was}, given {now})"))
            .collect();
        bail!(
            "--resume {}: a resumed run keeps its settings; only --epochs and --threads may change. \
             Conflicting: {}. Start a new run with -o to change them",
            dir.display(),
            list.join("; ")
        );
    }
    if cfg.epochs <= done {
        bail!(
            "--resume {}: nothing to do: the run has finished {done} epochs and --epochs is {}; \
             give a larger --epochs to train on",
            dir.display(),
            cfg.epochs
        );
    }
    Ok(())
}

/// Trains a VAE as `cfg` says, writing everything into `opts.out`.
///
/// Each epoch's files are written in an order that a kill at any moment
/// cannot break: `metrics.jsonl`, then the pictures, then `best`, then the
/// checkpoint. Resuming truncates the metrics to the checkpoint's epoch, so
/// an epoch whose checkpoint never landed is trained again, and written
/// again, exactly once.
pub fn run_vae(mut cfg: TrainConfig, opts: &RunOptions) -> Result<Vec<EpochMetrics>> {
    let out = &opts.out;
    let ckpt_path = out.join(files::CHECKPOINT);
    let resumed = if opts.resume {
        let (stored, done) = resume_point(out)?;
        check_resume(out, &stored, done, &cfg)?;
        crate::fsx::remove_stale_temps(out);
        // No checkpoint yet: the run starts over, as it would have.
        if done > 0 {
            Some(checkpoint::load(&ckpt_path)?)
        } else {
            None
        }
    } else {
        None
    };
    cfg.validate()?;
    // The data path the run trains on is stored resolved, so that a resume
    // cannot pick up another EDGEGEN_DATA.
    cfg.data = Some(data::canonical(&data::resolve(cfg.data.as_deref())));
    let threads = init_threads(cfg.threads);
    let data = load_data(&cfg)?;
    if !opts.quiet {
        for n in &data.notes {
            eprintln!("note: {n}");
        }
    }
    if data.train.is_empty() {
        bail!(
            "{}: no training images left after the split",
            cfg.data.as_deref().unwrap_or_default()
        );
    }
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
    let mut target = if opts.resume {
        Target::existing(out)
    } else {
        Target::fresh(out, opts.force)?
    };
    let train_json = serde_json::to_string(&cfg)?;
    let config = serde_json::json!({"train": cfg, "model": model.cfg, "classes": data.classes, "parameters": model.n_params()});
    crate::fsx::write_atomic(
        &target.dir().join(files::CONFIG),
        serde_json::to_string_pretty(&config)?.as_bytes(),
    )?;
    let mut metrics = if opts.resume {
        read_metrics(&out.join(files::METRICS))?
    } else {
        vec![]
    };
    if metrics.len() < state.epoch {
        bail!(
            "{}: holds {} epochs, but the checkpoint has done {}; the folder was changed by hand",
            out.join(files::METRICS).display(),
            metrics.len(),
            state.epoch
        );
    }
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
        metrics.push(m);
        let dir = target.dir().to_path_buf();
        write_metrics(&dir.join(files::METRICS), &metrics)?;
        let ck = checkpoint::encode(&t.model, &t.state, &train_json)?;
        let from = Source::checkpoint(files::CHECKPOINT, &ck, epoch);
        write_pictures(
            &t.model,
            &t.state.params,
            &data,
            &metrics,
            &dir,
            cfg.seed,
            th,
            &from,
        )?;
        if improved {
            crate::fsx::write_atomic(&dir.join(files::BEST), &ck)?;
        }
        crate::fsx::write_atomic(&dir.join(files::CHECKPOINT), &ck)?;
        target.commit()?;
    }
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

/// `samples.png`, `recon.png` and `loss.png`, tagged with the checkpoint
/// `from` that holds the parameters `p`.
#[allow(clippy::too_many_arguments)]
pub fn write_pictures(
    m: &Vae,
    p: &[f32],
    data: &RunData,
    metrics: &[EpochMetrics],
    out: &Path,
    seed: u64,
    th: Threads,
    from: &Source,
) -> Result<()> {
    let (z, k) = (m.cfg.latent, m.cfg.n_classes);
    let noise_seed = seed ^ 0x5A3B1E;
    let mut rng = Rng::new(noise_seed);
    // One row per class when conditional, else an 8 x 8 sheet.
    let (rows, cols) = if k > 0 { (k, 8) } else { (8, 8) };
    let zs: Vec<f32> = (0..rows * cols * z).map(|_| rng.normal()).collect();
    let labels: Vec<u32> = (0..rows * cols).map(|i| (i / cols) as u32).collect();
    let imgs = decode_images(m, p, &zs, &labels, th);
    let refs: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
    let scale = (56 / data.shape[1].max(1)).clamp(1, 4);
    let mut tag = Provenance::samples(from, noise_seed, rows * cols);
    if k > 0 {
        tag = tag.with_row_labels((0..rows as u32).collect());
    }
    plot::save_png(
        &plot::grid::image_grid(&refs, data.shape, cols, scale),
        &out.join(files::SAMPLES_PNG),
        &tag,
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
        &out.join(files::RECON_PNG),
        &Provenance::reconstructions(from, n),
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
        &out.join(files::LOSS_PNG),
        &Provenance::plot(),
    )
}
