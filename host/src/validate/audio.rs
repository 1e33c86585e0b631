//! The audio family's producer: a seeded sequence of codes fed one step at
//! a time to ONNX Runtime, tract and the device runtime, each carrying its
//! own state from step to step (so drift would add up; with int8
//! activations each starts every step from the host's state), and to the host's
//! GRU over the whole sequence on the weights the GGUF stores. The logits
//! and the state of every step are compared. A two-tier model's steps also
//! read seeded frames and prediction codes, and its frame tier steps once
//! per step on seeded frames: its outputs and state are compared too.

use super::io::Input;
use super::{Engine, Produced};
use crate::models::frames::{FrameActs, FrameConfig, FrameRnn};
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
        "frame.cls_embd.weight" => a::FRAME_CLASS_EMBD,
        other => other,
    }
}

/// The stored (dequantized) weights of every tensor of `layout`, from the
/// GGUF, in the host's layout.
fn stored_params(g: &Gguf<'_>, layout: &crate::nn::params::Layout) -> Result<Vec<f32>> {
    let mut p = vec![0f32; layout.total()];
    for e in &layout.entries {
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
    Ok(p)
}

/// A host model rebuilt from a GGUF: the model of samples and its stored
/// weights, and the frame tier and its own if the file has one.
pub type HostModel = (Rnn, Vec<f32>, Option<(FrameRnn, Vec<f32>)>);

/// Rebuilds the host model of an audio GGUF: its stored (dequantized)
/// weights in the host's layout, int8 inputs where the file says so.
pub fn host_model(g: &Gguf<'_>) -> Result<HostModel> {
    let hp = a::Hparams::read(g)?;
    let fh = a::FrameHparams::read(g)?;
    let int8 = edgegen_format::arch::ActQuant::read(g)? == edgegen_format::arch::ActQuant::Int8;
    let mut m = Rnn::new(RnnConfig {
        vocab: hp.vocab_size as usize,
        embed: hp.embedding_length as usize,
        hidden: hp.state_length as usize,
        n_classes: hp.n_classes as usize,
        frame_len: fh.map_or(0, |f| f.frame_length as usize),
        feat_dim: fh.map_or(0, |f| f.feature_length as usize),
        lpc_order: fh.map_or(0, |f| f.lpc_order as usize),
    })?;
    m.set_int8_inputs(int8);
    let p = stored_params(g, &m.layout)?;
    let tier = match fh {
        None => None,
        Some(f) => {
            let mut t = FrameRnn::new(FrameConfig {
                bands: f.feature_length as usize,
                embed: f.embedding_length as usize,
                hidden: f.state_length as usize,
                n_classes: hp.n_classes as usize,
                // Only training cuts clips to it.
                max_frames: 1,
            })?;
            t.set_int8_inputs(int8);
            let fp = stored_params(g, &t.layout)?;
            Some((t, fp))
        }
    };
    Ok((m, p, tier))
}

/// What a validation of `seed` feeds: the codes and label, and for a
/// two-tier model each step's frame (`C` bands), prediction code and the
/// frame tier's input (`C` bands).
struct Inputs {
    codes: Vec<u32>,
    label: Option<u32>,
    frames: Option<Frames>,
}

/// A two-tier model's further inputs, per step.
pub struct Frames {
    /// `(T, C)`: the bands the sample step reads.
    pub bands: Vec<f32>,
    /// `(T)`: the prediction codes.
    pub preds: Vec<u32>,
    /// `(T, C)`: the frame tier's inputs.
    pub frame_in: Vec<f32>,
}

fn inputs(hp: &a::Hparams, fh: Option<&a::FrameHparams>, steps: usize, seed: u64) -> Inputs {
    let mut rng = Rng::new(seed);
    let codes = (0..steps).map(|_| rng.next_u32() % hp.vocab_size).collect();
    let k = hp.n_classes as u64;
    let frames = fh.map(|f| {
        let c = f.feature_length as usize;
        // Bands about where a clip's lie: silence at -1.5, speech to 1.5.
        let mut bands =
            |n: usize| -> Vec<f32> { (0..n).map(|_| 0.8 * rng.normal() - 0.3).collect() };
        let (b, fi) = (bands(steps * c), bands(steps * c));
        Frames {
            bands: b,
            preds: (0..steps).map(|_| rng.next_u32() % hp.vocab_size).collect(),
            frame_in: fi,
        }
    });
    Inputs {
        codes,
        label: (k > 0).then(|| (seed % k) as u32),
        frames,
    }
}

/// The device runtime over `codes` from a zero state: every step's logits,
/// then every step's state, and with `frames` every step's frame outputs
/// and frame state. Each step starts from the state the step before left,
/// or, given `states_from` (another engine's states and frame states, one
/// per step), from that engine's state after the step before.
pub fn runtime_steps(
    dev: &Audio<'_>,
    codes: &[u32],
    label: Option<u32>,
    frames: Option<&Frames>,
    states_from: Option<(&[f32], &[f32])>,
) -> Result<Vec<Vec<f32>>> {
    let mut buf = vec![0f32; dev.state_len()];
    let mut st = State::new(&mut buf, label);
    let mut scratch = vec![0f32; dev.scratch_len()];
    let (h, hf) = (
        dev.hp.state_length as usize,
        dev.frame_hparams().map_or(0, |f| f.state_length as usize),
    );
    let c = dev.frame_hparams().map_or(0, |f| f.feature_length as usize);
    let mut out = vec![vec![]; if frames.is_some() { 4 } else { 2 }];
    for (i, &code) in codes.iter().enumerate() {
        let err = |e| anyhow!("runtime, step {i}: {e}");
        if let (Some((hs, fs)), Some(prev)) = (states_from, i.checked_sub(1)) {
            let mut s = st.h().to_vec();
            s[..h].copy_from_slice(&hs[prev * h..(prev + 1) * h]);
            if hf > 0 {
                s[h..h + hf].copy_from_slice(&fs[prev * hf..(prev + 1) * hf]);
            }
            st.set_h(&s).map_err(err)?;
        }
        let l = match frames {
            None => dev.step(&mut st, code, &mut scratch).map_err(err)?,
            Some(f) => {
                let fo = dev
                    .frame_step(&mut st, &f.frame_in[i * c..(i + 1) * c], &mut scratch)
                    .map_err(err)?;
                out[2].extend_from_slice(fo);
                dev.step_with_frame(
                    &mut st,
                    code,
                    &f.bands[i * c..(i + 1) * c],
                    f.preds[i],
                    &mut scratch,
                )
                .map_err(err)?
            }
        };
        out[0].extend_from_slice(l);
        out[1].extend_from_slice(&st.h()[..h]);
        if frames.is_some() {
            out[3].extend_from_slice(&st.h()[h..h + hf]);
        }
    }
    Ok(out)
}

/// The host model over `codes` from a zero state, in one pass through
/// time: every step's logits, then every step's state. A model with frame
/// features reads `frames`' bands and prediction codes.
pub fn host_steps(
    m: &Rnn,
    p: &[f32],
    codes: &[u32],
    label: Option<u32>,
    frames: Option<&Frames>,
) -> [Vec<f32>; 2] {
    let mut acts = RnnActs::new(m, codes.len(), 1);
    acts.tokens.copy_from_slice(codes);
    acts.labels[0] = label.unwrap_or(0);
    if let Some(f) = frames {
        acts.feats.copy_from_slice(&f.bands);
        if m.cfg.lpc_order > 0 {
            acts.preds.copy_from_slice(&f.preds);
        }
    }
    acts.gru.h[..m.cfg.hidden].fill(0.0);
    m.forward(p, &mut acts, Threads(1));
    [acts.logits.clone(), acts.gru.out().to_vec()]
}

/// The frame tier over `frames`' inputs from a zero state, in one pass:
/// every step's outputs, then every step's state.
pub fn host_frame_steps(
    t: &FrameRnn,
    p: &[f32],
    label: Option<u32>,
    frames: &Frames,
) -> [Vec<f32>; 2] {
    let steps = frames.frame_in.len() / t.cfg.bands.max(1);
    let mut acts = FrameActs::new(t, steps, 1);
    acts.inputs.copy_from_slice(&frames.frame_in);
    acts.labels[0] = label.unwrap_or(0);
    acts.gru.h[..t.cfg.hidden].fill(0.0);
    t.forward(p, &mut acts, Threads(1));
    [acts.out.clone(), acts.gru.out().to_vec()]
}

/// Validates an audio model over `n` seeded steps (at most
/// [`MAX_STEPS`]), comparing each step's logits and state (and a two-tier
/// model's frame outputs and frame state, its frame tier stepped once per
/// step on seeded frames).
///
/// With f32 activations each engine carries its own state. With int8
/// activations each engine starts every step from the host's state after
/// the step before: a code that rounds apart in two engines (see
/// [`super::A8_FLIP_CAP`]) would otherwise be carried by the recurrence
/// into every later step, as with the text model's cache.
pub fn produce(onnx: &[u8], g: &Gguf<'_>, n: usize, seed: u64) -> Result<Produced> {
    let dev = Audio::from_gguf(g).map_err(|e| anyhow!("GGUF: {e}"))?;
    let (hp, fhp) = (dev.hp, dev.frame_hparams());
    let precision = g
        .tensor(a::GRU_WEIGHT_HH)
        .map(|t| t.ggml_type())
        .unwrap_or(edgegen_format::GgmlType::F32);
    let steps = n.clamp(1, MAX_STEPS);
    let ins = inputs(&hp, fhp.as_ref(), steps, seed);
    let (codes, label) = (&ins.codes, ins.label);
    let h_len = hp.state_length as usize;
    let (hf_len, c) = fhp.map_or((0, 0), |f| {
        (f.state_length as usize, f.feature_length as usize)
    });
    let (m, p, tier) = host_model(g)?;
    let shared = m.head.int8_inputs;
    crate::nn::linear::take_a8_ties();
    let mut host: Vec<Vec<f32>> = host_steps(&m, &p, codes, label, ins.frames.as_ref()).into();
    if let (Some((t, fp)), Some(f)) = (&tier, &ins.frames) {
        host.extend(host_frame_steps(t, fp, label, f));
    }
    let a8_ties = shared.then(crate::nn::linear::take_a8_ties);
    let zero = vec![0f32; h_len.max(hf_len)];
    // A state input: the engine's own, or with int8 activations the
    // host's after the step before.
    let state = |i: usize, own: &[f32], which: usize, len: usize| -> Vec<f32> {
        match (shared, i.checked_sub(1)) {
            (true, Some(prev)) => host[which][prev * len..(prev + 1) * len].to_vec(),
            (true, None) => zero[..len].to_vec(),
            (false, _) => own.to_vec(),
        }
    };
    let feed = |i: usize, st: &[Vec<f32>]| {
        let mut v = vec![Input::i64("code", &[1], vec![codes[i] as i64])];
        if let Some(l) = label {
            v.push(Input::i64("label", &[1], vec![l as i64]));
        }
        v.push(Input::f32("h", &[1, h_len], state(i, &st[0], 1, h_len)));
        if let Some(f) = &ins.frames {
            v.push(Input::f32(
                "bands",
                &[1, c],
                f.bands[i * c..(i + 1) * c].to_vec(),
            ));
            if fhp.is_some_and(|f| f.lpc_order > 0) {
                v.push(Input::i64("pred", &[1], vec![f.preds[i] as i64]));
            }
            v.push(Input::f32(
                "frame_in",
                &[1, c],
                f.frame_in[i * c..(i + 1) * c].to_vec(),
            ));
            v.push(Input::f32(
                "frame_h",
                &[1, hf_len],
                state(i, &st[1], 3, hf_len),
            ));
        }
        v
    };
    let two = ins.frames.is_some();
    // A two-tier step also carries the frame tier's state.
    let (carry, keep, names): (&[&str], &[&str], &[&str]) = if two {
        (
            &["h_out", "frame_h_out"],
            &["logits", "h_out", "frame_out", "frame_h_out"],
            &["logits", "h", "frame_out", "frame_h"],
        )
    } else {
        (&["h_out"], &["logits", "h_out"], &["logits", "h"])
    };
    let mut init = vec![vec![0f32; h_len]];
    if two {
        init.push(vec![0f32; hf_len]);
    }
    let [ort_out, tract_out] =
        super::onnx_steps(onnx, steps, init, carry, keep, feed, |_, _, x| x.to_vec())?;
    let from = shared.then(|| (&host[1][..], host.get(3).map_or(&[][..], |v| &v[..])));
    let runtime = runtime_steps(&dev, codes, label, ins.frames.as_ref(), from)?;
    let engine = |name: &str, out: Vec<Vec<f32>>| Engine {
        name: name.into(),
        outputs: names.iter().map(|s| s.to_string()).zip(out).collect(),
        gating: true,
    };
    let what = if two {
        "two-tier GRU steps"
    } else {
        "GRU steps"
    };
    Ok(Produced {
        part: if shared {
            format!("{what} from the host's state")
        } else {
            what.into()
        },
        precision,
        engines: vec![
            engine("onnxruntime", ort_out.to_vec()),
            engine("tract", tract_out.to_vec()),
            engine("edgegen-runtime", runtime),
            engine("edgegen-host", host.clone()),
        ],
        relative: if two {
            vec!["logits".into(), "frame_out".into()]
        } else {
            vec!["logits".into()]
        },
        n: Some(steps),
        a8_ties,
    })
}
