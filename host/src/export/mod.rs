//! Export of trained models: GGUF weight files for the runtime and ONNX
//! graphs for everything else. Both read the same layer list, so what one
//! file holds the other computes.

pub mod audio;
pub mod gan;
pub mod gguf;
pub mod onnx;
pub mod text;

use crate::models::vae::Vae;
use anyhow::{Result, bail};
use edgegen_format::arch::Activation;
use serde::Serialize;

/// How weights are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 32-bit floats.
    F32,
    /// IEEE half floats.
    F16,
    /// ggml Q8_0 blocks (34 bytes per 32 weights).
    #[value(name = "q8_0")]
    Q8_0,
    /// Q8_0 weights times int8 activations: each layer's input quantized
    /// per block of 32 (rounded half to even), so the products sum in
    /// integers; stored as `edgegen.activations = "int8"`.
    #[value(name = "q8_0a8")]
    #[serde(rename = "q8_0a8")]
    Q8_0A8,
}

impl Precision {
    /// The ggml type of the weights.
    pub fn ggml(self) -> edgegen_format::GgmlType {
        match self {
            Precision::F32 => edgegen_format::GgmlType::F32,
            Precision::F16 => edgegen_format::GgmlType::F16,
            Precision::Q8_0 | Precision::Q8_0A8 => edgegen_format::GgmlType::Q8_0,
        }
    }

    /// Whether layer inputs are quantized to int8 ([`Precision::Q8_0A8`]).
    pub fn int8_activations(self) -> bool {
        self == Precision::Q8_0A8
    }

    /// What the GGUF's `edgegen.activations` key says.
    pub fn act_quant(self) -> edgegen_format::arch::ActQuant {
        if self.int8_activations() {
            edgegen_format::arch::ActQuant::Int8
        } else {
            edgegen_format::arch::ActQuant::F32
        }
    }
}

/// Which network of a VAE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    /// `[z, onehot] -> pixels`: what a device samples with.
    Decoder,
    /// `[x, onehot] -> (mu, logvar)`.
    Encoder,
}

/// One dense layer to export: `y = act(W x + b)`, W `(out, in)` row-major.
#[derive(Debug, Clone)]
pub struct Layer<'a> {
    /// Tensor name prefix, e.g. `dec.0`.
    pub name: String,
    /// `(out, in)` weights.
    pub w: &'a [f32],
    /// `(out)` bias.
    pub b: &'a [f32],
    /// Input features.
    pub inp: usize,
    /// Output features.
    pub out: usize,
    /// Activation after the layer, if any.
    pub act: Option<Activation>,
    /// A per-class bias `(K, out)` added before the activation: row
    /// `label` (a conditional VAE decoder's later layers).
    pub label: Option<&'a [f32]>,
}

/// The layers of one part of a VAE, in order. For the encoder, the last
/// two are the mu and logvar heads, which both read the last hidden layer.
pub fn vae_layers<'a>(m: &Vae, p: &'a [f32], part: Part) -> Result<Vec<Layer<'a>>> {
    let act = m.cfg.activation()?;
    let get = |name: &str| -> Result<&'a [f32]> {
        let e = m
            .layout
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("tensor {name} is not in the model"))?;
        Ok(&p[e.range()])
    };
    let mut v = vec![];
    let (list, n_hidden): (Vec<_>, usize) = match part {
        Part::Decoder => (
            m.dec
                .iter()
                .enumerate()
                .map(|(i, l)| (format!("dec.{i}"), *l))
                .collect(),
            m.dec.len() - 1,
        ),
        Part::Encoder => (
            m.enc
                .iter()
                .enumerate()
                .map(|(i, l)| (format!("enc.{i}"), *l))
                .collect(),
            m.enc.len(),
        ),
    };
    for (i, (name, l)) in list.into_iter().enumerate() {
        v.push(Layer {
            w: get(&format!("{name}.weight"))?,
            b: get(&format!("{name}.bias"))?,
            inp: l.inp,
            out: l.out,
            act: (i < n_hidden).then_some(act),
            label: match part {
                Part::Decoder if m.dec_label[i].is_some() => {
                    Some(get(&format!("{name}.label.weight"))?)
                }
                _ => None,
            },
            name,
        });
    }
    if part == Part::Encoder {
        for head in ["enc.mu", "enc.logvar"] {
            v.push(Layer {
                w: get(&format!("{head}.weight"))?,
                b: get(&format!("{head}.bias"))?,
                inp: m.heads.inp,
                out: m.heads.out / 2,
                act: None,
                label: None,
                name: head.to_string(),
            });
        }
    }
    if v.is_empty() {
        bail!("the model has no layers to export");
    }
    Ok(v)
}

/// The values a stored weight holds after storage: f32 as is, f16 rounded,
/// Q8_0 quantized per block of 32 along each row (rows zero-padded to whole
/// blocks), all widened back to f32 and cut to `(out, in)`.
pub fn stored_values(w: &[f32], out: usize, inp: usize, prec: Precision) -> Vec<f32> {
    use edgegen_format::quant::{self, BlockQ8_0};
    match prec {
        Precision::F32 => w.to_vec(),
        Precision::F16 => w
            .iter()
            .map(|&x| quant::f16_bits_to_f32(quant::f32_to_f16_bits(x)))
            .collect(),
        Precision::Q8_0 | Precision::Q8_0A8 => {
            let pad = inp.div_ceil(32) * 32;
            let mut out_v = Vec::with_capacity(out * inp);
            let mut row = vec![0f32; pad];
            let mut deq = vec![0f32; pad];
            let mut blocks = vec![
                BlockQ8_0 {
                    d: [0; 2],
                    qs: [0; 32]
                };
                pad / 32
            ];
            for r in 0..out {
                row[..inp].copy_from_slice(&w[r * inp..(r + 1) * inp]);
                row[inp..].fill(0.0);
                quant::quantize_q8_0(&row, &mut blocks);
                quant::dequantize_q8_0(&blocks, &mut deq);
                out_v.extend_from_slice(&deq[..inp]);
            }
            out_v
        }
    }
}

/// Replaces the decoder's weights in `p` by what `prec` stores (biases stay
/// f32, as in the export), and makes its layers quantize their inputs
/// where `prec` does: the decoder a device runs.
pub fn store_decoder(m: &mut Vae, p: &mut [f32], prec: Precision) {
    for l in &mut m.dec {
        let w = &mut p[l.offset..l.offset + l.out * l.inp];
        let stored = stored_values(w, l.out, l.inp, prec);
        w.copy_from_slice(&stored);
        l.int8_inputs = prec.int8_activations();
    }
}

/// Replaces every matrix of `p` in `layout` but the tables named in
/// `f32_tables` (which the GGUF keeps in F32) by what `prec` stores: the
/// host model a device's file computes, for the sequence families.
pub fn store_matrices(
    layout: &crate::nn::params::Layout,
    p: &mut [f32],
    prec: Precision,
    f32_tables: &[&str],
) {
    for e in &layout.entries {
        if e.shape.len() == 2 && !f32_tables.iter().any(|t| e.name.starts_with(t)) {
            let w = &mut p[e.range()];
            let stored = stored_values(w, e.shape[0], e.shape[1], prec);
            w.copy_from_slice(&stored);
        }
    }
}
