//! Validation of exported models: the same inputs through ONNX Runtime,
//! tract, the device runtime (from the GGUF) and the host's own forward pass
//! (on the GGUF's weights), with the error of every pair of engines. A
//! decoder gets seeded latents; an encoder gets seeded images.

pub mod ort;
pub mod signature;
pub mod tract;

use crate::models::vae::{Vae, VaeActs, VaeConfig};
use crate::nn::gemm::Threads;
use crate::rng::Rng;
use anyhow::{Context, Result, anyhow, bail};
use edgegen_format::arch::vae;
use edgegen_format::{GgmlType, Gguf};
use edgegen_runtime::models::vae::{VaeDecoder, VaeEncoder};
use serde::Serialize;

/// The tolerance on max-abs error for weights stored as `ty`, as the issue
/// sets it: 1e-5 for f32; 1e-4 for f16 and Q8_0 (both sides use the same
/// dequantized numbers, so only summation order differs; the looser bound
/// covers the larger magnitudes of unscaled accumulations).
pub fn tolerance(ty: GgmlType) -> f32 {
    if ty == GgmlType::F32 { 1e-5 } else { 1e-4 }
}

/// One pair of engines compared.
#[derive(Debug, Clone, Serialize)]
pub struct PairError {
    /// First engine.
    pub a: String,
    /// Second engine.
    pub b: String,
    /// Largest |a - b| over every output value.
    pub max_abs: f32,
    /// Mean |a - b|.
    pub mean_abs: f32,
    /// The tolerance on max_abs: [`tolerance`] of the weights' type, times
    /// the largest output ORT gives (at least 1) for an encoder.
    pub tolerance: f32,
    /// Whether max_abs is within it.
    pub ok: bool,
    /// Whether this pair decides pass or fail; the fast-math runtime is
    /// reported for information only, since its exp is coarse by design.
    pub gating: bool,
}

/// What `edgegen validate` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `decoder` or `encoder`.
    pub part: String,
    /// Inputs run.
    pub n: usize,
    /// Storage type of the weights.
    pub precision: String,
    /// Engines run.
    pub engines: Vec<String>,
    /// Every pair.
    pub pairs: Vec<PairError>,
    /// Whether every pair passed.
    pub ok: bool,
}

/// Rebuilds the host model of a VAE GGUF (either part), with its stored
/// weights dequantized (and Q8_0 padding cut) into the host's layout; the
/// other part's parameters stay zero.
pub fn host_model(g: &Gguf<'_>) -> Result<(Vae, Vec<f32>)> {
    let hp = vae::Hparams::read(g)?;
    let cfg = VaeConfig {
        image_shape: hp.image_shape.map(|d| d as usize),
        hidden: hp.hidden().iter().map(|&h| h as usize).collect(),
        latent: hp.latent_dim as usize,
        n_classes: hp.n_classes as usize,
        likelihood: hp.likelihood.name().into(),
        activation: hp.activation.name().into(),
    };
    let m = Vae::new(cfg)?;
    let mut p = vec![0f32; m.n_params()];
    let names: Vec<&str> = match vae::Part::read(g)? {
        vae::Part::Decoder => (0..=hp.n_hidden)
            .flat_map(|i| [vae::DEC_WEIGHT[i], vae::DEC_BIAS[i]])
            .collect(),
        vae::Part::Encoder => (0..hp.n_hidden)
            .flat_map(|i| [vae::ENC_WEIGHT[i], vae::ENC_BIAS[i]])
            .chain([
                vae::ENC_MU_WEIGHT,
                vae::ENC_MU_BIAS,
                vae::ENC_LOGVAR_WEIGHT,
                vae::ENC_LOGVAR_BIAS,
            ])
            .collect(),
    };
    for name in names {
        let e = m
            .layout
            .get(name)
            .with_context(|| format!("host layout has no {name}"))?;
        let t = g
            .tensor(name)
            .with_context(|| format!("tensor {name} is missing"))?;
        let mut v = vec![0f32; t.n_elements()];
        t.dequantize_into(&mut v)?;
        let cols = *e.shape.last().unwrap_or(&1);
        let stride = t.shape()[0] as usize;
        let rows = e.len() / cols.max(1);
        let dst = &mut p[e.range()];
        for r in 0..rows {
            dst[r * cols..(r + 1) * cols].copy_from_slice(&v[r * stride..r * stride + cols]);
        }
    }
    Ok((m, p))
}

/// Every engine's outputs for one set of inputs, one layout for all.
struct Outputs {
    engines: Vec<(String, Vec<f32>)>,
    /// The runtime with micromath, for what fast math costs.
    fast: Vec<f32>,
    /// Values each engine must return.
    len: usize,
}

/// `n` seeded latents (labels cycling over the classes) through a decoder;
/// outputs are pixels, `(n, D)`.
fn run_decoder(onnx: &[u8], g: &Gguf<'_>, n: usize, seed: u64) -> Result<Outputs> {
    let dec = VaeDecoder::from_gguf(g).map_err(|e| anyhow!("GGUF: {e}"))?;
    let (zd, k, d) = (
        dec.latent_dim(),
        dec.hp.n_classes as usize,
        dec.output_len(),
    );
    let mut rng = Rng::new(seed);
    let z: Vec<f32> = (0..n * zd).map(|_| rng.normal()).collect();
    let labels = cycling_labels(n, k);

    let mut engines: Vec<(String, Vec<f32>)> = vec![];
    let mut ort = ort::OrtModel::new(onnx)?;
    engines.push(("onnxruntime".into(), ort.decode(&z, zd, &labels)?));
    engines.push(("tract".into(), tract::run(onnx, &z, zd, &labels)?));

    let mut scratch = vec![0f32; dec.scratch_len()];
    let mut rt = vec![0f32; n * d];
    let mut fast = vec![0f32; n * d];
    for i in 0..n {
        let label = (k > 0).then(|| labels[i] as u32);
        let zi = &z[i * zd..(i + 1) * zd];
        let out = &mut rt[i * d..(i + 1) * d];
        dec.decode(zi, label, &mut scratch, out)
            .map_err(|e| anyhow!("runtime: {e}"))?;
        let out = &mut fast[i * d..(i + 1) * d];
        dec.decode_with::<edgegen_runtime::math::Micro>(zi, label, &mut scratch, out)
            .map_err(|e| anyhow!("runtime (fast-math): {e}"))?;
    }
    engines.push(("edgegen-runtime".into(), rt));

    let (m, p) = host_model(g)?;
    let host_labels: Vec<u32> = (0..n)
        .map(|i| labels.get(i).map_or(0, |&l| l as u32))
        .collect();
    let imgs = m.decode_pixels(&p, &z, &host_labels, Threads(1));
    engines.push(("edgegen-host".into(), imgs));
    Ok(Outputs {
        engines,
        fast,
        len: n * d,
    })
}

/// `n` seeded images (uniform pixels; labels cycling over the classes)
/// through an encoder; outputs are `mu` `(n, Z)` then `logvar` `(n, Z)`.
fn run_encoder(onnx: &[u8], g: &Gguf<'_>, n: usize, seed: u64) -> Result<Outputs> {
    let enc = VaeEncoder::from_gguf(g).map_err(|e| anyhow!("GGUF: {e}"))?;
    let (d, k, zd) = (enc.input_len(), enc.hp.n_classes as usize, enc.latent_dim());
    let mut rng = Rng::new(seed);
    let x: Vec<f32> = (0..n * d).map(|_| rng.uniform()).collect();
    let labels = cycling_labels(n, k);

    let mut engines: Vec<(String, Vec<f32>)> = vec![];
    let mut ort = ort::OrtModel::new(onnx)?;
    engines.push(("onnxruntime".into(), ort.encode(&x, d, &labels)?));
    engines.push(("tract".into(), tract::run(onnx, &x, d, &labels)?));

    let mut scratch = vec![0f32; enc.scratch_len()];
    let mut rt = vec![0f32; 2 * n * zd];
    let mut fast = vec![0f32; 2 * n * zd];
    for (out, fast_math) in [(&mut rt, false), (&mut fast, true)] {
        let (mu, logvar) = out.split_at_mut(n * zd);
        for i in 0..n {
            let label = (k > 0).then(|| labels[i] as u32);
            let xi = &x[i * d..(i + 1) * d];
            let (m, l) = (
                &mut mu[i * zd..(i + 1) * zd],
                &mut logvar[i * zd..(i + 1) * zd],
            );
            if fast_math {
                enc.encode_with::<edgegen_runtime::math::Micro>(xi, label, &mut scratch, m, l)
            } else {
                enc.encode(xi, label, &mut scratch, m, l)
            }
            .map_err(|e| anyhow!("runtime: {e}"))?;
        }
    }
    engines.push(("edgegen-runtime".into(), rt));

    let (m, p) = host_model(g)?;
    let mut a = VaeActs::new(&m, n);
    a.x[..n * d].copy_from_slice(&x);
    for (i, l) in a.labels.iter_mut().enumerate() {
        *l = labels.get(i).map_or(0, |&l| l as u32);
    }
    m.encode(&p, &mut a, n, Threads(1));
    let stats = &a.stats[..2 * n * zd];
    let host: Vec<f32> = (0..2)
        .flat_map(|h| {
            stats
                .chunks_exact(2 * zd)
                .flat_map(move |row| row[h * zd..(h + 1) * zd].iter().copied())
        })
        .collect();
    engines.push(("edgegen-host".into(), host));
    Ok(Outputs {
        engines,
        fast,
        len: 2 * n * zd,
    })
}

/// Labels `0, 1, .., k-1, 0, ..` for `n` inputs; none when `k` is 0.
fn cycling_labels(n: usize, k: usize) -> Vec<i64> {
    if k > 0 {
        (0..n).map(|i| (i % k) as i64).collect()
    } else {
        vec![]
    }
}

/// Runs `n` seeded inputs through every engine and compares them
/// pairwise: latents for a decoder, images for an encoder.
pub fn validate(onnx: &[u8], gguf: &[u8], n: usize, seed: u64) -> Result<Report> {
    let g = Gguf::parse(gguf).map_err(|e| anyhow!("GGUF: {e}"))?;
    edgegen_format::arch::check(&g).map_err(|e| anyhow!("GGUF: {e}"))?;
    // Before any engine runs: the two files must be the same network.
    signature::check(onnx, &g)?;
    let part = vae::Part::read(&g).map_err(|e| anyhow!("GGUF: {e}"))?;
    let first = match part {
        vae::Part::Decoder => vae::DEC_WEIGHT[0],
        vae::Part::Encoder => vae::ENC_WEIGHT[0],
    };
    let ty = g
        .tensor(first)
        .map(|t| t.ggml_type())
        .unwrap_or(GgmlType::F32);
    let Outputs {
        engines: outs,
        fast,
        len,
    } = match part {
        vae::Part::Decoder => run_decoder(onnx, &g, n, seed)?,
        vae::Part::Encoder => run_encoder(onnx, &g, n, seed)?,
    };
    for (name, v) in &outs {
        if v.len() != len {
            bail!("{name} returned {} values, expected {len}", v.len());
        }
    }
    // Pixels lie in [0, 1]; an encoder's mu and logvar have no fixed
    // scale, so its tolerance is relative to the largest value ORT gives
    // (at least 1): f32 sums of hundreds of products differ in their last
    // bits, in proportion to the values.
    let scale = match part {
        vae::Part::Decoder => 1.0,
        vae::Part::Encoder => outs[0].1.iter().fold(1f32, |m, v| m.max(v.abs())),
    };
    let tol = tolerance(ty) * scale;
    let compare = |a: (&str, &[f32]), b: (&str, &[f32]), gating: bool| {
        let diffs = a.1.iter().zip(b.1).map(|(x, y)| (x - y).abs());
        let (mx, sum) = diffs.fold((0f32, 0f64), |(m, s), e| {
            // A NaN anywhere is the largest error there is.
            (
                if e.is_nan() { f32::INFINITY } else { m.max(e) },
                s + e as f64,
            )
        });
        PairError {
            a: a.0.to_string(),
            b: b.0.to_string(),
            max_abs: mx,
            mean_abs: (sum / a.1.len().max(1) as f64) as f32,
            tolerance: tol,
            ok: mx <= tol,
            gating,
        }
    };
    let mut pairs = vec![];
    for i in 0..outs.len() {
        for j in i + 1..outs.len() {
            pairs.push(compare(
                (&outs[i].0, &outs[i].1),
                (&outs[j].0, &outs[j].1),
                true,
            ));
        }
    }
    pairs.push(compare(
        ("runtime fast-math", &fast),
        (&outs[0].0, &outs[0].1),
        false,
    ));
    Ok(Report {
        part: part.name().into(),
        n,
        precision: format!("{ty:?}"),
        engines: outs.into_iter().map(|(n, _)| n).collect(),
        ok: pairs.iter().all(|p| p.ok || !p.gating),
        pairs,
    })
}
