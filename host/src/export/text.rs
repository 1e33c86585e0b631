//! Text transformer -> GGUF, following `formats/README.md`
//! (`edgegen.text`): llama.cpp's tensor names, matrices in the chosen
//! precision (Q8_0 rows zero-padded to whole blocks, as the VAE's),
//! norms, biases and the position and class tables in F32.

use super::gguf::{add_layer, add_weight};
use super::{Layer, Precision};
use crate::models::transformer::Transformer;
use crate::train::text::TextModelConfig;
use anyhow::{Context, Result};
use edgegen_format::arch::{self, Family, transformer::Hparams};
use edgegen_format::{GgmlType, GgufWriter, OwnedValue};

/// The format crate's hyperparameters for a host model.
pub fn hparams(m: &Transformer) -> Hparams {
    let c = &m.cfg;
    Hparams {
        vocab_size: c.vocab as u32,
        context_length: c.context as u32,
        embedding_length: c.dim as u32,
        block_count: c.layers as u32,
        head_count: c.heads as u32,
        head_count_kv: c.kv_heads() as u32,
        feed_forward_length: c.ffn as u32,
        n_classes: c.n_classes as u32,
        layer_norm_epsilon: crate::nn::layernorm::EPS,
        tied_output: c.tied,
    }
}

/// The tensor `name` of `p`, as the layout places it.
fn tensor<'a>(m: &Transformer, p: &'a [f32], name: &str) -> Result<&'a [f32]> {
    let e = m
        .layout
        .get(name)
        .with_context(|| format!("the model has no tensor {name}"))?;
    Ok(&p[e.range()])
}

/// A linear layer `prefix` (`(out, in)` weight, then bias) as a [`Layer`].
fn linear<'a>(m: &Transformer, p: &'a [f32], prefix: &str) -> Result<Layer<'a>> {
    let w = m
        .layout
        .get(&format!("{prefix}.weight"))
        .with_context(|| format!("the model has no tensor {prefix}.weight"))?;
    Ok(Layer {
        name: prefix.into(),
        w: &p[w.range()],
        b: tensor(m, p, &format!("{prefix}.bias"))?,
        inp: w.shape[1],
        out: w.shape[0],
        act: None,
        label: None,
    })
}

fn add_f32(w: &mut GgufWriter, name: &str, shape: &[u64], v: &[f32]) -> Result<()> {
    w.add_tensor(name, shape, GgmlType::F32, v)
        .with_context(|| format!("tensor {name}"))
}

/// The GGUF bytes of a text model, its weights `p` stored in `prec`.
pub fn to_gguf(
    m: &Transformer,
    mc: &TextModelConfig,
    p: &[f32],
    prec: Precision,
    name: &str,
) -> Result<Vec<u8>> {
    use arch::transformer as t;
    let c = &m.cfg;
    let (ctx, d) = (c.context as u64, c.dim as u64);
    let mut w = GgufWriter::new();
    hparams(m).write(&mut w, Family::Text)?;
    w.add(arch::keys::NAME, name)?;
    w.add(t::VOCAB, mc.vocab.as_str())?;
    if mc.vocab == "chars" {
        w.add(t::CHARS, mc.chars.as_str())?;
    }
    if !mc.classes.is_empty() {
        let names: Vec<&str> = mc.classes.iter().map(String::as_str).collect();
        w.add(t::CLASS_NAMES_TEXT, OwnedValue::strs(&names))?;
    }
    // The token embedding is a matrix (rows are symbols): the tied output
    // layer multiplies by it.
    let tok = Layer {
        name: "token_embd".into(),
        w: tensor(m, p, t::TOKEN_EMBD)?,
        b: &[],
        inp: c.dim,
        out: c.vocab,
        act: None,
        label: None,
    };
    add_weight(&mut w, &tok, prec)?;
    add_f32(
        &mut w,
        t::POSITION_EMBD,
        &[d, ctx],
        tensor(m, p, t::POSITION_EMBD)?,
    )?;
    if c.n_classes > 0 {
        add_f32(
            &mut w,
            t::CLASS_EMBD,
            &[d, c.n_classes as u64],
            tensor(m, p, t::CLASS_EMBD)?,
        )?;
    }
    for i in 0..c.layers {
        for norm in ["attn_norm", "ffn_norm"] {
            for part in ["weight", "bias"] {
                let n = format!("blk.{i}.{norm}.{part}");
                add_f32(&mut w, &n, &[d], tensor(m, p, &n)?)?;
            }
        }
        for lin in ["attn_qkv", "attn_output", "ffn_up", "ffn_down"] {
            add_layer(&mut w, &linear(m, p, &format!("blk.{i}.{lin}"))?, prec)?;
        }
    }
    add_f32(
        &mut w,
        t::OUTPUT_NORM_WEIGHT,
        &[d],
        tensor(m, p, t::OUTPUT_NORM_WEIGHT)?,
    )?;
    add_f32(
        &mut w,
        t::OUTPUT_NORM_BIAS,
        &[d],
        tensor(m, p, t::OUTPUT_NORM_BIAS)?,
    )?;
    if !c.tied {
        let out = Layer {
            name: "output".into(),
            w: tensor(m, p, t::OUTPUT)?,
            b: &[],
            inp: c.dim,
            out: c.vocab,
            act: None,
            label: None,
        };
        add_weight(&mut w, &out, prec)?;
    }
    Ok(w.to_bytes())
}

/// Replaces every matrix of `p` (the ones [`to_gguf`] stores in `prec`) by
/// what that precision keeps: the host model a device's file computes.
pub fn store(m: &Transformer, p: &mut [f32], prec: Precision) {
    super::store_matrices(&m.layout, p, prec, &["position_embd", "class_embd"]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::transformer::TransformerConfig;
    use crate::rng::Rng;
    use crate::validate::text::runtime_vs_host;
    use edgegen_runtime::models::transformer::{ContextPolicy, KvElem, State, Transformer as Dev};

    /// A random model with weights 4 times the init's, so that the logits
    /// differ (at 8 times, attention is so peaked that summation order
    /// alone moves a logit by 5e-4 relative).
    fn small(
        dim: usize,
        kv_heads: usize,
        k: usize,
        tied: bool,
    ) -> (Transformer, Vec<f32>, TextModelConfig) {
        let m = Transformer::new(TransformerConfig {
            vocab: 256,
            context: 8,
            dim,
            layers: 2,
            heads: 2,
            kv_heads,
            ffn: 48,
            n_classes: k,
            tied,
        })
        .unwrap();
        let mut p = vec![0f32; m.layout.total()];
        m.init(&mut p, &mut Rng::new(4));
        p.iter_mut().for_each(|v| *v *= 4.0);
        let mc = TextModelConfig {
            transformer: m.cfg.clone(),
            vocab: "bytes".into(),
            chars: String::new(),
            classes: (0..k).map(|i| i.to_string()).collect(),
        };
        (m, p, mc)
    }

    #[test]
    fn a_resumed_cache_continues_bit_for_bit() {
        let (m, p, mc) = small(64, 1, 3, false); // a K/V width of 32
        let bytes = to_gguf(&m, &mc, &p, Precision::Q8_0A8, "t").unwrap();
        let g = edgegen_format::Gguf::parse(&bytes).unwrap();
        let dev = Dev::from_gguf(&g, Family::Text).unwrap();
        let blank = edgegen_format::quant::BlockQ8_0 {
            d: [0; 2],
            qs: [0; 32],
        };
        continues(&dev, vec![0f32; dev.state_len()], |kv, s, n, l| {
            State::resume(kv, s, n, l)
        });
        continues(
            &dev,
            vec![blank; dev.state_blocks().unwrap()],
            |kv, s, n, l| State::resume_q8_0(kv, s, n, l),
        );
    }

    /// [`State::resume`] or [`State::resume_q8_0`].
    type Resume<E> = for<'s> fn(&'s mut [E], &'s mut [u32], usize, Option<u32>) -> State<'s, E>;

    /// A state fed a prompt and then two symbols, and one resumed from a
    /// copy of its buffers after the prompt (the two symbols after it
    /// overwrote positions 5 and 6 only), give the same two logits.
    fn continues<E: KvElem + Clone + std::fmt::Debug>(
        dev: &Dev<'_>,
        mut kv: Vec<E>,
        resume: Resume<E>,
    ) {
        let mut scratch = vec![0f32; dev.scratch_len()];
        let prompt = [5u32, 200, 17, 3, 99];
        let mut syms = vec![0u32; 8];
        let mut next = |st: &mut State<'_, E>, s: u32| -> Vec<u32> {
            let l = dev.step(st, s, ContextPolicy::Stop, &mut scratch).unwrap();
            l.iter().map(|x| x.to_bits()).collect()
        };
        let mut st = resume(&mut kv, &mut syms, 0, Some(1));
        for &s in &prompt {
            next(&mut st, s);
        }
        let want = [next(&mut st, 42), next(&mut st, 7)];
        let (mut kv_b, mut syms_b) = (kv.clone(), syms.clone());
        let mut st = resume(&mut kv_b, &mut syms_b, prompt.len(), Some(1));
        assert_eq!(st.symbols(), &prompt);
        let got = [next(&mut st, 42), next(&mut st, 7)];
        assert_eq!(got, want, "{}", std::any::type_name::<E>());
    }

    #[test]
    fn int8_activations_validate_with_every_engine_on_the_hosts_cache() {
        let (m, p, mc) = small(64, 1, 3, false); // a K/V width of 32
        for (prec, part) in [
            (Precision::Q8_0, "decode steps"),
            (Precision::Q8_0A8, "decode steps on the host's cache"),
        ] {
            let gguf = to_gguf(&m, &mc, &p, prec, "t").unwrap();
            let onnx = crate::export::onnx::text_to_onnx(&m, &p, prec, "t").unwrap();
            let r = crate::validate::validate(&onnx, &gguf, 8, 2).unwrap();
            assert!(r.ok, "{prec:?}: {r:?}");
            assert_eq!(r.part, part);
            assert_eq!(r.outputs, ["logits", "kv"]);
            // Every engine wrote its keys and values as the others did
            // (and, with f32 activations, within the tolerance).
            let kv = r.pairs.iter().filter(|e| e.output == "kv" && e.gating);
            assert_eq!(kv.clone().count(), 6);
            for e in kv {
                assert!(e.mean_abs <= e.tolerance, "{prec:?}: {e:?}");
            }
        }
    }

    #[test]
    fn the_runtime_decodes_what_the_host_computes_at_every_precision() {
        for (tied, k) in [(false, 3), (true, 0)] {
            let (m, p, mc) = small(32, if tied { 1 } else { 2 }, k, tied);
            let label = (k > 0).then_some(2);
            for prec in [
                Precision::F32,
                Precision::F16,
                Precision::Q8_0,
                Precision::Q8_0A8,
            ] {
                let bytes = to_gguf(&m, &mc, &p, prec, "t").unwrap();
                // 13 steps: past the context of 8, so the window slides.
                let r = runtime_vs_host(&m, &p, prec, &bytes, 13, label, 5).unwrap();
                assert!(r.max_rel < 5e-5, "{prec:?}, tied {tied}: {r:?}");
                // Stop refuses the ninth symbol.
                let g = edgegen_format::Gguf::parse(&bytes).unwrap();
                let dev = Dev::from_gguf(&g, Family::Text).unwrap();
                let mut kv = vec![0f32; dev.state_len()];
                let mut syms = vec![0u32; 8];
                let mut st = State::new(&mut kv, &mut syms, label);
                let mut scratch = vec![0f32; dev.scratch_len()];
                let seq = [1u32, 2, 3, 4, 5, 6, 7, 8];
                dev.prefill(&mut st, &seq, ContextPolicy::Stop, &mut scratch)
                    .unwrap();
                let e = dev
                    .step(&mut st, 1, ContextPolicy::Stop, &mut scratch)
                    .unwrap_err();
                assert!(matches!(
                    e,
                    edgegen_format::Error::ContextFull { context: 8 }
                ));
            }
        }
    }
}
