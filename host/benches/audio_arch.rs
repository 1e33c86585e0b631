//! Issue 11's architecture choice, measured: the recurrent candidate
//! (`models::rnn`, a GRU over mu-law codes) and the text family's
//! transformer over the same codes, each trained for the same wall time on
//! FSDD's training takes (5 to 49), then scored on its test takes (0 to
//! 4) in bits per sample, beside the three baselines of `eval::audio`; and
//! each one's cost per generated sample.
//!
//!   cargo bench -p edgegen --bench audio_arch
//!
//! Environment: `EDGEGEN_DATASETS` (default `../shared/datasets`),
//! `EDGEGEN_BENCH_SECONDS` (training time per model, default 300),
//! `EDGEGEN_BENCH_THREADS` (default 2).
//!
//! Both are class-conditional (the digit), trained on random windows of
//! `WINDOW` codes with Adam (lr 1e-3 for the transformer, 2e-3 for the
//! GRU, clip 1) at batch 16. The GRU starts every window from a zero state
//! and is scored on whole test clips from a zero state, carried across
//! chunks; the transformer is scored in windows of its context at half a
//! context's stride, each code with at least half a context before it
//! (all codes of a clip's first window). A clip's first code has nothing
//! before it and is not scored by either.

use edgegen::data::audio::{load, mulaw_encode};
use edgegen::data::split::split_audio;
use edgegen::eval::audio::baselines;
use edgegen::models::rnn::{Rnn, RnnActs, RnnConfig, nll_bits};
use edgegen::models::transformer::{Acts, Transformer, TransformerConfig};
use edgegen::nn::gemm::Threads;
use edgegen::nn::loss::{softmax_cross_entropy, softmax_cross_entropy_in_place};
use edgegen::nn::optim::{AdamConfig, adam_step_layout, clip_grad_norm};
use edgegen::nn::params::Layout;
use edgegen::rng::Rng;
use std::time::Instant;

const WINDOW: usize = 256;
const BATCH: usize = 16;

/// A clip's codes and its digit.
struct Clip {
    codes: Vec<u32>,
    label: u32,
}

fn env(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// A random training window: `(clip index, start)` with `WINDOW + 1`
/// codes from `start`, every start equally likely.
fn window(clips: &[Clip], rng: &mut Rng) -> (usize, usize) {
    loop {
        let k = rng.below(clips.len());
        let n = clips[k].codes.len();
        if n > WINDOW + 1 {
            return (k, rng.below(n - WINDOW));
        }
    }
}

struct Adam {
    cfg: AdamConfig,
    m: Vec<f32>,
    v: Vec<f32>,
    t: u64,
}

impl Adam {
    fn new(n: usize) -> Self {
        Self {
            cfg: AdamConfig::default(),
            m: vec![0.0; n],
            v: vec![0.0; n],
            t: 0,
        }
    }
    fn step(&mut self, layout: &Layout, p: &mut [f32], g: &mut [f32], lr: f32) {
        clip_grad_norm(g, 1.0);
        self.t += 1;
        adam_step_layout(
            &self.cfg,
            layout,
            p,
            g,
            &mut self.m,
            &mut self.v,
            self.t,
            lr,
        );
        g.fill(0.0);
    }
}

/// Trains the GRU for `secs`; returns (steps, test bits per code, codes).
fn gru(cfg: RnnConfig, train: &[Clip], test: &[Clip], secs: f64, th: Threads) -> (u64, f64, usize) {
    let m = Rnn::new(cfg).unwrap();
    let mut rng = Rng::new(1);
    let mut p = vec![0f32; m.layout.total()];
    m.init(&mut p, &mut rng);
    let mut g = vec![0f32; p.len()];
    let mut opt = Adam::new(p.len());
    let mut a = RnnActs::new(&m, WINDOW, BATCH);
    let mut targets = vec![0u32; WINDOW * BATCH];
    let mut loss = vec![0f32; WINDOW * BATCH];
    let v = m.cfg.vocab;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        for j in 0..BATCH {
            let (k, s) = window(train, &mut rng);
            let c = &train[k];
            for t in 0..WINDOW {
                a.tokens[t * BATCH + j] = c.codes[s + t];
                targets[t * BATCH + j] = c.codes[s + t + 1];
            }
            a.labels[j] = c.label;
        }
        a.gru.h[..BATCH * m.cfg.hidden].fill(0.0);
        m.forward(&p, &mut a, th);
        let n = WINDOW * BATCH;
        softmax_cross_entropy_in_place(&mut loss, &mut a.logits, &targets, v, 1.0 / n as f32);
        m.backward(&p, &mut g, &mut a, th);
        opt.step(&m.layout, &mut p, &mut g, 2e-3);
    }
    let clips: Vec<_> = test
        .iter()
        .map(|c| edgegen::models::rnn::Clip {
            codes: &c.codes,
            label: c.label,
            feats: &[],
            preds: &[],
        })
        .collect();
    let (bits, count) = nll_bits(&m, &p, &clips, WINDOW, 30, th);
    (opt.t, bits, count)
}

/// Trains the transformer for `secs`; returns (steps, test bits per code,
/// codes).
fn transformer(
    cfg: TransformerConfig,
    train: &[Clip],
    test: &[Clip],
    secs: f64,
    th: Threads,
) -> (u64, f64, usize) {
    let t = cfg.context;
    let m = Transformer::new(cfg).unwrap();
    let mut rng = Rng::new(1);
    let mut p = vec![0f32; m.layout.total()];
    m.init(&mut p, &mut rng);
    let mut g = vec![0f32; p.len()];
    let mut opt = Adam::new(p.len());
    let mut a = Acts::new(&m, BATCH);
    let mut targets = vec![0u32; t * BATCH];
    let mut loss = vec![0f32; t * BATCH];
    let v = m.cfg.vocab;
    let start = Instant::now();
    while start.elapsed().as_secs_f64() < secs {
        for j in 0..BATCH {
            let (k, s) = window(train, &mut rng);
            let c = &train[k];
            a.tokens[j * t..(j + 1) * t].copy_from_slice(&c.codes[s..s + t]);
            targets[j * t..(j + 1) * t].copy_from_slice(&c.codes[s + 1..s + 1 + t]);
            a.labels[j] = c.label;
        }
        m.forward(&p, &mut a, BATCH, t, th);
        let n = BATCH * t;
        softmax_cross_entropy_in_place(
            &mut loss,
            &mut a.logits[..n * v],
            &targets,
            v,
            1.0 / n as f32,
        );
        m.backward(&p, &mut g, &mut a, BATCH, t, th);
        opt.step(&m.layout, &mut p, &mut g, 1e-3);
    }
    let (mut bits, mut count) = (0f64, 0usize);
    let mut l = vec![0f32; t];
    let mut tg = vec![0u32; t];
    for c in test {
        let n = c.codes.len();
        let mut s = 0;
        loop {
            // Window s..s + t (shorter at a clip's end) scores the
            // positions from `from` on.
            let len = t.min(n - 1 - s);
            let from = if s == 0 { 0 } else { t / 2 };
            a.tokens[..len].copy_from_slice(&c.codes[s..s + len]);
            tg[..len].copy_from_slice(&c.codes[s + 1..s + 1 + len]);
            a.labels[0] = c.label;
            m.forward(&p, &mut a, 1, len, th);
            softmax_cross_entropy(
                &mut l[..len],
                None,
                &a.logits[..len * v],
                &tg[..len],
                v,
                1.0,
            );
            for &lv in &l[from.min(len)..len] {
                bits += lv as f64 / std::f64::consts::LN_2;
                count += 1;
            }
            if s + len >= n - 1 {
                break;
            }
            s += t / 2;
        }
    }
    (opt.t, bits / count as f64, count)
}

fn main() {
    let root = std::env::var("EDGEGEN_DATASETS").unwrap_or_else(|_| "../shared/datasets".into());
    let secs = env("EDGEGEN_BENCH_SECONDS", 300.0);
    let th = Threads(env("EDGEGEN_BENCH_THREADS", 2.0) as usize);
    rayon::ThreadPoolBuilder::new()
        .num_threads(th.0)
        .build_global()
        .ok();
    let set = load(&std::path::Path::new(&root).join("audio/fsdd")).expect("FSDD");
    let split = split_audio(&set, 0.0, 0.0, 1);
    let clip = |i: &usize| {
        let c = &set.clips[*i];
        Clip {
            codes: c.samples.iter().map(|&x| mulaw_encode(x) as u32).collect(),
            label: c.label.expect("labeled clips"),
        }
    };
    let train: Vec<Clip> = split.train.iter().chain(&split.val).map(clip).collect();
    let test: Vec<Clip> = split.test.iter().map(clip).collect();
    let bytes = |c: &[Clip]| -> Vec<Vec<u8>> {
        c.iter()
            .map(|c| c.codes.iter().map(|&q| q as u8).collect())
            .collect()
    };
    let (tr, te) = (bytes(&train), bytes(&test));
    let (tr, te): (Vec<&[u8]>, Vec<&[u8]>) = (
        tr.iter().map(|c| &c[..]).collect(),
        te.iter().map(|c| &c[..]).collect(),
    );
    let base = baselines(&tr, &te);
    println!(
        "FSDD: {} training clips, {} test clips ({} codes); {secs} s of training per model, {} threads",
        train.len(),
        test.len(),
        base.test_samples,
        th.0
    );
    println!(
        "baselines: uniform {:.2}, unigram {:.3}, LPC-{} {:.3} bits per sample",
        base.uniform_bits,
        base.unigram_bits,
        edgegen::eval::audio::LPC_ORDER,
        base.lpc_bits
    );
    let rc = RnnConfig {
        vocab: 256,
        embed: 64,
        hidden: 128,
        n_classes: 10,
        ..RnnConfig::default()
    };
    let macs_rnn = rc.macs_per_sample();
    let params_rnn = Rnn::new(rc.clone()).unwrap().layout.total();
    let (steps, bits, n) = gru(rc, &train, &test, secs, th);
    println!(
        "GRU (E 64, H 128): {params_rnn} parameters, {steps} steps, test {bits:.3} bits per sample over {n}; {macs_rnn} multiply-adds per generated sample"
    );
    let tc = TransformerConfig {
        vocab: 256,
        context: WINDOW,
        dim: 64,
        layers: 4,
        heads: 4,
        kv_heads: 0,
        ffn: 256,
        n_classes: 10,
        tied: false,
    };
    let params_tf = Transformer::new(tc.clone()).unwrap().layout.total();
    // Per generated sample with a KV cache at a full context: every
    // weight once, plus QK and PV over the context in each layer.
    let macs_tf = params_tf - 256 * 64 * 2 + tc.layers * 2 * tc.context * tc.dim;
    let (steps, bits, n) = transformer(tc, &train, &test, secs, th);
    println!(
        "transformer (C 64, L 4, T {WINDOW}): {params_tf} parameters, {steps} steps, test {bits:.3} bits per sample over {n}; about {macs_tf} multiply-adds per generated sample"
    );
}
