//! Cortex-M4/M7 int8 kernel, through the DSP extension: `SXTB16` widens
//! the even (or, rotated, the odd) bytes of a word to two halfwords, and
//! `SMLAD` multiplies two pairs of halfwords and adds both products, so a
//! word of four weights costs one load, two widenings and two `SMLAD`s.
//!
//! The activations are quantized straight into that widened form
//! ([`quantize`]), once per chunk, and two rows a panel share them
//! (`panels`). Both are assembly: `core::arch::arm`'s DSP intrinsics are
//! not stable Rust, and stable Rust cannot name the single-precision FPU
//! registers of this target in `asm!` operands (their class needs the
//! double-precision `vfp2` feature), so each block saves the ones it uses
//! (`vpush`/`vpop`) and passes floats through core registers.
//!
//! Instructions per block of 32 weights and two rows (64 multiply-adds),
//! counted from the listing: 84 for the products (4 `LDM` of widened
//! activations, 16 `LDR` of weights, 32 `SXTB16`, 32 `SMLAD`), 15 to scale
//! and add the two sums, 2 for the loop: 1.58 per multiply-add. The
//! weights' widening and the `SMLAD`s alone are 1.0; a Q8_0 block is 34
//! bytes, so its codes are only 2-byte aligned and cannot be read with
//! `LDRD` or `LDM`.

use core::arch::asm;
use core::mem::MaybeUninit;
use edgegen_format::quant::{A8_INV_127, BlockA8, BlockQ8_0, QK8_0};

/// Rows per panel.
pub const PANEL: usize = 2;

/// An activation block as `panels` reads it: words `2j` and `2j + 1`
/// hold codes `4j, 4j + 2` and `4j + 1, 4j + 3` as halfwords (the pairs
/// `SXTB16` makes of a weight word), word 16 the block's scale (f32 bits).
pub type Wide = [u32; 17];

/// `b`'s codes and scale as a [`Wide`].
fn widen(b: &BlockA8) -> Wide {
    let mut e = [0u32; 17];
    for (j, c) in b.qs.chunks_exact(4).enumerate() {
        let h = |k: usize| c[k] as i16 as u16 as u32;
        e[2 * j] = h(0) | h(2) << 16;
        e[2 * j + 1] = h(1) | h(3) << 16;
    }
    e[16] = b.d.to_bits();
    e
}

/// [`BlockA8::quantize`] of `x` (up to 32 values), widened, into `dst`.
/// A whole block of finite values takes the fast path: the largest
/// magnitude from the values' bits (sign shifted out, which also finds
/// any infinity or NaN), then per value a multiply and `VCVTR`, which
/// rounds half to even (the FPSCR's default mode, which nothing here
/// changes). The codes cannot need the clamp: `|x| <= max` gives
/// `|x * id| <= 127 (1 + 2^-22)`. Any other block (short, or with an
/// infinity or NaN) goes through the reference.
#[inline]
pub fn quantize(x: &[f32], dst: &mut MaybeUninit<Wide>) {
    let Ok(x) = <&[f32; QK8_0]>::try_from(x) else {
        dst.write(widen(&BlockA8::quantize(x)));
        return;
    };
    // The largest magnitude's bits (doubled, dropping the sign), four
    // floats a step: the loop's own count and branch were a third of
    // this pass's instructions.
    let mut m = 0u32;
    for c in x.chunks_exact(4) {
        m = m.max(c[0].to_bits() << 1);
        m = m.max(c[1].to_bits() << 1);
        m = m.max(c[2].to_bits() << 1);
        m = m.max(c[3].to_bits() << 1);
    }
    if m >= 0xff00_0000 {
        dst.write(widen(&BlockA8::quantize(x)));
        return;
    }
    let d = f32::from_bits(m >> 1) * A8_INV_127;
    let e = dst.as_mut_ptr().cast::<u32>();
    // SAFETY: `e` points to the 17 words of `dst`; each is written once.
    unsafe {
        e.add(16).write(d.to_bits());
        if d >= f32::MIN_POSITIVE {
            codes(x, 1.0 / d, e);
        } else {
            e.write_bytes(0, 16);
        }
    }
}

/// The widened codes of `x * id` rounded half to even, into `e[..16]`.
///
/// # Safety
/// `e` is valid for writes of 16 words and word aligned.
#[inline(never)]
unsafe fn codes(x: &[f32; QK8_0], id: f32, e: *mut u32) {
    // SAFETY: reads the 32 floats of `x` and writes the 16 words at `e`
    // (both word aligned, as `VLDM` and `STRD` need); s0 to s4 are saved
    // on the stack and restored; the rest is registers.
    unsafe {
        asm!(
            "vpush {{s0-s4}}",
            "vmov s4, {id}",
            "2:",
            ".rept 2",
            "vldmia {x}!, {{s0-s3}}",
            "vmul.f32 s0, s0, s4",
            "vmul.f32 s1, s1, s4",
            "vmul.f32 s2, s2, s4",
            "vmul.f32 s3, s3, s4",
            "vcvtr.s32.f32 s0, s0",
            "vcvtr.s32.f32 s1, s1",
            "vcvtr.s32.f32 s2, s2",
            "vcvtr.s32.f32 s3, s3",
            "vmov {a}, {b}, s0, s1",
            "vmov {c}, {d}, s2, s3",
            "pkhbt {a}, {a}, {c}, lsl #16",
            "pkhbt {b}, {b}, {d}, lsl #16",
            "strd {a}, {b}, [{e}], #8",
            ".endr",
            "subs {n}, #1",
            "bne 2b",
            "vpop {{s0-s4}}",
            id = in(reg) id.to_bits(),
            x = inout(reg) x.as_ptr() => _,
            e = inout(reg) e => _,
            n = inout(reg) 4u32 => _,
            a = out(reg) _,
            b = out(reg) _,
            c = out(reg) _,
            d = out(reg) _,
        );
    }
}

/// `out[r * os] (+)= row r of w . x` for every row `r < rows`, row `r`'s
/// blocks from `w[r * nb]`, adding to what `out` holds unless `first`;
/// nothing when a slice is too short for that (the caller's checks rule
/// it out).
pub fn rows(
    w: &[BlockQ8_0],
    nb: usize,
    rows: usize,
    x: &[Wide],
    out: &mut [f32],
    os: usize,
    first: bool,
) {
    let n = x.len();
    let fits = rows == 0 || ((rows - 1) * nb + n <= w.len() && (rows - 1) * os < out.len());
    if n == 0 || rows == 0 || !fits {
        return;
    }
    if first {
        for r in 0..rows {
            out[r * os] = 0.0;
        }
    }
    let (w, o) = (w.as_ptr(), out.as_mut_ptr());
    // SAFETY: every row below `rows` has its n blocks and its output in
    // bounds (checked above); the pairs cover rows 0 to 2 * (rows / 2),
    // and a last odd row runs as a pair with itself (one copy of the
    // kernel in flash, where every byte is counted), its output stride 0.
    unsafe {
        if rows >= 2 {
            panels(w, w.add(nb), nb, rows / 2, x, o, os);
        }
        if rows % 2 == 1 {
            let last = w.add((rows - 1) * nb);
            panels(last, last, nb, 1, x, o.add((rows - 1) * os), 0);
        }
    }
}

/// For each of `pairs` pairs of rows, the first from `w0`, the second from
/// `w1`, each next pair `2 nb` blocks on: the rows dotted with `x`, added
/// to the outputs at `o` and `o + os` (each next pair `2 os` on), in the
/// reference's order: `acc += (d_w * d_x) * sum` per block, products and
/// sum rounded separately.
///
/// # Safety
/// `pairs >= 1`; the rows' `x.len() >= 1` blocks and the outputs are in
/// bounds.
#[inline(never)]
unsafe fn panels(
    w0: *const BlockQ8_0,
    w1: *const BlockQ8_0,
    nb: usize,
    pairs: usize,
    x: &[Wide],
    o: *mut f32,
    os: usize,
) {
    let n = x.len();
    // After a pair, the row pointers have moved n blocks; the next pair
    // starts 2 nb blocks after this one.
    let skip = ((2 * nb - n) * size_of::<BlockQ8_0>()) as u32;
    // SAFETY: the loop reads n blocks of 34 bytes from each row (`LDR` and
    // `LDRH`, which may be unaligned on this core), and n widened blocks
    // of 17 words (word aligned, as `LDM` and `VLDM` need), from `x`'s
    // start to its end; it reads and writes the two outputs of each pair
    // (word aligned, as `VLDR` and `VSTR` need); s16 to s27 are saved on
    // the stack and restored; the rest is registers. Between pairs the
    // output pointer, stride, pair count, skip and `x`'s start wait in
    // s23 to s27.
    unsafe {
        asm!(
            "vpush {{s16-s27}}",
            "vmov s23, s24, r0, r1",
            "vmov s25, s26, r2, r3",
            "vmov s27, r12",
            "3:",
            "vmov r0, r1, s23, s24",
            "vldr s16, [r0]",
            "add r1, r0, r1",
            "vldr s17, [r1]",
            "2:",
            "ldmia r12!, {{r0-r3}}",
            "ldr r4, [r10, #2]",
            "sxtb16 r5, r4",
            "smuad r8, r5, r0",
            "sxtb16 r5, r4, ror #8",
            "smlad r8, r5, r1, r8",
            "ldr r4, [r10, #6]",
            "sxtb16 r5, r4",
            "smlad r8, r5, r2, r8",
            "sxtb16 r5, r4, ror #8",
            "smlad r8, r5, r3, r8",
            "ldr r4, [r11, #2]",
            "sxtb16 r5, r4",
            "smuad r9, r5, r0",
            "sxtb16 r5, r4, ror #8",
            "smlad r9, r5, r1, r9",
            "ldr r4, [r11, #6]",
            "sxtb16 r5, r4",
            "smlad r9, r5, r2, r9",
            "sxtb16 r5, r4, ror #8",
            "smlad r9, r5, r3, r9",
            ".irp off, 10, 18, 26",
            "ldmia r12!, {{r0-r3}}",
            "ldr r4, [r10, #\\off]",
            "sxtb16 r5, r4",
            "smlad r8, r5, r0, r8",
            "sxtb16 r5, r4, ror #8",
            "smlad r8, r5, r1, r8",
            "ldr r4, [r10, #(\\off + 4)]",
            "sxtb16 r5, r4",
            "smlad r8, r5, r2, r8",
            "sxtb16 r5, r4, ror #8",
            "smlad r8, r5, r3, r8",
            "ldr r4, [r11, #\\off]",
            "sxtb16 r5, r4",
            "smlad r9, r5, r0, r9",
            "sxtb16 r5, r4, ror #8",
            "smlad r9, r5, r1, r9",
            "ldr r4, [r11, #(\\off + 4)]",
            "sxtb16 r5, r4",
            "smlad r9, r5, r2, r9",
            "sxtb16 r5, r4, ror #8",
            "smlad r9, r5, r3, r9",
            ".endr",
            // acc += (d_w * d_x) * sum, for both rows; the f16 scales
            // through VCVTB (FPSCR.AHP is 0, IEEE half, from reset).
            "vldmia r12!, {{s20}}",
            "ldrh r4, [r10], #34",
            "ldrh r5, [r11], #34",
            "vmov s18, s19, r4, r5",
            "vcvtb.f32.f16 s18, s18",
            "vcvtb.f32.f16 s19, s19",
            "vmul.f32 s18, s18, s20",
            "vmul.f32 s19, s19, s20",
            "vmov s21, s22, r8, r9",
            "vcvt.f32.s32 s21, s21",
            "vcvt.f32.s32 s22, s22",
            "vmul.f32 s21, s18, s21",
            "vmul.f32 s22, s19, s22",
            "vadd.f32 s16, s16, s21",
            "vadd.f32 s17, s17, s22",
            "cmp r12, lr",
            "bne 2b",
            // The pair's outputs, then the next pair.
            "vmov r0, r1, s23, s24",
            "vstr s16, [r0]",
            "add r2, r0, r1",
            "vstr s17, [r2]",
            "add r0, r2, r1",
            "vmov s23, r0",
            "vmov r0, r1, s25, s26",
            "add r10, r10, r1",
            "add r11, r11, r1",
            "vmov r12, s27",
            "subs r0, r0, #1",
            "vmov s25, r0",
            "bne 3b",
            "vpop {{s16-s27}}",
            inout("r0") o => _,
            inout("r1") (os * size_of::<f32>()) as u32 => _,
            inout("r2") pairs as u32 => _,
            inout("r3") skip => _,
            inout("r10") w0 => _,
            inout("r11") w1 => _,
            inout("r12") x.as_ptr() => _,
            in("lr") x.as_ptr().add(n),
            out("r4") _,
            out("r5") _,
            out("r8") _,
            out("r9") _,
        );
    }
}
