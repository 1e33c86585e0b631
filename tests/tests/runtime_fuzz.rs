//! The runtime never panics on any model bytes: mutated VAE decoders and
//! encoders, GAN generators, text transformers and audio GRUs, with the
//! data CRC
//! sometimes re-stamped so that the damage
//! reaches the shape checks and the forward pass, not only the CRC check.
//!
//! CI runs a few thousand cases; `EDGEGEN_FUZZ_CASES=1000000 cargo test
//! --release -p edgegen-tests --test runtime_fuzz` runs more.

use edgegen_format::arch::ActQuant;
use edgegen_format::{GgmlType, Gguf, arch};
use edgegen_runtime::models::Model;
use edgegen_runtime::sample::Rng;

fn hparams(k: u32) -> arch::vae::Hparams {
    arch::vae::Hparams::new(
        [1, 4, 5],
        3,
        &[24],
        k,
        arch::vae::Likelihood::Bernoulli,
        arch::Activation::Gelu,
    )
    .unwrap()
}

fn decoder(ty: GgmlType, k: u32) -> Vec<u8> {
    edgegen_tests::vae::decoder_gguf(&hparams(k), ty, 3, [1.0, 1.0], [0.1, -0.1])
}

/// A conditional decoder whose label also enters its last layer.
fn decoder_every_layer(ty: GgmlType) -> Vec<u8> {
    let hp = arch::vae::Hparams {
        label_every_layer: true,
        ..hparams(4)
    };
    edgegen_tests::vae::decoder_gguf(&hp, ty, 3, [1.0, 1.0], [0.1, -0.1])
}

fn encoder(ty: GgmlType, k: u32) -> Vec<u8> {
    edgegen_tests::vae::encoder_gguf(&hparams(k), ty, 4, [0.5, 0.5], [0.1, -0.1])
}

fn gan_hparams(k: u32) -> arch::gan::Hparams {
    // 3 x 3 and 6 x 6 planes: the 8-pixel chunks of the least scratch end
    // inside a row.
    arch::gan::Hparams::new([1, 12, 12], 3, k, &[6, 4]).unwrap()
}

fn generator(ty: GgmlType, k: u32) -> Vec<u8> {
    edgegen_tests::gan::generator_gguf(&gan_hparams(k), ty, 5, 0.7, 0.05)
}

fn text_hparams(k: u32, tied: bool, vocab: u32) -> arch::transformer::Hparams {
    arch::transformer::Hparams {
        vocab_size: vocab,
        context_length: 6,
        // With 4 K/V heads of 8, rows of 32: a Q8_0 cache fits them.
        embedding_length: 32,
        block_count: 2,
        head_count: 4,
        head_count_kv: if tied { 4 } else { 2 },
        feed_forward_length: 40,
        n_classes: k,
        layer_norm_epsilon: 1e-5,
        tied_output: tied,
    }
}

fn text(ty: GgmlType, k: u32, tied: bool) -> Vec<u8> {
    edgegen_tests::text::model_gguf(&text_hparams(k, tied, 256), ty, 6, 0.5, None)
}

fn text_chars(ty: GgmlType) -> Vec<u8> {
    edgegen_tests::text::model_gguf(&text_hparams(0, true, 5), ty, 6, 0.5, Some("ab cé"))
}

/// Drives a text model through prefill, steps past its context with both
/// policies, and sampling; every error is returned, none may panic.
fn drive_text(
    m: &edgegen_runtime::models::transformer::Transformer<'_>,
    scratch: &mut [f32],
    r: &mut Rng,
) -> bool {
    use edgegen_runtime::models::transformer::{ContextPolicy, State};
    use edgegen_runtime::sample::Sampling;
    let t = m.hp.context_length as usize;
    if m.state_len() > 1 << 16 || t > 64 {
        return false;
    }
    let mut kv = vec![0f32; m.state_len()];
    let mut syms = vec![0u32; t];
    let label = (m.hp.n_classes > 0).then_some(0);
    let mut st = State::new(&mut kv, &mut syms, label);
    let n = m.scratch_len().min(scratch.len());
    let mut ok = m
        .prefill(
            &mut st,
            &[1, 2, 3],
            ContextPolicy::Slide { keep: 2 },
            &mut scratch[..n],
        )
        .is_ok();
    for i in 0..t + 3 {
        let policy = if i % 2 == 0 {
            ContextPolicy::Stop
        } else {
            ContextPolicy::Slide { keep: t }
        };
        // A full context under Stop is the policy working, not a failure.
        let r = m.step(
            &mut st,
            i as u32 % m.hp.vocab_size,
            policy,
            &mut scratch[..n],
        );
        ok &= r.is_ok() || matches!(r, Err(edgegen_format::Error::ContextFull { .. }));
    }
    // The same through a Q8_0 cache, where the rows are whole blocks.
    if let Some(nb) = m.state_blocks().filter(|&b| b <= 1 << 14) {
        let blank = edgegen_format::quant::BlockQ8_0 {
            d: [0; 2],
            qs: [0; 32],
        };
        let mut kv8 = vec![blank; nb];
        let mut syms8 = vec![0u32; t];
        let mut st8 = State::new_q8_0(&mut kv8, &mut syms8, label);
        for i in 0..t + 2 {
            let r = m.step(
                &mut st8,
                i as u32 % m.hp.vocab_size,
                ContextPolicy::Slide { keep: 1 },
                &mut scratch[..n],
            );
            ok &= r.is_ok();
        }
        // Too few blocks is an error.
        let mut st8 = State::new_q8_0(&mut kv8[..nb - 1], &mut syms8, label);
        ok &= m
            .step(&mut st8, 0, ContextPolicy::Stop, &mut scratch[..n])
            .is_err();
    }
    st.reset();
    let s = Sampling {
        temperature: 0.7,
        top_k: 3,
        top_p: 0.9,
        repetition_penalty: 1.3,
    };
    let mut out = [0u32; 10];
    let stop: [&[u32]; 1] = [&[0, 1]];
    ok &= m
        .generate(
            &mut st,
            &[1],
            &s,
            ContextPolicy::Slide { keep: 1 },
            &stop,
            r,
            &mut scratch[..n],
            &mut out,
        )
        .is_ok();
    ok
}

#[test]
fn valid_text_models_load_step_slide_and_sample_at_every_precision() {
    use edgegen_runtime::models::transformer::{ContextPolicy, State};
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        for b in [text(ty, 0, true), text(ty, 3, false), text_chars(ty)] {
            let Model::Text(m) = Model::from_gguf(&b).unwrap() else {
                panic!("{ty:?}: not a text model")
            };
            let mut scratch = vec![0f32; m.scratch_len()];
            assert!(drive_text(&m, &mut scratch, &mut Rng::new(2)), "{ty:?}");
            // Wrong buffers, labels and symbols are errors, not panics.
            let t = m.hp.context_length as usize;
            let label = (m.hp.n_classes > 0).then_some(1);
            let mut kv = vec![0f32; m.state_len()];
            let mut syms = vec![0u32; t];
            let mut st = State::new(&mut kv, &mut syms, label);
            let p = ContextPolicy::Stop;
            assert!(m.step(&mut st, 1, p, &mut scratch[..1]).is_err());
            assert!(m.step(&mut st, m.hp.vocab_size, p, &mut scratch).is_err());
            let mut st = State::new(&mut kv, &mut syms[..1], label);
            assert!(m.step(&mut st, 1, p, &mut scratch).is_err());
            let mut short = vec![0f32; 3];
            let mut st = State::new(&mut short, &mut syms, label);
            assert!(m.step(&mut st, 1, p, &mut scratch).is_err());
            let mut st = State::new(&mut kv, &mut syms, Some(9));
            assert!(m.step(&mut st, 1, p, &mut scratch).is_err());
        }
    }
    // A chars model names its characters; a bytes model has none.
    let b = text_chars(GgmlType::F32);
    let Model::Text(m) = Model::from_gguf(&b).unwrap() else {
        panic!()
    };
    assert_eq!(m.chars, Some("ab cé"));
}

fn audio_hparams(k: u32) -> arch::audio::Hparams {
    arch::audio::Hparams {
        vocab_size: 256,
        embedding_length: 12,
        // Not a multiple of 16: the panel kernels' partial panels run.
        state_length: 20,
        n_classes: k,
        sample_rate: 8000,
    }
}

fn audio(ty: GgmlType, k: u32) -> Vec<u8> {
    edgegen_tests::audio::model_gguf(&audio_hparams(k), ty, 8, 0.6)
}

/// A two-tier audio model: 5 bands (not a multiple of anything), an order-4
/// prediction.
const FRAMES: arch::audio::FrameHparams = arch::audio::FrameHparams {
    frame_length: 256,
    feature_length: 5,
    lpc_order: 4,
    embedding_length: 6,
    state_length: 9,
};

fn audio_two_tier(ty: GgmlType, act: ActQuant, k: u32) -> Vec<u8> {
    edgegen_tests::audio::two_tier_gguf(&audio_hparams(k), Some(&FRAMES), (ty, act), 8, 0.6)
}

/// Steps an audio model and generates with it; every error is returned,
/// none may panic.
fn drive_audio(
    m: &edgegen_runtime::models::audio::Audio<'_>,
    scratch: &mut [f32],
    r: &mut Rng,
) -> bool {
    use edgegen_runtime::models::audio::{SILENCE, State};
    use edgegen_runtime::sample::Sampling;
    if m.state_len() > 1 << 12 {
        return false;
    }
    let mut h = vec![0f32; m.state_len()];
    let label = (m.hp.n_classes > 0).then_some(0);
    let mut st = State::new(&mut h, label);
    let n = m.scratch_len().min(scratch.len());
    let mut ok = true;
    let fh = m.frame_hparams();
    let bands = [-0.5f32; 256];
    let c = fh.map_or(0, |f| f.feature_length as usize).min(256);
    for i in 0..5 {
        let code = i * 61 % m.hp.vocab_size;
        ok &= match fh {
            None => m.step(&mut st, code, &mut scratch[..n]).is_ok(),
            Some(_) => {
                m.frame_step(&mut st, &bands[..c], &mut scratch[..n])
                    .is_ok()
                    && m.step_with_frame(&mut st, code, &bands[..c], code, &mut scratch[..n])
                        .is_ok()
            }
        };
    }
    let s = Sampling {
        temperature: 0.9,
        ..Sampling::default()
    };
    // Past a frame's end for a two-tier model: two frames drawn, the
    // second's prediction solved.
    let mut out = [0u8; 260];
    let len = if fh.is_some() { 260 } else { 12 };
    st.reset(label);
    ok &= m
        .generate(&mut st, SILENCE, &s, r, &mut scratch[..n], &mut out[..len])
        .is_ok();
    ok
}

#[test]
fn valid_audio_models_step_and_generate_at_every_precision() {
    use edgegen_runtime::models::audio::{SILENCE, State};
    use edgegen_runtime::sample::Sampling;
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        for (k, two) in [(0, false), (10, false), (10, true), (0, true)] {
            let b = if two {
                audio_two_tier(ty, ActQuant::F32, k)
            } else {
                audio(ty, k)
            };
            let Model::Audio(m) = Model::from_gguf(&b).unwrap() else {
                panic!("{ty:?}: not an audio model")
            };
            let mut scratch = vec![0f32; m.scratch_len()];
            assert!(drive_audio(&m, &mut scratch, &mut Rng::new(3)), "{ty:?}");
            let label = (k > 0).then_some(7);
            // The state moves, stays finite and bounded (a GRU's state is
            // a convex mix of tanh outputs), and a reset zeroes it.
            let mut h = vec![0f32; m.state_len()];
            let mut st = State::new(&mut h, label);
            let mut codes = [0u8; 200];
            let s = Sampling::default();
            m.generate(
                &mut st,
                SILENCE,
                &s,
                &mut Rng::new(5),
                &mut scratch,
                &mut codes,
            )
            .unwrap();
            let gru = &st.h()[..m.hp.state_length as usize];
            assert!(gru.iter().all(|v| v.is_finite() && v.abs() <= 1.0));
            assert!(gru.iter().any(|&v| v != 0.0));
            assert!(codes.iter().any(|&c| c != codes[0]), "{ty:?}: one code");
            // The seed fixes the clip.
            let mut again = [0u8; 200];
            st.reset(label);
            m.generate(
                &mut st,
                SILENCE,
                &s,
                &mut Rng::new(5),
                &mut scratch,
                &mut again,
            )
            .unwrap();
            assert_eq!(codes, again);
            // Wrong buffers, labels and codes are errors, not panics.
            assert!(m.step(&mut st, 1, &mut scratch[..1]).is_err());
            assert!(m.step(&mut st, m.hp.vocab_size, &mut scratch).is_err());
            assert!(
                m.generate(&mut st, 999, &s, &mut Rng::new(1), &mut scratch, &mut codes)
                    .is_err()
            );
            let mut short = vec![0f32; 3];
            let mut st = State::new(&mut short, label);
            assert!(m.step(&mut st, 1, &mut scratch).is_err());
            let mut st = State::new(&mut h, Some(10));
            assert!(m.step(&mut st, 1, &mut scratch).is_err());
            let mut st = State::new(&mut h, if k > 0 { None } else { Some(0) });
            assert!(m.step(&mut st, 1, &mut scratch).is_err());
            assert!(st.set_h(&[0.0; 2]).is_err());
            let mut st = State::new(&mut h, label);
            let c = FRAMES.feature_length as usize;
            let (good, long) = ([0.0f32; 5], [0.0f32; 6]);
            if two {
                // A two-tier model steps with a frame of its bands.
                assert!(
                    m.step_with_frame(&mut st, 1, &good[..c - 1], 1, &mut scratch)
                        .is_err()
                );
                assert!(
                    m.step_with_frame(&mut st, 1, &good, 256, &mut scratch)
                        .is_err()
                );
                assert!(m.frame_step(&mut st, &long, &mut scratch).is_err());
                assert!(m.frame_step(&mut st, &good, &mut scratch).is_ok());
                assert!(
                    m.step_with_frame(&mut st, 1, &good, 3, &mut scratch)
                        .is_ok()
                );
                let mut coef = [0f32; 4];
                assert!(m.prediction_coefficients(&good, &mut coef).is_ok());
                assert!(m.prediction_coefficients(&long, &mut coef).is_err());
            } else {
                assert!(m.frame_step(&mut st, &good, &mut scratch).is_err());
                assert!(
                    m.step_with_frame(&mut st, 1, &good, 1, &mut scratch)
                        .is_err()
                );
            }
        }
    }
}

/// Re-stamps `edgegen.data_crc32` so a damaged file passes the CRC check.
fn restamp(b: &mut [u8]) {
    let Ok(g) = Gguf::parse(b) else { return };
    let crc = g.data_crc32();
    // The CRC's u32 follows its key and value type in the header.
    let key = b"edgegen.data_crc32";
    if let Some(at) = b.windows(key.len()).position(|w| w == key) {
        let v = at + key.len() + 4;
        if v + 4 <= b.len() {
            b[v..v + 4].copy_from_slice(&crc.to_le_bytes());
        }
    }
}

#[test]
fn valid_decoders_load_and_sample_at_every_precision() {
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        for (k, every) in [(0, false), (4, false), (4, true)] {
            let b = if every {
                decoder_every_layer(ty)
            } else {
                decoder(ty, k)
            };
            let Model::VaeDecoder(d) = Model::from_gguf(&b).unwrap() else {
                panic!()
            };
            let mut scratch = vec![0f32; d.scratch_len()];
            let (mut z, mut out) = ([0f32; 3], [0f32; 20]);
            d.sample(
                &mut Rng::new(1),
                (k > 0).then_some(2),
                &mut z,
                &mut scratch,
                &mut out,
            )
            .unwrap();
            assert!(out.iter().all(|p| (0.0..=1.0).contains(p)), "{ty:?}");
            // Wrong buffers and labels are errors, not panics.
            assert!(d.decode(&z, Some(99), &mut scratch, &mut out).is_err());
            assert!(d.decode(&z[..2], None, &mut scratch, &mut out).is_err());
            assert!(d.decode(&z, None, &mut scratch[..1], &mut out).is_err());
        }
    }
}

#[test]
fn valid_encoders_load_and_encode_at_every_precision() {
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        for k in [0, 4] {
            let b = encoder(ty, k);
            let Model::VaeEncoder(e) = Model::from_gguf(&b).unwrap() else {
                panic!("{ty:?}: not an encoder")
            };
            let mut scratch = vec![0f32; e.scratch_len()];
            let x: Vec<f32> = (0..20).map(|i| i as f32 / 20.0).collect();
            let (mut mu, mut lv) = ([0f32; 3], [0f32; 3]);
            let label = (k > 0).then_some(3);
            e.encode(&x, label, &mut scratch, &mut mu, &mut lv).unwrap();
            assert!(mu.iter().chain(&lv).all(|v| v.is_finite()), "{ty:?}");
            assert!(mu != [0.0; 3] && mu != lv, "{ty:?}: {mu:?} {lv:?}");
            assert!(
                e.encode(&x, Some(99), &mut scratch, &mut mu, &mut lv)
                    .is_err()
            );
            assert!(
                e.encode(&x[..19], label, &mut scratch, &mut mu, &mut lv)
                    .is_err()
            );
            assert!(
                e.encode(&x, label, &mut scratch[..1], &mut mu, &mut lv)
                    .is_err()
            );
        }
    }
}

#[test]
fn valid_generators_load_and_sample_at_every_precision_in_any_scratch() {
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        for k in [0, 3] {
            let b = generator(ty, k);
            let Model::Generator(g) = Model::from_gguf(&b).unwrap() else {
                panic!()
            };
            let label = (k > 0).then_some(2);
            let z = [0.3f32, -1.0, 0.8];
            // The least scratch and the most give the same image: only the
            // pixels per matrix product differ, and with them the order in
            // which an output pixel's four taps are added.
            let mut small = vec![0f32; g.scratch_len()];
            let mut big = vec![0f32; g.scratch_len_fast()];
            assert!(big.len() > small.len());
            let n = g.output_len();
            let (mut a, mut c) = (vec![0f32; n], vec![0f32; n]);
            g.generate(&z, label, &mut small, &mut a).unwrap();
            g.generate(&z, label, &mut big, &mut c).unwrap();
            for (i, (x, y)) in a.iter().zip(&c).enumerate() {
                assert!((x - y).abs() <= 1e-6, "{ty:?} pixel {i}: {x} vs {y}");
            }
            assert!(a.iter().all(|p| (0.0..=1.0).contains(p)));
            assert!(a.iter().any(|&p| (p - a[0]).abs() > 1e-3), "a flat image");
            assert!(
                g.generate(&z, label, &mut small[..g.scratch_len() - 1], &mut a)
                    .is_err()
            );
            assert!(g.generate(&z[..2], label, &mut small, &mut a).is_err());
            assert!(g.generate(&z, Some(7), &mut small, &mut a).is_err());
        }
    }
}

#[test]
fn runtime_never_panics_on_mutated_models() {
    let cases: usize = std::env::var("EDGEGEN_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let mut seeds: Vec<Vec<u8>> = [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0]
        .into_iter()
        .flat_map(|t| {
            [
                decoder(t, 0),
                decoder(t, 4),
                decoder_every_layer(t),
                encoder(t, 0),
                encoder(t, 4),
                generator(t, 0),
                generator(t, 3),
                text(t, 0, true),
                text(t, 3, false),
                text_chars(t),
                audio(t, 0),
                audio(t, 10),
                audio_two_tier(t, ActQuant::F32, 10),
            ]
        })
        .collect();
    // Int8 activations (q8_0a8): the quantizer and the integer kernels on
    // whatever scales and codes a mutation leaves.
    let a8 = (GgmlType::Q8_0, ActQuant::Int8);
    seeds.extend([
        edgegen_tests::vae::decoder_gguf_with(&hparams(4), a8.0, a8.1, 3, [1.0, 1.0], [0.1, -0.1]),
        edgegen_tests::gan::generator_gguf_with(&gan_hparams(3), a8, 5, 0.7, 0.05),
        edgegen_tests::text::model_gguf_with(&text_hparams(3, false, 256), a8, 6, 0.5, None),
        edgegen_tests::audio::model_gguf_with(&audio_hparams(10), a8, 8, 0.6),
        audio_two_tier(a8.0, a8.1, 0),
    ]);
    let mut r = Rng::new(99);
    let (mut loaded, mut decoded) = (0, 0);
    let mut scratch = vec![0f32; 4096];
    for i in 0..cases {
        let mut b = seeds[i % seeds.len()].clone();
        for _ in 0..1 + r.next_u32() % 3 {
            let at = r.next_u32() as usize % b.len();
            match r.next_u32() % 4 {
                0 => b[at] ^= 1 << (r.next_u32() % 8),
                1 => b[at] = r.next_u32() as u8,
                2 => b.truncate(at),
                _ => {
                    let v = [0u8, 0xff, 0x7f, 0x80][r.next_u32() as usize % 4];
                    let end = (at + 4).min(b.len());
                    b[at..end].fill(v);
                }
            }
            if b.is_empty() {
                break;
            }
        }
        if i % 2 == 0 {
            restamp(&mut b);
        }
        match Model::from_gguf(&b) {
            Ok(Model::VaeDecoder(d)) => {
                loaded += 1;
                let n = d.scratch_len().min(scratch.len());
                let mut z = vec![0.5f32; d.latent_dim()];
                let mut out = vec![0f32; d.output_len()];
                let label = (d.hp.n_classes > 0).then_some(0);
                if d.decode(&z, label, &mut scratch[..n], &mut out).is_ok() {
                    decoded += 1;
                }
                let _ = d.sample(&mut r, label, &mut z, &mut scratch[..n], &mut out);
            }
            Ok(Model::VaeEncoder(e)) => {
                loaded += 1;
                let n = e.scratch_len().min(scratch.len());
                let x = vec![0.5f32; e.input_len()];
                let (mut mu, mut lv) = (vec![0f32; e.latent_dim()], vec![0f32; e.latent_dim()]);
                let label = (e.hp.n_classes > 0).then_some(0);
                if e.encode(&x, label, &mut scratch[..n], &mut mu, &mut lv)
                    .is_ok()
                {
                    decoded += 1;
                }
            }
            Ok(Model::Generator(g)) => {
                loaded += 1;
                let n = g.scratch_len().min(scratch.len());
                let mut z = vec![0.5f32; g.latent_dim()];
                let mut out = vec![0f32; g.output_len()];
                let label = (g.hp.n_classes > 0).then_some(0);
                if g.generate(&z, label, &mut scratch[..n], &mut out).is_ok() {
                    decoded += 1;
                }
                let _ = g.sample(&mut r, label, &mut z, &mut scratch[..n], &mut out);
            }
            Ok(Model::Text(m)) => {
                loaded += 1;
                if drive_text(&m, &mut scratch, &mut r) {
                    decoded += 1;
                }
            }
            Ok(Model::Audio(m)) => {
                loaded += 1;
                if drive_audio(&m, &mut scratch, &mut r) {
                    decoded += 1;
                }
            }
            _ => {}
        }
    }
    println!("runtime fuzz: {cases} cases, {loaded} loaded, {decoded} run");
    assert!(
        loaded > cases / 20 && decoded > 0,
        "the mutations never reached the forward pass"
    );
    assert!(loaded < cases);
}
