//! `edgegen curves`: the training curves of several runs on one chart, so
//! that runs can be compared side by side: two edgegen runs, or an edgegen
//! run and the PyTorch twin's (whose scripts write `metrics.jsonl` under
//! edgegen's metric names).

use crate::models::{Family, parse_family};
use crate::plot::curves::{Series, line_chart_png};
use crate::provenance::Provenance;
use crate::train::curves_of;
use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// `edgegen curves RUN... -o FILE.png`.
#[derive(Debug, Args)]
pub struct CurvesArgs {
    /// Run folders (edgegen's, or the twin's output folders), or their
    /// metrics.jsonl files.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// The metrics to draw, comma-separated [default: the family's training
    /// curves, from the first run's config.json].
    #[arg(long, value_delimiter = ',')]
    y: Vec<String>,
    /// The metric on the x axis [default: iter for text and audio, epoch
    /// otherwise].
    #[arg(long)]
    x: Option<String>,
    /// The PNG to write.
    #[arg(short, long)]
    output: PathBuf,
    /// Print the points drawn as JSON.
    #[arg(long)]
    json: bool,
}

/// One run's metrics: its name in the legend, where they came from, and
/// their rows.
struct Run {
    name: String,
    file: PathBuf,
    family: Option<Family>,
    rows: Vec<Map<String, Value>>,
}

fn read_run(path: &Path) -> Result<Run> {
    let (dir, file) = if path.is_dir() {
        (path.to_path_buf(), path.join("metrics.jsonl"))
    } else {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        (dir, path.to_path_buf())
    };
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "{}: cannot read; expected a run folder holding metrics.jsonl, or a metrics.jsonl file",
            file.display()
        )
    })?;
    let mut rows = vec![];
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(m)) => rows.push(m),
            _ => bail!(
                "{}: line {} is not a JSON object of metrics",
                file.display(),
                i + 1
            ),
        }
    }
    let config = dir.join("config.json");
    let family = match std::fs::read_to_string(&config) {
        Ok(t) => {
            let v: Value = serde_json::from_str(&t)
                .with_context(|| format!("{}: not JSON", config.display()))?;
            match v["family"].as_str() {
                Some(f) => Some(parse_family(
                    f,
                    format_args!("{}: field \"family\"", config.display()),
                )?),
                None => None,
            }
        }
        Err(_) => None,
    };
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| dir.display().to_string());
    Ok(Run {
        name,
        file,
        family,
        rows,
    })
}

/// The number named `key` in a row; edgegen's rows keep the round as
/// `epoch` like any other value.
fn number(row: &Map<String, Value>, key: &str) -> Option<f64> {
    row.get(key)
        .and_then(Value::as_f64)
        .filter(|v| v.is_finite())
}

/// The numeric keys the rows of `run` have, for error messages.
fn numeric_keys(run: &Run) -> String {
    let mut keys: Vec<&str> = run
        .rows
        .iter()
        .flat_map(|r| {
            r.iter()
                .filter(|(_, v)| v.is_number())
                .map(|(k, _)| k.as_str())
        })
        .collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        "none".into()
    } else {
        keys.join(", ")
    }
}

/// Runs the command.
pub fn run(a: CurvesArgs) -> Result<()> {
    let runs: Vec<Run> = a.runs.iter().map(|p| read_run(p)).collect::<Result<_>>()?;
    let family = runs.iter().find_map(|r| r.family);
    let defaults = family.map(curves_of);
    let ys: Vec<String> = if !a.y.is_empty() {
        a.y.clone()
    } else if let Some(c) = defaults {
        c.series.iter().map(|(_, k)| k.to_string()).collect()
    } else {
        bail!(
            "--y: no run names its family (config.json), so there are no default curves; name the metrics to draw, from: {}",
            numeric_keys(&runs[0])
        );
    };
    let x = match (&a.x, defaults) {
        (Some(x), _) => x.clone(),
        (None, Some(c)) => c.x.to_string(),
        (None, None) => "epoch".to_string(),
    };
    // One (label, points) per curve drawn.
    let mut curves: Vec<(String, Vec<(f64, f64)>)> = vec![];
    for run in &runs {
        let mut drawn = 0;
        for y in &ys {
            let points: Vec<(f64, f64)> = run
                .rows
                .iter()
                .filter_map(|r| Some((number(r, &x)?, number(r, y)?)))
                .collect();
            if points.is_empty() {
                continue;
            }
            drawn += 1;
            curves.push((format!("{}: {y}", run.name), points));
        }
        if drawn == 0 {
            bail!(
                "{}: no row has both {x} (--x) and any of {} (--y); its numeric metrics are: {}",
                run.file.display(),
                ys.join(", "),
                numeric_keys(run)
            );
        }
    }
    let drawn: Vec<Series> = curves
        .iter()
        .map(|(label, points)| Series {
            label,
            points: points.clone(),
        })
        .collect();
    let (title, y_desc) = match defaults {
        Some(c) if a.y.is_empty() => (c.title.to_string(), c.y),
        _ => (ys.join(", "), "value"),
    };
    line_chart_png(&title, &x, y_desc, &drawn, &a.output, &Provenance::plot())?;
    if a.json {
        let out: Vec<Value> = curves
            .iter()
            .map(|(l, p)| serde_json::json!({"label": l, "points": p}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"output": a.output, "x": x, "series": out})
        );
    } else {
        println!(
            "{}: {} curves of {} runs",
            a.output.display(),
            curves.len(),
            runs.len()
        );
    }
    Ok(())
}
