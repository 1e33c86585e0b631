//! The text family's producer: a seeded symbol sequence fed one symbol at a
//! time to ONNX Runtime and tract (the decode-step graph) and the device
//! runtime (its KV cache, from the GGUF) and, for the host, a full forward
//! pass over the prefix at every step (on the weights the GGUF stores),
//! comparing the logits and the cache rows of every step ([`produce`]);
//! and the runtime's sliding window against the host past the context
//! ([`runtime_vs_host`]).

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
    /// Whether every step past the context (where the runtime slid its
    /// window) gave the same bits as a fresh state fed that window.
    pub slide_exact: bool,
}

impl StepReport {
    /// Within `tol` (relative), by validation's rule: the slid steps
    /// exactly as a fresh window, and every logit within `tol`; for int8
    /// activations (`a8`), the mean. A hidden value within a rounding
    /// error of a tie may round apart in the runtime and the host
    /// ([`super::A8_FLIP_CAP`]), and the runtime's cache carries that code
    /// into every later position, where the host recomputes the window at
    /// every step; so past a trained model's first few dozen positions a
    /// logit may drift by more than one flip's worth. (`edgegen validate`
    /// holds each step to the flip rule by feeding every engine the same
    /// cache.)
    pub fn within(&self, tol: f32, a8: bool) -> bool {
        self.slide_exact
            && if a8 {
                self.mean_rel <= tol
            } else {
                self.max_rel <= tol
            }
    }
}

/// Feeds `steps` seeded symbols (class `label`) to the runtime model in
/// `gguf` and compares each step's logits with the host model `m` on
/// parameters `p` as `prec` stores them. Past the context, both slide by
/// one (the runtime's `Slide { keep: context - 1 }`), and each slid step is
/// also compared, bit for bit, with a fresh runtime state fed the window.
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
    let (mut fresh_kv, mut fresh_syms) = (vec![0f32; dev.state_len()], vec![0u32; t]);
    let mut fresh_scratch = scratch.clone();
    let mut slide_exact = true;
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
        if i >= t {
            let mut fresh = State::new(&mut fresh_kv, &mut fresh_syms, label);
            let want = dev
                .prefill(&mut fresh, win, ContextPolicy::Stop, &mut fresh_scratch)
                .map_err(|e| anyhow!("runtime, a fresh window at step {i}: {e}"))?;
            slide_exact &= want
                .iter()
                .map(|x| x.to_bits())
                .eq(got.iter().map(|x| x.to_bits()));
        }
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
        slide_exact,
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
/// symbols, one step at a time in every engine, comparing each step's
/// logits and the keys and values it writes to the cache.
///
/// With f32 activations every engine carries its own cache from step to
/// step, so the whole context's bookkeeping is checked. With int8
/// activations (`q8_0a8`) every engine is fed, at every step, the cache
/// the host wrote at the steps before: a hidden value within a rounding
/// error of a tie may round apart in two engines (see
/// [`super::A8_FLIP_CAP`]), and in an engine's own cache that one code
/// would move every later position, so over a trained model's context the
/// engines would drift apart by far more than one flip (measured on a
/// 256-symbol context: a mean error of 5e-3 against the tolerance of
/// 9e-4, ONNX Runtime against tract included). Fed the same cache, each
/// step is held to the int8 rule on its own, and each engine's writing of
/// the cache still is compared (the `kv` output).
pub fn produce(onnx: &[u8], g: &Gguf<'_>, n: usize, seed: u64) -> Result<super::Produced> {
    use super::io::Input;
    use super::{Engine, Produced};
    use edgegen_format::quant::{BlockQ8_0, dequantize_q8_0, quantize_q8_0};
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
    let (layers, ckv) = (hp.block_count as usize, hp.kv_dim());
    // Per step, the `kv` output: for each block, the key then the value
    // written at that step's position.
    let row = layers * 2 * ckv;
    let steps = n.clamp(1, t);
    let mut rng = Rng::new(seed);
    let seq: Vec<u32> = (0..steps).map(|_| rng.next_u32() % v as u32).collect();
    let label = (k > 0).then(|| (seed % k as u64) as u32);

    // The host first: a full forward pass over the prefix at every step,
    // its logits and the keys and values of the step's position.
    let (m, p) = host_model(g)?;
    let shared = m.output_int8_inputs;
    crate::nn::linear::take_a8_ties();
    let mut a = Acts::new(&m, 1);
    a.labels[0] = label.unwrap_or(0);
    let (c, w) = (m.cfg.dim, m.blocks[0].attn.qkv_dim());
    let mut host = Vec::with_capacity(steps * v);
    let mut host_kv = Vec::with_capacity(steps * row);
    for i in 0..steps {
        a.tokens[..=i].copy_from_slice(&seq[..=i]);
        m.forward(&p, &mut a, 1, i + 1, Threads(1));
        host.extend_from_slice(&a.logits[i * v..(i + 1) * v]);
        for l in 0..layers {
            host_kv.extend_from_slice(&a.qkv[(l * a.cap + i) * w + c..][..2 * ckv]);
        }
    }
    let a8_ties = shared.then(crate::nn::linear::take_a8_ties);
    // The host's cache before step `i`, in the ONNX layout `[L, 1, T, Ckv]`.
    let host_cache = |i: usize| {
        let (mut pk, mut pv) = (vec![0f32; layers * t * ckv], vec![0f32; layers * t * ckv]);
        for j in 0..i {
            for l in 0..layers {
                let r = &host_kv[j * row + l * 2 * ckv..][..2 * ckv];
                pk[(l * t + j) * ckv..][..ckv].copy_from_slice(&r[..ckv]);
                pv[(l * t + j) * ckv..][..ckv].copy_from_slice(&r[ckv..]);
            }
        }
        (pk, pv)
    };

    let cache = [layers, 1, t, ckv];
    let feed = |i: usize, state: &[Vec<f32>]| {
        let mut ins = vec![
            Input::i64("token", &[1], vec![seq[i] as i64]),
            Input::i64("position", &[1], vec![i as i64]),
        ];
        if let Some(l) = label {
            ins.push(Input::i64("label", &[1], vec![l as i64]));
        }
        let (pk, pv) = if shared {
            host_cache(i)
        } else {
            (state[0].clone(), state[1].clone())
        };
        ins.push(Input::f32("past_k", &cache, pk));
        ins.push(Input::f32("past_v", &cache, pv));
        ins
    };
    let zeros = vec![0f32; layers * t * ckv];
    let onnx_out = super::onnx_steps(
        onnx,
        steps,
        vec![zeros.clone(), zeros],
        &["present_k", "present_v"],
        &["logits", "present_k", "present_v"],
        feed,
        // Of the present cache, only the step's position is kept.
        |i, name, x| match name {
            "logits" => x.to_vec(),
            _ => (0..layers)
                .flat_map(|l| &x[(l * t + i) * ckv..][..ckv])
                .copied()
                .collect(),
        },
    )?;
    let [ort_out, tract_out] = onnx_out.map(|kept| {
        let [logits, pk, pv] = <[Vec<f32>; 3]>::try_from(kept).expect("three outputs kept");
        let kv = (0..steps * layers)
            .flat_map(|r| pk[r * ckv..][..ckv].iter().chain(&pv[r * ckv..][..ckv]))
            .copied()
            .collect::<Vec<f32>>();
        vec![logits, kv]
    });

    // The runtime, resumed at every step from its buffers: its own cache,
    // or with int8 activations the host's rows before the step.
    let blocks = |l: usize| 2 * l * t * ckv..2 * (l + 1) * t * ckv;
    let mut kv = vec![0f32; dev.state_len()];
    let mut syms = vec![0u32; t];
    let mut scratch = vec![0f32; dev.scratch_len()];
    let (mut rt, mut rt_kv) = (
        Vec::with_capacity(steps * v),
        Vec::with_capacity(steps * row),
    );
    for (i, &s) in seq.iter().enumerate() {
        if shared && i > 0 {
            for l in 0..layers {
                let r = &host_kv[(i - 1) * row + l * 2 * ckv..][..2 * ckv];
                let (kc, vc) = kv[blocks(l)].split_at_mut(t * ckv);
                kc[(i - 1) * ckv..][..ckv].copy_from_slice(&r[..ckv]);
                vc[(i - 1) * ckv..][..ckv].copy_from_slice(&r[ckv..]);
            }
        }
        let mut st = State::resume(&mut kv, &mut syms, i, label);
        let l = dev
            .step(&mut st, s, ContextPolicy::Stop, &mut scratch)
            .map_err(|e| anyhow!("runtime, step {i}: {e}"))?;
        rt.extend_from_slice(l);
        for l in 0..layers {
            let (kc, vc) = kv[blocks(l)].split_at(t * ckv);
            rt_kv.extend_from_slice(&kc[i * ckv..][..ckv]);
            rt_kv.extend_from_slice(&vc[i * ckv..][..ckv]);
        }
    }
    // The runtime with its cache in Q8_0 blocks, for information: its
    // rounding of every key and value is not the exported model's. With
    // int8 activations it too starts each step from the host's rows
    // (rounded to its blocks).
    let q8 = match dev.state_blocks() {
        Some(nb) => {
            let bpr = ckv / edgegen_format::quant::QK8_0;
            let blank = BlockQ8_0 {
                d: [0; 2],
                qs: [0; 32],
            };
            let mut kv = vec![blank; nb];
            let mut syms = vec![0u32; t];
            let (mut out, mut out_kv) = (Vec::with_capacity(steps * v), vec![]);
            let mut deq = vec![0f32; ckv];
            for (i, &s) in seq.iter().enumerate() {
                let at = |l: usize, half: usize, pos: usize| {
                    ((2 * l + half) * t + pos) * bpr..((2 * l + half) * t + pos + 1) * bpr
                };
                if shared && i > 0 {
                    for l in 0..layers {
                        let r = &host_kv[(i - 1) * row + l * 2 * ckv..][..2 * ckv];
                        quantize_q8_0(&r[..ckv], &mut kv[at(l, 0, i - 1)]);
                        quantize_q8_0(&r[ckv..], &mut kv[at(l, 1, i - 1)]);
                    }
                }
                let mut st = State::resume_q8_0(&mut kv, &mut syms, i, label);
                let l = dev
                    .step(&mut st, s, ContextPolicy::Stop, &mut scratch)
                    .map_err(|e| anyhow!("runtime (Q8_0 cache), step {i}: {e}"))?;
                out.extend_from_slice(l);
                for l in 0..layers {
                    for half in 0..2 {
                        dequantize_q8_0(&kv[at(l, half, i)], &mut deq);
                        out_kv.extend_from_slice(&deq);
                    }
                }
            }
            Some(vec![out, out_kv])
        }
        None => None,
    };
    let engine = |name: &str, x: Vec<Vec<f32>>, gating: bool| Engine {
        name: name.into(),
        outputs: ["logits", "kv"]
            .into_iter()
            .map(String::from)
            .zip(x)
            .collect(),
        gating,
    };
    let mut engines = vec![
        engine("onnxruntime", ort_out, true),
        engine("tract", tract_out, true),
        engine("edgegen-runtime", vec![rt, rt_kv], true),
        engine("edgegen-host", vec![host, host_kv], true),
    ];
    if let Some(x) = q8 {
        engines.push(engine("runtime Q8_0 KV", x, false));
    }
    Ok(Produced {
        part: if shared {
            "decode steps on the host's cache".into()
        } else {
            "decode steps".into()
        },
        precision,
        engines,
        relative: vec!["logits".into(), "kv".into()],
        n: Some(steps),
        a8_ties,
    })
}
