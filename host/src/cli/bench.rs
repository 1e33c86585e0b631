//! `edgegen bench`: how fast a GGUF model samples here, through the device
//! runtime and, given the ONNX export, through ONNX Runtime and tract, side
//! by side in one run; with the time it takes just to read the weights.

use crate::bench::{ReadFloor, Timing, interleaved_with};
use crate::validate::signature;
use crate::validate::{ort::OrtModel, tract::TractModel};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use edgegen_format::Gguf;
use edgegen_runtime::kernels;
use edgegen_runtime::models::Model;
use edgegen_runtime::sample::Rng;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::hint::black_box;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A GGUF model file (a VAE decoder or encoder, or a GAN generator).
    model: PathBuf,
    /// The same model's ONNX export: also time ONNX Runtime and tract.
    #[arg(long)]
    onnx: Option<PathBuf>,
    /// Calls per engine per round.
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    /// Rounds; every figure is a median over them.
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct EngineRow {
    engine: String,
    /// Median microseconds per call.
    us: f64,
    /// Median of the runtime's time over this engine's, per round: below
    /// 1, the runtime is faster.
    runtime_over_engine: f64,
    /// Floating-point operations per second at that time (2 per multiply-add).
    gflops: f64,
}

/// One core's measured peak, for compute-bound models.
#[derive(Debug, Serialize)]
struct Peak {
    isa: &'static str,
    gflops: f64,
    /// The runtime's share of it.
    runtime_fraction: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    model: String,
    weight_bytes: usize,
    isa: String,
    batch: usize,
    threads: usize,
    calls: usize,
    rounds: usize,
    engines: Vec<EngineRow>,
    /// Engines that could not run, and why.
    skipped: Vec<String>,
    read_floor_us: f64,
    runtime_over_floor: f64,
    /// Floating-point operations per call (2 per multiply-add).
    flops_per_call: usize,
    /// One core's f32 FMA peak, measured before the rounds.
    fma_peak: Option<Peak>,
}

pub fn run(a: BenchArgs) -> Result<()> {
    if a.calls == 0 || a.rounds == 0 {
        bail!("--calls and --rounds: expected at least 1");
    }
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("{}: cannot read", a.model.display()))?;
    let model = Model::from_gguf(&bytes).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    let mut rng = Rng::new(1);
    // A decoder takes a latent, an encoder an image; each with label 0
    // when conditional. `out` holds pixels, or mu then logvar.
    let (encoder, input, weight_bytes, out_len, k, macs) = match &model {
        Model::VaeDecoder(d) => {
            let z: Vec<f32> = (0..d.latent_dim()).map(|_| rng.normal()).collect();
            let n = (d.output_len(), d.hp.n_classes, d.macs());
            (false, z, d.weight_bytes(), n.0, n.1, n.2)
        }
        Model::VaeEncoder(e) => {
            let x: Vec<f32> = (0..e.input_len()).map(|_| rng.uniform()).collect();
            let n = (2 * e.latent_dim(), e.hp.n_classes, e.macs());
            (true, x, e.weight_bytes(), n.0, n.1, n.2)
        }
        Model::Generator(g) => {
            let z: Vec<f32> = (0..g.latent_dim()).map(|_| rng.normal()).collect();
            let n = (g.output_len(), g.hp.n_classes, g.macs());
            (false, z, g.weight_bytes(), n.0, n.1, n.2)
        }
        _ => bail!(
            "{}: bench knows VAE models and GAN generators so far",
            a.model.display()
        ),
    };
    let label = (k > 0).then_some(0u32);
    // A generator runs fastest with scratch for a whole plane per product.
    let scratch_len = match &model {
        Model::Generator(g) => g.scratch_len_fast(),
        m => m.scratch_len(),
    };
    let mut scratch = vec![0f32; scratch_len];
    let mut out = vec![0f32; out_len];
    let mut runtime = || {
        match &model {
            Model::VaeDecoder(d) => d.decode(black_box(&input), label, &mut scratch, &mut out),
            Model::VaeEncoder(e) => {
                let (mu, logvar) = out.split_at_mut(out_len / 2);
                e.encode(black_box(&input), label, &mut scratch, mu, logvar)
            }
            Model::Generator(g) => g.generate(black_box(&input), label, &mut scratch, &mut out),
            _ => unreachable!("refused above"),
        }
        .expect("sizes checked above")
    };
    // Measured first, on a core the rounds have not yet warmed.
    let peak = crate::bench::fma_peak_gflops();
    let mut names = vec!["edgegen-runtime".to_string()];
    let mut skipped: Vec<String> = vec![];
    // The read floor runs in the same rounds as the engines, as the last.
    let floor = ReadFloor::new(weight_bytes);
    let bar = if a.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(a.rounds as u64)
    };
    bar.set_style(
        ProgressStyle::with_template("timing: round {pos}/{len} [{bar:30}] {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let mut progress = |r: usize| bar.set_position(r as u64);
    let mut timings = match &a.onnx {
        None => interleaved_with(
            &mut [&mut runtime, &mut || floor.read()],
            a.calls,
            a.rounds,
            &mut progress,
        ),
        Some(p) => {
            let onnx = std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
            // The two files must be the same network, or the times compare
            // different work: checked before any engine runs.
            let g = Gguf::parse(&bytes).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
            signature::check(&onnx, &g)
                .map_err(|e| anyhow!("{} and {}: {e:#}", p.display(), a.model.display()))?;
            let labels: Vec<i64> = label.map(i64::from).into_iter().collect();
            let (first, outputs): (&str, &[&str]) = if encoder {
                ("x", &["mu", "logvar"])
            } else {
                ("z", &["x"])
            };
            let inputs = crate::validate::vae::inputs(first, input.clone(), input.len(), &labels);
            let inputs = &inputs;
            // Without ONNX Runtime's library the other engines still run.
            let mut ort = match OrtModel::new(&onnx) {
                Ok(m) => Some(m),
                Err(e) => {
                    skipped.push(format!("onnxruntime ({e:#})"));
                    None
                }
            };
            let have_ort = ort.is_some();
            let ort_call = |o: &mut OrtModel| o.run(inputs, outputs);
            if let Some(o) = ort.as_mut() {
                ort_call(o).map_err(|e| anyhow!("{}: {e:#}", p.display()))?;
            }
            let tract =
                TractModel::new(&onnx, inputs).map_err(|e| anyhow!("{}: {e:#}", p.display()))?;
            let mut ort_engine = || {
                if let Some(o) = ort.as_mut() {
                    drop(black_box(ort_call(o).expect("ran once")));
                }
            };
            let mut tract_engine = || drop(black_box(tract.run(inputs).expect("planned")));
            let mut floor_engine = || floor.read();
            let mut engines: Vec<&mut dyn FnMut()> = vec![&mut runtime];
            if have_ort {
                names.push("onnxruntime".into());
                engines.push(&mut ort_engine);
            }
            names.push("tract".into());
            engines.push(&mut tract_engine);
            engines.push(&mut floor_engine);
            interleaved_with(&mut engines, a.calls, a.rounds, &mut progress)
        }
    };
    bar.finish_and_clear();
    let floor = timings.pop().expect("the floor ran last");
    let flops = 2 * macs;
    let gflops = |us: f64| flops as f64 / us / 1e3;
    let runtime_gflops = gflops(timings[0].us);
    let r = Report {
        flops_per_call: flops,
        fma_peak: peak.map(|(isa, g)| Peak {
            isa,
            gflops: g,
            runtime_fraction: runtime_gflops / g,
        }),
        model: a.model.display().to_string(),
        weight_bytes,
        isa: format!("{:?}", kernels::isa()),
        batch: 1,
        threads: 1,
        calls: a.calls,
        rounds: a.rounds,
        runtime_over_floor: floor.first_over_this,
        engines: names
            .into_iter()
            .zip(timings)
            .map(|(engine, t): (String, Timing)| EngineRow {
                engine,
                us: t.us,
                runtime_over_engine: t.first_over_this,
                gflops: gflops(t.us),
            })
            .collect(),
        read_floor_us: floor.us,
        skipped,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    println!(
        "{}: {} bytes of weights; batch 1, 1 thread, kernels {}; medians of {} rounds of {} calls",
        r.model, r.weight_bytes, r.isa, r.rounds, r.calls
    );
    println!(
        "{:<16} {:>10} {:>16} {:>9}",
        "engine", "µs/call", "runtime/engine", "GFLOP/s"
    );
    for e in &r.engines {
        println!(
            "{:<16} {:>10.2} {:>15.2}x {:>9.1}",
            e.engine, e.us, e.runtime_over_engine, e.gflops
        );
    }
    println!(
        "{:<16} {:>10.2} {:>15.2}x   (reading the weights once, from cache)",
        "read floor", r.read_floor_us, r.runtime_over_floor
    );
    if let Some(p) = &r.fma_peak {
        println!(
            "{:.2} MFLOP per call; one core's {} FMA peak {:.1} GFLOP/s, the runtime at {:.0}% of it",
            r.flops_per_call as f64 / 1e6,
            p.isa,
            p.gflops,
            100.0 * p.runtime_fraction
        );
    }
    for s in &r.skipped {
        println!("skipped: {s}");
    }
    Ok(())
}
