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
    let (mut max_abs, mut max_rel) = (0f32, 0f32);
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
            max_rel = max_rel.max(d / y.abs().max(1.0));
        }
    }
    Ok(StepReport {
        steps,
        max_abs,
        max_rel,
    })
}
