//! VAE -> GGUF, following `formats/README.md`.

use super::{Layer, Part, Precision};
use crate::models::vae::Vae;
use anyhow::{Context, Result};
use edgegen_format::arch::{self, vae::Hparams};
use edgegen_format::{GgmlType, GgufWriter};

/// The format crate's hyperparameters for a host model.
pub fn hparams(m: &Vae) -> Result<Hparams> {
    let c = &m.cfg;
    let hidden: Vec<u32> = c.hidden.iter().map(|&w| w as u32).collect();
    let mut hp = Hparams::new(
        c.image_shape.map(|d| d as u32),
        c.latent as u32,
        &hidden,
        c.n_classes as u32,
        c.likelihood()?,
        c.activation()?,
    )
    .ok_or_else(|| {
        anyhow::anyhow!(
            "hidden: expected 1 to {} layers, found {}",
            arch::vae::MAX_HIDDEN,
            hidden.len()
        )
    })?;
    hp.label_every_layer = c.label_every_layer;
    Ok(hp)
}

/// Adds one dense layer: weight `[in, out]` (Q8_0 rows zero-padded to a
/// multiple of 32 inputs) in `prec`, bias `[out]` and any per-class bias
/// table `[out, K]` in F32.
pub fn add_layer(w: &mut GgufWriter, l: &Layer<'_>, prec: Precision) -> Result<()> {
    add_weight(w, l, prec)?;
    w.add_tensor(
        &format!("{}.bias", l.name),
        &[l.out as u64],
        GgmlType::F32,
        l.b,
    )
    .with_context(|| format!("tensor {}.bias", l.name))?;
    if let Some(t) = l.label {
        let k = t.len() / l.out.max(1);
        w.add_tensor(
            &format!("{}.label.weight", l.name),
            &[l.out as u64, k as u64],
            GgmlType::F32,
            t,
        )
        .with_context(|| format!("tensor {}.label.weight", l.name))?;
    }
    Ok(())
}

/// Adds a layer's weight only: `[in, out]` in `prec`, Q8_0 rows zero-padded
/// to a multiple of 32 inputs.
pub fn add_weight(w: &mut GgufWriter, l: &Layer<'_>, prec: Precision) -> Result<()> {
    add_matrix(w, &format!("{}.weight", l.name), l, prec)
}

/// Adds `l`'s weight under the tensor name `name` (for names that are not
/// `{layer}.weight`, such as a GRU's `gru.weight_ih`).
pub fn add_matrix(w: &mut GgufWriter, name: &str, l: &Layer<'_>, prec: Precision) -> Result<()> {
    // Every family's matrices pass here, so this is where the activation
    // mode is recorded, once.
    if prec.int8_activations() && !w.contains_key(arch::keys::ACTIVATIONS) {
        prec.act_quant().write(w)?;
    }
    match prec {
        Precision::Q8_0 | Precision::Q8_0A8 => {
            let pad = l.inp.div_ceil(32) * 32;
            let mut padded = vec![0f32; l.out * pad];
            for r in 0..l.out {
                padded[r * pad..r * pad + l.inp].copy_from_slice(&l.w[r * l.inp..(r + 1) * l.inp]);
            }
            w.add_tensor(name, &[pad as u64, l.out as u64], GgmlType::Q8_0, &padded)
        }
        _ => w.add_tensor(name, &[l.inp as u64, l.out as u64], prec.ggml(), l.w),
    }
    .with_context(|| format!("tensor {name}"))?;
    Ok(())
}

/// The GGUF bytes of one part of a VAE.
pub fn vae_to_gguf(m: &Vae, p: &[f32], part: Part, prec: Precision, name: &str) -> Result<Vec<u8>> {
    let mut w = GgufWriter::new();
    hparams(m)?.write(&mut w)?;
    w.add(arch::keys::NAME, name)?;
    w.add(
        arch::vae::PART,
        match part {
            Part::Decoder => arch::vae::Part::Decoder,
            Part::Encoder => arch::vae::Part::Encoder,
        }
        .name(),
    )?;
    for l in super::vae_layers(m, p, part)? {
        add_layer(&mut w, &l, prec)?;
    }
    Ok(w.to_bytes())
}
