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
    /// A GGUF model file (a VAE decoder or encoder, a GAN generator, a
    /// text or an audio model).
    pub(super) model: PathBuf,
    /// The same model's ONNX export: also time ONNX Runtime and tract.
    #[arg(long)]
    pub(super) onnx: Option<PathBuf>,
    /// Calls per engine per round (for a text model, decode steps,
    /// rounded up to whole contexts; for an audio model, samples).
    #[arg(long, default_value_t = 1000)]
    pub(super) calls: usize,
    /// Rounds; every figure is a median over them.
    #[arg(long, default_value_t = 15)]
    pub(super) rounds: usize,
    /// Run the runtime's kernels on this instruction set (scalar, avx2,
    /// avx512 or neon) rather than the best this CPU has: to measure an
    /// AVX2 machine's path on an AVX-512 one. It must be one this CPU has.
    #[arg(long)]
    pub(super) isa: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub(super) json: bool,
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
    if let Some(name) = &a.isa {
        let have: Vec<kernels::Isa> = kernels::Isa::ALL
            .iter()
            .copied()
            .filter(|i| i.available())
            .collect();
        let names: Vec<String> = have
            .iter()
            .map(|i| format!("{i:?}").to_lowercase())
            .collect();
        let Some(i) = names.iter().position(|n| n == &name.to_lowercase()) else {
            bail!(
                "--isa {name}: expected one this CPU has: {}",
                names.join(", ")
            );
        };
        kernels::force_isa(Some(have[i]));
    }
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("{}: cannot read", a.model.display()))?;
    let model = Model::from_gguf(&bytes).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    match &model {
        Model::Text(t) => return bench_text(&a, t, &bytes),
        Model::Audio(m) => return super::bench_audio::bench_audio(&a, m, &bytes),
        _ => {}
    }
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
            "{}: bench knows VAE models, GAN generators, text and audio models",
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
            let (onnx, mut ort) = open_onnx(&a, p, &bytes, &mut skipped)?;
            let labels: Vec<i64> = label.map(i64::from).into_iter().collect();
            let (first, outputs): (&str, &[&str]) = if encoder {
                ("x", &["mu", "logvar"])
            } else {
                ("z", &["x"])
            };
            let inputs = crate::validate::vae::inputs(first, input.clone(), input.len(), &labels);
            let inputs = &inputs;
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

/// A text model: each call decodes a whole context from an empty cache,
/// one symbol at a time (the runtime with its KV cache in place; ONNX
/// Runtime and tract running the exported step with the cache carried
/// from each step's outputs to the next one's inputs).
fn bench_text(
    a: &BenchArgs,
    m: &edgegen_runtime::models::transformer::Transformer<'_>,
    bytes: &[u8],
) -> Result<()> {
    use crate::validate::io::Input;
    use edgegen_runtime::models::transformer::{ContextPolicy, State};
    let hp = m.hp;
    let (t, v, k) = (
        hp.context_length as usize,
        hp.vocab_size as usize,
        hp.n_classes,
    );
    let label = (k > 0).then_some(0u32);
    let syms: Vec<u32> = (0..t).map(|i| ((i * 7 + 3) % v) as u32).collect();
    let calls = a.calls.div_ceil(t).max(1);
    let mut kv = vec![0f32; m.state_len()];
    let mut sb = vec![0u32; t];
    let mut scratch = vec![0f32; m.scratch_len()];
    let mut runtime = || {
        let mut st = State::new(&mut kv, &mut sb, label);
        for &s in &syms {
            let l = m
                .step(&mut st, black_box(s), ContextPolicy::Stop, &mut scratch)
                .expect("sizes checked");
            black_box(l);
        }
    };
    let weight_bytes = m.weight_bytes();
    let floor = ReadFloor::new(weight_bytes);
    let mut names = vec!["edgegen-runtime".to_string()];
    let mut skipped: Vec<String> = vec![];
    let cache = [hp.block_count as usize, 1, t, hp.kv_dim()];
    let zeros = vec![0f32; cache.iter().product()];
    let feed = |i: usize, pk: Vec<f32>, pv: Vec<f32>| {
        let mut ins = vec![
            Input::i64("token", &[1], vec![syms[i] as i64]),
            Input::i64("position", &[1], vec![i as i64]),
        ];
        if let Some(l) = label {
            ins.push(Input::i64("label", &[1], vec![l as i64]));
        }
        ins.push(Input::f32("past_k", &cache, pk));
        ins.push(Input::f32("past_v", &cache, pv));
        ins
    };
    let take = |o: &mut crate::validate::io::Outputs, name: &str| {
        let i = o
            .iter()
            .position(|x| x.0 == name)
            .expect("an output of the step");
        std::mem::take(&mut o[i].1)
    };
    let mut progress = |_: usize| {};
    let mut timings = match &a.onnx {
        None => interleaved_with(
            &mut [&mut runtime, &mut || floor.read()],
            calls,
            a.rounds,
            &mut progress,
        ),
        Some(p) => {
            let (onnx, mut ort) = open_onnx(a, p, bytes, &mut skipped)?;
            let tract = TractModel::new(&onnx, &feed(0, zeros.clone(), zeros.clone()))
                .map_err(|e| anyhow!("{}: {e:#}", p.display()))?;
            let names_out = ["logits", "present_k", "present_v"];
            let have_ort = ort.is_some();
            let mut ort_engine = || {
                if let Some(o) = ort.as_mut() {
                    let (mut pk, mut pv) = (zeros.clone(), zeros.clone());
                    for i in 0..t {
                        let mut out = o.run(&feed(i, pk, pv), &names_out).expect("ran before");
                        pk = take(&mut out, "present_k");
                        pv = take(&mut out, "present_v");
                        black_box(&out);
                    }
                }
            };
            let mut tract_engine = || {
                let (mut pk, mut pv) = (zeros.clone(), zeros.clone());
                for i in 0..t {
                    let mut out = tract.run(&feed(i, pk, pv)).expect("planned");
                    pk = take(&mut out, "present_k");
                    pv = take(&mut out, "present_v");
                    black_box(&out);
                }
            };
            let mut floor_engine = || floor.read();
            let mut engines: Vec<&mut dyn FnMut()> = vec![&mut runtime];
            if have_ort {
                names.push("onnxruntime".into());
                engines.push(&mut ort_engine);
            }
            names.push("tract".into());
            engines.push(&mut tract_engine);
            engines.push(&mut floor_engine);
            interleaved_with(&mut engines, calls, a.rounds, &mut progress)
        }
    };
    let floor = timings.pop().expect("the floor ran last");
    let per_token = |us: f64| us / t as f64;
    let macs: usize = (0..t).map(|pos| m.macs(pos)).sum::<usize>() / t;
    let rows: Vec<serde_json::Value> = names
        .iter()
        .zip(&timings)
        .map(|(n, tm)| {
            serde_json::json!({
                "engine": n,
                "us_per_token": per_token(tm.us),
                "tokens_per_s": 1e6 / per_token(tm.us),
                "runtime_over_engine": tm.first_over_this,
                "gflops": 2.0 * macs as f64 / per_token(tm.us) / 1e3,
            })
        })
        .collect();
    let report = serde_json::json!({
        "model": a.model.display().to_string(),
        "weight_bytes": weight_bytes,
        "isa": format!("{:?}", kernels::isa()),
        "context": t,
        "batch": 1,
        "threads": 1,
        "tokens_per_round": calls * t,
        "rounds": a.rounds,
        "engines": rows,
        "read_floor_us": floor.us,
        "flops_per_token": 2 * macs,
        "skipped": skipped,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{}: {} bytes of weights; batch 1, 1 thread, kernels {:?}; a context of {t} symbols decoded from an empty cache, medians of {} rounds of {} symbols",
        a.model.display(),
        weight_bytes,
        kernels::isa(),
        a.rounds,
        calls * t
    );
    println!(
        "{:<16} {:>12} {:>10} {:>16} {:>9}",
        "engine", "µs/symbol", "symbols/s", "runtime/engine", "GFLOP/s"
    );
    for r in report["engines"].as_array().into_iter().flatten() {
        println!(
            "{:<16} {:>12.2} {:>10.0} {:>15.2}x {:>9.2}",
            r["engine"].as_str().unwrap_or_default(),
            r["us_per_token"].as_f64().unwrap_or(0.0),
            r["tokens_per_s"].as_f64().unwrap_or(0.0),
            r["runtime_over_engine"].as_f64().unwrap_or(0.0),
            r["gflops"].as_f64().unwrap_or(0.0)
        );
    }
    for s in &skipped {
        println!("skipped: {s}");
    }
    Ok(())
}

/// The ONNX graph at `p`, checked to be the network in the GGUF `bytes`
/// (or the times would compare different work), with ONNX Runtime loaded
/// on it; without ONNX Runtime's library the other engines still run, and
/// `skipped` says why it did not.
pub(super) fn open_onnx(
    a: &BenchArgs,
    p: &std::path::Path,
    bytes: &[u8],
    skipped: &mut Vec<String>,
) -> Result<(Vec<u8>, Option<OrtModel>)> {
    let onnx = std::fs::read(p).with_context(|| format!("{}: cannot read", p.display()))?;
    let g = Gguf::parse(bytes).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    signature::check(&onnx, &g)
        .map_err(|e| anyhow!("{} and {}: {e:#}", p.display(), a.model.display()))?;
    let ort = match OrtModel::new(&onnx) {
        Ok(m) => Some(m),
        Err(e) => {
            skipped.push(format!("onnxruntime ({e:#})"));
            None
        }
    };
    Ok((onnx, ort))
}
