//! edgegen on a Cortex-M4F: a model samples from weights in flash, with
//! scratch and state sized at compile time and no allocator. The model's
//! family (set by `build.rs` from the GGUF) picks what is linked:
//!
//! - a VAE decoder prints, for each of 4 samples drawn with seed 7, the sum
//!   of its pixels and its first pixels;
//! - an audio model generates 400 mu-law codes (50 ms at 8 kHz) with seed 7
//!   (class 0 if conditional) and prints their FNV-1a hash, the first
//!   codes and the final state.
//!
//! Under QEMU: `qemu-system-arm -M mps2-an386 -nographic -semihosting-config
//! enable=on,target=native -kernel <elf>`. It exits with status 0 (or 1 on
//! any error).
//!
//! On the host this crate builds as an empty program, so that the
//! workspace builds everywhere.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(not(target_os = "none"))]
fn main() {}

#[cfg(target_os = "none")]
#[cfg_attr(feature = "empty", allow(dead_code))] // the baseline links nothing
mod device {
    use cortex_m_rt::entry;
    use cortex_m_semihosting::debug::{self, EXIT_FAILURE, EXIT_SUCCESS};

    /// Ends the program: semihosting exit under QEMU, then sleep forever on
    /// a board without a debugger attached.
    fn exit(code: debug::ExitStatus) -> ! {
        debug::exit(code);
        loop {
            cortex_m::asm::wfi();
        }
    }

    include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

    /// The model, in flash. GGUF needs no alignment from us: the runtime
    /// reads weights with unaligned loads.
    static MODEL: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/model.gguf"));

    /// Floats of scratch, computed at compile time from the hyperparameters.
    #[cfg(family = "vae")]
    const SCRATCH: usize = edgegen_runtime::models::vae::scratch_len_for(LATENT, N_CLASSES, HIDDEN);
    #[cfg(family = "audio")]
    const SCRATCH: usize = edgegen_runtime::models::audio::scratch_len_for(&HP);
    /// Floats of the audio model's state.
    #[cfg(family = "audio")]
    const STATE: usize = edgegen_runtime::models::audio::state_len_for(&HP);
    /// Codes the audio firmware generates.
    #[cfg(all(family = "audio", not(feature = "size-probe")))]
    const CODES: usize = 400;

    #[cfg(all(family = "vae", not(any(feature = "size-probe", feature = "empty"))))]
    #[entry]
    fn main() -> ! {
        use cortex_m_semihosting::hprintln;
        use edgegen_runtime::models::vae::VaeDecoder;
        use edgegen_runtime::sample::Rng;
        let dec = match VaeDecoder::from_bytes(MODEL) {
            Ok(d) => d,
            Err(e) => {
                hprintln!("error: {}", e);
                exit(EXIT_FAILURE)
            }
        };
        hprintln!(
            "edgegen firmware: model {} bytes, scratch {} floats, {} MACs per sample",
            MODEL.len(),
            SCRATCH,
            dec.macs()
        );
        let mut scratch = [0f32; SCRATCH];
        let mut z = [0f32; LATENT];
        let mut img = [0f32; OUT_LEN];
        let mut rng = Rng::new(7);
        #[allow(clippy::absurd_extreme_comparisons)]
        let label = if N_CLASSES > 0 { Some(0) } else { None };
        for i in 0..4 {
            if let Err(e) = dec.sample(&mut rng, label, &mut z, &mut scratch, &mut img) {
                hprintln!("error: {}", e);
                exit(EXIT_FAILURE);
            }
            let sum: f32 = img.iter().sum();
            hprintln!(
                "sample {} sum {:.6} first {:.6} {:.6} {:.6}",
                i,
                sum,
                img[0],
                img[1],
                img[2]
            );
        }
        hprintln!("ok");
        exit(EXIT_SUCCESS)
    }

    #[cfg(all(family = "audio", not(any(feature = "size-probe", feature = "empty"))))]
    #[entry]
    fn main() -> ! {
        use cortex_m_semihosting::hprintln;
        use edgegen_runtime::models::audio::{Audio, SILENCE, State};
        use edgegen_runtime::sample::{Rng, Sampling};
        let m = match Audio::from_bytes(MODEL) {
            Ok(m) => m,
            Err(e) => {
                hprintln!("error: {}", e);
                exit(EXIT_FAILURE)
            }
        };
        hprintln!(
            "edgegen firmware: audio model {} bytes, state {} floats, scratch {} floats, {} MACs per sample",
            MODEL.len(),
            STATE,
            SCRATCH,
            m.macs()
        );
        let mut h = [0f32; STATE];
        let mut scratch = [0f32; SCRATCH];
        let mut codes = [0u8; CODES];
        let label = if HP.n_classes > 0 { Some(0) } else { None };
        let mut st = State::new(&mut h, label);
        let s = Sampling::default();
        if let Err(e) = m.generate(
            &mut st,
            SILENCE,
            &s,
            &mut Rng::new(7),
            &mut scratch,
            &mut codes,
        ) {
            hprintln!("error: {}", e);
            exit(EXIT_FAILURE);
        }
        let hash = edgegen_runtime::sample::fnv1a(&codes);
        hprintln!(
            "clip {} hash {:08x} first {} {} {} {} {} {} {} {}",
            CODES,
            hash,
            codes[0],
            codes[1],
            codes[2],
            codes[3],
            codes[4],
            codes[5],
            codes[6],
            codes[7]
        );
        let h = st.h();
        let sum: f32 = h.iter().sum();
        hprintln!(
            "state sum {:.6} first {:.6} {:.6} {:.6}",
            sum,
            h[0],
            h[1],
            h[2]
        );
        hprintln!("ok");
        exit(EXIT_SUCCESS)
    }

    /// Only the decoder path: load, sample once, sink the pixels.
    #[cfg(all(family = "vae", feature = "size-probe", not(feature = "empty")))]
    #[entry]
    fn main() -> ! {
        use edgegen_runtime::models::vae::VaeDecoder;
        use edgegen_runtime::sample::Rng;
        let mut scratch = [0f32; SCRATCH];
        let mut z = [0f32; LATENT];
        let mut img = [0f32; OUT_LEN];
        let ok = match VaeDecoder::from_bytes(MODEL) {
            Ok(d) => d
                .sample(&mut Rng::new(7), None, &mut z, &mut scratch, &mut img)
                .is_ok(),
            _ => false,
        };
        // SAFETY: a volatile read of a valid, initialized local keeps the
        // computation from being optimized away.
        unsafe { core::ptr::read_volatile(&img[0]) };
        exit(if ok { EXIT_SUCCESS } else { EXIT_FAILURE })
    }

    /// Only the audio path: load, generate a few codes, sink them.
    #[cfg(all(family = "audio", feature = "size-probe", not(feature = "empty")))]
    #[entry]
    fn main() -> ! {
        use edgegen_runtime::models::audio::{Audio, SILENCE, State};
        use edgegen_runtime::sample::{Rng, Sampling};
        let mut h = [0f32; STATE];
        let mut scratch = [0f32; SCRATCH];
        let mut codes = [0u8; 4];
        let label = if HP.n_classes > 0 { Some(0) } else { None };
        let ok = match Audio::from_bytes(MODEL) {
            Ok(m) => m
                .generate(
                    &mut State::new(&mut h, label),
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
        exit(if ok { EXIT_SUCCESS } else { EXIT_FAILURE })
    }

    /// The baseline: the reset handler and an exit.
    #[cfg(feature = "empty")]
    #[entry]
    fn main() -> ! {
        exit(EXIT_SUCCESS)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        exit(EXIT_FAILURE)
    }
}
