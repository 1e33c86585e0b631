//! edgegen on a Cortex-M4F: the VAE decoder samples images from weights in
//! flash, with a scratch buffer sized at compile time and no allocator.
//!
//! Under QEMU: `qemu-system-arm -M mps2-an386 -nographic -semihosting-config
//! enable=on,target=native -kernel <elf>`. It prints, for each of 4 samples
//! drawn with seed 7, the sum of its pixels and its first pixels, then
//! exits with status 0 (or 1 on any error).
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
    const SCRATCH: usize = edgegen_runtime::models::vae::scratch_len_for(LATENT, N_CLASSES, HIDDEN);

    #[cfg(not(any(feature = "size-probe", feature = "empty")))]
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

    /// Only the decoder path: load, sample once, sink the pixels.
    #[cfg(all(feature = "size-probe", not(feature = "empty")))]
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
