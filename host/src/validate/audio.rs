//! The audio family's producer: a seeded sequence of codes fed one step at
//! a time to ONNX Runtime, tract and the device runtime, each carrying its
//! own state from step to step (so drift would add up; with int8
//! activations each starts every step from the host's state), and to the host's
//! GRU over the whole sequence on the weights the GGUF stores. The logits
//! and the state of every step are compared.

use super::io::Input;
use super::{Engine, Produced};
use crate::models::rnn::{Rnn, RnnActs, RnnConfig};
use crate::nn::gemm::Threads;
use anyhow::{Context, Result, anyhow};
use edgegen_format::Gguf;
use edgegen_format::arch::audio as a;
use edgegen_runtime::models::audio::{Audio, State};
use edgegen_runtime::sample::Rng;

/// Steps a validation runs at most.
pub const MAX_STEPS: usize = 4000;

/// The GGUF name of a host tensor.
fn gguf_name(host: &str) -> &str {
    match host {
        "tok_embd.weight" => a::TOKEN_EMBD,
        "cls_embd.weight" => a::CLASS_EMBD,
        other => other,
    }
}

/// Rebuilds the host model of an audio GGUF: its stored (dequantized)
/// weights in the host's layout.
pub fn host_model(g: &Gguf<'_>) -> Result<(Rnn, Vec<f32>)> {
    let hp = a::Hparams::read(g)?;
    let mut m = Rnn::new(RnnConfig {
        vocab: hp.vocab_size as usize,
        embed: hp.embedding_length as usize,
        hidden: hp.state_length as usize,
        n_classes: hp.n_classes as usize,
        frame_len: 0,
        feat_dim: 0,
        lpc_order: 0,
    })?;
    m.set_int8_inputs(
        edgegen_format::arch::ActQuant::read(g)? == edgegen_format::arch::ActQuant::Int8,
    );
    let mut p = vec![0f32; m.layout.total()];
    for e in &m.layout.entries {
        let name = gguf_name(&e.name);
        let t = g
            .tensor(name)
            .with_context(|| format!("GGUF: tensor {name} is missing"))?;
        let mut v = vec![0f32; t.n_elements()];
        t.dequantize_into(&mut v)?;
        // Q8_0 rows are padded to whole blocks: cut them to the row.
        let cols = *e.shape.last().unwrap_or(&1);
        let stride = (t.shape()[0] as usize).max(1);
        for (o, r) in p[e.range()]
            .chunks_exact_mut(cols)
            .zip(v.chunks_exact(stride))
        {
            o.copy_from_slice(&r[..cols]);
        }
    }
    Ok((m, p))
}

/// The codes and label a validation of `seed` feeds.
fn inputs(hp: &a::Hparams, steps: usize, seed: u64) -> (Vec<u32>, Option<u32>) {
    let mut rng = Rng::new(seed);
    let codes = (0..steps).map(|_| rng.next_u32() % hp.vocab_size).collect();
    let k = hp.n_classes as u64;
    (codes, (k > 0).then(|| (seed % k) as u32))
}

/// The device runtime over `codes` from a zero state: every step's logits,
/// then every step's state. Each step starts from the state the step before
/// left, or, given `states` (another engine's, one per step), from that
/// engine's state after the step before.
pub fn runtime_steps(
    dev: &Audio<'_>,
    codes: &[u32],
    label: Option<u32>,
    states_from: Option<&[f32]>,
) -> Result<[Vec<f32>; 2]> {
    let mut h = vec![0f32; dev.state_len()];
    let mut st = State::new(&mut h, label);
    let mut scratch = vec![0f32; dev.scratch_len()];
    let (mut logits, mut states) = (vec![], vec![]);
    for (i, &c) in codes.iter().enumerate() {
        if let (Some(from), Some(prev)) = (states_from, i.checked_sub(1)) {
            let n = dev.state_len();
            st.set_h(&from[prev * n..(prev + 1) * n])
                .map_err(|e| anyhow!("runtime, step {i}: {e}"))?;
        }
        let l = dev
            .step(&mut st, c, &mut scratch)
            .map_err(|e| anyhow!("runtime, step {i}: {e}"))?;
        logits.extend_from_slice(l);
        states.extend_from_slice(st.h());
    }
    Ok([logits, states])
}

/// The host model over `codes` from a zero state, in one pass through
/// time: every step's logits, then every step's state.
pub fn host_steps(m: &Rnn, p: &[f32], codes: &[u32], label: Option<u32>) -> [Vec<f32>; 2] {
    let mut acts = RnnActs::new(m, codes.len(), 1);
    acts.tokens.copy_from_slice(codes);
    acts.labels[0] = label.unwrap_or(0);
    acts.gru.h[..m.cfg.hidden].fill(0.0);
    m.forward(p, &mut acts, Threads(1));
    [acts.logits.clone(), acts.gru.out().to_vec()]
}

/// Validates an audio model over `n` seeded steps (at most
/// [`MAX_STEPS`]), comparing each step's logits and state.
///
/// With f32 activations each engine carries its own state. With int8
/// activations each engine starts every step from the host's state after
/// the step before: a code that rounds apart in two engines (see
/// [`super::A8_FLIP_CAP`]) would otherwise be carried by the recurrence
/// into every later step, as with the text model's cache.
pub fn produce(onnx: &[u8], g: &Gguf<'_>, n: usize, seed: u64) -> Result<Produced> {
    let dev = Audio::from_gguf(g).map_err(|e| anyhow!("GGUF: {e}"))?;
    let hp = dev.hp;
    let precision = g
        .tensor(a::GRU_WEIGHT_HH)
        .map(|t| t.ggml_type())
        .unwrap_or(edgegen_format::GgmlType::F32);
    let steps = n.clamp(1, MAX_STEPS);
    let (codes, label) = inputs(&hp, steps, seed);
    let h_len = hp.state_length as usize;
    let (m, p) = host_model(g)?;
    let shared = m.head.int8_inputs;
    crate::nn::linear::take_a8_ties();
    let host = host_steps(&m, &p, &codes, label);
    let a8_ties = shared.then(crate::nn::linear::take_a8_ties);
    let zero = vec![0f32; h_len];
    let feed = |i: usize, own: &[f32]| {
        let mut ins = vec![Input::i64("code", &[1], vec![codes[i] as i64])];
        if let Some(l) = label {
            ins.push(Input::i64("label", &[1], vec![l as i64]));
        }
        let h = match (shared, i.checked_sub(1)) {
            (true, Some(prev)) => &host[1][prev * h_len..(prev + 1) * h_len],
            (true, None) => &zero[..],
            (false, _) => own,
        };
        ins.push(Input::f32("h", &[1, h_len], h.to_vec()));
        ins
    };
    let [ort_out, tract_out] = super::onnx_steps(
        onnx,
        steps,
        vec![vec![0f32; h_len]],
        &["h_out"],
        &["logits", "h_out"],
        |i, state| feed(i, &state[0]),
        |_, _, x| x.to_vec(),
    )?;
    let runtime = runtime_steps(&dev, &codes, label, shared.then_some(&host[1][..]))?;
    let engine = |name: &str, out: Vec<Vec<f32>>| Engine {
        name: name.into(),
        outputs: ["logits", "h"]
            .into_iter()
            .map(String::from)
            .zip(out)
            .collect(),
        gating: true,
    };
    Ok(Produced {
        part: if shared {
            "GRU steps from the host's state".into()
        } else {
            "GRU steps".into()
        },
        precision,
        engines: vec![
            engine("onnxruntime", ort_out),
            engine("tract", tract_out),
            engine("edgegen-runtime", runtime.into()),
            engine("edgegen-host", host.into()),
        ],
        relative: vec!["logits".into()],
        n: Some(steps),
        a8_ties,
    })
}
