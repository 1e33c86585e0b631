//! GAN generator -> GGUF and ONNX, following `formats/README.md`
//! (`edgegen.gan`). Batch norms are folded into the layer before them: a
//! device runs dense and transposed convolutions only, and the ONNX graph
//! computes the same numbers from the same stored weights.

use super::{Layer, Precision};
use crate::models::gan::Gan;
use anyhow::{Context, Result};
use edgegen_format::arch::{self, gan::Hparams};
use edgegen_format::{GgmlType, GgufWriter, TensorName};

/// A generator with its batch norms folded in: the dense layer `(f0, Z+K)`,
/// and per up block its weight as rows `(oc, ky, kx)` over the input
/// channels, `(C_out*16, C_in)`, and its bias `(C_out)`.
#[derive(Debug, Clone)]
pub struct Folded {
    /// `(f0, Z+K)` row-major.
    pub fc_w: Vec<f32>,
    /// `(f0)`.
    pub fc_b: Vec<f32>,
    /// Per up block: `(weight (C_out*16, C_in), bias (C_out), C_in, C_out)`.
    pub up: Vec<(Vec<f32>, Vec<f32>, usize, usize)>,
}

/// Folds the eval-mode batch norms of `m`'s generator (parameters `gp`,
/// running statistics in `buffers`) into its layers.
pub fn fold(m: &Gan, gp: &[f32], buffers: &[f32]) -> Folded {
    let g = &m.gen_;
    let zk = g.fc.inp;
    let f0 = g.fc.out;
    let per = f0 / g.bn0.c;
    let (s0, t0) = g.bn0.folded(gp, buffers);
    let fcp = g.fc.of(gp);
    let (w, b) = fcp.split_at(f0 * zk);
    let mut fc_w = w.to_vec();
    let mut fc_b = b.to_vec();
    for o in 0..f0 {
        let c = o / per;
        fc_w[o * zk..(o + 1) * zk]
            .iter_mut()
            .for_each(|v| *v *= s0[c]);
        fc_b[o] = s0[c] * fc_b[o] + t0[c];
    }
    let (s1, t1) = g.bn1.folded(gp, buffers);
    let mut up = vec![];
    for (l, norm) in [(g.up0, Some((s1, t1))), (g.up1, None)] {
        let (cin, cout, kk) = (l.ic, l.oc(), l.geom.k * l.geom.k);
        let w = &gp[l.offset..l.offset + cin * cout * kk];
        let b = &gp[l.offset + cin * cout * kk..l.offset + l.len()];
        let mut rows = vec![0f32; cout * kk * cin];
        let mut bias = b.to_vec();
        for ic in 0..cin {
            for oc in 0..cout {
                let s = norm.as_ref().map_or(1.0, |(s, _)| s[oc]);
                for t in 0..kk {
                    rows[(oc * kk + t) * cin + ic] = s * w[(ic * cout + oc) * kk + t];
                }
            }
        }
        if let Some((s, t)) = &norm {
            for oc in 0..cout {
                bias[oc] = s[oc] * bias[oc] + t[oc];
            }
        }
        up.push((rows, bias, cin, cout));
    }
    Folded { fc_w, fc_b, up }
}

/// The format crate's hyperparameters for a host model.
pub fn hparams(m: &Gan) -> Result<Hparams> {
    let c = &m.cfg;
    Hparams::new(
        c.image_shape.map(|d| d as u32),
        c.latent as u32,
        c.n_classes as u32,
        &[c.g_width as u32, (c.g_width / 2) as u32],
    )
    .context("the generator's channel list")
}

/// The layers of the folded generator as dense "layers" (`(out, in)`
/// weights): the dense one, then each up block's transposed weight rows,
/// for writers that handle every precision one way.
pub fn layers(f: &Folded, zk: usize) -> Vec<Layer<'_>> {
    let mut v = vec![Layer {
        name: "gen.fc".into(),
        w: &f.fc_w,
        b: &f.fc_b,
        inp: zk,
        out: f.fc_b.len(),
        act: None,
        label: None,
    }];
    for (i, (w, b, cin, cout)) in f.up.iter().enumerate() {
        let name = TensorName::at(arch::gan::UP_WEIGHT, i).to_string();
        v.push(Layer {
            name: name.trim_end_matches(".weight").to_string(),
            w,
            b,
            inp: *cin,
            out: cout * 16,
            act: None,
            label: None,
        });
    }
    v
}

/// The GGUF bytes of a generator (its moving average's weights when the
/// run keeps one: pass those as `gp`).
pub fn to_gguf(
    m: &Gan,
    gp: &[f32],
    buffers: &[f32],
    prec: Precision,
    name: &str,
) -> Result<Vec<u8>> {
    let f = fold(m, gp, buffers);
    let mut w = GgufWriter::new();
    hparams(m)?.write(&mut w)?;
    w.add(arch::keys::NAME, name)?;
    let zk = m.cfg.latent + m.cfg.n_classes;
    for l in layers(&f, zk) {
        // The dense layer's bias is per row; an up block's per channel.
        super::gguf::add_weight(&mut w, &l, prec)?;
        w.add_tensor(
            &format!("{}.bias", l.name),
            &[l.b.len() as u64],
            GgmlType::F32,
            l.b,
        )
        .with_context(|| format!("tensor {}.bias", l.name))?;
    }
    Ok(w.to_bytes())
}
