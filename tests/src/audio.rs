//! Audio GRU files with pseudo-random weights.

use edgegen_format::arch::ActQuant;
use edgegen_format::arch::audio::{self as a, FrameHparams, Hparams};
use edgegen_format::{GgmlType, GgufWriter, OwnedValue};

/// The frame tier the firmware's and the aarch64 sampler's two-tier models
/// have: 6 bands and an order-8 prediction, so that 400 codes draw two
/// frames (at codes 0 and 255) and solve two predictions.
pub const DEVICE_FRAMES: FrameHparams = FrameHparams {
    frame_length: 256,
    feature_length: 6,
    lpc_order: 8,
    embedding_length: 8,
    state_length: 10,
};

/// An audio model as GGUF with weights N(0, 1) times `scale` and biases
/// 0.1, matrices stored as `ty` (Q8_0 rows zero-padded to whole blocks, as
/// the exporter does), the class table in F32.
pub fn model_gguf(hp: &Hparams, ty: GgmlType, seed: u64, scale: f32) -> Vec<u8> {
    model_gguf_with(hp, (ty, ActQuant::F32), seed, scale)
}

/// [`model_gguf`] whose Q8_0 matrices multiply activations as `act` says
/// (int8 for the `q8_0a8` precision).
pub fn model_gguf_with(
    hp: &Hparams,
    (ty, act): (GgmlType, ActQuant),
    seed: u64,
    scale: f32,
) -> Vec<u8> {
    two_tier_gguf(hp, None, (ty, act), seed, scale)
}

/// [`model_gguf_with`] with a frame tier (`frames`), whose matrices are
/// stored the same way, its class table in F32, the end logit's bias -5
/// (so that random weights rarely end a clip) and the band-to-
/// autocorrelation map of bands that each cover an equal slice of the
/// spectrum.
pub fn two_tier_gguf(
    hp: &Hparams,
    frames: Option<&FrameHparams>,
    (ty, act): (GgmlType, ActQuant),
    seed: u64,
    scale: f32,
) -> Vec<u8> {
    let mut w = GgufWriter::new();
    hp.write(&mut w).unwrap();
    if let Some(f) = frames {
        f.write(&mut w).unwrap();
    }
    act.write(&mut w).unwrap();
    if hp.n_classes > 0 {
        let names: Vec<String> = (0..hp.n_classes).map(|i| format!("d{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        w.add(a::CLASS_NAMES, OwnedValue::strs(&refs)).unwrap();
    }
    let mut r = edgegen_runtime::sample::Rng::new(seed);
    let (v, e, h, k) = (
        hp.vocab_size as usize,
        hp.embedding_length as usize,
        hp.state_length as usize,
        hp.n_classes as usize,
    );
    let mut matrix = |w: &mut GgufWriter, name: &str, rows: usize, inp: usize| {
        crate::add_random_matrix(w, name, rows, inp, ty, scale, &mut r)
    };
    let bias = |w: &mut GgufWriter, name: &str, n: usize| {
        w.add_tensor(name, &[n as u64], GgmlType::F32, &vec![0.1; n])
            .unwrap();
    };
    matrix(&mut w, a::TOKEN_EMBD, v, e);
    if k > 0 {
        let cls: Vec<f32> = (0..k * e).map(|i| ((i % 5) as f32 - 2.0) * 0.1).collect();
        w.add_tensor(a::CLASS_EMBD, &[e as u64, k as u64], GgmlType::F32, &cls)
            .unwrap();
    }
    matrix(&mut w, a::GRU_WEIGHT_IH, 3 * h, e);
    bias(&mut w, a::GRU_BIAS_IH, 3 * h);
    matrix(&mut w, a::GRU_WEIGHT_HH, 3 * h, h);
    bias(&mut w, a::GRU_BIAS_HH, 3 * h);
    matrix(&mut w, a::OUTPUT, v, h);
    bias(&mut w, a::OUTPUT_BIAS, v);
    if let Some(f) = frames {
        let (c, p, ef, hf) = (
            f.feature_length as usize,
            f.lpc_order as usize,
            f.embedding_length as usize,
            f.state_length as usize,
        );
        matrix(&mut w, a::FEAT_PROJ, e, c);
        bias(&mut w, a::FEAT_PROJ_BIAS, e);
        if p > 0 {
            matrix(&mut w, a::PRED_EMBD, v, e);
            // Band m: equal power over bins [m, m + 1) * 128 / C of 256.
            let acf: Vec<f32> = (0..=p)
                .flat_map(|j| {
                    (0..c).map(move |m| {
                        let (lo, hi) = (m * 128 / c, ((m + 1) * 128 / c).max(m * 128 / c + 1));
                        let n = (hi - lo) as f64;
                        (lo..hi)
                            .map(|k| {
                                2.0 * (std::f64::consts::TAU * (j * k) as f64 / 256.0).cos() / n
                            })
                            .sum::<f64>() as f32
                    })
                })
                .collect();
            w.add_tensor(
                a::LPC_WEIGHT,
                &[c as u64, p as u64 + 1],
                GgmlType::F32,
                &acf,
            )
            .unwrap();
        }
        matrix(&mut w, a::FRAME_IN, ef, c);
        bias(&mut w, a::FRAME_IN_BIAS, ef);
        if k > 0 {
            let cls: Vec<f32> = (0..k * ef).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
            w.add_tensor(
                a::FRAME_CLASS_EMBD,
                &[ef as u64, k as u64],
                GgmlType::F32,
                &cls,
            )
            .unwrap();
        }
        matrix(&mut w, a::FRAME_GRU_WEIGHT_IH, 3 * hf, ef);
        bias(&mut w, a::FRAME_GRU_BIAS_IH, 3 * hf);
        matrix(&mut w, a::FRAME_GRU_WEIGHT_HH, 3 * hf, hf);
        bias(&mut w, a::FRAME_GRU_BIAS_HH, 3 * hf);
        matrix(&mut w, a::FRAME_OUT, f.outputs(), hf);
        let mut b = vec![0.1f32; f.outputs()];
        b[2 * c] = -5.0;
        w.add_tensor(a::FRAME_OUT_BIAS, &[b.len() as u64], GgmlType::F32, &b)
            .unwrap();
    }
    w.to_bytes()
}

/// Checks what a device printed for `count` clips of `codes` codes each,
/// drawn one after another with one generator from `seed` (each from a
/// reset state, class `label`), against the host runtime's clips from the
/// same GGUF bytes. For each clip the device prints
/// `clip N hash H first c0 .. c7` (N: the codes generated, H: [`fnv1a`] of
/// them, in hex) and
/// `state sum S first h0 h1 h2 hash 0xH` (H: of the state's f32 bits).
/// Both lines must be equal: every target sums in the canonical order.
///
/// [`fnv1a`]: edgegen_runtime::sample::fnv1a
pub fn check_clips_against_host(
    text: &str,
    gguf: &[u8],
    seed: u64,
    label: Option<u32>,
    (count, codes): (usize, usize),
    who: &str,
) {
    use edgegen_runtime::models::audio::{Audio, SILENCE, State};
    use edgegen_runtime::sample::{Rng, Sampling, fnv1a};
    let m = Audio::from_bytes(gguf).expect("a valid audio model");
    let mut h = vec![0f32; m.state_len()];
    let mut scratch = vec![0f32; m.scratch_len()];
    let mut out = vec![0u8; codes];
    let mut rng = Rng::new(seed);
    let clips: Vec<&str> = text.lines().filter(|l| l.starts_with("clip ")).collect();
    let states: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("state sum "))
        .collect();
    assert_eq!((clips.len(), states.len()), (count, count), "{who}: {text}");
    for (clip, state) in clips.iter().zip(&states) {
        let mut st = State::new(&mut h, label);
        let n = m
            .generate(
                &mut st,
                SILENCE,
                &Sampling::default(),
                &mut rng,
                &mut scratch,
                &mut out,
            )
            .unwrap();
        let first: Vec<String> = out[..8].iter().map(u8::to_string).collect();
        let want = format!(
            "clip {n} hash {:08x} first {}",
            fnv1a(&out[..n]),
            first.join(" ")
        );
        assert_eq!(*clip, want, "{who}: the device's clip, then the host's");
        // A clip whose frame tier ends it early is the host's too, but the
        // checks here want a whole one.
        assert_eq!(n, codes, "{who}: the clip ended early");
        assert!(
            out.iter().any(|&c| c != out[0]),
            "{who}: one code throughout"
        );
        let h = st.h();
        let sum: f32 = h.iter().sum();
        let want = format!(
            "state sum {sum:.6} first {:.6} {:.6} {:.6} hash 0x{:08x}",
            h[0],
            h[1.min(h.len() - 1)],
            h[2.min(h.len() - 1)],
            edgegen_runtime::sample::fnv1a_words(h.iter().map(|v| v.to_bits()))
        );
        assert_eq!(*state, want, "{who}: the device's state, then the host's");
    }
}
