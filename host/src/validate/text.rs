//! The text family's producer: a seeded symbol sequence fed one symbol at a
//! time to the device runtime (its KV cache, from the GGUF) and, for the
//! host, a full forward pass over the same window at every step (on the
//! weights the GGUF stores), comparing the logits at every step.
//!
//! ONNX Runtime and tract join when the decode-step ONNX export exists;
//! until then this is the runtime against the host only.

use crate::export::{Precision, text::store};
use crate::models::transformer::{Acts, Transformer};
use crate::nn::gemm::Threads;
use anyhow::{Result, anyhow};
use edgegen_format::Gguf;
use edgegen_format::arch::Family;
use edgegen_runtime::models::transformer::{ContextPolicy, State, Transformer as Dev};
use edgegen_runtime::sample::Rng;

/// What a step-by-step comparison found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Steps compared.
    pub steps: usize,
    /// Largest |runtime - host| over every logit of every step.
    pub max_abs: f32,
    /// The same, relative to the logit's magnitude (at least 1).
    pub max_rel: f32,
    /// The mean of those relative errors.
    pub mean_rel: f32,
}

impl StepReport {
    /// Within `tol` (relative), by validation's rule: every logit, or for
    /// int8 activations (`a8`), which a hidden value within a rounding
    /// error of a tie may flip ([`super::A8_FLIP_CAP`]), the mean, with no
    /// logit past the cap.
    pub fn within(&self, tol: f32, a8: bool) -> bool {
        if a8 {
            self.mean_rel <= tol && self.max_rel <= super::A8_FLIP_CAP
        } else {
            self.max_rel <= tol
        }
    }
}

/// Feeds `steps` seeded symbols (class `label`) to the runtime model in
/// `gguf` and compares each step's logits with the host model `m` on
/// parameters `p` as `prec` stores them. Past the context, both slide by
/// one (the runtime's `Slide { keep: context - 1 }`).
pub fn runtime_vs_host(
    m: &Transformer,
    p: &[f32],
    prec: Precision,
    gguf: &[u8],
    steps: usize,
    label: Option<u32>,
    seed: u64,
) -> Result<StepReport> {
    let g = Gguf::parse(gguf).map_err(|e| anyhow!("the GGUF: {e}"))?;
    let dev = Dev::from_gguf(&g, Family::Text).map_err(|e| anyhow!("the GGUF: {e}"))?;
    let mut hp = p.to_vec();
    store(m, &mut hp, prec);
    let mut quantizing = m.clone();
    quantizing.set_int8_inputs(prec.int8_activations());
    let m = &quantizing;
    let (t, v) = (m.cfg.context, m.cfg.vocab);
    let mut rng = Rng::new(seed);
    let seq: Vec<u32> = (0..steps)
        .map(|_| (rng.next_u32() % v as u32).min(v as u32 - 1))
        .collect();
    let mut kv = vec![0f32; dev.state_len()];
    let mut syms = vec![0u32; t];
    let mut st = State::new(&mut kv, &mut syms, label);
    let mut scratch = vec![0f32; dev.scratch_len()];
    let mut a = Acts::new(m, 1);
    a.labels[0] = label.unwrap_or(0);
    let (mut max_abs, mut max_rel, mut sum_rel, mut n) = (0f32, 0f32, 0f64, 0usize);
    for i in 0..steps {
        let got = dev
            .step(
                &mut st,
                seq[i],
                ContextPolicy::Slide { keep: t - 1 },
                &mut scratch,
            )
            .map_err(|e| anyhow!("runtime, step {i}: {e}"))?;
        let win = &seq[(i + 1).saturating_sub(t)..=i];
        a.tokens[..win.len()].copy_from_slice(win);
        m.forward(&hp, &mut a, 1, win.len(), Threads(1));
        let want = &a.logits[(win.len() - 1) * v..win.len() * v];
        for (x, y) in got.iter().zip(want) {
            let d = (x - y).abs();
            max_abs = max_abs.max(d);
            let rel = d / y.abs().max(1.0);
            max_rel = max_rel.max(rel);
            sum_rel += rel as f64;
            n += 1;
        }
    }
    Ok(StepReport {
        steps,
        max_abs,
        max_rel,
        mean_rel: (sum_rel / n.max(1) as f64) as f32,
    })
}

/// Rebuilds the host model of a text GGUF: its stored (dequantized)
/// weights in the host's layout, its matrices quantizing their inputs
/// where the file's do.
pub fn host_model(g: &Gguf<'_>) -> Result<(Transformer, Vec<f32>)> {
    use crate::models::transformer::TransformerConfig;
    use edgegen_format::arch::transformer::Hparams;
    let hp = Hparams::read(g, Family::Text)?;
    let mut m = Transformer::new(TransformerConfig {
        vocab: hp.vocab_size as usize,
        context: hp.context_length as usize,
        dim: hp.embedding_length as usize,
        layers: hp.block_count as usize,
        heads: hp.head_count as usize,
        kv_heads: hp.head_count_kv as usize,
        ffn: hp.feed_forward_length as usize,
        n_classes: hp.n_classes as usize,
        tied: hp.tied_output,
    })?;
    m.set_int8_inputs(
        edgegen_format::arch::ActQuant::read(g)? == edgegen_format::arch::ActQuant::Int8,
    );
    let mut p = vec![0f32; m.layout.total()];
    for e in &m.layout.entries {
        let t = g
            .tensor(&e.name)
            .ok_or_else(|| anyhow!("GGUF: tensor {} is missing", e.name))?;
        let mut v = vec![0f32; t.n_elements()];
        t.dequantize_into(&mut v)?;
        // Q8_0 rows are padded to whole blocks: cut them to the row.
        let cols = *e.shape.last().unwrap_or(&1);
        let stride = (t.shape()[0] as usize).max(1);
        let dst = &mut p[e.range()];
        for (o, r) in dst.chunks_exact_mut(cols).zip(v.chunks_exact(stride)) {
            o.copy_from_slice(&r[..cols]);
        }
    }
    Ok((m, p))
}

/// Validates a text model: a seeded sequence of up to a context of
/// symbols, one step at a time in every engine, the caches carried from
/// step to step, and the logits of every step compared.
pub fn produce(onnx: &[u8], g: &Gguf<'_>, n: usize, seed: u64) -> Result<super::Produced> {
    use super::io::Input;
    use super::{Engine, Produced};
    let dev = Dev::from_gguf(g, Family::Text).map_err(|e| anyhow!("GGUF: {e}"))?;
    let hp = dev.hp;
    let precision = g
        .tensor("blk.0.attn_qkv.weight")
        .map(|t| t.ggml_type())
        .unwrap_or(edgegen_format::GgmlType::F32);
    let (t, v, k) = (
        hp.context_length as usize,
        hp.vocab_size as usize,
        hp.n_classes as usize,
    );
    let steps = n.clamp(1, t);
    let mut rng = Rng::new(seed);
    let seq: Vec<u32> = (0..steps).map(|_| rng.next_u32() % v as u32).collect();
    let label = (k > 0).then(|| (seed % k as u64) as u32);
    let cache = [hp.block_count as usize, 1, t, hp.kv_dim()];
    let cache_len: usize = cache.iter().product();
    let feed = |i: usize, pk: &[f32], pv: &[f32]| {
        let mut ins = vec![
            Input::i64("token", &[1], vec![seq[i] as i64]),
            Input::i64("position", &[1], vec![i as i64]),
        ];
        if let Some(l) = label {
            ins.push(Input::i64("label", &[1], vec![l as i64]));
        }
        ins.push(Input::f32("past_k", &cache, pk.to_vec()));
        ins.push(Input::f32("past_v", &cache, pv.to_vec()));
        ins
    };
    let zeros = vec![0f32; cache_len];
    let [ort_logits, tract_logits] = super::onnx_steps(
        onnx,
        steps,
        vec![zeros.clone(), zeros],
        &["logits", "present_k", "present_v"],
        &["present_k", "present_v"],
        &["logits"],
        |i, state| feed(i, &state[0], &state[1]),
    )?
    .map(|mut kept| kept.remove(0));
    // The runtime, with its own cache.
    let mut kv = vec![0f32; dev.state_len()];
    let mut syms = vec![0u32; t];
    let mut st = State::new(&mut kv, &mut syms, label);
    let mut scratch = vec![0f32; dev.scratch_len()];
    let mut rt = Vec::with_capacity(steps * v);
    for (i, &s) in seq.iter().enumerate() {
        let l = dev
            .step(&mut st, s, ContextPolicy::Stop, &mut scratch)
            .map_err(|e| anyhow!("runtime, step {i}: {e}"))?;
        rt.extend_from_slice(l);
    }
    // The runtime with its cache in Q8_0 blocks, for information: its
    // rounding of every key and value is not the exported model's.
    let q8 = match dev.state_blocks() {
        Some(nb) => {
            let blank = edgegen_format::quant::BlockQ8_0 {
                d: [0; 2],
                qs: [0; 32],
            };
            let mut kv = vec![blank; nb];
            let mut syms = vec![0u32; t];
            let mut st = State::new_q8_0(&mut kv, &mut syms, label);
            let mut out = Vec::with_capacity(steps * v);
            for (i, &s) in seq.iter().enumerate() {
                let l = dev
                    .step(&mut st, s, ContextPolicy::Stop, &mut scratch)
                    .map_err(|e| anyhow!("runtime (Q8_0 cache), step {i}: {e}"))?;
                out.extend_from_slice(l);
            }
            Some(out)
        }
        None => None,
    };
    // The host: a full forward pass over the prefix at every step.
    let (m, p) = host_model(g)?;
    crate::nn::linear::take_a8_ties();
    let mut a = Acts::new(&m, 1);
    a.labels[0] = label.unwrap_or(0);
    let mut host = Vec::with_capacity(steps * v);
    for i in 0..steps {
        a.tokens[..=i].copy_from_slice(&seq[..=i]);
        m.forward(&p, &mut a, 1, i + 1, Threads(1));
        host.extend_from_slice(&a.logits[i * v..(i + 1) * v]);
    }
    let a8_ties = m.output_int8_inputs.then(crate::nn::linear::take_a8_ties);
    let engine = |name: &str, x: Vec<f32>| Engine {
        name: name.into(),
        outputs: vec![("logits".into(), x)],
        gating: true,
    };
    let mut engines = vec![
        engine("onnxruntime", ort_logits),
        engine("tract", tract_logits),
        engine("edgegen-runtime", rt),
        engine("edgegen-host", host),
    ];
    if let Some(x) = q8 {
        engines.push(Engine {
            name: "runtime Q8_0 KV".into(),
            outputs: vec![("logits".into(), x)],
            gating: false,
        });
    }
    Ok(Produced {
        part: "decode steps".into(),
        precision,
        engines,
        relative: vec!["logits".into()],
        n: Some(steps),
        a8_ties,
    })
}
