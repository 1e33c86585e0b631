//! The VAE decoder: images from N(0, I) latents.

use crate::image;
use crate::model::{HIDDEN, IMAGE, LATENT, N_CLASSES, OUT_LEN};
use cortex_m_semihosting::hprintln;
use edgegen_runtime::Error;
use edgegen_runtime::models::vae::{VaeDecoder, scratch_len_for};

/// Floats of scratch, computed at compile time from the hyperparameters.
const SCRATCH: usize = scratch_len_for(LATENT, N_CLASSES, HIDDEN);
const LABEL: Option<u32> = if N_CLASSES != 0 { Some(0) } else { None };

pub fn run(model: &[u8]) -> Result<(), Error> {
    let d = VaeDecoder::from_bytes(model)?;
    hprintln!(
        "edgegen firmware: VAE decoder {} bytes, scratch {} floats, {} MACs per sample",
        model.len(),
        SCRATCH,
        d.macs()
    );
    let bufs: (&mut [f32], &mut [f32], &mut [f32]) = (
        static_buf!([f32; LATENT] = [0.0; LATENT]),
        static_buf!([f32; SCRATCH] = [0.0; SCRATCH]),
        static_buf!([f32; OUT_LEN] = [0.0; OUT_LEN]),
    );
    image::run(IMAGE, LABEL, bufs, |r, l, z, s, o| d.sample(r, l, z, s, o))
}

#[cfg(feature = "size-probe")]
pub fn probe(model: &[u8]) -> bool {
    VaeDecoder::from_bytes(model).is_ok_and(|d| {
        image::probe::<LATENT, SCRATCH, OUT_LEN>(LABEL, |r, l, z, s, o| d.sample(r, l, z, s, o))
    })
}
