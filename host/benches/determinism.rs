//! What the runtime's deterministic mode costs on this CPU: each family's
//! documented configuration (the README's footprint table, Q8_0) and the
//! same models at F32, sampled in the fast mode (the default) and in the
//! deterministic one (`kernels::set_deterministic`), in turn within each
//! round, on this CPU's best instruction set.
//!
//!   cargo bench -p edgegen --bench determinism
//!
//! A call is one image for the VAE decoder and the GAN generator, one
//! decode step for the text model (positions cycling through its
//! context), one sample for the audio model. Times are medians of 15
//! rounds of the mean time per call; the ratio is the median over rounds
//! of deterministic over fast.

use edgegen::bench::interleaved;
use edgegen_format::GgmlType;
use edgegen_runtime::kernels::{isa, set_deterministic};
use edgegen_runtime::models::Model;
use edgegen_runtime::sample::Rng;
use std::hint::black_box;

/// One call of `m`, with its own buffers.
fn caller<'m>(m: &'m Model<'m>) -> Box<dyn FnMut() + 'm> {
    let mut rng = Rng::new(1);
    match m {
        Model::VaeDecoder(d) => {
            let (mut z, mut img) = (vec![0f32; d.latent_dim()], vec![0f32; d.output_len()]);
            let mut s = vec![0f32; d.scratch_len()];
            Box::new(move || {
                d.sample(&mut rng, Some(1), &mut z, &mut s, &mut img)
                    .unwrap();
                black_box(&img);
            })
        }
        Model::Generator(g) => {
            let (mut z, mut img) = (vec![0f32; g.latent_dim()], vec![0f32; g.output_len()]);
            let mut s = vec![0f32; g.scratch_len()];
            Box::new(move || {
                g.sample(&mut rng, Some(1), &mut z, &mut s, &mut img)
                    .unwrap();
                black_box(&img);
            })
        }
        Model::Text(t) => {
            use edgegen_runtime::models::transformer::{ContextPolicy, State};
            // The state lives as long as the closure: its buffers leak,
            // once per model, in a benchmark.
            let kv = Vec::leak(vec![0f32; t.state_len()]);
            let syms = Vec::leak(vec![0u32; t.hp.context_length as usize]);
            let mut st = State::new(kv, syms, None);
            let mut s = vec![0f32; t.scratch_len()];
            Box::new(move || {
                if st.len() == t.hp.context_length as usize {
                    st.reset();
                }
                let sym = (st.len() * 7 % 256) as u32;
                black_box(t.step(&mut st, sym, ContextPolicy::Stop, &mut s).unwrap());
            })
        }
        Model::Audio(a) => {
            use edgegen_runtime::models::audio::{SILENCE, State};
            use edgegen_runtime::sample::Sampling;
            let h = Vec::leak(vec![0f32; a.state_len()]);
            let mut st = State::new(h, Some(1));
            let mut s = vec![0f32; a.scratch_len()];
            let (mut prev, mut one) = (SILENCE, [0u8; 1]);
            let sampling = Sampling::default();
            Box::new(move || {
                a.generate(&mut st, prev, &sampling, &mut rng, &mut s, &mut one)
                    .unwrap();
                prev = one[0] as u32;
            })
        }
        _ => unreachable!("no encoders here"),
    }
}

fn main() {
    println!(
        "fast and deterministic modes, {:?} kernels, batch 1, 1 thread; microseconds per call, medians of 15 rounds",
        isa()
    );
    println!(
        "{:<22} {:>10} {:>14} {:>10}",
        "model", "fast", "deterministic", "det/fast"
    );
    for ty in [GgmlType::Q8_0, GgmlType::F32] {
        let models = edgegen_tests::documented_models(ty);
        for (name, _, bytes) in &models {
            let m = Model::from_gguf(bytes).unwrap();
            let (mut fast, mut det) = (caller(&m), caller(&m));
            let calls = match m {
                Model::Generator(_) => 40,
                _ => 400,
            };
            let t = interleaved(
                &mut [
                    &mut || {
                        set_deterministic(false);
                        fast()
                    },
                    &mut || {
                        set_deterministic(true);
                        det()
                    },
                ],
                calls,
                15,
            );
            set_deterministic(false);
            println!(
                "{:<22} {:>10.2} {:>14.2} {:>9.2}x",
                format!("{name} {ty:?}"),
                t[0].us,
                t[1].us,
                1.0 / t[1].first_over_this
            );
        }
    }
}
