//! What the image families print: per sample its pixel sum, first pixels
//! and hash, and one sample as ASCII art, so that a terminal shows what
//! the board drew.

use crate::meter;
use cortex_m_semihosting::hprintln;
use edgegen_runtime::Error;
use edgegen_runtime::sample::{Rng, fnv1a_words};

/// Samples each image family draws.
pub const SAMPLES: usize = 4;

/// An image model's `sample(rng, label, z, scratch, image)`: the VAE
/// decoder's and the GAN generator's have this one shape.
pub trait Sample:
    FnMut(&mut Rng, Option<u32>, &mut [f32], &mut [f32], &mut [f32]) -> Result<(), Error>
{
}
impl<F: FnMut(&mut Rng, Option<u32>, &mut [f32], &mut [f32], &mut [f32]) -> Result<(), Error>>
    Sample for F
{
}

/// Draws [`SAMPLES`] images of shape `shape` with seed 7 through `sample`
/// into `(z, scratch, img)` and prints them, the first also as art, then
/// the instructions per sample.
pub fn run(
    shape: [usize; 3],
    label: Option<u32>,
    (z, scratch, img): (&mut [f32], &mut [f32], &mut [f32]),
    mut sample: impl Sample,
) -> Result<(), Error> {
    let mut rng = Rng::new(7);
    let mut ticks = 0;
    for i in 0..SAMPLES {
        let t0 = meter::ticks();
        sample(&mut rng, label, z, scratch, img)?;
        ticks += meter::ticks() - t0;
        print_sample(i, img);
        if i == 0 {
            print_art(img, shape);
        }
    }
    hprintln!(
        "cost {} instructions per sample",
        meter::per(ticks, SAMPLES)
    );
    Ok(())
}

/// One sample, its pixels sunk: the size probe's path.
#[cfg(feature = "size-probe")]
pub fn probe<const Z: usize, const S: usize, const O: usize>(
    label: Option<u32>,
    mut sample: impl Sample,
) -> bool {
    let mut scratch = [0f32; S];
    let mut z = [0f32; Z];
    let mut img = [0f32; O];
    let ok = sample(&mut Rng::new(7), label, &mut z, &mut scratch, &mut img).is_ok();
    // SAFETY: a volatile read of a valid, initialized local keeps the
    // computation from being optimized away.
    unsafe { core::ptr::read_volatile(&img[0]) };
    ok
}

/// `sample i sum S first a b c hash 0xH`: H is the FNV-1a of the pixels'
/// f32 bits.
pub fn print_sample(i: usize, img: &[f32]) {
    let sum: f32 = img.iter().sum();
    let px = |k: usize| img.get(k).copied().unwrap_or(0.0);
    hprintln!(
        "sample {} sum {:.6} first {:.6} {:.6} {:.6} hash 0x{:08x}",
        i,
        sum,
        px(0),
        px(1),
        px(2),
        fnv1a_words(img.iter().map(|p| p.to_bits()))
    );
}

/// The first channel of a `(c, h, w)` image in [0, 1], one text row per
/// pixel row, darkest to brightest through ten characters; rows wider
/// than 64 pixels are cut.
pub fn print_art(img: &[f32], [_, h, w]: [usize; 3]) {
    const RAMP: &[u8; 10] = b" .:-=+*#%@";
    let mut row = [b' '; 64];
    for y in 0..h {
        let n = w.min(row.len());
        for (x, ch) in row[..n].iter_mut().enumerate() {
            let p = img.get(y * w + x).copied().unwrap_or(0.0).clamp(0.0, 1.0);
            *ch = RAMP[((p * 9.0) + 0.5) as usize];
        }
        // The ramp is ASCII, so the row is UTF-8.
        hprintln!("|{}|", core::str::from_utf8(&row[..n]).unwrap_or(""));
    }
}
