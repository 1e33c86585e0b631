//! Bit-identical samples on every instruction set, in the deterministic
//! mode (`kernels::set_deterministic`): each family's models,
//! at every precision, sampled with the kernels of each ISA this CPU has
//! (`kernels::force_isa`), give the same bits: the pixels of every image,
//! the symbols and last logits of a text, the codes and final state of a
//! clip. The Cortex-M4F firmware (scalar) and the aarch64 sampler (NEON)
//! tests compare the same hashes with this host's, which extends the
//! promise to those targets.
//!
//! One test, in its own binary: `force_isa` and the mode are
//! process-wide.

use edgegen_format::{GgmlType, arch};
use edgegen_runtime::kernels::{Isa, force_isa};
use edgegen_runtime::models::Model;
use edgegen_runtime::sample::{Rng, Sampling, fnv1a_words};

/// Hashes of what `model` samples with seed 3: the bits of every output.
fn sample_hash(bytes: &[u8]) -> u32 {
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
    let mut rng = Rng::new(3);
    let words: Vec<u32> = match Model::from_gguf(bytes).unwrap() {
        Model::VaeDecoder(d) => {
            let label = (d.hp.n_classes > 0).then_some(1);
            let (mut z, mut img) = (vec![0f32; d.latent_dim()], vec![0f32; d.output_len()]);
            let mut scratch = vec![0f32; d.scratch_len()];
            (0..3)
                .flat_map(|_| {
                    d.sample(&mut rng, label, &mut z, &mut scratch, &mut img)
                        .unwrap();
                    bits(&img)
                })
                .collect()
        }
        Model::Generator(g) => {
            let label = (g.hp.n_classes > 0).then_some(1);
            let (mut z, mut img) = (vec![0f32; g.latent_dim()], vec![0f32; g.output_len()]);
            let mut scratch = vec![0f32; g.scratch_len()];
            (0..3)
                .flat_map(|_| {
                    g.sample(&mut rng, label, &mut z, &mut scratch, &mut img)
                        .unwrap();
                    bits(&img)
                })
                .collect()
        }
        Model::Text(m) => {
            use edgegen_runtime::models::transformer::{ContextPolicy, State};
            let label = (m.hp.n_classes > 0).then_some(1);
            let mut kv = vec![0f32; m.state_len()];
            let mut syms = vec![0u32; m.hp.context_length as usize];
            let mut scratch = vec![0f32; m.scratch_len()];
            let mut out = vec![0u32; 24];
            let mut st = State::new(&mut kv, &mut syms, label);
            let s = Sampling::default();
            let p = ContextPolicy::Slide { keep: 8 };
            let n = m
                .generate(
                    &mut st,
                    &[1, 2, 3],
                    &s,
                    p,
                    &[],
                    &mut rng,
                    &mut scratch,
                    &mut out,
                )
                .unwrap();
            let last = m.step(&mut st, out[n - 1], p, &mut scratch).unwrap();
            out[..n].iter().copied().chain(bits(last)).collect()
        }
        Model::Audio(m) => {
            use edgegen_runtime::models::audio::{SILENCE, State};
            let label = (m.hp.n_classes > 0).then_some(1);
            let mut h = vec![0f32; m.state_len()];
            let mut scratch = vec![0f32; m.scratch_len()];
            let mut codes = vec![0u8; 300];
            let mut st = State::new(&mut h, label);
            m.generate(
                &mut st,
                SILENCE,
                &Sampling::default(),
                &mut rng,
                &mut scratch,
                &mut codes,
            )
            .unwrap();
            codes
                .iter()
                .map(|&c| c as u32)
                .chain(bits(st.h()))
                .collect()
        }
        _ => unreachable!("no encoders here"),
    };
    fnv1a_words(words)
}

#[test]
fn every_family_samples_the_same_bits_on_every_isa() {
    edgegen_runtime::kernels::set_deterministic(true);
    let isas: Vec<Isa> = Isa::ALL.iter().copied().filter(|i| i.available()).collect();
    let mut models = vec![];
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        let vae = arch::vae::Hparams::new(
            [1, 12, 12],
            6,
            &[70, 50],
            4,
            arch::vae::Likelihood::Bernoulli,
            arch::Activation::Tanh,
        )
        .unwrap();
        models.push((
            format!("vae {ty:?}"),
            edgegen_tests::vae::decoder_gguf(&vae, ty, 1, [0.4, 0.3], [0.05, -0.1]),
        ));
        let gan = arch::gan::Hparams::new([3, 16, 16], 10, 4, &[24, 12]).unwrap();
        models.push((
            format!("gan {ty:?}"),
            edgegen_tests::gan::generator_gguf(&gan, ty, 2, 0.3, 0.02),
        ));
        let text = edgegen_tests::text::device_hparams(None, 32);
        models.push((
            format!("text {ty:?}"),
            edgegen_tests::text::model_gguf(&text, ty, 3, 0.4, None),
        ));
        let audio = arch::audio::Hparams {
            vocab_size: 256,
            embedding_length: 20,
            state_length: 36,
            n_classes: 3,
            sample_rate: 8000,
        };
        models.push((
            format!("audio {ty:?}"),
            edgegen_tests::audio::model_gguf(&audio, ty, 4, 0.5),
        ));
    }
    for (name, bytes) in &models {
        let hashes: Vec<(Isa, u32)> = isas
            .iter()
            .map(|&i| {
                force_isa(Some(i));
                (i, sample_hash(bytes))
            })
            .collect();
        force_isa(None);
        println!("{name}: {hashes:08x?}");
        assert!(
            hashes.iter().all(|&(_, h)| h == hashes[0].1),
            "{name}: the ISAs sample different bits: {hashes:08x?}"
        );
    }
    assert!(
        isas.len() >= 2 || cfg!(not(target_arch = "x86_64")),
        "only {isas:?} here"
    );
}
