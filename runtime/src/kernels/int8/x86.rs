//! x86_64 int8 kernels: AVX2's `vpmaddubsw` (eight rows a panel) and
//! AVX-512 VNNI's `vpdpbusd` (sixteen rows).
//!
//! Both compute each row's block sums exactly in i32 lanes, reduce a
//! panel's rows into one vector (lane = row) with a transposing sum, and
//! then add `(d_w * d_x) * sum` to the rows' accumulators with a rounded
//! multiply, multiply and add: the reference's arithmetic, a panel of
//! rows at a time, so the bits are the reference's.

use super::super::x86::scale_f16c;
use core::arch::x86_64::*;
use edgegen_format::quant::{A8_INV_127, BlockA8, BlockQ8_0};

/// Rows per AVX2 panel.
pub const PANEL_AVX2: usize = 8;
/// Rows per AVX-512 VNNI panel.
pub const PANEL_VNNI: usize = 16;

/// Whether the CPU has AVX-512 VNNI (and BW, which the kernel's callers
/// pair with it): compiled in, or detected with `std`.
#[inline(always)]
pub fn vnni() -> bool {
    if cfg!(all(
        target_feature = "avx512vnni",
        target_feature = "avx512bw"
    )) {
        return true;
    }
    #[cfg(any(test, feature = "std"))]
    return std::is_x86_feature_detected!("avx512vnni")
        && std::is_x86_feature_detected!("avx512bw");
    #[allow(unreachable_code)]
    false
}

#[cfg(any(test, feature = "std"))]
extern crate std;

/// The first `n` of 16 lanes.
#[inline(always)]
fn mask(n: usize) -> __mmask16 {
    if n >= 16 { !0 } else { (1u16 << n) - 1 }
}

/// `acc[k] += rows k of w . x` for `k < acc.len()` (1 to 16), row `k`'s
/// blocks from `w[k * nb]`, with `vpdpbusd`.
///
/// `vpdpbusd` multiplies unsigned by signed bytes, so the weights are
/// flipped to `q + 128` (an XOR), and `128 * sum(x codes)` is taken off
/// each block sum: every partial sum starts from `-128 *` its four x codes
/// (one more `vpdpbusd`, against bytes of 128), exact, so the fold yields
/// the block sum itself. Two rows share a 512-bit register (one in each
/// half, against the block of x broadcast to both), and the 8 registers of
/// a panel fold into one vector of 16 row sums in three transposing steps
/// (`fold8x16`), whose lane order (`VNNI_ORDER`) the scales and
/// accumulators follow.
///
/// The 16 rows' f16 weight scales of a block enter the vector as four
/// words packed in integer registers (`scale_word`), not by a gather.
///
/// # Safety
/// AVX-512F, BW and VNNI; `1 <= acc.len() <= 16`;
/// `w.len() >= (acc.len() - 1) * nb + x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
pub unsafe fn vnni_rows16(w: &[BlockQ8_0], nb: usize, x: &[BlockA8], acc: &mut [f32]) {
    let h = acc.len();
    debug_assert!((1..=PANEL_VNNI).contains(&h) && w.len() >= (h - 1) * nb + x.len());
    // SAFETY: the rows' blocks are in `w` (the contract), as each
    // addresser's doc requires.
    unsafe {
        if h == PANEL_VNNI {
            vnni_blocks(Strided::new(w.as_ptr(), nb), x, acc);
        } else {
            let row = |k: usize| k.min(h - 1) * nb;
            let offsets: [usize; 16] = core::array::from_fn(row);
            vnni_blocks(
                Clamped {
                    at: w.as_ptr(),
                    offsets,
                },
                x,
                acc,
            );
        }
    }
}

/// Where block `b` of each of a panel's 16 rows is, block after block.
trait Rows {
    /// Row `k`'s current block (`k < 16`, a constant after unrolling).
    fn at(&self, k: usize) -> *const BlockQ8_0;
    /// On to the next block of every row.
    fn advance(&mut self);
}

/// A full panel: row `k` at `k` strides `s` from the first. Four base
/// pointers (rows 0, 5, 8 and 13) plus `s`, `2s`, `3s` and `4s` reach all
/// 16 rows in x86's base-plus-index addressing, eight registers, where
/// one pointer and 16 row offsets spilled to the stack and were reloaded
/// for every block (136 instructions a block of 16 rows then, 123 now;
/// the 784 x 400 layer 8.1 -> 7.4 us on Zen 4, `cargo bench -p
/// edgegen-runtime --features std,int8 --bench kernels`).
struct Strided {
    base: [*const BlockQ8_0; 4],
    s: usize,
    s3: usize,
}

impl Strided {
    /// # Safety
    /// The 16 rows' blocks are in bounds from `w`, `nb` blocks apart.
    #[inline(always)]
    unsafe fn new(w: *const BlockQ8_0, nb: usize) -> Self {
        let s = nb * size_of::<BlockQ8_0>();
        // SAFETY: rows 5, 8 and 13 are in bounds (the contract).
        let base = unsafe { [0, 5, 8, 13].map(|k| w.byte_add(k * s)) };
        Strided { base, s, s3: 3 * s }
    }
}

impl Rows for Strided {
    #[inline(always)]
    fn at(&self, k: usize) -> *const BlockQ8_0 {
        let (g, j) = match k {
            0..5 => (0, k),
            5..8 => (1, k - 5),
            8..13 => (2, k - 8),
            _ => (3, k - 13),
        };
        let off = match j {
            0 => 0,
            1 => self.s,
            2 => 2 * self.s,
            3 => self.s3,
            _ => 4 * self.s,
        };
        self.base[g].wrapping_byte_add(off)
    }

    #[inline(always)]
    #[allow(
        clippy::pointers_in_nomem_asm_block,
        reason = "the template is empty: it reads no pointer, only hides the values"
    )]
    fn advance(&mut self) {
        let [a, b, c, d] = &mut self.base;
        for p in [&mut *a, &mut *b, &mut *c, &mut *d] {
            *p = p.wrapping_add(1);
        }
        // SAFETY: an empty template; the four pointers pass through their
        // registers unchanged. Opaque to the compiler, they stay four
        // pointers: otherwise it rewrites them as one pointer plus 16
        // loop-invariant offsets, more than the registers hold.
        unsafe {
            core::arch::asm!(
                "/* {0} {1} {2} {3} */",
                inout(reg) * a,
                inout(reg) * b,
                inout(reg) * c,
                inout(reg) * d,
                options(pure, nomem, nostack, preserves_flags)
            );
        }
    }
}

/// A short panel: row `k` at `offsets[k]` blocks from the current block
/// (rows past the last repeat it).
struct Clamped {
    at: *const BlockQ8_0,
    offsets: [usize; 16],
}

impl Rows for Clamped {
    #[inline(always)]
    fn at(&self, k: usize) -> *const BlockQ8_0 {
        self.at.wrapping_add(self.offsets[k])
    }

    #[inline(always)]
    fn advance(&mut self) {
        self.at = self.at.wrapping_add(1);
    }
}

/// [`vnni_rows16`]'s loop over the blocks, rows from `rows`.
///
/// # Safety
/// AVX-512F, BW and VNNI; `1 <= acc.len() <= 16`; `rows` gives blocks in
/// bounds for `x.len()` blocks.
#[inline(always)]
unsafe fn vnni_blocks(mut rows: impl Rows, x: &[BlockA8], acc: &mut [f32]) {
    let live = mask(acc.len());
    // SAFETY: every load below stays inside a block `rows` gives (the
    // contract); acc is read and written under the mask of its lanes; x
    // is read by reference.
    unsafe {
        let order = _mm512_loadu_si512(VNNI_ORDER.as_ptr().cast());
        let mut sum = _mm512_permutexvar_ps(order, _mm512_maskz_loadu_ps(live, acc.as_ptr()));
        for xb in x {
            sum = _mm512_add_ps(sum, vnni_block(&rows, xb));
            rows.advance();
        }
        let back = _mm512_loadu_si512(VNNI_INVERSE.as_ptr().cast());
        _mm512_mask_storeu_ps(acc.as_mut_ptr(), live, _mm512_permutexvar_ps(back, sum));
    }
}

/// `(d_w * d_x) * sum` of the current block of every row of `rows`,
/// against `xb`, the lanes in [`VNNI_ORDER`].
///
/// # Safety
/// AVX-512F, BW and VNNI; the 16 blocks are in bounds.
#[inline(always)]
unsafe fn vnni_block(rows: &impl Rows, xb: &BlockA8) -> __m512 {
    // SAFETY: loads inside the blocks (the contract); x by reference.
    unsafe {
        let flip = _mm512_set1_epi8(-128);
        let xv = _mm512_broadcast_i64x4(_mm256_loadu_si256(xb.qs.as_ptr().cast()));
        let start = _mm512_sub_epi32(
            _mm512_setzero_si512(),
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), flip, xv),
        );
        let mut d = [start; 8];
        for (p, dp) in d.iter_mut().enumerate() {
            let lo = (*rows.at(2 * p)).qs.as_ptr().cast::<__m256i>();
            let hi = (*rows.at(2 * p + 1)).qs.as_ptr().cast::<__m256i>();
            let wv = _mm512_inserti64x4::<1>(
                _mm512_castsi256_si512(_mm256_loadu_si256(lo)),
                _mm256_loadu_si256(hi),
            );
            *dp = _mm512_dpbusd_epi32(*dp, _mm512_xor_si512(wv, flip), xv);
        }
        let s = fold8x16(&d);
        let dw = _mm512_cvtph_ps(_mm256_set_epi64x(
            scale_word(lanes(rows, 3)),
            scale_word(lanes(rows, 2)),
            scale_word(lanes(rows, 1)),
            scale_word(lanes(rows, 0)),
        ));
        let scale = _mm512_mul_ps(dw, _mm512_set1_ps(xb.d));
        _mm512_mul_ps(scale, _mm512_cvtepi32_ps(s))
    }
}

/// The blocks of the rows in lanes `4 q` to `4 q + 3` of [`fold8x16`]'s
/// result. A function, not a closure: a closure here was compiled as a
/// call, without the kernel's target features.
#[inline(always)]
fn lanes(rows: &impl Rows, q: usize) -> [*const BlockQ8_0; 4] {
    let k = |i: usize| rows.at(VNNI_ORDER[4 * q + i] as usize);
    [k(0), k(1), k(2), k(3)]
}

/// The f16 scales of the four blocks `b`, packed into one word (block `k`
/// in bits `16 k..`) by scalar loads, shifts and ORs in the integer
/// registers.
///
/// The empty `asm!` takes and returns the word, so the compiler keeps it
/// there: otherwise it builds the vector with one `vpinsrw` per scale,
/// which competes with the products for the shuffle ports. A gather
/// (`vpgatherdd`) of the 16 scales cost more than the block's products on
/// AMD's Zen 4 (half the kernel's samples), and a table of the scales in
/// memory stalled on store forwarding.
///
/// # Safety
/// Each pointer points to a block.
#[inline(always)]
unsafe fn scale_word(b: [*const BlockQ8_0; 4]) -> i64 {
    let mut v = 0u64;
    for (k, p) in b.into_iter().enumerate() {
        // SAFETY: the caller's contract.
        let d = unsafe { (*p).d };
        v |= (u16::from_le_bytes(d) as u64) << (16 * k);
    }
    // SAFETY: an empty instruction template; the word goes in and out of
    // one register, and nothing else is touched.
    unsafe {
        core::arch::asm!("/* {0} */", inout(reg) v, options(pure, nomem, nostack, preserves_flags));
    }
    v as i64
}

/// The row in each lane of [`fold8x16`]'s result.
const VNNI_ORDER: [i32; 16] = [0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15];
/// The lane of each row in [`fold8x16`]'s result.
const VNNI_INVERSE: [i32; 16] = [0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15];

/// Eight registers, `d[p]` holding rows `2p` (lanes 0-7) and `2p + 1`
/// (lanes 8-15) as partial sums, folded into one register of the sixteen
/// row totals in [`VNNI_ORDER`]. Each step adds two registers after a
/// blend of each and one shuffle, which keeps most of the work off the
/// single shuffle port.
#[inline(always)]
unsafe fn fold8x16(d: &[__m512i; 8]) -> __m512i {
    // SAFETY: register-only AVX-512F intrinsics.
    unsafe {
        let lo = fold_step::<2>(fold_step::<1>(d[0], d[1]), fold_step::<1>(d[2], d[3]));
        let hi = fold_step::<2>(fold_step::<1>(d[4], d[5]), fold_step::<1>(d[6], d[7]));
        // Lane k of `lo` holds registers 0-3's lane-k totals: k = 0, 1 the
        // even rows' halves, k = 2, 3 the odd rows'. Add the halves.
        fold_step::<4>(lo, hi)
    }
}

/// One step of [`fold8x16`]: lanes of `a` and `b` alternate in groups of
/// `G` dwords (1, 2 or 4; the mask selects b's), and the other groups are
/// swapped into place and added. A function, not closures, so that it is
/// inlined into the kernel with the kernel's features
/// (tests/tests/kernel_closures.rs).
#[inline(always)]
unsafe fn fold_step<const G: usize>(a: __m512i, b: __m512i) -> __m512i {
    // SAFETY: register-only AVX-512F intrinsics.
    unsafe {
        let m: __mmask16 = match G {
            1 => 0xaaaa,
            2 => 0xcccc,
            _ => 0xf0f0,
        };
        let other = _mm512_mask_blend_epi32(m, b, a);
        let swapped = match G {
            1 => _mm512_shuffle_epi32::<0xb1>(other),
            2 => _mm512_shuffle_epi32::<0x4e>(other),
            _ => _mm512_shuffle_i32x4::<0xb1>(other, other),
        };
        _mm512_add_epi32(_mm512_mask_blend_epi32(m, a, b), swapped)
    }
}

/// `acc[k] += rows k of w . x` for `k < acc.len()` (1 to 8), with AVX2's
/// `vpmaddubsw`, which multiplies unsigned by signed bytes and adds pairs
/// into i16: so it takes `|w|` and x with w's sign (ggml's trick), whose
/// pairs fit an i16 (`2 * 128 * 127`, since x never holds -128).
///
/// # Safety
/// AVX2, F16C; `1 <= acc.len() <= 8`; `w.len() >= (acc.len() - 1) * nb +
/// x.len()`.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn avx2_rows8(w: &[BlockQ8_0], nb: usize, x: &[BlockA8], acc: &mut [f32]) {
    let h = acc.len();
    debug_assert!((1..=PANEL_AVX2).contains(&h) && w.len() >= (h - 1) * nb + x.len());
    let row = |k: usize| k.min(h - 1) * nb;
    let lanes: [usize; 8] = core::array::from_fn(row);
    let wp = w.as_ptr();
    // SAFETY: as in `vnni_rows16`.
    unsafe {
        let mut init = [0f32; 8];
        init[..h].copy_from_slice(acc);
        let mut sum = _mm256_loadu_ps(init.as_ptr());
        let ones = _mm256_set1_epi16(1);
        for (b, xb) in x.iter().enumerate() {
            let xv = _mm256_loadu_si256(xb.qs.as_ptr().cast());
            let mut d = [_mm256_setzero_si256(); 8];
            for (k, dk) in d.iter_mut().enumerate() {
                let blk = &*wp.add(row(k) + b);
                let wv = _mm256_loadu_si256(blk.qs.as_ptr().cast());
                let p16 = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv));
                *dk = _mm256_madd_epi16(p16, ones);
            }
            let s = fold8x8(&d);
            let word = |q: usize| {
                let k = |i: usize| wp.add(lanes[4 * q + i] + b);
                scale_word([k(0), k(1), k(2), k(3)])
            };
            let dw = _mm256_cvtph_ps(_mm_set_epi64x(word(1), word(0)));
            let scale = _mm256_mul_ps(dw, _mm256_set1_ps(xb.d));
            sum = _mm256_add_ps(sum, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(s)));
        }
        let mut out = [0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), sum);
        acc.copy_from_slice(&out[..h]);
    }
}

/// Eight registers of eight i32 partial sums folded into one register of
/// their eight totals, in order.
#[inline(always)]
unsafe fn fold8x8(d: &[__m256i; 8]) -> __m256i {
    // SAFETY: register-only AVX2 intrinsics.
    unsafe {
        let a = _mm256_hadd_epi32(_mm256_hadd_epi32(d[0], d[1]), _mm256_hadd_epi32(d[2], d[3]));
        let b = _mm256_hadd_epi32(_mm256_hadd_epi32(d[4], d[5]), _mm256_hadd_epi32(d[6], d[7]));
        // Each 128-bit lane holds rows 0-3 (a) or 4-7 (b), one half of the
        // bytes each: add the halves.
        _mm256_add_epi32(
            _mm256_permute2x128_si256::<0x20>(a, b),
            _mm256_permute2x128_si256::<0x31>(a, b),
        )
    }
}

/// [`BlockA8::quantize`] of up to 32 values with AVX-512: the same bits
/// (an exact maximum, the reciprocal's product, rounding half to even, and `min` then
/// `max` for the clamp, which is how the reference treats NaNs).
///
/// # Safety
/// AVX-512F and BW.
#[target_feature(enable = "avx512f,avx512bw")]
pub unsafe fn avx512_quantize(x: &[f32]) -> BlockA8 {
    let n = x.len().min(32);
    let (m0, m1) = (mask(n), mask(n.saturating_sub(16)));
    // SAFETY: masked loads of the first n floats of x.
    unsafe {
        let v0 = _mm512_maskz_loadu_ps(m0, x.as_ptr());
        let v1 = _mm512_maskz_loadu_ps(m1, x.as_ptr().add(16.min(n)));
        let abs = _mm512_set1_epi32(0x7fff_ffff);
        let a = |v: __m512| _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(v), abs));
        let m = _mm512_max_ps(a(v1), _mm512_max_ps(a(v0), _mm512_setzero_ps()));
        let amax = _mm512_reduce_max_ps(m);
        let d = amax * A8_INV_127;
        let mut out = BlockA8 { d, qs: [0; 32] };
        if d >= f32::MIN_POSITIVE {
            let id = _mm512_set1_ps(1.0 / d);
            let code = |v: __m512| {
                let r = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                    _mm512_mul_ps(v, id),
                );
                let r = _mm512_max_ps(
                    _mm512_min_ps(r, _mm512_set1_ps(127.0)),
                    _mm512_set1_ps(-127.0),
                );
                _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r))
            };
            let q = out.qs.as_mut_ptr().cast::<__m128i>();
            _mm_storeu_si128(q, code(v0));
            _mm_storeu_si128(q.add(1), code(v1));
        }
        out
    }
}

/// [`BlockA8::quantize`] with AVX2, the same bits as [`avx512_quantize`].
///
/// # Safety
/// AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn avx2_quantize(x: &[f32]) -> BlockA8 {
    let n = x.len().min(32);
    let mut buf = [0f32; 32];
    buf[..n].copy_from_slice(&x[..n]);
    // SAFETY: loads and stores inside `buf` and the block.
    unsafe {
        let p = buf.as_ptr();
        let v = [0, 8, 16, 24].map(|i| _mm256_loadu_ps(p.add(i)));
        let abs = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fff_ffff));
        let mut m = _mm256_setzero_ps();
        for vi in v {
            m = _mm256_max_ps(_mm256_and_ps(vi, abs), m);
        }
        let mut lanes = [0f32; 8];
        _mm256_storeu_ps(lanes.as_mut_ptr(), m);
        // Exact, so the order of the lanes does not matter.
        let amax = lanes
            .iter()
            .fold(0f32, |a, &b| edgegen_format::quant::a8_max(b, a));
        let d = amax * A8_INV_127;
        let mut out = BlockA8 { d, qs: [0; 32] };
        if d >= f32::MIN_POSITIVE {
            let id = _mm256_set1_ps(1.0 / d);
            let c = v.map(|vi| {
                let r = _mm256_round_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
                    _mm256_mul_ps(vi, id),
                );
                let r = _mm256_max_ps(
                    _mm256_min_ps(r, _mm256_set1_ps(127.0)),
                    _mm256_set1_ps(-127.0),
                );
                _mm256_cvtps_epi32(r)
            });
            let ab = _mm256_packs_epi32(c[0], c[1]);
            let cd = _mm256_packs_epi32(c[2], c[3]);
            let q = _mm256_permutevar8x32_epi32(
                _mm256_packs_epi16(ab, cd),
                _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7),
            );
            _mm256_storeu_si256(out.qs.as_mut_ptr().cast(), q);
        }
        out
    }
}

/// Pixels a [`PixelBlocks`] holds: four groups of 16 lanes.
pub const PIX: usize = 64;
/// Activation blocks a [`PixelBlocks`] holds.
pub const PIX_BLOCKS: usize = 8;

/// The quantized inputs of up to [`PIX`] pixels over [`PIX_BLOCKS`]
/// blocks of channels, laid out so that one `vpdpbusd` multiplies one
/// weight word (broadcast) with that word's position in 16 pixels at
/// once: a product of a matrix with many input columns (a transposed
/// convolution's pixels) then needs no sum across lanes, each lane being
/// one pixel's block sum.
#[repr(C, align(64))]
pub struct PixelBlocks {
    /// `[block][word][group]`: 16 pixels' four codes each.
    codes: [[[[i8; 64]; 4]; 8]; PIX_BLOCKS],
    /// `128 *` the sum of each pixel's codes in a block, taken off the
    /// block sums (the weights enter `vpdpbusd` as `q + 128`).
    sums: [[[i32; 16]; 4]; PIX_BLOCKS],
    /// Each pixel's block scale.
    scales: [[[f32; 16]; 4]; PIX_BLOCKS],
}

impl PixelBlocks {
    /// All zeros.
    pub const ZERO: Self = Self {
        codes: [[[[0; 64]; 4]; 8]; PIX_BLOCKS],
        sums: [[[0; 16]; 4]; PIX_BLOCKS],
        scales: [[[0.0; 16]; 4]; PIX_BLOCKS],
    };

    /// Puts pixel `j`'s (< [`PIX`]) block `b` (< [`PIX_BLOCKS`]) in place.
    #[inline]
    pub fn set(&mut self, j: usize, b: usize, x: &BlockA8) {
        let (g, lane) = (j / 16, j % 16);
        for (t, c) in x.qs.chunks_exact(4).enumerate() {
            self.codes[b][t][g][4 * lane..4 * lane + 4].copy_from_slice(c);
        }
        self.sums[b][g][lane] = 128 * x.qs.iter().map(|&q| q as i32).sum::<i32>();
        self.scales[b][g][lane] = x.d;
    }
}

/// `out[r * p + j] (+)= row r . pixel j` for rows `r < rows` and the first
/// `pn` pixels of `x`, over its first `kb` blocks; row `r`'s blocks start
/// at `w[r * nb]`; `first` starts the sums from zero, otherwise they go on
/// from what `out` holds (in block order, as the reference adds them).
///
/// # Safety
/// AVX-512F, BW and VNNI; F16C; `pn <= PIX`, `kb <= PIX_BLOCKS`; `w` holds
/// `(rows - 1) * nb + kb` blocks, `out` holds `(rows - 1) * p + pn` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,f16c")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn vnni_pixels(
    w: &[BlockQ8_0],
    nb: usize,
    rows: usize,
    x: &PixelBlocks,
    (pn, kb): (usize, usize),
    out: &mut [f32],
    p: usize,
    first: bool,
) {
    debug_assert!(pn <= PIX && kb <= PIX_BLOCKS && rows >= 1);
    debug_assert!(w.len() >= (rows - 1) * nb + kb && out.len() >= (rows - 1) * p + pn);
    let groups = pn.div_ceil(16);
    let masks: [__mmask16; 4] = core::array::from_fn(|g| mask(pn.saturating_sub(16 * g)));
    let flip = _mm512_set1_epi32(0x8080_8080u32 as i32);
    for r in 0..rows {
        // SAFETY: row r's output lies in out (the contract), stored under
        // each group's mask; its blocks lie in w; x is read by reference.
        unsafe {
            let o = out.as_mut_ptr().add(r * p);
            let mut acc = [_mm512_setzero_ps(); 4];
            if !first {
                for (g, a) in acc.iter_mut().enumerate().take(groups) {
                    *a = _mm512_maskz_loadu_ps(masks[g], o.add(16 * g));
                }
            }
            for b in 0..kb {
                let blk = &w[r * nb + b];
                let dw = _mm512_set1_ps(scale_f16c(blk));
                let q = blk.qs.as_ptr().cast::<u32>();
                let wd: [__m512i; 8] = core::array::from_fn(|t| {
                    _mm512_xor_si512(_mm512_set1_epi32(q.add(t).read_unaligned() as i32), flip)
                });
                for (g, a) in acc.iter_mut().enumerate().take(groups) {
                    let mut d = _mm512_setzero_si512();
                    for (t, wt) in wd.iter().enumerate() {
                        let c = _mm512_load_si512(x.codes[b][t][g].as_ptr().cast());
                        d = _mm512_dpbusd_epi32(d, *wt, c);
                    }
                    let s = _mm512_sub_epi32(d, _mm512_load_si512(x.sums[b][g].as_ptr().cast()));
                    let scale = _mm512_mul_ps(dw, _mm512_load_ps(x.scales[b][g].as_ptr()));
                    *a = _mm512_add_ps(*a, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(s)));
                }
            }
            for (g, a) in acc.iter().enumerate().take(groups) {
                _mm512_mask_storeu_ps(o.add(16 * g), masks[g], *a);
            }
        }
    }
}

/// [`vnni_pixels`] with AVX2: per weight word, `vpmaddubsw` of its
/// magnitudes (broadcast) with each pixel's codes signed by it (ggml's
/// trick, exact since the codes never reach -128), then `vpmaddwd` into
/// the pixel's lane: eight pixels a register, still no sum across lanes.
///
/// # Safety
/// AVX2 and F16C; the sizes as for [`vnni_pixels`].
#[target_feature(enable = "avx2,f16c")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn avx2_pixels(
    w: &[BlockQ8_0],
    nb: usize,
    rows: usize,
    x: &PixelBlocks,
    (pn, kb): (usize, usize),
    out: &mut [f32],
    p: usize,
    first: bool,
) {
    debug_assert!(pn <= PIX && kb <= PIX_BLOCKS && rows >= 1);
    debug_assert!(w.len() >= (rows - 1) * nb + kb && out.len() >= (rows - 1) * p + pn);
    let halves = pn.div_ceil(8);
    let ones = _mm256_set1_epi16(1);
    for r in 0..rows {
        // SAFETY: row r's output lies in out (the contract); a partial
        // group of eight goes through a stack copy; the blocks lie in w.
        unsafe {
            let o = out.as_mut_ptr().add(r * p);
            let mut acc = [_mm256_setzero_ps(); PIX / 8];
            let mut tail = [0f32; 8];
            let n_last = pn - 8 * (halves - 1);
            if !first {
                for (h, a) in acc.iter_mut().enumerate().take(halves) {
                    *a = if h + 1 < halves || n_last == 8 {
                        _mm256_loadu_ps(o.add(8 * h))
                    } else {
                        tail[..n_last]
                            .copy_from_slice(core::slice::from_raw_parts(o.add(8 * h), n_last));
                        _mm256_loadu_ps(tail.as_ptr())
                    };
                }
            }
            for b in 0..kb {
                let blk = &w[r * nb + b];
                let dw = _mm256_set1_ps(scale_f16c(blk));
                let q = blk.qs.as_ptr().cast::<u32>();
                let wd: [__m256i; 8] =
                    core::array::from_fn(|t| _mm256_set1_epi32(q.add(t).read_unaligned() as i32));
                let aw: [__m256i; 8] = core::array::from_fn(|t| _mm256_abs_epi8(wd[t]));
                for (h, a) in acc.iter_mut().enumerate().take(halves) {
                    let (g, half) = (h / 2, h % 2);
                    let mut d = _mm256_setzero_si256();
                    for t in 0..8 {
                        let c = _mm256_load_si256(x.codes[b][t][g].as_ptr().add(32 * half).cast());
                        let prod = _mm256_maddubs_epi16(aw[t], _mm256_sign_epi8(c, wd[t]));
                        d = _mm256_add_epi32(d, _mm256_madd_epi16(prod, ones));
                    }
                    let dx = _mm256_load_ps(x.scales[b][g].as_ptr().add(8 * half));
                    let scale = _mm256_mul_ps(dw, dx);
                    *a = _mm256_add_ps(*a, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(d)));
                }
            }
            for (h, a) in acc.iter().enumerate().take(halves) {
                if h + 1 < halves || n_last == 8 {
                    _mm256_storeu_ps(o.add(8 * h), *a);
                } else {
                    _mm256_storeu_ps(tail.as_mut_ptr(), *a);
                    core::slice::from_raw_parts_mut(o.add(8 * h), n_last)
                        .copy_from_slice(&tail[..n_last]);
                }
            }
        }
    }
}
