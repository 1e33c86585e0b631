//! Cortex-M4/M7 int8 kernel, through the DSP extension: `SXTB16` widens
//! the even (or, rotated, the odd) bytes of a word to two halfwords, and
//! `SMLAD` multiplies two pairs of halfwords and adds both products, so a
//! word of four weights costs one load, two widenings and two `SMLAD`s.
//! The activations are widened once per chunk ([`expand`]), and two rows
//! a panel share them. `core::arch::arm`'s DSP intrinsics are not stable
//! Rust, so each instruction is one line of `asm!`, tested against the
//! reference by the firmware's sample hashes.

use core::arch::asm;
use edgegen_format::quant::{BlockA8, BlockQ8_0};

/// Rows per panel.
pub const PANEL: usize = 2;

/// Bytes 0 and 2 of `x`, sign-extended to the two halfwords of a word.
#[inline(always)]
fn sxtb16(x: u32) -> u32 {
    let r: u32;
    // SAFETY: a register-only DSP instruction (thumbv7em has DSP).
    unsafe {
        asm!("sxtb16 {r}, {x}", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// Bytes 1 and 3 of `x`, sign-extended to the two halfwords of a word.
#[inline(always)]
fn sxtb16_ror8(x: u32) -> u32 {
    let r: u32;
    // SAFETY: as in `sxtb16`.
    unsafe {
        asm!("sxtb16 {r}, {x}, ror #8", r = lateout(reg) r, x = in(reg) x,
             options(pure, nomem, nostack, preserves_flags));
    }
    r
}

/// An activation block's codes as [`rows2`] reads them: word `2j` holds
/// codes `4j` and `4j + 2` as halfwords, word `2j + 1` codes `4j + 1` and
/// `4j + 3`, the pairs `SXTB16` makes of a weight word.
#[inline]
pub fn expand(x: &BlockA8) -> [u32; 16] {
    let mut e = [0u32; 16];
    for (j, c) in x.qs.chunks_exact(4).enumerate() {
        let w = u32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]);
        e[2 * j] = sxtb16(w);
        e[2 * j + 1] = sxtb16_ror8(w);
    }
    e
}

/// f16 bits to f32 with the FPU's `VCVTB` (FPv4-SP has half-precision
/// conversions): exact, as `half` is, in five instructions where the
/// portable conversion takes a dozen, once per row and block. Stable Rust
/// cannot name the FPU's registers in `asm!` on this target (the `vfp2`
/// feature is unstable), so the block borrows `s15` and puts it back.
#[inline(always)]
fn f16_to_f32(bits: u16) -> f32 {
    let (r, _saved): (u32, u32);
    // SAFETY: register-only FPU instructions (thumbv7em-none-eabihf has
    // the FPv4-SP unit; FPSCR.AHP is 0, IEEE half, from reset); s15 is
    // restored before the block ends.
    unsafe {
        asm!(
            "vmov {t}, s15",
            "vmov s15, {b}",
            "vcvtb.f32.f16 s15, s15",
            "vmov {r}, s15",
            "vmov s15, {t}",
            b = in(reg) bits as u32,
            r = lateout(reg) r,
            t = out(reg) _saved,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    f32::from_bits(r)
}

/// Two rows' blocks times one expanded activation block, in one block of
/// assembly: per word of four codes, two loads of weights, one `LDRD` of
/// the widened activations for both rows, four `SXTB16` and four `SMLAD`,
/// which is 11 instructions for 8 multiply-adds (the compiler, seeing
/// each instruction as opaque, serialized the rows and spilled the
/// activations to the stack).
#[inline(always)]
fn block_sum2(w0: &BlockQ8_0, w1: &BlockQ8_0, e: &[u32; 16]) -> (i32, i32) {
    let (mut s0, mut s1) = (0i32, 0i32);
    // SAFETY: the loads read the 32 codes of each block (unaligned `LDR`,
    // which the Cortex-M4 allows) and the 16 words of `e` (aligned, as
    // `LDRD` needs); the rest is registers.
    unsafe {
        asm!(
            "ldr {w}, [{q0}, #0]",
            "ldrd {e0}, {e1}, [{e}, #0]",
            "sxtb16 {t}, {w}",
            "smlad {s0}, {t}, {e0}, {s0}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s0}, {t}, {e1}, {s0}",
            "ldr {w}, [{q1}, #0]",
            "sxtb16 {t}, {w}",
            "smlad {s1}, {t}, {e0}, {s1}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s1}, {t}, {e1}, {s1}",
            "ldr {w}, [{q0}, #4]",
            "ldrd {e0}, {e1}, [{e}, #8]",
            "sxtb16 {t}, {w}",
            "smlad {s0}, {t}, {e0}, {s0}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s0}, {t}, {e1}, {s0}",
            "ldr {w}, [{q1}, #4]",
            "sxtb16 {t}, {w}",
            "smlad {s1}, {t}, {e0}, {s1}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s1}, {t}, {e1}, {s1}",
            "ldr {w}, [{q0}, #8]",
            "ldrd {e0}, {e1}, [{e}, #16]",
            "sxtb16 {t}, {w}",
            "smlad {s0}, {t}, {e0}, {s0}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s0}, {t}, {e1}, {s0}",
            "ldr {w}, [{q1}, #8]",
            "sxtb16 {t}, {w}",
            "smlad {s1}, {t}, {e0}, {s1}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s1}, {t}, {e1}, {s1}",
            "ldr {w}, [{q0}, #12]",
            "ldrd {e0}, {e1}, [{e}, #24]",
            "sxtb16 {t}, {w}",
            "smlad {s0}, {t}, {e0}, {s0}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s0}, {t}, {e1}, {s0}",
            "ldr {w}, [{q1}, #12]",
            "sxtb16 {t}, {w}",
            "smlad {s1}, {t}, {e0}, {s1}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s1}, {t}, {e1}, {s1}",
            "ldr {w}, [{q0}, #16]",
            "ldrd {e0}, {e1}, [{e}, #32]",
            "sxtb16 {t}, {w}",
            "smlad {s0}, {t}, {e0}, {s0}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s0}, {t}, {e1}, {s0}",
            "ldr {w}, [{q1}, #16]",
            "sxtb16 {t}, {w}",
            "smlad {s1}, {t}, {e0}, {s1}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s1}, {t}, {e1}, {s1}",
            "ldr {w}, [{q0}, #20]",
            "ldrd {e0}, {e1}, [{e}, #40]",
            "sxtb16 {t}, {w}",
            "smlad {s0}, {t}, {e0}, {s0}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s0}, {t}, {e1}, {s0}",
            "ldr {w}, [{q1}, #20]",
            "sxtb16 {t}, {w}",
            "smlad {s1}, {t}, {e0}, {s1}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s1}, {t}, {e1}, {s1}",
            "ldr {w}, [{q0}, #24]",
            "ldrd {e0}, {e1}, [{e}, #48]",
            "sxtb16 {t}, {w}",
            "smlad {s0}, {t}, {e0}, {s0}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s0}, {t}, {e1}, {s0}",
            "ldr {w}, [{q1}, #24]",
            "sxtb16 {t}, {w}",
            "smlad {s1}, {t}, {e0}, {s1}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s1}, {t}, {e1}, {s1}",
            "ldr {w}, [{q0}, #28]",
            "ldrd {e0}, {e1}, [{e}, #56]",
            "sxtb16 {t}, {w}",
            "smlad {s0}, {t}, {e0}, {s0}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s0}, {t}, {e1}, {s0}",
            "ldr {w}, [{q1}, #28]",
            "sxtb16 {t}, {w}",
            "smlad {s1}, {t}, {e0}, {s1}",
            "sxtb16 {t}, {w}, ror #8",
            "smlad {s1}, {t}, {e1}, {s1}",
            q0 = in(reg) w0.qs.as_ptr(),
            q1 = in(reg) w1.qs.as_ptr(),
            e = in(reg) e.as_ptr(),
            s0 = inout(reg) s0,
            s1 = inout(reg) s1,
            w = out(reg) _,
            t = out(reg) _,
            e0 = out(reg) _,
            e1 = out(reg) _,
            options(pure, readonly, nostack)
        );
    }
    (s0, s1)
}

/// `acc[k] += rows k of w . x` for `k < acc.len()` (1 or 2), row `k`'s
/// blocks from `w[k * nb]`, `e` being `x` expanded: the reference's sums,
/// scaled and added in its order.
#[inline]
pub fn rows2(w: &[BlockQ8_0], nb: usize, x: &[BlockA8], e: &[[u32; 16]], acc: &mut [f32]) {
    // A single row runs as a pair with itself (one copy of the kernel in
    // flash, where every byte is counted).
    let second = if acc.len() > 1 { nb } else { 0 };
    let (mut a0, mut a1) = (acc[0], acc.get(1).copied().unwrap_or(0.0));
    let (r0, r1) = (&w[..x.len()], &w[second..second + x.len()]);
    for (((xb, eb), w0), w1) in x.iter().zip(e).zip(r0).zip(r1) {
        let (s0, s1) = block_sum2(w0, w1, eb);
        a0 += (f16_to_f32(u16::from_le_bytes(w0.d)) * xb.d) * s0 as f32;
        a1 += (f16_to_f32(u16::from_le_bytes(w1.d)) * xb.d) * s1 as f32;
    }
    acc[0] = a0;
    if let Some(a) = acc.get_mut(1) {
        *a = a1;
    }
}
