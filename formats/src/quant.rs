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
        let amax = x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        let mut qs = [0i8; QK8_0];
        for (q, v) in qs.iter_mut().zip(x) {
            // |v * id| <= 127 up to rounding, so the cast cannot saturate
            // wrongly; `as` saturates anyway for NaN/inf inputs.
            *q = libm::roundf(v * id) as i8;
        }
        Self {
            d: f16::from_f32(d).to_le_bytes(),
            qs,
        }
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

/// Quantizes `src` into Q8_0 blocks. `src.len()` must be `32 * dst.len()`;
/// returns `false` (writing nothing) otherwise.
pub fn quantize_q8_0(src: &[f32], dst: &mut [BlockQ8_0]) -> bool {
    if src.len() != dst.len() * QK8_0 {
        return false;
    }
    for (blk, chunk) in dst.iter_mut().zip(src.chunks_exact(QK8_0)) {
        let mut a = [0f32; QK8_0];
        a.copy_from_slice(chunk);
        *blk = BlockQ8_0::quantize(&a);
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
