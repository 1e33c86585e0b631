//! The audio model: a clip of mu-law codes from silence.

use crate::meter;
use crate::model::{FRAMES, HP};
use cortex_m_semihosting::hprintln;
use edgegen_runtime::Error;
use edgegen_runtime::models::audio::{Audio, SILENCE, State, scratch_len_for, state_len_for};
use edgegen_runtime::sample::{Rng, Sampling, fnv1a, fnv1a_words};

const SCRATCH: usize = scratch_len_for(&HP, FRAMES.as_ref());
/// Floats of the state: the GRU's (and a frame tier's).
const STATE: usize = state_len_for(&HP, FRAMES.as_ref());
/// Codes generated: 50 ms at 8 kHz.
const CODES: usize = 400;
const LABEL: Option<u32> = if HP.n_classes != 0 { Some(0) } else { None };

/// `clip N hash H first c0 .. c7`, then `state sum S first h0 h1 h2 hash
/// 0xH` (H: of the state's f32 bits).
pub fn run(model: &'static [u8]) -> Result<(), Error> {
    // Loaded in place (see `Audio::from_bytes_in`).
    let slot = static_slot!(Option<Audio<'static>> = None);
    let m = Audio::from_bytes_in(model, slot)?;
    hprintln!(
        "edgegen firmware: audio model {} bytes, state {} floats, scratch {} floats, {} MACs per sample",
        model.len(),
        STATE,
        SCRATCH,
        m.macs()
    );
    let h = static_buf!([f32; STATE] = [0.0; STATE]);
    let scratch = static_buf!([f32; SCRATCH] = [0.0; SCRATCH]);
    let codes = static_buf!([u8; CODES] = [0; CODES]);
    let mut st = State::new(h, LABEL);
    let s = Sampling::default();
    let t0 = meter::ticks();
    let n = m.generate(&mut st, SILENCE, &s, &mut Rng::new(7), scratch, codes)?;
    let ticks = meter::ticks() - t0;
    let c = &codes;
    hprintln!(
        "clip {} hash {:08x} first {} {} {} {} {} {} {} {}",
        n,
        fnv1a(&c[..n]),
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        c[6],
        c[7]
    );
    let h = st.h();
    let sum: f32 = h.iter().sum();
    hprintln!(
        "state sum {:.6} first {:.6} {:.6} {:.6} hash 0x{:08x}",
        sum,
        h[0],
        h[1],
        h[2],
        fnv1a_words(h.iter().map(|v| v.to_bits()))
    );
    hprintln!(
        "cost {} instructions per sample",
        meter::per(ticks, n.max(1))
    );
    Ok(())
}

/// Load, generate a few codes, sink them.
#[cfg(feature = "size-probe")]
pub fn probe(model: &'static [u8]) -> bool {
    let mut h = [0f32; STATE];
    let mut scratch = [0f32; SCRATCH];
    let mut codes = [0u8; 4];
    let slot = static_slot!(Option<Audio<'static>> = None);
    let ok = match Audio::from_bytes_in(model, slot) {
        Ok(m) => m
            .generate(
                &mut State::new(&mut h, LABEL),
                SILENCE,
                &Sampling::default(),
                &mut Rng::new(7),
                &mut scratch,
                &mut codes,
            )
            .is_ok(),
        _ => false,
    };
    // SAFETY: a volatile read of a valid, initialized local keeps the
    // computation from being optimized away.
    unsafe { core::ptr::read_volatile(&codes[0]) };
    ok
}
