//! The GAN's validation producer: seeded noise (labels cycling over the
//! classes) through the generator in every engine.

use super::vae::{cycling_labels, inputs};
use super::{Engine, Produced, ort, tract};
use crate::models::gan::{Gan, GanConfig};
use crate::nn::gemm::Threads;
use crate::rng::Rng;
use anyhow::{Context, Result, anyhow, bail};
use edgegen_format::arch::gan::{self, Hparams};
use edgegen_format::{GgmlType, Gguf, TensorName};
use edgegen_runtime::models::gan::Generator;

/// Rebuilds the host generator of a GAN GGUF: the stored (dequantized)
/// weights in the host's layout, with identity batch norms (scale 1, shift
/// 0, running mean 0 and variance 1 - eps), since export folded them in.
/// Returns the model, its generator parameters and buffers.
pub fn host_model(g: &Gguf<'_>) -> Result<(Gan, Vec<f32>, Vec<f32>)> {
    let hp = Hparams::read(g)?;
    let ch = hp.channels();
    if ch.len() != 2 || ch[1] * 2 != ch[0] {
        bail!(
            "the host's generator has two up blocks halving the channels; this file's channels are {ch:?}"
        );
    }
    let mut m = Gan::new(GanConfig {
        image_shape: hp.image_shape.map(|v| v as usize),
        latent: hp.latent_dim as usize,
        n_classes: hp.n_classes as usize,
        g_width: ch[0] as usize,
        d_width: 1,
        spectral_norm: false,
        d_hidden: 0,
    })?;
    let a8 = edgegen_format::arch::ActQuant::read(g)? == edgegen_format::arch::ActQuant::Int8;
    m.gen_.set_int8_inputs(a8);
    let gen_ = &m.gen_;
    let mut p = vec![0f32; gen_.layout.total()];
    let mut buffers = vec![0f32; m.buffers.total()];
    let read = |name: TensorName, cols: usize| -> Result<Vec<f32>> {
        let t = g
            .tensor_named(name)
            .with_context(|| format!("tensor {name} is missing"))?;
        let mut v = vec![0f32; t.n_elements()];
        t.dequantize_into(&mut v)?;
        // Q8_0 rows are padded to whole blocks: cut them to `cols`.
        let stride = t.shape()[0] as usize;
        Ok(v.chunks_exact(stride.max(1))
            .flat_map(|r| r[..cols.min(r.len())].to_vec())
            .collect())
    };
    let zk = gen_.fc.inp;
    let fc = read(TensorName::fixed(gan::FC_WEIGHT), zk)?;
    let fcb = read(TensorName::fixed(gan::FC_BIAS), usize::MAX)?;
    let o = gen_.fc.offset;
    p[o..o + fc.len()].copy_from_slice(&fc);
    p[o + fc.len()..o + fc.len() + fcb.len()].copy_from_slice(&fcb);
    for (i, l) in [gen_.up0, gen_.up1].into_iter().enumerate() {
        let (cin, cout) = (l.ic, l.oc());
        let rows = read(TensorName::at(gan::UP_WEIGHT, i), cin)?;
        let bias = read(TensorName::at(gan::UP_BIAS, i), usize::MAX)?;
        for ic in 0..cin {
            for oc in 0..cout {
                for t in 0..16 {
                    p[l.offset + (ic * cout + oc) * 16 + t] = rows[(oc * 16 + t) * cin + ic];
                }
            }
        }
        let b0 = l.offset + cin * cout * 16;
        p[b0..b0 + cout].copy_from_slice(&bias);
    }
    for bn in [gen_.bn0, gen_.bn1] {
        p[bn.offset..bn.offset + bn.c].fill(1.0);
        buffers[bn.buf_offset + bn.c..bn.buf_offset + 2 * bn.c].fill(1.0 - crate::nn::norm::EPS);
    }
    Ok((m, p, buffers))
}

/// Validates a generator.
pub fn produce(onnx: &[u8], g: &Gguf<'_>, n: usize, seed: u64) -> Result<Produced> {
    let gen_ = Generator::from_gguf(g).map_err(|e| anyhow!("GGUF: {e}"))?;
    let precision = g
        .tensor_named(TensorName::at(gan::UP_WEIGHT, 0))
        .map(|t| t.ggml_type())
        .unwrap_or(GgmlType::F32);
    let (zd, k, d) = (
        gen_.latent_dim(),
        gen_.hp.n_classes as usize,
        gen_.output_len(),
    );
    let mut rng = Rng::new(seed);
    let z: Vec<f32> = (0..n * zd).map(|_| rng.normal()).collect();
    let labels = cycling_labels(n, k);
    let ins = inputs("z", z.clone(), zd, &labels);
    let mut ort = ort::OrtModel::new(onnx)?;
    let mut engines = vec![
        Engine {
            name: "onnxruntime".into(),
            outputs: ort.run(&ins, &["x"])?,
            gating: true,
        },
        Engine {
            name: "tract".into(),
            outputs: tract::run(onnx, &ins)?,
            gating: true,
        },
    ];
    let mut scratch = vec![0f32; gen_.scratch_len()];
    let (mut rt, mut fast) = (vec![0f32; n * d], vec![0f32; n * d]);
    for i in 0..n {
        let label = (k > 0).then(|| labels[i] as u32);
        let zi = &z[i * zd..(i + 1) * zd];
        gen_.generate(zi, label, &mut scratch, &mut rt[i * d..(i + 1) * d])
            .map_err(|e| anyhow!("runtime: {e}"))?;
        gen_.generate_with::<edgegen_runtime::math::Micro>(
            zi,
            label,
            &mut scratch,
            &mut fast[i * d..(i + 1) * d],
        )
        .map_err(|e| anyhow!("runtime (fast-math): {e}"))?;
    }
    engines.push(Engine {
        name: "edgegen-runtime".into(),
        outputs: vec![("x".into(), rt)],
        gating: true,
    });
    let (m, p, b) = host_model(g)?;
    crate::nn::linear::take_a8_ties();
    let host_labels: Vec<u32> = (0..n)
        .map(|i| labels.get(i).map_or(0, |&l| l as u32))
        .collect();
    let px = crate::train::gan::generate(&m, &p, &b, &z, &host_labels, Threads(1));
    let a8_ties = m.gen_.fc.int8_inputs.then(crate::nn::linear::take_a8_ties);
    engines.push(Engine {
        name: "edgegen-host".into(),
        outputs: vec![("x".into(), px)],
        gating: true,
    });
    engines.push(Engine {
        name: "runtime fast-math".into(),
        outputs: vec![("x".into(), fast)],
        gating: false,
    });
    Ok(Produced {
        part: "generator".into(),
        precision,
        engines,
        relative: vec![],
        n: None,
        a8_ties,
    })
}
