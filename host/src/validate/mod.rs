//! Validation of exported models: the same inputs through ONNX Runtime,
//! tract, the device runtime (from the GGUF) and the host's own forward pass
//! (on the GGUF's weights), with the error of every pair of engines.

pub mod ort;
pub mod tract;

use crate::models::vae::{Vae, VaeConfig};
use crate::nn::gemm::Threads;
use crate::rng::Rng;
use anyhow::{Context, Result, anyhow, bail};
use edgegen_format::arch::{self, vae::DEC_BIAS, vae::DEC_WEIGHT};
use edgegen_format::{GgmlType, Gguf};
use edgegen_runtime::models::vae::VaeDecoder;
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
    /// The tolerance on max_abs.
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

/// Rebuilds the host model of a decoder GGUF, with its stored weights
/// dequantized (and Q8_0 padding cut) into the host's layout.
pub fn host_decoder(g: &Gguf<'_>) -> Result<(Vae, Vec<f32>)> {
    let hp = arch::vae::Hparams::read(g)?;
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
    for i in 0..=hp.n_hidden {
        for name in [DEC_WEIGHT[i], DEC_BIAS[i]] {
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
    }
    Ok((m, p))
}

/// Runs `n` random latents (seeded; labels cycling over the classes)
/// through every engine and compares them pairwise.
pub fn validate(onnx: &[u8], gguf: &[u8], n: usize, seed: u64) -> Result<Report> {
    let g = Gguf::parse(gguf).map_err(|e| anyhow!("GGUF: {e}"))?;
    let dec = VaeDecoder::from_gguf(&g).map_err(|e| anyhow!("GGUF: {e}"))?;
    edgegen_format::arch::check(&g).map_err(|e| anyhow!("GGUF: {e}"))?;
    let ty = g
        .tensor(DEC_WEIGHT[0])
        .map(|t| t.ggml_type())
        .unwrap_or(GgmlType::F32);
    let (zd, k, d) = (
        dec.latent_dim(),
        dec.hp.n_classes as usize,
        dec.output_len(),
    );
    let mut rng = Rng::new(seed);
    let z: Vec<f32> = (0..n * zd).map(|_| rng.normal()).collect();
    let labels: Vec<i64> = if k > 0 {
        (0..n).map(|i| (i % k) as i64).collect()
    } else {
        vec![]
    };

    let mut outs: Vec<(String, Vec<f32>)> = vec![];
    let mut ort = ort::OrtModel::new(onnx)?;
    outs.push(("onnxruntime".into(), ort.decode(&z, zd, &labels)?));
    outs.push(("tract".into(), tract::decode(onnx, &z, zd, &labels)?));

    let mut scratch = vec![0f32; dec.scratch_len()];
    let mut rt = vec![0f32; n * d];
    for i in 0..n {
        let label = (k > 0).then(|| labels[i] as u32);
        dec.decode(
            &z[i * zd..(i + 1) * zd],
            label,
            &mut scratch,
            &mut rt[i * d..(i + 1) * d],
        )
        .map_err(|e| anyhow!("runtime: {e}"))?;
    }
    outs.push(("edgegen-runtime".into(), rt));
    // The same runtime with micromath (the `fast-math` feature), for its cost.
    let mut fast = vec![0f32; n * d];
    for i in 0..n {
        let label = (k > 0).then(|| labels[i] as u32);
        dec.decode_with::<edgegen_runtime::math::Micro>(
            &z[i * zd..(i + 1) * zd],
            label,
            &mut scratch,
            &mut fast[i * d..(i + 1) * d],
        )
        .map_err(|e| anyhow!("runtime (fast-math): {e}"))?;
    }

    let (m, p) = host_decoder(&g)?;
    let host_labels: Vec<u32> = (0..n)
        .map(|i| labels.get(i).map_or(0, |&l| l as u32))
        .collect();
    let imgs = m.decode_pixels(&p, &z, &host_labels, Threads(1));
    outs.push(("edgegen-host".into(), imgs));

    for (name, v) in &outs {
        if v.len() != n * d {
            bail!("{name} returned {} values, expected {}", v.len(), n * d);
        }
    }
    let tol = tolerance(ty);
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
        n,
        precision: format!("{ty:?}"),
        engines: outs.into_iter().map(|(n, _)| n).collect(),
        ok: pairs.iter().all(|p| p.ok || !p.gating),
        pairs,
    })
}
