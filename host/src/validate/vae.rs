//! The VAE's validation producer: seeded latents through a decoder, seeded
//! images through an encoder, in every engine.

use super::io::{Input, Outputs};
use super::{Engine, Produced, ort, tract};
use crate::models::vae::{Vae, VaeActs, VaeConfig};
use crate::nn::gemm::Threads;
use crate::rng::Rng;
use anyhow::{Context, Result, anyhow};
use edgegen_format::arch::vae;
use edgegen_format::{GgmlType, Gguf, TensorName};
use edgegen_runtime::models::vae::{VaeDecoder, VaeEncoder};

/// Rebuilds the host model of a VAE GGUF (either part), with its stored
/// weights dequantized (and Q8_0 padding cut) into the host's layout, and
/// its layers quantizing their inputs where the file's do; the other
/// part's parameters stay zero.
pub fn host_model(g: &Gguf<'_>) -> Result<(Vae, Vec<f32>)> {
    let hp = vae::Hparams::read(g)?;
    let cfg = VaeConfig {
        image_shape: hp.image_shape.map(|d| d as usize),
        hidden: hp.hidden().iter().map(|&h| h as usize).collect(),
        latent: hp.latent_dim as usize,
        n_classes: hp.n_classes as usize,
        likelihood: hp.likelihood.name().into(),
        activation: hp.activation.name().into(),
        label_every_layer: hp.label_every_layer,
    };
    let mut m = Vae::new(cfg)?;
    // A q8_0a8 file's layers multiply int8-quantized inputs.
    let a8 = edgegen_format::arch::ActQuant::read(g)? == edgegen_format::arch::ActQuant::Int8;
    for l in m.dec.iter_mut().chain(m.enc.iter_mut()) {
        l.int8_inputs = a8;
    }
    m.heads.int8_inputs = a8;
    let mut p = vec![0f32; m.n_params()];
    let names: Vec<TensorName> = match vae::Part::read(g)? {
        vae::Part::Decoder => (0..=hp.n_hidden)
            .flat_map(|i| {
                [
                    TensorName::at(vae::DEC_WEIGHT, i),
                    TensorName::at(vae::DEC_BIAS, i),
                ]
                .into_iter()
                .chain(
                    hp.decoder_has_label(i)
                        .then(|| TensorName::at(vae::DEC_LABEL, i)),
                )
            })
            .collect(),
        vae::Part::Encoder => (0..hp.n_hidden)
            .flat_map(|i| {
                [
                    TensorName::at(vae::ENC_WEIGHT, i),
                    TensorName::at(vae::ENC_BIAS, i),
                ]
            })
            .chain(
                [
                    vae::ENC_MU_WEIGHT,
                    vae::ENC_MU_BIAS,
                    vae::ENC_LOGVAR_WEIGHT,
                    vae::ENC_LOGVAR_BIAS,
                ]
                .map(TensorName::fixed),
            )
            .collect(),
    };
    for name in names {
        let name = name.to_string();
        let name = name.as_str();
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

/// Labels `0, 1, .., k-1, 0, ..` for `n` inputs; none when `k` is 0.
pub fn cycling_labels(n: usize, k: usize) -> Vec<i64> {
    if k > 0 {
        (0..n).map(|i| (i % k) as i64).collect()
    } else {
        vec![]
    }
}

/// The graph inputs: `first` `(n, width)` and, when conditional, `label`.
pub fn inputs(first: &str, data: Vec<f32>, width: usize, labels: &[i64]) -> Vec<Input> {
    let n = data.len() / width.max(1);
    let mut v = vec![Input::f32(first, &[n, width], data)];
    if !labels.is_empty() {
        v.push(Input::i64("label", &[n], labels.to_vec()));
    }
    v
}

/// The two ONNX engines on `inputs`, asked for `outputs`.
fn onnx_engines(onnx: &[u8], inputs: &[Input], outputs: &[&str]) -> Result<Vec<Engine>> {
    let mut ort = ort::OrtModel::new(onnx)?;
    Ok(vec![
        Engine {
            name: "onnxruntime".into(),
            outputs: ort.run(inputs, outputs)?,
            gating: true,
        },
        Engine {
            name: "tract".into(),
            outputs: tract::run(onnx, inputs)?,
            gating: true,
        },
    ])
}

fn engine(name: &str, outputs: Outputs, gating: bool) -> Engine {
    Engine {
        name: name.into(),
        outputs,
        gating,
    }
}

/// Validates a VAE decoder or encoder.
pub fn produce(onnx: &[u8], g: &Gguf<'_>, n: usize, seed: u64) -> Result<Produced> {
    let part = vae::Part::read(g).map_err(|e| anyhow!("GGUF: {e}"))?;
    let first = match part {
        vae::Part::Decoder => vae::DEC_WEIGHT,
        vae::Part::Encoder => vae::ENC_WEIGHT,
    };
    let precision = g
        .tensor_named(TensorName::at(first, 0))
        .map(|t| t.ggml_type())
        .unwrap_or(GgmlType::F32);
    crate::nn::linear::take_a8_ties();
    let (engines, relative) = match part {
        vae::Part::Decoder => (decoder(onnx, g, n, seed)?, vec![]),
        // mu and logvar have no fixed scale.
        vae::Part::Encoder => (
            encoder(onnx, g, n, seed)?,
            vec!["mu".into(), "logvar".into()],
        ),
    };
    let a8 = edgegen_format::arch::ActQuant::read(g)? == edgegen_format::arch::ActQuant::Int8;
    let a8_ties = a8.then(crate::nn::linear::take_a8_ties);
    Ok(Produced {
        part: part.name().into(),
        precision,
        engines,
        relative,
        n: None,
        a8_ties,
    })
}

/// `n` seeded latents (labels cycling over the classes) through a decoder;
/// the output is pixels, `x` `(n, D)`.
fn decoder(onnx: &[u8], g: &Gguf<'_>, n: usize, seed: u64) -> Result<Vec<Engine>> {
    let dec = VaeDecoder::from_gguf(g).map_err(|e| anyhow!("GGUF: {e}"))?;
    let (zd, k, d) = (
        dec.latent_dim(),
        dec.hp.n_classes as usize,
        dec.output_len(),
    );
    let mut rng = Rng::new(seed);
    let z: Vec<f32> = (0..n * zd).map(|_| rng.normal()).collect();
    let labels = cycling_labels(n, k);
    let mut engines = onnx_engines(onnx, &inputs("z", z.clone(), zd, &labels), &["x"])?;

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
    engines.push(engine("edgegen-runtime", vec![("x".into(), rt)], true));

    let (m, p) = host_model(g)?;
    let host_labels: Vec<u32> = (0..n)
        .map(|i| labels.get(i).map_or(0, |&l| l as u32))
        .collect();
    let imgs = m.decode_pixels(&p, &z, &host_labels, Threads(1));
    engines.push(engine("edgegen-host", vec![("x".into(), imgs)], true));
    engines.push(engine("runtime fast-math", vec![("x".into(), fast)], false));
    Ok(engines)
}

/// `n` seeded images (uniform pixels; labels cycling over the classes)
/// through an encoder; the outputs are `mu` and `logvar`, each `(n, Z)`.
fn encoder(onnx: &[u8], g: &Gguf<'_>, n: usize, seed: u64) -> Result<Vec<Engine>> {
    let enc = VaeEncoder::from_gguf(g).map_err(|e| anyhow!("GGUF: {e}"))?;
    let (d, k, zd) = (enc.input_len(), enc.hp.n_classes as usize, enc.latent_dim());
    let mut rng = Rng::new(seed);
    let x: Vec<f32> = (0..n * d).map(|_| rng.uniform()).collect();
    let labels = cycling_labels(n, k);
    let mut engines = onnx_engines(onnx, &inputs("x", x.clone(), d, &labels), &["mu", "logvar"])?;

    let mut scratch = vec![0f32; enc.scratch_len()];
    for (name, fast_math) in [("edgegen-runtime", false), ("runtime fast-math", true)] {
        let (mut mu, mut logvar) = (vec![0f32; n * zd], vec![0f32; n * zd]);
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
        let outs = vec![("mu".into(), mu), ("logvar".into(), logvar)];
        if fast_math {
            // Reported only: it joins after the host, below.
            engines.push(engine(name, outs, false));
        } else {
            engines.push(engine(name, outs, true));
        }
    }

    let (m, p) = host_model(g)?;
    let mut a = VaeActs::new(&m, n);
    a.x[..n * d].copy_from_slice(&x);
    for (i, l) in a.labels.iter_mut().enumerate() {
        *l = labels.get(i).map_or(0, |&l| l as u32);
    }
    m.encode(&p, &mut a, n, Threads(1));
    let stats = &a.stats[..2 * n * zd];
    let half = |h: usize| -> Vec<f32> {
        stats
            .chunks_exact(2 * zd)
            .flat_map(|row| row[h * zd..(h + 1) * zd].iter().copied())
            .collect()
    };
    let host = engine(
        "edgegen-host",
        vec![("mu".into(), half(0)), ("logvar".into(), half(1))],
        true,
    );
    // The host goes before the reported-only engine, for a stable table.
    let fast = engines.pop().expect("pushed above");
    engines.push(host);
    engines.push(fast);
    Ok(engines)
}
