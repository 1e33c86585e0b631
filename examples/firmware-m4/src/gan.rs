//! The GAN's generator: images from N(0, I) noise, in the least scratch
//! the runtime allows (8 input pixels per matrix product).

use crate::image;
use crate::model::HP;
use cortex_m_semihosting::hprintln;
use edgegen_runtime::Error;
use edgegen_runtime::models::gan::{Generator, scratch_len_for};

const SCRATCH: usize = scratch_len_for(&HP);
const LATENT: usize = HP.latent_dim as usize;
const IMAGE: [usize; 3] = [
    HP.image_shape[0] as usize,
    HP.image_shape[1] as usize,
    HP.image_shape[2] as usize,
];
const OUT_LEN: usize = IMAGE[0] * IMAGE[1] * IMAGE[2];
const LABEL: Option<u32> = if HP.n_classes != 0 { Some(0) } else { None };

pub fn run(model: &[u8]) -> Result<(), Error> {
    let g = Generator::from_bytes(model)?;
    hprintln!(
        "edgegen firmware: GAN generator {} bytes, scratch {} floats, {} MACs per sample",
        model.len(),
        SCRATCH,
        g.macs()
    );
    let bufs: (&mut [f32], &mut [f32], &mut [f32]) = (
        static_buf!([f32; LATENT] = [0.0; LATENT]),
        static_buf!([f32; SCRATCH] = [0.0; SCRATCH]),
        static_buf!([f32; OUT_LEN] = [0.0; OUT_LEN]),
    );
    image::run(IMAGE, LABEL, bufs, |r, l, z, s, o| g.sample(r, l, z, s, o))
}

#[cfg(feature = "size-probe")]
pub fn probe(model: &[u8]) -> bool {
    Generator::from_bytes(model).is_ok_and(|g| {
        image::probe::<LATENT, SCRATCH, OUT_LEN>(LABEL, |r, l, z, s, o| g.sample(r, l, z, s, o))
    })
}
