//! edgegen on a Cortex-M4F: a model samples from weights in flash, with
//! scratch and state sized at compile time and no allocator. The model's
//! family (set by `build.rs` from the GGUF) picks the one module linked:
//!
//! - [`vae`] and [`gan`]: 4 images drawn with seed 7 (class 0 if
//!   conditional), each as its pixel sum, first pixels and hash, the first
//!   also as ASCII art ([`image`]);
//! - [`text`]: a continuation of the prompt baked in at build time, with
//!   seed 7, as text and as its symbols' hash;
//! - [`audio`]: 400 mu-law codes (50 ms at 8 kHz) with seed 7, as their
//!   hash, first codes and final state.
//!
//! Hashes are [`fnv1a_words`](edgegen_runtime::sample::fnv1a_words) of
//! the symbols, or of the pixels' f32 bits. The host's tests recompute
//! every line from the same GGUF bytes.
//!
//! Scratch, state and outputs are `static`s sized by the runtime's `const
//! fn`s, so the linker counts them against the board's RAM. Each run also
//! prints what it cost ([`meter`]): instructions per sample or symbol
//! (under `-icount shift=0`), and the stack's high-water mark.
//!
//! Under QEMU: `qemu-system-arm -M mps2-an386 -nographic -semihosting-config
//! enable=on,target=native -kernel <elf>`. It exits with status 0 (or 1 on
//! any error).
//!
//! On the host this crate builds as an empty program, so that the
//! workspace builds everywhere.
#![cfg_attr(target_os = "none", no_std, no_main)]
// The probes link no printing, and the baseline no family: what they leave
// out stays compiled, unused.
#![cfg_attr(
    any(
        feature = "size-probe",
        feature = "size-probe-all",
        feature = "empty",
        feature = "kernel-check"
    ),
    allow(dead_code, unused_imports)
)]

#[cfg(not(target_os = "none"))]
fn main() {}

/// A zeroed `static` buffer of type `$ty`, borrowed mutably: in `.bss`,
/// so that the linker counts it against the board's RAM.
///
/// Each expansion is its own static; the family's `run`, which expands
/// them, runs once, and no interrupt touches them.
#[cfg(target_os = "none")]
macro_rules! static_buf {
    ($ty:ty = $init:expr) => {{
        static mut BUF: $ty = $init;
        // SAFETY: see above: this is the one borrow of `BUF`.
        unsafe { &mut *(&raw mut BUF) }
    }};
}

/// [`static_buf!`] for a value that is not all zero bits (an `Option`'s
/// `None` need not be): the `static` starts uninitialized, in `.bss`, and
/// `$init` is written at run time. As an initialized `static` it would
/// sit in `.data`, its image in flash (3.5 KB for a text model's slot).
#[cfg(all(target_os = "none", any(family = "text", family = "audio")))]
macro_rules! static_slot {
    ($ty:ty = $init:expr) => {{
        static mut BUF: core::mem::MaybeUninit<$ty> = core::mem::MaybeUninit::uninit();
        // SAFETY: as for `static_buf!`, the one borrow of `BUF`; `write`
        // initializes it before it is read.
        unsafe { (*(&raw mut BUF)).write($init) }
    }};
}

#[cfg(all(target_os = "none", feature = "size-probe-all"))]
mod all;
#[cfg(all(target_os = "none", family = "audio"))]
mod audio;
#[cfg(all(target_os = "none", family = "gan"))]
mod gan;
#[cfg(all(target_os = "none", any(family = "vae", family = "gan")))]
mod image;
#[cfg(all(target_os = "none", feature = "kernel-check"))]
mod kernel_check;
#[cfg(target_os = "none")]
mod meter;
#[cfg(all(target_os = "none", family = "text"))]
mod text;
#[cfg(all(target_os = "none", family = "vae"))]
mod vae;

/// The model's constants, written by `build.rs`: its hyperparameters, from
/// which the family module sizes its buffers with the runtime's `const
/// fn`s.
#[cfg(target_os = "none")]
mod model {
    include!(concat!(env!("OUT_DIR"), "/model_consts.rs"));

    /// The file at GGUF's 32-byte alignment, so that its tensor data is
    /// aligned in flash too: the runtime reads any bytes, but F32 vectors
    /// in aligned memory it reads as slices, in fewer instructions.
    #[repr(C, align(32))]
    struct Aligned<T: ?Sized>(T);

    static ALIGNED: &Aligned<[u8]> =
        &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/model.gguf")));

    /// The model, in flash.
    pub static BYTES: &[u8] = &ALIGNED.0;
}

#[cfg(target_os = "none")]
mod device {
    #[cfg(family = "audio")]
    use crate::audio as family;
    #[cfg(family = "gan")]
    use crate::gan as family;
    #[cfg(family = "text")]
    use crate::text as family;
    #[cfg(family = "vae")]
    use crate::vae as family;
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

    /// Samples and prints, with what it cost, then "ok"; any error is
    /// printed and fails. With `kernel-check`, checks the int8 kernels
    /// instead ([`crate::kernel_check`]).
    #[cfg(not(any(feature = "size-probe", feature = "size-probe-all", feature = "empty")))]
    #[entry]
    fn main() -> ! {
        use crate::meter;
        use cortex_m_semihosting::hprintln;
        if let Some(p) = cortex_m::Peripherals::take() {
            meter::start(p.SYST);
        }
        meter::paint_stack();
        let cal = meter::calibrate();
        hprintln!(
            "calibration {} instructions in {} ticks",
            meter::CALIBRATION_INSNS,
            cal
        );
        #[cfg(not(feature = "kernel-check"))]
        let r = family::run(crate::model::BYTES);
        #[cfg(feature = "kernel-check")]
        let r = crate::kernel_check::run();
        hprintln!(
            "stack {} bytes used of {}",
            meter::stack_high_water(),
            meter::stack_room()
        );
        match r {
            Ok(()) => {
                hprintln!("ok");
                exit(EXIT_SUCCESS)
            }
            Err(e) => {
                hprintln!("error: {}", e);
                exit(EXIT_FAILURE)
            }
        }
    }

    /// Only the family's sampling path, without printing: what the runtime
    /// itself costs in flash.
    #[cfg(all(
        feature = "size-probe",
        not(any(feature = "size-probe-all", feature = "empty"))
    ))]
    #[entry]
    fn main() -> ! {
        exit(if family::probe(crate::model::BYTES) {
            EXIT_SUCCESS
        } else {
            EXIT_FAILURE
        })
    }

    /// Every family's sampling path, whatever the model's family.
    #[cfg(all(feature = "size-probe-all", not(feature = "empty")))]
    #[entry]
    fn main() -> ! {
        exit(if crate::all::probe(crate::model::BYTES) {
            EXIT_SUCCESS
        } else {
            EXIT_FAILURE
        })
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
