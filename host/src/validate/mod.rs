//! Validation of exported models: the same inputs through ONNX Runtime,
//! tract, the device runtime (from the GGUF) and the host's own forward pass
//! (on the GGUF's weights), with the error of every pair of engines on
//! every named output.
//!
//! Two halves: this module's comparison core (engines x named outputs ->
//! a table of errors, pass or fail against tolerances), and one producer
//! per family (`vae`, `gan`, `text`, `audio`) that draws seeded inputs and runs each
//! engine.

pub mod audio;
pub mod gan;
pub mod io;
pub mod ort;
pub mod signature;
pub mod text;
pub mod tract;
pub mod vae;

use anyhow::{Result, anyhow, bail};
use edgegen_format::arch::Family;
use edgegen_format::{GgmlType, Gguf};
use io::Outputs;
use serde::Serialize;

/// The tolerance on max-abs error for weights stored as `ty`, as the issue
/// sets it: 1e-5 for f32; 1e-4 for f16 and Q8_0 (both sides use the same
/// dequantized numbers, so only summation order differs; the looser bound
/// covers the larger magnitudes of unscaled accumulations).
pub fn tolerance(ty: GgmlType) -> f32 {
    if ty == GgmlType::F32 { 1e-5 } else { 1e-4 }
}

/// How far two engines may drift apart with int8 activations. A hidden
/// value within a rounding error of a tie between two codes can round
/// either way (engines sum the layer before in different orders and
/// compute tanh and exp with different approximations), moving the outputs
/// that depend on it by about one quantization step of that value; a
/// generator with thousands of activations per image has such a value in
/// most images. So an int8 pair passes when its *mean* error is within the
/// tolerance and no value is further apart than this (times the output's
/// scale, as for the tolerance): a handful of flipped codes, where a wrong
/// block layout or scale moves every value, and far more. (The rounding
/// itself, ties included, is held to the runtime's bits by a test of the
/// exported quantizer alone.)
pub const A8_FLIP_CAP: f32 = 1e-2;

/// One pair of engines compared on one output.
#[derive(Debug, Clone, Serialize)]
pub struct PairError {
    /// The output compared.
    pub output: String,
    /// First engine.
    pub a: String,
    /// Second engine.
    pub b: String,
    /// Largest |a - b| over the output's values.
    pub max_abs: f32,
    /// Mean |a - b|.
    pub mean_abs: f32,
    /// The tolerance on max_abs: [`tolerance`] of the weights' type, times
    /// the largest value ORT gives (at least 1) for an output without a
    /// fixed scale.
    pub tolerance: f32,
    /// Inputs with at least one value over the tolerance.
    pub inputs_apart: usize,
    /// Whether max_abs is within the tolerance, or, with int8 activations,
    /// whether the values apart are the rounding flips that precision
    /// allows ([`A8_FLIP_CAP`]).
    pub ok: bool,
    /// Whether this pair decides pass or fail; the fast-math runtime is
    /// reported for information only, since its exp is coarse by design.
    pub gating: bool,
}

/// What `edgegen validate` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The model family (`vae`).
    pub family: String,
    /// The network (`decoder`, `encoder`).
    pub part: String,
    /// Inputs run.
    pub n: usize,
    /// Storage type of the weights.
    pub precision: String,
    /// What the weights multiply: `f32` activations, or `int8` ones
    /// quantized per block of 32 (the `q8_0a8` precision).
    pub activations: String,
    /// With int8 activations: of the values the layers quantized (on the
    /// host engine's pass), how many sat exactly on a rounding tie, and how
    /// many within 2^-12 of one, where engines that sum the layer before
    /// in another order may round apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ties: Option<Ties>,
    /// Engines run.
    pub engines: Vec<String>,
    /// The outputs compared.
    pub outputs: Vec<String>,
    /// Every pair, per output.
    pub pairs: Vec<PairError>,
    /// Whether every pair passed.
    pub ok: bool,
}

/// Rounding ties among int8-quantized activations ([`Report::ties`]).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Ties {
    /// Activations quantized.
    pub values: usize,
    /// Exactly halfway between two codes.
    pub exact: usize,
    /// Within 2^-12 of halfway (the exact ones included).
    pub near: usize,
}

impl Report {
    /// The largest max-abs error over the pairs that decide pass or fail.
    pub fn worst_gating(&self) -> f32 {
        self.pairs
            .iter()
            .filter(|p| p.gating)
            .fold(0f32, |m, p| m.max(p.max_abs))
    }
}

/// One engine's outputs for the producer's inputs.
pub struct Engine {
    /// Its name in the table.
    pub name: String,
    /// Its outputs, by name, in the same order for every engine.
    pub outputs: Outputs,
    /// Whether it decides pass or fail (compared with every other gating
    /// engine), or is reported only (compared with the first engine).
    pub gating: bool,
}

/// What a family's producer hands the comparison core.
pub struct Produced {
    /// The network (`decoder`).
    pub part: String,
    /// The weights' storage type, which sets the tolerance.
    pub precision: GgmlType,
    /// Every engine's outputs; the first is the reference (ONNX Runtime).
    pub engines: Vec<Engine>,
    /// Outputs whose tolerance scales with their largest reference value
    /// (those without a fixed range, such as an encoder's mu).
    pub relative: Vec<String>,
    /// Inputs run, when not the `n` asked for (a text model runs at most
    /// a context of steps).
    pub n: Option<usize>,
    /// For int8 activations, how close the host's quantized inputs came
    /// to rounding ties ([`crate::nn::linear::take_a8_ties`]).
    pub a8_ties: Option<[usize; 3]>,
}

/// The comparison core: every pair of gating engines, and every reported
/// engine against the first, on every output, against the tolerance of
/// the weights' type. Each output holds `inputs` rows.
pub fn compare(p: &Produced, inputs: usize) -> Result<Vec<PairError>> {
    let Some(first) = p.engines.first() else {
        bail!("no engine ran");
    };
    let names: Vec<&str> = first.outputs.iter().map(|o| o.0.as_str()).collect();
    for e in &p.engines {
        let theirs: Vec<&str> = e.outputs.iter().map(|o| o.0.as_str()).collect();
        if theirs != names {
            bail!("{} returned outputs {theirs:?}, expected {names:?}", e.name);
        }
        for ((name, v), (_, r)) in e.outputs.iter().zip(&first.outputs) {
            if v.len() != r.len() {
                bail!(
                    "{} returned {} values of {name}, expected {}",
                    e.name,
                    v.len(),
                    r.len()
                );
            }
        }
    }
    let base = tolerance(p.precision);
    let mut pairs = vec![];
    for (k, (name, reference)) in first.outputs.iter().enumerate() {
        // f32 sums of hundreds of products differ in their last bits, in
        // proportion to the values.
        let tol = if p.relative.contains(name) {
            base * reference.iter().fold(1f32, |m, v| m.max(v.abs()))
        } else {
            base
        };
        let scale = tol / base;
        let pair = |a: &Engine, b: &Engine, gating: bool| {
            let (x, y) = (&a.outputs[k].1, &b.outputs[k].1);
            let per = x.len() / inputs.max(1);
            let apart = x
                .chunks(per.max(1))
                .zip(y.chunks(per.max(1)))
                .filter(|(x, y)| {
                    x.iter()
                        .zip(*y)
                        .any(|(x, y)| (x - y).abs() > tol || (x - y).is_nan())
                })
                .count();
            let (mx, sum) = x.iter().zip(y).map(|(x, y)| (x - y).abs()).fold(
                (0f32, 0f64),
                // A NaN anywhere is the largest error there is.
                |(m, s), e| {
                    (
                        if e.is_nan() { f32::INFINITY } else { m.max(e) },
                        s + e as f64,
                    )
                },
            );
            PairError {
                output: name.clone(),
                a: a.name.clone(),
                b: b.name.clone(),
                max_abs: mx,
                mean_abs: (sum / x.len().max(1) as f64) as f32,
                tolerance: tol,
                inputs_apart: apart,
                ok: mx <= tol
                    || (gating
                        && p.a8_ties.is_some()
                        && sum / x.len().max(1) as f64 <= tol as f64
                        && mx <= A8_FLIP_CAP * scale),
                gating,
            }
        };
        let gating: Vec<&Engine> = p.engines.iter().filter(|e| e.gating).collect();
        for i in 0..gating.len() {
            for j in i + 1..gating.len() {
                pairs.push(pair(gating[i], gating[j], true));
            }
        }
        for e in p.engines.iter().filter(|e| !e.gating) {
            pairs.push(pair(e, first, false));
        }
    }
    Ok(pairs)
}

/// Runs a step graph (`steps` steps) in ONNX Runtime and then in tract,
/// each engine carrying its own state: `feed(i, state)` builds step `i`'s
/// inputs (from that state, or from another engine's, as the producer
/// chooses), and after the step the outputs named in `carry` become the
/// state (starting from `init`). Returns, per engine, each output in
/// `keep` concatenated over the steps, as `cut(i, name, values)` cuts it
/// (a step's row of a whole cache, say). ONNX Runtime computes the
/// outputs in `keep` and `carry`. The sequence families validate this way.
pub fn onnx_steps(
    onnx: &[u8],
    steps: usize,
    init: Vec<Vec<f32>>,
    carry: &[&str],
    keep: &[&str],
    feed: impl Fn(usize, &[Vec<f32>]) -> Vec<io::Input>,
    cut: impl Fn(usize, &str, &[f32]) -> Vec<f32>,
) -> Result<[Vec<Vec<f32>>; 2]> {
    let mut outputs = keep.to_vec();
    outputs.extend(carry.iter().filter(|c| !keep.contains(c)));
    let mut ort = ort::OrtModel::new(onnx)?;
    let planned = tract::TractModel::new(onnx, &feed(0, &init))?;
    let mut run = |e: usize| -> Result<Vec<Vec<f32>>> {
        let mut kept = vec![vec![]; keep.len()];
        let mut state = init.clone();
        for i in 0..steps {
            let ins = feed(i, &state);
            let out = if e == 0 {
                ort.run(&ins, &outputs)?
            } else {
                planned.run(&ins)?
            };
            let get = |name: &str| {
                out.iter()
                    .find(|o| o.0 == name)
                    .map(|o| o.1.clone())
                    .ok_or_else(|| anyhow!("step {i}: no output {name}"))
            };
            state = carry.iter().map(|c| get(c)).collect::<Result<_>>()?;
            for (k, name) in kept.iter_mut().zip(keep) {
                k.extend(cut(i, name, &get(name)?));
            }
        }
        Ok(kept)
    };
    Ok([run(0)?, run(1)?])
}

/// Runs `n` seeded inputs through every engine and compares them on every
/// output: the family's producer draws the inputs (latents for a decoder,
/// images for an encoder).
pub fn validate(onnx: &[u8], gguf: &[u8], n: usize, seed: u64) -> Result<Report> {
    let g = Gguf::parse(gguf).map_err(|e| anyhow!("GGUF: {e}"))?;
    let family = edgegen_format::arch::check(&g).map_err(|e| anyhow!("GGUF: {e}"))?;
    // Before any engine runs: the two files must be the same network.
    signature::check(onnx, &g)?;
    let produced = match family {
        Family::Vae => vae::produce(onnx, &g, n, seed)?,
        Family::Gan => gan::produce(onnx, &g, n, seed)?,
        Family::Text => text::produce(onnx, &g, n, seed)?,
        Family::Audio => audio::produce(onnx, &g, n, seed)?,
    };
    let pairs = compare(&produced, produced.n.unwrap_or(n))?;
    Ok(Report {
        family: family.arch().trim_start_matches("edgegen.").into(),
        part: produced.part,
        n: produced.n.unwrap_or(n),
        precision: format!("{:?}", produced.precision),
        activations: edgegen_format::arch::ActQuant::read(&g)
            .map_err(|e| anyhow!("GGUF: {e}"))?
            .name()
            .into(),
        ties: produced.a8_ties.map(|[values, exact, near]| Ties {
            values,
            exact,
            near,
        }),
        outputs: produced.engines[0]
            .outputs
            .iter()
            .map(|o| o.0.clone())
            .collect(),
        engines: produced.engines.into_iter().map(|e| e.name).collect(),
        ok: pairs.iter().all(|p| p.ok || !p.gating),
        pairs,
    })
}
