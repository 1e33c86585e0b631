//! Audio GRU -> GGUF, following `formats/README.md` (`edgegen.audio`): the
//! code embedding and the three matrices in the chosen precision (Q8_0
//! rows zero-padded to whole blocks, as every family's), the class table
//! and the biases in F32.

use super::gguf::{add_layer, add_matrix, add_weight};
use super::{Layer, Precision};
use crate::models::rnn::Rnn;
use crate::train::audio::AudioModelConfig;
use anyhow::{Context, Result};
use edgegen_format::arch::{self, audio as a};
use edgegen_format::{GgmlType, GgufWriter, OwnedValue};

/// The format crate's hyperparameters for a host model.
pub fn hparams(m: &Rnn, mc: &AudioModelConfig) -> a::Hparams {
    let c = &m.cfg;
    a::Hparams {
        vocab_size: c.vocab as u32,
        embedding_length: c.embed as u32,
        state_length: c.hidden as u32,
        n_classes: c.n_classes as u32,
        sample_rate: mc.sample_rate,
    }
}

/// The tensor `name` of `p`, as the layout places it.
fn tensor<'a>(m: &Rnn, p: &'a [f32], name: &str) -> Result<&'a [f32]> {
    let e = m
        .layout
        .get(name)
        .with_context(|| format!("the model has no tensor {name}"))?;
    Ok(&p[e.range()])
}

/// The model's matrices as [`Layer`]s under their GGUF names, from the
/// host names (`tok_embd`, `gru.weight_ih`, ...): the code embedding (no
/// bias), the GRU's input and state projections, and the head.
pub fn layers<'a>(m: &Rnn, p: &'a [f32]) -> Result<[Layer<'a>; 4]> {
    let c = &m.cfg;
    let l = |name: &str, w: &'a [f32], b: &'a [f32], inp: usize, out: usize| Layer {
        name: name.into(),
        w,
        b,
        inp,
        out,
        act: None,
        label: None,
    };
    Ok([
        l(
            "token_embd",
            tensor(m, p, "tok_embd.weight")?,
            &[],
            c.embed,
            c.vocab,
        ),
        l(
            "gru.weight_ih",
            tensor(m, p, "gru.weight_ih")?,
            tensor(m, p, "gru.bias_ih")?,
            c.embed,
            3 * c.hidden,
        ),
        l(
            "gru.weight_hh",
            tensor(m, p, "gru.weight_hh")?,
            tensor(m, p, "gru.bias_hh")?,
            c.hidden,
            3 * c.hidden,
        ),
        l(
            "output",
            tensor(m, p, "output.weight")?,
            tensor(m, p, "output.bias")?,
            c.hidden,
            c.vocab,
        ),
    ])
}

/// The GGUF bytes of an audio model, its weights `p` stored in `prec`.
pub fn to_gguf(
    m: &Rnn,
    mc: &AudioModelConfig,
    p: &[f32],
    prec: Precision,
    name: &str,
) -> Result<Vec<u8>> {
    let c = &m.cfg;
    let mut w = GgufWriter::new();
    hparams(m, mc).write(&mut w)?;
    w.add(arch::keys::NAME, name)?;
    if !mc.classes.is_empty() {
        let names: Vec<&str> = mc.classes.iter().map(String::as_str).collect();
        w.add(a::CLASS_NAMES, OwnedValue::strs(&names))?;
    }
    let [tok, ih, hh, out] = layers(m, p)?;
    add_weight(&mut w, &tok, prec)?;
    if c.n_classes > 0 {
        w.add_tensor(
            a::CLASS_EMBD,
            &[c.embed as u64, c.n_classes as u64],
            GgmlType::F32,
            tensor(m, p, "cls_embd.weight")?,
        )
        .with_context(|| format!("tensor {}", a::CLASS_EMBD))?;
    }
    // Not `{layer}.weight` and `{layer}.bias`: PyTorch's names.
    for (l, bias) in [(&ih, a::GRU_BIAS_IH), (&hh, a::GRU_BIAS_HH)] {
        add_matrix(&mut w, &l.name, l, prec)?;
        w.add_tensor(bias, &[l.out as u64], GgmlType::F32, l.b)
            .with_context(|| format!("tensor {bias}"))?;
    }
    add_layer(&mut w, &out, prec)?;
    Ok(w.to_bytes())
}

/// Replaces every matrix of `p` (the ones [`to_gguf`] stores in `prec`) by
/// what that precision keeps: the host model a device's file computes.
pub fn store(m: &Rnn, p: &mut [f32], prec: Precision) {
    super::store_matrices(&m.layout, p, prec, &["cls_embd"]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::rnn::RnnConfig;
    use crate::rng::Rng;
    use crate::validate::audio::{host_model, host_steps, runtime_steps};
    use edgegen_runtime::models::audio::Audio;

    /// The device runtime, stepping with its state carried, computes what
    /// the host's GRU computes through time on the stored weights, at every
    /// precision; and the host model rebuilt from the file is that model.
    #[test]
    fn the_runtime_steps_what_the_host_computes_at_every_precision() {
        for k in [0, 3] {
            let m = Rnn::new(RnnConfig {
                vocab: 256,
                embed: 12,
                hidden: 40,
                n_classes: k,
                ..RnnConfig::default()
            })
            .unwrap();
            let mut p = vec![0f32; m.layout.total()];
            m.init(&mut p, &mut Rng::new(5));
            // Larger weights than the init's, so that the gates leave
            // their linear range.
            p.iter_mut().for_each(|v| *v *= 3.0);
            let mc = AudioModelConfig {
                rnn: m.cfg.clone(),
                frames: None,
                sample_rate: 8000,
                classes: (0..k).map(|i| format!("c{i}")).collect(),
            };
            let label = (k > 0).then_some(2);
            let codes: Vec<u32> = (0..60).map(|i| (i * 37 % 256) as u32).collect();
            for prec in [
                Precision::F32,
                Precision::F16,
                Precision::Q8_0,
                Precision::Q8_0A8,
            ] {
                let bytes = to_gguf(&m, &mc, &p, prec, "a").unwrap();
                let g = edgegen_format::Gguf::parse(&bytes).unwrap();
                let dev = Audio::from_gguf(&g).unwrap();
                assert_eq!(dev.macs(), m.cfg.macs_per_sample());
                let mut stored = p.clone();
                store(&m, &mut stored, prec);
                let (hm, hp) = host_model(&g).unwrap();
                // The file's model, int8 inputs included where stored.
                let mut qm = m.clone();
                qm.set_int8_inputs(prec.int8_activations());
                assert_eq!(hm, qm);
                let worst = stored
                    .iter()
                    .zip(&hp)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(worst < 1e-6, "{prec:?}: stored weights differ by {worst}");
                let got = runtime_steps(&dev, &codes, label, None).unwrap();
                let want = host_steps(&qm, &stored, &codes, label);
                for (what, g, w) in [("logits", &got[0], &want[0]), ("h", &got[1], &want[1])] {
                    assert_eq!(g.len(), w.len());
                    let err = g
                        .iter()
                        .zip(w)
                        .map(|(a, b)| (a - b).abs() / b.abs().max(1.0))
                        .fold(0f32, f32::max);
                    assert!(err < 2e-5, "{prec:?}, k {k}, {what}: {err}");
                }
                // Quantization moves the logits, but not far.
                if prec != Precision::F32 {
                    let exact = host_steps(&m, &p, &codes, label);
                    let d = got[0]
                        .iter()
                        .zip(&exact[0])
                        .map(|(a, b)| (a - b).abs())
                        .fold(0f32, f32::max);
                    assert!(d > 0.0 && d < 0.5, "{prec:?}: {d}");
                }
            }
        }
    }
}
