//! Quantization blocks: f32 <-> f16 and f32 <-> Q8_0, bit-exact with ggml.
//!
//! These run on the host (export) and on the device (dequantizing a row),
//! so they take caller buffers and allocate nothing.

use half::f16;

/// Elements in one Q8_0 block.
pub const QK8_0: usize = 32;

/// ggml's Q8_0 block: an f16 scale `d` followed by 32 signed bytes; the
/// value of element `i` is `d * qs[i]`.
///
/// The scale is kept as raw little-endian bytes so that the block has
/// alignment 1 and a slice of blocks can be viewed in place inside any
/// GGUF blob, whatever its address.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockQ8_0 {
    /// The scale, an IEEE binary16 in little-endian byte order.
    pub d: [u8; 2],
    /// The quantized values.
    pub qs: [i8; QK8_0],
}

const _: () = assert!(core::mem::size_of::<BlockQ8_0>() == 34);
const _: () = assert!(core::mem::align_of::<BlockQ8_0>() == 1);

impl BlockQ8_0 {
    /// The scale as f32.
    #[inline]
    pub fn scale(&self) -> f32 {
        f16_le_to_f32(self.d)
    }

    /// Quantizes 32 values the way ggml's `quantize_row_q8_0_ref` does:
    /// `d = max|x| / 127`, `q = roundf(x / d)` with ties away from zero,
    /// and `d` stored as f16 (round to nearest even).
    pub fn quantize(x: &[f32; QK8_0]) -> Self {
        let mut b = BlockQ8_0 {
            d: [0; 2],
            qs: [0; QK8_0],
        };
        b.quantize_from(x);
        b
    }

    /// [`Self::quantize`] written into `self`, each code where it stays: a
    /// block returned and then stored was copied by `memcpy` (its codes
    /// are only 2-byte aligned), which a Cortex-M4 firmware with a Q8_0 KV
    /// cache then linked for this alone (0.7 KB of flash).
    #[inline]
    fn quantize_from(&mut self, x: &[f32; QK8_0]) {
        // The largest magnitude by comparison: what a fold of `f32::max`
        // from 0.0 gives, a NaN skipped (it loses every comparison), the
        // same on every target (aarch64's `FMAXNM` kept a signaling NaN),
        // and without the call to `fmaxf` that `max` is on a Cortex-M4.
        let mut amax = 0.0f32;
        for v in x {
            let a = v.abs();
            if a > amax {
                amax = a;
            }
        }
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let qs = &mut self.qs;
        if amax.is_finite() && id.is_finite() {
            // Every |v * id| is within 127 up to rounding: `roundf`'s ties
            // away from zero by truncation and the exact remainder, which
            // needs no saturating cast (the KV cache of the text model
            // quantizes on every step).
            for (q, v) in qs.iter_mut().zip(x) {
                let y = v * id;
                let t = y as i32;
                let f = y - t as f32;
                *q = if f >= 0.5 {
                    t + 1
                } else if f <= -0.5 {
                    t - 1
                } else {
                    t
                } as i8;
            }
        } else {
            for (q, v) in qs.iter_mut().zip(x) {
                // `as` saturates for NaN and infinite products.
                *q = libm::roundf(v * id) as i8;
            }
        }
        self.d = f16::from_f32(d).to_le_bytes();
    }

    /// Writes the 32 dequantized values into `out`.
    #[inline]
    pub fn dequantize(&self, out: &mut [f32; QK8_0]) {
        let d = self.scale();
        for (o, q) in out.iter_mut().zip(self.qs) {
            *o = d * q as f32;
        }
    }

    /// Views raw bytes as blocks, in place. `None` unless `bytes.len()` is a
    /// multiple of 34.
    pub fn cast_slice(bytes: &[u8]) -> Option<&[BlockQ8_0]> {
        if !bytes.len().is_multiple_of(34) {
            return None;
        }
        let n = bytes.len() / 34;
        // SAFETY: BlockQ8_0 is repr(C), has size 34 and alignment 1 (both
        // asserted at compile time), and every bit pattern is a valid value
        // of its fields ([u8; 2] and [i8; 32]). The length is exactly n
        // blocks and the lifetime is tied to `bytes`.
        Some(unsafe { core::slice::from_raw_parts(bytes.as_ptr().cast::<BlockQ8_0>(), n) })
    }

    /// The block's 34 bytes as stored in GGUF.
    pub fn to_bytes(&self) -> [u8; 34] {
        let mut b = [0u8; 34];
        b[..2].copy_from_slice(&self.d);
        for (o, q) in b[2..].iter_mut().zip(self.qs) {
            *o = q as u8;
        }
        b
    }
}

/// Rounds an f32 to the nearest f16 (ties to even) and returns its bits.
#[inline]
pub fn f32_to_f16_bits(x: f32) -> u16 {
    f16::from_f32(x).to_bits()
}

/// Widens f16 bits to f32 (exact): every f16 the runtime reads goes
/// through here.
///
/// On 32-bit Arm it is [`f16_bits_to_f32_mul`], a few instructions, where
/// `half`'s portable conversion is about 1 KiB of flash inlined into the
/// kernels; elsewhere `half`, which uses F16C or NEON when compiled in.
/// Both are exact, so the bits are the same.
///
/// ```
/// use edgegen_format::quant::f16_bits_to_f32;
/// assert_eq!(f16_bits_to_f32(0x3c00), 1.0);
/// assert_eq!(f16_bits_to_f32(0x0001), 5.960_464_5e-8); // the least subnormal
/// ```
#[inline]
pub fn f16_bits_to_f32(bits: u16) -> f32 {
    if cfg!(target_arch = "arm") {
        f16_bits_to_f32_mul(bits)
    } else {
        f16::from_bits(bits).to_f32()
    }
}

/// f16 to f32 with one multiply: the exponent and mantissa shifted into
/// place read as an f32 that is the value times 2^-112 (subnormals
/// included, as f32 subnormals), so multiplying by 2^112 is exact;
/// infinities and NaNs (made quiet, as `half` does) are set directly.
/// Needs subnormals kept, not flushed, which is the default on x86,
/// aarch64 and Cortex-M.
///
/// ```
/// use edgegen_format::quant::f16_bits_to_f32_mul;
/// assert_eq!(f16_bits_to_f32_mul(0xc000), -2.0);
/// assert!(f16_bits_to_f32_mul(0x7e00).is_nan());
/// ```
#[inline]
pub fn f16_bits_to_f32_mul(bits: u16) -> f32 {
    let sign = ((bits & 0x8000) as u32) << 16;
    let em = (bits & 0x7fff) as u32;
    let mag = if em >= 0x7c00 {
        let man = (em & 0x3ff) << 13;
        0x7f80_0000 | man | if man != 0 { 0x0040_0000 } else { 0 }
    } else {
        (f32::from_bits(em << 13) * f32::from_bits(0x7780_0000)).to_bits()
    };
    f32::from_bits(sign | mag)
}

/// [`f16_bits_to_f32`] of two little-endian bytes.
///
/// ```
/// use edgegen_format::quant::f16_le_to_f32;
/// assert_eq!(f16_le_to_f32([0x00, 0x3c]), 1.0);
/// ```
#[inline]
pub fn f16_le_to_f32(b: [u8; 2]) -> f32 {
    f16_bits_to_f32(u16::from_le_bytes(b))
}

/// One block of 32 activations quantized for an integer dot product with a
/// Q8_0 weight block (the `q8_0a8` precision, [`crate::arch::ActQuant`]).
///
/// Unlike a weight block the scale stays f32 (it is made at run time and
/// never stored, so nothing is gained by rounding it), and the codes round
/// half to even, as ONNX's `Round` does, so that an ONNX graph can repeat
/// the quantization with standard ops and land on the same codes:
/// `d = max|x| * fl(1/127)`, `id = 1 / d`,
/// `qs[i] = clamp(round_half_even(x[i] * id), -127, 127)`, and all codes
/// zero when `d` is below `f32::MIN_POSITIVE` (zero or subnormal, where
/// `1 / d` would overflow). Products and one reciprocal, no other
/// division: tract turns `a / b` into `a * (1 / b)` and ONNX Runtime turns
/// `a * (1 / b)` back into `a / b`, so only these agree on every engine.
/// Codes never reach -128, which the SIMD kernels rely on (a pair of
/// products then fits an i16).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockA8 {
    /// The scale: `max|x| / 127`.
    pub d: f32,
    /// The codes, in -127..=127.
    pub qs: [i8; QK8_0],
}

/// `1 / 127` rounded to f32: an activation block's scale is its largest
/// magnitude times this ([`BlockA8`]).
pub const A8_INV_127: f32 = 1.0 / 127.0;

impl BlockA8 {
    /// The block of 32 zeros.
    pub const ZERO: Self = Self {
        d: 0.0,
        qs: [0; QK8_0],
    };

    /// Quantizes up to 32 values (a short slice is zero-padded, as a Q8_0
    /// weight row is).
    ///
    /// ```
    /// use edgegen_format::quant::BlockA8;
    /// // max|x| = 127, so d = 1 and the codes are x rounded, ties to even.
    /// let b = BlockA8::quantize(&[127.0, 2.5, -3.5, 0.5, -0.7]);
    /// assert_eq!(b.d, 127.0 * (1.0 / 127.0));
    /// assert_eq!(b.d, 1.0);
    /// assert_eq!(&b.qs[..5], &[127, 2, -4, 0, -1]);
    /// assert_eq!(b.qs[5..], [0; 27]);
    /// ```
    ///
    /// NaNs are skipped by the maximum and quantize to 127, the same on
    /// every path (SIMD `max` and `min` treat them so); no input panics.
    #[inline]
    pub fn quantize(x: &[f32]) -> Self {
        let x = &x[..x.len().min(QK8_0)];
        let amax = x.iter().fold(0.0f32, |m, v| a8_max(v.abs(), m));
        let d = amax * A8_INV_127;
        let mut qs = [0i8; QK8_0];
        if d >= f32::MIN_POSITIVE {
            let id = 1.0 / d;
            for (q, v) in qs.iter_mut().zip(x) {
                *q = a8_code(*v * id);
            }
        }
        Self { d, qs }
    }
}

/// `a` if it is the larger, else `b`: x86's `maxps` (a NaN `a` gives `b`).
#[inline(always)]
pub fn a8_max(a: f32, b: f32) -> f32 {
    if a > b { a } else { b }
}

/// The code of `v = x * id`: rounded half to even, then clamped to
/// -127..=127 the way x86's `minps` then `maxps` do it (a NaN gives 127).
#[inline(always)]
pub fn a8_code(v: f32) -> i8 {
    let r = round_half_even(v);
    let r = if r < 127.0 { r } else { 127.0 };
    let r = if r > -127.0 { r } else { -127.0 };
    r as i8
}

/// Rounds to the nearest integer, ties to even (IEEE `roundTiesToEven`,
/// ONNX `Round`), without `std`: adding and subtracting 1.5 * 2^23 leaves
/// no fraction bits, so the FPU's own round-to-nearest-even does the work.
/// Exact for |v| < 2^22; larger values are already integers.
///
/// ```
/// use edgegen_format::quant::round_half_even;
/// assert_eq!(round_half_even(2.5), 2.0);
/// assert_eq!(round_half_even(-3.5), -4.0);
/// assert_eq!(round_half_even(0.49999997), 0.0);
/// ```
#[inline(always)]
pub fn round_half_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    if v.abs() < 4_194_304.0 {
        (v + MAGIC) - MAGIC
    } else {
        v
    }
}

/// Quantizes `src` into activation blocks: block `i` holds
/// `src[32 i .. 32 i + 32]` (the last zero-padded). `dst` must hold
/// `src.len().div_ceil(32)` blocks; returns `false` (writing nothing)
/// otherwise.
pub fn quantize_a8(src: &[f32], dst: &mut [BlockA8]) -> bool {
    if dst.len() != src.len().div_ceil(QK8_0) {
        return false;
    }
    for (blk, chunk) in dst.iter_mut().zip(src.chunks(QK8_0)) {
        *blk = BlockA8::quantize(chunk);
    }
    true
}

/// `x` replaced by what an `a8` layer multiplies: each block of 32
/// quantized and widened back (`d * q`). The host applies this to a Q8_0
/// layer's input to compute what a device computes.
pub fn fake_quant_a8(x: &mut [f32]) {
    for chunk in x.chunks_mut(QK8_0) {
        let b = BlockA8::quantize(chunk);
        for (v, q) in chunk.iter_mut().zip(b.qs) {
            *v = b.d * q as f32;
        }
    }
}

/// How close the values of `x` (cut into blocks of 32) come to a rounding
/// tie when quantized as [`BlockA8`]: `[values, exact ties, near ties]`,
/// where a near tie is within 2^-12 of a code's half (`x * id` at `k +
/// 0.5 +- 2^-12`), close enough that engines summing an earlier layer in
/// another order can land on either side. What `edgegen validate` reports
/// for the `q8_0a8` precision.
pub fn a8_ties(x: &[f32]) -> [usize; 3] {
    let mut t = [0usize; 3];
    for chunk in x.chunks(QK8_0) {
        let amax = chunk.iter().fold(0.0f32, |m, v| a8_max(v.abs(), m));
        let d = amax * A8_INV_127;
        t[0] += chunk.len();
        if d < f32::MIN_POSITIVE {
            continue;
        }
        let id = 1.0 / d;
        for v in chunk {
            let v = (*v * id).abs();
            let off = (v - libm::floorf(v) - 0.5).abs();
            t[1] += (off == 0.0) as usize;
            t[2] += (off <= 1.0 / 4096.0) as usize;
        }
    }
    t
}

/// Quantizes `src` into Q8_0 blocks. `src.len()` must be `32 * dst.len()`;
/// returns `false` (writing nothing) otherwise.
pub fn quantize_q8_0(src: &[f32], dst: &mut [BlockQ8_0]) -> bool {
    if src.len() != dst.len() * QK8_0 {
        return false;
    }
    for (blk, x) in dst.iter_mut().zip(src.as_chunks::<QK8_0>().0) {
        blk.quantize_from(x);
    }
    true
}

/// Dequantizes Q8_0 blocks into `dst`. `dst.len()` must be `32 * src.len()`;
/// returns `false` (writing nothing) otherwise.
pub fn dequantize_q8_0(src: &[BlockQ8_0], dst: &mut [f32]) -> bool {
    if dst.len() != src.len() * QK8_0 {
        return false;
    }
    for (blk, chunk) in src.iter().zip(dst.chunks_exact_mut(QK8_0)) {
        let mut a = [0f32; QK8_0];
        blk.dequantize(&mut a);
        chunk.copy_from_slice(&a);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ggml's reference quantizer, as written before the fast path, but
    /// for NaNs: its `f32::max` skipped a NaN on x86 and in libm's
    /// `fmaxf` (the Cortex-M4), while aarch64's `FMAXNM` returns NaN for a
    /// signaling one. The quantizer now skips every NaN on every target,
    /// and so does this reference.
    fn quantize_reference(x: &[f32; QK8_0]) -> BlockQ8_0 {
        let amax = x
            .iter()
            .fold(0.0f32, |m, v| if v.is_nan() { m } else { m.max(v.abs()) });
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0i8; QK8_0];
        for (q, v) in qs.iter_mut().zip(x) {
            *q = libm::roundf(v * id) as i8;
        }
        BlockQ8_0 {
            d: f16::from_f32(d).to_le_bytes(),
            qs,
        }
    }

    /// The fast quantizer gives the reference's bytes: on random blocks
    /// at scales from subnormal to near overflow, on blocks built to put
    /// products on and beside every half-integer, and on blocks with
    /// zeros, infinities and NaNs.
    #[test]
    fn q8_0_quantizes_as_ggmls_reference_does() {
        let mut seed = 0x1234_5678u32;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        };
        let check = |x: &[f32; QK8_0]| {
            let (a, b) = (BlockQ8_0::quantize(x), quantize_reference(x));
            assert_eq!((a.d, a.qs), (b.d, b.qs), "{x:?}");
        };
        for i in 0..200_000 {
            let scale = f32::from_bits(((i % 250) as u32 + 1) << 23);
            let x: [f32; QK8_0] =
                core::array::from_fn(|_| (next() as i32 as f32 / 2_147_483_648.0) * scale);
            check(&x);
            // Products on a half-integer and one ulp either side.
            let mut y = [0f32; QK8_0];
            y[0] = 127.0 * scale;
            for (j, v) in y.iter_mut().enumerate().skip(1) {
                let h = (next() % 254) as f32 / 2.0 - 63.5;
                let bits = (h * scale).to_bits();
                *v = f32::from_bits(match j % 3 {
                    0 => bits,
                    1 => bits.wrapping_add(1),
                    _ => bits.wrapping_sub(1),
                });
            }
            check(&y);
        }
        let mut z = [0f32; QK8_0];
        check(&z);
        z[3] = f32::from_bits(1);
        check(&z);
        z[4] = -1e-40;
        check(&z);
        for special in [f32::INFINITY, f32::NEG_INFINITY, f32::NAN, f32::MAX] {
            let mut w: [f32; QK8_0] = core::array::from_fn(|j| j as f32 - 16.0);
            w[7] = special;
            check(&w);
        }
    }

    /// The multiply conversion the Arm builds use gives `half`'s bits for
    /// every one of the 65,536 f16 values.
    #[test]
    fn f16_by_multiply_is_exact_for_every_value() {
        for b in 0..=u16::MAX {
            let want = f16::from_bits(b).to_f32().to_bits();
            assert_eq!(f16_bits_to_f32_mul(b).to_bits(), want, "f16 bits {b:#06x}");
        }
    }

    /// A small deterministic generator, so the tests need no crates.
    fn lcg(state: &mut u64) -> f32 {
        *state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((*state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    #[test]
    fn f16_error_is_within_half_an_ulp() {
        let mut s = 1;
        for _ in 0..100_000 {
            let x = lcg(&mut s) * 1000.0;
            let y = f16_bits_to_f32(f32_to_f16_bits(x));
            // f16 has 11 significant bits: relative error <= 2^-11 for normals.
            assert!(
                (x - y).abs() <= x.abs() * (1.0 / 2048.0) + 6e-8,
                "{x} -> {y}"
            );
        }
    }

    #[test]
    fn f16_rounds_ties_to_even() {
        // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties go to 1 (even).
        assert_eq!(f16_bits_to_f32(f32_to_f16_bits(1.0 + 1.0 / 2048.0)), 1.0);
        // 1 + 3 * 2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9: goes up.
        assert_eq!(
            f16_bits_to_f32(f32_to_f16_bits(1.0 + 3.0 / 2048.0)),
            1.0 + 2.0 / 1024.0
        );
    }

    #[test]
    fn q8_0_error_is_within_half_a_step() {
        let mut s = 7;
        for scale in [1e-3f32, 1.0, 37.0] {
            let src: [f32; 32 * 8] = core::array::from_fn(|_| lcg(&mut s) * scale);
            let mut blocks = [BlockQ8_0 {
                d: [0; 2],
                qs: [0; 32],
            }; 8];
            assert!(quantize_q8_0(&src, &mut blocks));
            let mut out = [0f32; 32 * 8];
            assert!(dequantize_q8_0(&blocks, &mut out));
            for (b, (x, y)) in src.chunks(32).zip(out.chunks(32)).enumerate() {
                let amax = x.iter().fold(0f32, |m, v| m.max(v.abs()));
                let d = amax / 127.0;
                // Half a quantization step, plus the f16 rounding of the
                // scale applied to the largest code. For normal f16 scales
                // that second term is at most amax * 2^-11; for tiny blocks
                // the scale is an f16 subnormal and loses more.
                let bound = 0.5 * d + 127.0 * (blocks[b].scale() - d).abs() + 1e-9;
                assert!(bound <= 0.5 * d + amax / 2048.0 + 127.0 * 3e-8 + 1e-9);
                for (a, c) in x.iter().zip(y) {
                    assert!((a - c).abs() <= bound, "{a} vs {c}, bound {bound}");
                }
            }
        }
    }

    #[test]
    fn q8_0_zero_block_and_layout() {
        let b = BlockQ8_0::quantize(&[0.0; 32]);
        assert_eq!(b.scale(), 0.0);
        assert!(b.qs.iter().all(|&q| q == 0));
        let mut x = [0f32; 32];
        x[3] = -2.54;
        let b = BlockQ8_0::quantize(&x);
        assert_eq!(b.qs[3], -127);
        let bytes = b.to_bytes();
        let view = BlockQ8_0::cast_slice(&bytes).unwrap();
        assert_eq!(view[0], b);
        assert!(BlockQ8_0::cast_slice(&bytes[1..]).is_none());
    }

    /// The activation rounding is IEEE's ties-to-even for every input a
    /// block can produce (|v| <= 127), checked against `std`'s.
    #[test]
    fn round_half_even_matches_std() {
        extern crate std;
        let mut s = 3;
        for _ in 0..200_000 {
            let v = lcg(&mut s) * 130.0;
            assert_eq!(round_half_even(v), v.round_ties_even(), "{v}");
        }
        for k in -260..=260 {
            let v = k as f32 * 0.5;
            assert_eq!(round_half_even(v), v.round_ties_even(), "{v}");
            for u in [v.next_up(), v.next_down()] {
                assert_eq!(round_half_even(u), u.round_ties_even(), "{u}");
            }
        }
        assert_eq!(round_half_even(1e30), 1e30);
        assert!(round_half_even(f32::NAN).is_nan());
    }

    #[test]
    fn a8_blocks_are_within_half_a_step_and_never_panic() {
        let mut s = 11;
        for scale in [1e-37f32, 1e-30, 1e-3, 1.0, 1e30] {
            let x: [f32; 45] = core::array::from_fn(|_| lcg(&mut s) * scale);
            let mut b = [BlockA8::ZERO; 2];
            assert!(quantize_a8(&x, &mut b));
            assert!(!quantize_a8(&x, &mut b[..1]));
            for (blk, c) in b.iter().zip(x.chunks(32)) {
                let amax = c.iter().fold(0f32, |m, v| m.max(v.abs()));
                assert_eq!(blk.d, amax * A8_INV_127);
                if scale == 1e-37 {
                    // A subnormal scale: zero codes.
                    assert_eq!(blk.qs, [0; 32]);
                    continue;
                }
                assert!(blk.qs.iter().any(|q| q.abs() == 127));
                for (q, v) in blk.qs.iter().zip(c) {
                    assert!((blk.d * *q as f32 - v).abs() <= 0.5001 * blk.d, "{v}");
                    let want = (v * (1.0 / blk.d)).round_ties_even().clamp(-127.0, 127.0);
                    assert_eq!(*q as f32, want, "{v}");
                }
                assert!(blk.qs[c.len()..].iter().all(|&q| q == 0));
            }
        }
        assert_eq!(BlockA8::quantize(&[0.0; 32]), BlockA8::ZERO);
        let odd = BlockA8::quantize(&[f32::INFINITY, 1.0, f32::NAN, -f32::INFINITY]);
        assert_eq!(odd.qs[..4], [127, 0, 127, 127]);
        let nan = BlockA8::quantize(&[2.0, f32::NAN, -1.0]);
        assert_eq!(
            (nan.d, &nan.qs[..3]),
            (2.0 * A8_INV_127, &[127, 127, -64][..])
        );
        let mut v = [63.5f32, -127.0, 0.25, 2.5];
        fake_quant_a8(&mut v);
        assert_eq!(v, [64.0, -127.0, 0.0, 2.0]);
        assert_eq!(a8_ties(&[127.0, 2.5, 3.5001, -0.5, 7.0]), [5, 2, 3]);
        // Tiny blocks quantize to zero rather than overflow 1 / d.
        assert_eq!(BlockA8::quantize(&[1e-42, -3e-43, 0.0]).qs, [0; 32]);
    }

    #[test]
    fn length_mismatch_is_refused() {
        let mut blocks = [BlockQ8_0 {
            d: [0; 2],
            qs: [0; 32],
        }; 1];
        assert!(!quantize_q8_0(&[0.0; 31], &mut blocks));
        assert!(!dequantize_q8_0(&blocks, &mut [0.0; 33]));
    }
}
