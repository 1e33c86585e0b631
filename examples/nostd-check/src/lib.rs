//! A proof, checked by the linker, that the device crates need no allocator.
//!
//! `scripts/test.sh` builds this as a static library for
//! `thumbv7em-none-eabihf`. The library defines no `#[global_allocator]`, so
//! if anything it links used `alloc`, rustc would stop with "no global memory
//! allocator found"; the script also checks the archive for `__rust_alloc`.
//! On the host it builds as an ordinary library so that `cargo test
//! --workspace` can include it.
#![cfg_attr(target_os = "none", no_std)]

/// Validates a model image and returns its family as a number (0 VAE,
/// 1 GAN, 2 text, 3 audio), or 255 if the image is invalid.
///
/// # Safety
/// `ptr` must point to `len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn edgegen_check_image(ptr: *const u8, len: usize) -> u8 {
    // SAFETY: the caller promises `len` readable bytes at `ptr`.
    let bytes = unsafe { core::slice::from_raw_parts(ptr, len) };
    match edgegen_runtime::check_image(bytes) {
        Ok(f) => edgegen_runtime::format::arch::Family::ALL
            .iter()
            .position(|&x| x == f)
            .map_or(255, |i| i as u8),
        Err(_) => 255,
    }
}

#[cfg(target_os = "none")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
