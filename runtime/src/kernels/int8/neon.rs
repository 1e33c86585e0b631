//! aarch64 int8 kernel: `smull` and `smlal2` (int8 x int8 to int16, two
//! products per lane, which fit since x never holds -128), `sadalp` into
//! int32, and one `addv` per block. Four rows a panel share each block of
//! x. (`sdot`, in the dot-product extension, would do a block in two
//! instructions; its intrinsics are not stable Rust yet.)

use core::arch::aarch64::*;
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

/// `acc[k] += rows k of w . x` for `k < acc.len()` (1 to 4), row `k`'s
/// blocks from `w[k * nb]`: per row and block, the exact sum scaled and
/// added as the reference does.
///
/// # Safety
/// `1 <= acc.len() <= 4`; `w.len() >= (acc.len() - 1) * nb + x.len()`.
pub unsafe fn neon_rows4(w: &[BlockQ8_0], nb: usize, x: &[BlockA8], acc: &mut [f32]) {
    let h = acc.len();
    debug_assert!((1..=PANEL).contains(&h) && w.len() >= (h - 1) * nb + x.len());
    // SAFETY: loads inside x's blocks; w's blocks are indexed (checked).
    unsafe {
        for (b, xb) in x.iter().enumerate() {
            let q = xb.qs.as_ptr();
            let (x0, x1) = (vld1q_s8(q), vld1q_s8(q.add(16)));
            for (k, a) in acc.iter_mut().enumerate() {
                let blk = &w[k * nb + b];
                let s = block_sum(blk, x0, x1);
                *a += (blk.scale() * xb.d) * s as f32;
            }
        }
    }
}
