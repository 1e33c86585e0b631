//! Every family's sampler behind one dispatch on the model's family,
//! sampling whichever the model is: what a firmware that takes a model of
//! any family costs in flash (issue 12's budget for all four together).
//! Each family loads through its own `from_bytes` (the text model in
//! place, through `from_bytes_in`, as the text firmware does), so the VAE
//! encoder, which samples nothing, is not linked. Buffers are fixed here,
//! not sized from a model, since only the code is measured.

use edgegen_runtime::format::arch::Family;
use edgegen_runtime::models::audio::{self, Audio, SILENCE};
use edgegen_runtime::models::gan::Generator;
use edgegen_runtime::models::transformer::{self, ContextPolicy, Transformer};
use edgegen_runtime::models::vae::VaeDecoder;
use edgegen_runtime::sample::{Rng, Sampling};

pub fn probe(model: &[u8]) -> bool {
    let mut scratch = [0f32; 4096];
    let mut a = [0f32; 1024];
    let mut b = [0f32; 1024];
    let mut rng = Rng::new(7);
    let s = Sampling::default();
    let ok = match edgegen_runtime::check_image(model) {
        Ok(Family::Vae) => VaeDecoder::from_bytes(model)
            .and_then(|d| d.sample(&mut rng, None, &mut a, &mut scratch, &mut b))
            .is_ok(),
        Ok(Family::Gan) => Generator::from_bytes(model)
            .and_then(|g| g.sample(&mut rng, None, &mut a, &mut scratch, &mut b))
            .is_ok(),
        Ok(Family::Text) => {
            let (mut symbols, mut out) = ([0u32; 64], [0u32; 4]);
            let mut st = transformer::State::new(&mut a, &mut symbols, None);
            let p = ContextPolicy::Stop;
            let mut slot = None;
            Transformer::from_bytes_in(model, &mut slot)
                .and_then(|m| {
                    m.generate(&mut st, &[0], &s, p, &[], &mut rng, &mut scratch, &mut out)
                })
                .is_ok()
        }
        Ok(Family::Audio) => {
            let mut codes = [0u8; 4];
            let mut st = audio::State::new(&mut a, None);
            let mut slot = None;
            Audio::from_bytes_in(model, &mut slot)
                .and_then(|m| m.generate(&mut st, SILENCE, &s, &mut rng, &mut scratch, &mut codes))
                .is_ok()
        }
        _ => false,
    };
    // SAFETY: volatile reads of valid, initialized locals keep the
    // computation from being optimized away.
    unsafe {
        core::ptr::read_volatile(&a[0]);
        core::ptr::read_volatile(&b[0]);
    }
    ok
}
