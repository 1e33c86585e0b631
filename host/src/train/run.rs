//! A whole training run on disk: `RUN_DIR/` with `config.json`,
//! `checkpoint.safetensors`, `best.safetensors`, `metrics.jsonl`, `loss.png`,
//! `samples.png` and `recon.png`.

use super::checkpoint::{self, TrainState};
use super::config::TrainConfig;
use super::rundir::Target;
use super::{EpochMetrics, Trainer};
use crate::data;
use crate::models::Family;
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
    /// A classifier's test accuracy and confusion matrix.
    pub const TEST_JSON: &str = "test.json";
    /// The same confusion matrix, drawn.
    pub const CONFUSION_PNG: &str = "confusion.png";
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

/// The run in `dir`, for `--resume`: its family, its stored settings and
/// the epochs it has done. Settings given on the command line start from
/// these. A run killed before its first checkpoint has only its
/// `config.json`, and starts again from epoch 0.
pub fn resume_point(dir: &Path) -> Result<(Family, TrainConfig, usize)> {
    let path = dir.join(files::CHECKPOINT);
    if path.exists() {
        let m = checkpoint::read_meta(&path)?;
        return Ok((m.family, m.train, m.epoch));
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
    let family = crate::models::parse_family(
        v["family"].as_str().unwrap_or("vae"),
        format_args!("{}: field \"family\"", config.display()),
    )?;
    let cfg = TrainConfig::from_stored(
        v["train"].clone(),
        family,
        format_args!("{}: field \"train\"", config.display()),
    )?;
    Ok((family, cfg, 0))
}

/// Refuses a resume that would not continue the stored run as it was: a
/// setting other than [`TrainConfig::RESUMABLE`] that differs, or an epoch
/// target the run has already reached.
fn check_resume(
    dir: &Path,
    stored: &TrainConfig,
    done: usize,
    cfg: &TrainConfig,
    rounds: usize,
    length: (&str, String),
) -> Result<()> {
    let conflicts = TrainConfig::conflicts(stored, cfg);
    if !conflicts.is_empty() {
        let list: Vec<String> = conflicts
            .iter()
            .map(|(flag, was, now)| format!("{flag} (the run has {was}, given {now})"))
            .collect();
        bail!(
            "--resume {}: a resumed run keeps its settings; only its length (--epochs, --iters) and --threads may change. \
             Conflicting: {}. Start a new run with -o to change them",
            dir.display(),
            list.join("; ")
        );
    }
    if rounds <= done {
        let (unit, flag) = length;
        let name = flag.split(' ').next().unwrap_or_default().to_string();
        bail!(
            "--resume {}: nothing to do: the run has finished {done} {unit} and {flag}; \
             give a larger {name} to train on",
            dir.display(),
        );
    }
    Ok(())
}

/// Trains a `T` model as `cfg` says, writing everything into `opts.out`.
///
/// Each epoch's files are written in an order that a kill at any moment
/// cannot break: `metrics.jsonl`, then the pictures, then `best`, then the
/// checkpoint. Resuming truncates the metrics to the checkpoint's epoch, so
/// an epoch whose checkpoint never landed is trained again, and written
/// again, exactly once.
pub fn run<T: Trainer>(mut cfg: TrainConfig, opts: &RunOptions) -> Result<Vec<EpochMetrics>> {
    let out = &opts.out;
    let ckpt_path = out.join(files::CHECKPOINT);
    let family = cfg.family()?;
    if family != T::FAMILY {
        bail!(
            "the settings are for {} {family} run, this trains {} {}",
            family.article(),
            T::FAMILY.article(),
            T::FAMILY
        );
    }
    let resumed = if opts.resume {
        let (fam, stored, done) = resume_point(out)?;
        if fam != T::FAMILY {
            return Err(fam.refuse(
                format_args!("--resume {}", out.display()),
                &[T::FAMILY],
                &format!("`train {}`", T::FAMILY),
            ));
        }
        check_resume(out, &stored, done, &cfg, T::rounds(&cfg), T::length(&cfg))?;
        crate::fsx::remove_stale_temps(out);
        // No checkpoint yet: the run starts over, as it would have. A
        // checkpoint at epoch 0 (an imported run) is a start, and kept.
        if ckpt_path.exists() {
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
    cfg.data = Some(data::canonical(&data::resolve_or(
        cfg.data.as_deref(),
        T::BUILTIN_DATA,
    )));
    let threads = Threads(init_threads(cfg.threads));
    let data = T::load_data(&cfg)?;
    if !opts.quiet {
        for n in T::notes(&data) {
            eprintln!("note: {n}");
        }
    }
    let n_train = T::n_train(&data);
    if n_train == 0 {
        bail!(
            "{}: no training examples left after the split",
            cfg.data.as_deref().unwrap_or_default()
        );
    }
    let mut t = T::build(&cfg, &data, threads)?;
    let fresh = |t: &T| {
        let mut rng = Rng::new(cfg.seed);
        let (groups, buffers) = t.init(&mut rng);
        TrainState {
            groups,
            buffers,
            epoch: 0,
            step: 0,
            rng: rng.state(),
            best_val: f64::INFINITY,
        }
    };
    let state = match (resumed, &opts.init_from) {
        (Some(ck), _) => {
            let spec = t.spec();
            if ck.model != spec.model {
                bail!(
                    "{}: the checkpoint's model {} does not fit the data, which needs {}",
                    ckpt_path.display(),
                    ck.model,
                    spec.model
                );
            }
            // Only an import (a checkpoint at epoch and step 0) may lack
            // training-only buffers; a fresh start supplies them.
            let starts = (ck.epoch == 0 && ck.step == 0).then(|| fresh(&t).buffers);
            ck.state_from(&spec, starts.as_deref())?
        }
        (None, Some(from)) => {
            let path = from.join(files::BEST);
            let ck = checkpoint::load(&path)?;
            ck.expect(&[T::FAMILY], "--init-from")?;
            let spec = t.spec();
            if ck.model != spec.model {
                bail!(
                    "--init-from {}: its model is {}, but this run needs {}; fine-tuning keeps the architecture",
                    path.display(),
                    ck.model,
                    spec.model
                );
            }
            let mut st = fresh(&t);
            let from = ck.state_from(&spec, Some(&st.buffers))?;
            for (g, f) in st.groups.iter_mut().zip(from.groups) {
                g.params = f.params;
            }
            st.buffers = from.buffers;
            st
        }
        (None, None) => fresh(&t),
    };
    let mut target = if opts.resume {
        Target::existing(out)
    } else {
        Target::fresh(out, opts.force)?
    };
    let train_json = serde_json::to_string(&cfg)?;
    let mut config = t.describe(&data);
    config["family"] = T::FAMILY.name().into();
    config["train"] = serde_json::to_value(&cfg)?;
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

    let mut st = state;
    let rounds = T::rounds(&cfg);
    while st.epoch < rounds {
        let epoch = st.epoch + 1;
        let n_round = t.round_len(&st, &data);
        let bar = if opts.quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::new(n_round as u64)
        };
        bar.set_style(
            ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{rounds}"));
        let start = Instant::now();
        let mut last_draw = 0usize;
        let values = t.train_epoch(&mut st, &data, &mut |done, loss| {
            if done - last_draw >= 4096 || done == n_round {
                last_draw = done;
                bar.set_position(done as u64);
                bar.set_message(format!(
                    "loss {loss:.3}  {:.0}/s",
                    done as f64 / start.elapsed().as_secs_f64()
                ));
            }
        });
        let seconds = start.elapsed().as_secs_f64();
        bar.finish_and_clear();
        let vstart = Instant::now();
        let v = t.validate(&st, &data);
        let val_seconds = vstart.elapsed().as_secs_f64();
        st.epoch = epoch;
        let m = EpochMetrics {
            epoch,
            values: values
                .into_iter()
                .chain(v.values)
                .map(|(k, v)| (k.to_string(), v.into()))
                .chain(v.texts.into_iter().map(|(k, s)| (k.to_string(), s.into())))
                .collect(),
            seconds,
            samples_per_s: n_round as f64 / seconds,
            val_seconds,
            lr: t.lr(&st),
        };
        if !opts.quiet {
            let mut line = if T::CURVES.x == "epoch" {
                format!("epoch {epoch:>3}:")
            } else {
                format!("{} {:>5}:", T::CURVES.x, m.get(T::CURVES.x))
            };
            for (_, key) in T::CURVES.series {
                line += &format!("  {key} {:.3}", m.get(key));
            }
            println!("{line}  {seconds:.2} s  {:.0}/s", m.samples_per_s);
        }
        // Without a score, the latest state is the best.
        let improved = v.score.is_none_or(|s| s < st.best_val);
        if let Some(s) = v.score.filter(|_| improved) {
            st.best_val = s;
        }
        metrics.push(m);
        let dir = target.dir().to_path_buf();
        write_metrics(&dir.join(files::METRICS), &metrics)?;
        let ck = checkpoint::encode(&t.spec(), &st, &train_json)?;
        let from = Source::checkpoint(files::CHECKPOINT, &ck, epoch);
        t.pictures(&st, &data, &dir, &from)?;
        loss_png::<T>(&metrics, &dir.join(files::LOSS_PNG))?;
        if improved {
            crate::fsx::write_atomic(&dir.join(files::BEST), &ck)?;
        }
        crate::fsx::write_atomic(&dir.join(files::CHECKPOINT), &ck)?;
        target.commit()?;
    }
    Ok(metrics)
}

/// `loss.png`: the family's curves over the epochs so far.
fn loss_png<T: Trainer>(metrics: &[EpochMetrics], path: &Path) -> Result<()> {
    let c = T::CURVES;
    let series: Vec<plot::curves::Series> = c
        .series
        .iter()
        .map(|(label, key)| plot::curves::Series {
            label,
            points: metrics
                .iter()
                .map(|m| {
                    let x = if c.x == "epoch" {
                        m.epoch as f64
                    } else {
                        m.get(c.x)
                    };
                    (x, m.get(key))
                })
                .collect(),
        })
        .collect();
    plot::curves::line_chart_png(c.title, c.x, c.y, &series, path, &Provenance::plot())
}
