//! aarch64 int8 kernels. Where the CPU has the dot-product extension
//! (Armv8.2's `FEAT_DotProd`: Cortex-A55, A76 and later, Apple M1),
//! `sdot` sums a block's 32 products in two instructions; its intrinsics
//! are not stable Rust, so it is one line of `asm!`. Elsewhere `smull` and
//! `smlal2` (int8 x int8 to int16, two products per lane, which fit since
//! x never holds -128), `sadalp` into int32. Either way one `addv` per
//! block, and four rows a panel share each block of x. The sums are exact,
//! so both give the reference's bits (tested against each other and the
//! reference under `qemu-aarch64`, whose CPU has the extension).

use core::arch::aarch64::*;
use core::arch::asm;
use edgegen_format::quant::{BlockA8, BlockQ8_0};

/// Rows per panel.
pub const PANEL: usize = 4;

/// One block's 32 products of `w`'s codes and `x`'s (as two registers),
/// summed exactly.
#[inline(always)]
unsafe fn block_sum(w: &BlockQ8_0, x0: int8x16_t, x1: int8x16_t) -> i32 {
    // SAFETY: two 16-byte loads inside the block's 32 codes.
    unsafe {
        let q = w.qs.as_ptr();
        let (w0, w1) = (vld1q_s8(q), vld1q_s8(q.add(16)));
        let p0 = vmlal_high_s8(vmull_s8(vget_low_s8(w0), vget_low_s8(x0)), w0, x0);
        let p1 = vmlal_high_s8(vmull_s8(vget_low_s8(w1), vget_low_s8(x1)), w1, x1);
        vaddvq_s32(vpadalq_s16(vpaddlq_s16(p0), p1))
    }
}

/// [`block_sum`] with `sdot`.
///
/// # Safety
/// The CPU has the dot-product extension ([`dotprod`]).
#[inline]
#[target_feature(enable = "dotprod")]
unsafe fn block_sum_dot(w: &BlockQ8_0, x0: int8x16_t, x1: int8x16_t) -> i32 {
    // SAFETY: two 16-byte loads inside the block's 32 codes; `sdot` is a
    // register-only instruction of the extension the caller checked.
    unsafe {
        let q = w.qs.as_ptr();
        let (w0, w1) = (vld1q_s8(q), vld1q_s8(q.add(16)));
        let mut s = vdupq_n_s32(0);
        asm!(
            ".arch_extension dotprod",
            "sdot {s:v}.4s, {w0:v}.16b, {x0:v}.16b",
            "sdot {s:v}.4s, {w1:v}.16b, {x1:v}.16b",
            s = inout(vreg) s,
            w0 = in(vreg) w0,
            x0 = in(vreg) x0,
            w1 = in(vreg) w1,
            x1 = in(vreg) x1,
            options(pure, nomem, nostack, preserves_flags)
        );
        vaddvq_s32(s)
    }
}

/// Whether this CPU has the dot-product extension: known at compile time
/// where the target has it, detected at run time with `std`.
pub fn dotprod() -> bool {
    if cfg!(target_feature = "dotprod") {
        return true;
    }
    #[cfg(any(test, feature = "std"))]
    return std::arch::is_aarch64_feature_detected!("dotprod");
    #[allow(unreachable_code)]
    false
}

/// `acc[k] += rows k of w . x` for `k < acc.len()` (1 to 4), row `k`'s
/// blocks from `w[k * nb]`, each block summed by `sum`: per row and
/// block, the exact sum scaled and added as the reference does.
#[inline(always)]
unsafe fn rows4(
    w: &[BlockQ8_0],
    nb: usize,
    x: &[BlockA8],
    acc: &mut [f32],
    sum: impl Fn(&BlockQ8_0, int8x16_t, int8x16_t) -> i32,
) {
    let h = acc.len();
    debug_assert!((1..=PANEL).contains(&h) && w.len() >= (h - 1) * nb + x.len());
    // SAFETY: loads inside x's blocks; w's blocks are indexed (checked).
    unsafe {
        for (b, xb) in x.iter().enumerate() {
            let q = xb.qs.as_ptr();
            let (x0, x1) = (vld1q_s8(q), vld1q_s8(q.add(16)));
            for (k, a) in acc.iter_mut().enumerate() {
                let blk = &w[k * nb + b];
                let s = sum(blk, x0, x1);
                *a += (blk.scale() * xb.d) * s as f32;
            }
        }
    }
}

/// [`rows4`] with `smull`/`sadalp` (baseline NEON).
///
/// # Safety
/// `1 <= acc.len() <= 4`; `w.len() >= (acc.len() - 1) * nb + x.len()`.
pub unsafe fn neon_rows4(w: &[BlockQ8_0], nb: usize, x: &[BlockA8], acc: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { rows4(w, nb, x, acc, |b, x0, x1| block_sum(b, x0, x1)) }
}

/// [`rows4`] with `sdot`.
///
/// # Safety
/// As [`neon_rows4`]; and the CPU has the dot-product extension
/// ([`dotprod`]).
#[target_feature(enable = "dotprod")]
pub unsafe fn sdot_rows4(w: &[BlockQ8_0], nb: usize, x: &[BlockA8], acc: &mut [f32]) {
    // SAFETY: the caller's contract.
    unsafe { rows4(w, nb, x, acc, |b, x0, x1| block_sum_dot(b, x0, x1)) }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::kernels::int8::scalar_rows_a8;
    use crate::sample::Rng;
    use std::vec::Vec;

    /// Both kernels give the reference's bits, a code of -128 included.
    #[test]
    fn sdot_and_smull_give_the_reference_bits() {
        let mut r = Rng::new(4);
        for (rows, nb) in [(1, 1), (2, 3), (3, 7), (4, 16)] {
            let mut w: Vec<BlockQ8_0> = (0..rows * nb)
                .map(|_| BlockQ8_0::quantize(&core::array::from_fn(|_| r.normal())))
                .collect();
            w[0].qs[3] = -128;
            let x: Vec<BlockA8> = (0..nb)
                .map(|_| BlockA8::quantize(&(0..32).map(|_| r.normal()).collect::<Vec<_>>()))
                .collect();
            let mut want = std::vec![0.5f32; rows];
            scalar_rows_a8(&w, nb, &x, &mut want);
            let mut got = std::vec![0.5f32; rows];
            // SAFETY: NEON is baseline; the shapes fit.
            unsafe { neon_rows4(&w, nb, &x, &mut got) };
            assert_eq!(got, want, "smull {rows}x{nb}");
            if dotprod() {
                let mut got = std::vec![0.5f32; rows];
                // SAFETY: checked just above; the shapes fit.
                unsafe { sdot_rows4(&w, nb, &x, &mut got) };
                assert_eq!(got, want, "sdot {rows}x{nb}");
            } else {
                std::println!("no dotprod on this CPU: sdot not tested");
            }
        }
    }
}
