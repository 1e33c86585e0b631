//! Cortex-M4F (FPv4-SP) kernel for Q8_0 weights with f32 activations: the
//! fast mode's dot product ([`super::scalar::portable_dot_q8_0`]) in
//! assembly, with the same operations in the same order, so the same bits.
//!
//! Compiled, the Rust loop took 7.0 instructions per multiply-add on this
//! core (a byte load per quant and a core-to-FPU move to convert it, a
//! `VLDR` per activation, the loop's counter, and about 55 a block to set
//! up the chunks and convert the f16 scale in software). Here four quants
//! take one `LDR`, three `SXTB` and an `ASR`, two paired `VMOV`s, four
//! `VCVT`s, one `VLDMIA` of their four activations and four `VMLA`s
//! (multiply, round, add, round: not fused, as the Rust code compiles),
//! and a block's f16 scale one `VCVTB`: 5.07 instructions per
//! multiply-add on a 784 x 400 layer (the firmware's kernel check; its 400
//! inputs end in a part block of four fours), 8.16 before. Stable Rust cannot name this target's single-precision
//! registers in `asm!` operands (see the int8 DSP kernel), so the kernel
//! saves the ones it uses.

use core::arch::asm;
use edgegen_format::quant::{BlockQ8_0, QK8_0};

/// An IEEE half's bits as f32 through the FPU's `VCVTB.F32.F16` (FPSCR.AHP
/// is 0, IEEE half, from reset): exact, as the format's software
/// conversion is, with a NaN's payload kept and made quiet as it does
/// (the firmware's kernel check compares all 65,536 halves). Five
/// instructions where the software conversion took about 28 (and about
/// 50 bytes of flash at each place it was inlined); s0 is saved around
/// it, as in [`crate::math::sqrt`].
#[inline(always)]
pub fn vcvtb(h: u16) -> f32 {
    let mut bits = h as u32;
    // SAFETY: s0 is saved and restored around its use; the stack holds
    // it for three instructions; no other memory, no flags.
    unsafe {
        asm!(
            "vpush {{s0}}",
            "vmov s0, {b}",
            "vcvtb.f32.f16 s0, s0",
            "vmov {b}, s0",
            "vpop {{s0}}",
            b = inout(reg) bits,
            options(pure, nomem, preserves_flags),
        );
    }
    f32::from_bits(bits)
}

/// One step of [`dot_q8_0`]'s loop: four codes from the word at r8
/// (then r8 += 4) times four activations from r1 (then r1 += 16), added in
/// order to the block's sum in s24. A macro, so that the loop can hold it
/// twice (and be entered at the second) with one text.
macro_rules! four {
    () => {
        concat!(
            "ldr r4, [r8], #4\n",
            "vldmia r1!, {{s16-s19}}\n",
            "sxtb r5, r4\n",
            "sxtb r9, r4, ror #8\n",
            "vmov s20, s21, r5, r9\n",
            "sxtb r5, r4, ror #16\n",
            "asr r9, r4, #24\n",
            "vmov s22, s23, r5, r9\n",
            "vcvt.f32.s32 s20, s20\n",
            "vcvt.f32.s32 s21, s21\n",
            "vcvt.f32.s32 s22, s22\n",
            "vcvt.f32.s32 s23, s23\n",
            "vmla.f32 s24, s16, s20\n",
            "vmla.f32 s24, s17, s21\n",
            "vmla.f32 s24, s18, s22\n",
            "vmla.f32 s24, s19, s23",
        )
    };
}

/// `sum_i w[i] x[i]` over the Q8_0 blocks that cover `x` (the last
/// possibly in part): per block, its products summed from +0 in order,
/// then scaled and added to the total (from +0), in order of blocks.
#[inline(never)]
pub fn dot_q8_0(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    let full = x.len().div_ceil(QK8_0);
    // Blocks, and the length of the last (1 to 32): every block of `x`
    // that `w` covers, as the portable loop's `zip` does.
    let (n, last) = if w.len() >= full {
        (full, x.len() - QK8_0 * full.saturating_sub(1))
    } else {
        (w.len(), QK8_0)
    };
    if n == 0 {
        return 0.0;
    }
    let bits: u32;
    // SAFETY: the loop reads n blocks of 34 bytes from `w` (`LDR`,
    // `LDRSB` and `LDRH`, which may be unaligned on this core) and
    // 32 (n - 1) + last floats from `x` (word aligned, as `VLDMIA`
    // needs), all in bounds: n <= w.len(), and x holds that many; s16 to
    // s25 are saved on the stack and restored; the rest is registers and
    // flags.
    unsafe {
        asm!(
            "vpush {{s16-s25}}",
            "movs r4, #0",
            "vmov s25, r4",
            "2:",
            "movs r4, #0",
            "vmov s24, r4",
            "adds r8, r0, #2",
            // This block's length: 32, or `last` for the last one.
            "movs r10, #32",
            "cmp r2, #1",
            "it eq",
            "moveq r10, r3",
            // Its fours, two a loop; an odd count enters at the second.
            "lsrs r11, r10, #2",
            "beq 4f",
            "adds r11, r11, #1",
            "lsrs r11, r11, #1",
            "bcc 7f",
            // Four quants and four activations a step.
            "1:",
            four!(),
            "7:",
            four!(),
            "subs r11, r11, #1",
            "bne 1b",
            // The last block's last one to three, one at a time.
            "4:",
            "ands r10, r10, #3",
            "beq 5f",
            "3:",
            "ldrsb r4, [r8], #1",
            "vldmia r1!, {{s16}}",
            "vmov s20, r4",
            "vcvt.f32.s32 s20, s20",
            "vmla.f32 s24, s16, s20",
            "subs r10, r10, #1",
            "bne 3b",
            // s += bs * scale, the scale through VCVTB (FPSCR.AHP is 0,
            // IEEE half, from reset).
            "5:",
            "ldrh r4, [r0], #34",
            "vmov s20, r4",
            "vcvtb.f32.f16 s20, s20",
            "vmla.f32 s25, s24, s20",
            "subs r2, r2, #1",
            "bne 2b",
            "vmov r0, s25",
            "vpop {{s16-s25}}",
            inout("r0") w.as_ptr() => bits,
            inout("r1") x.as_ptr() => _,
            inout("r2") n as u32 => _,
            in("r3") last as u32,
            out("r4") _,
            out("r5") _,
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
        );
    }
    f32::from_bits(bits)
}
