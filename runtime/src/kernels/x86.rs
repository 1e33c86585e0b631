//! x86_64 kernels: AVX2 with FMA and F16C, and AVX-512F.
//!
//! The bodies see only full-width chunks; the safe wrappers in
//! `kernels/mod.rs` add the tail with the scalar kernels. Each function is
//! `unsafe` only because it needs CPU features the caller must check.

use core::arch::x86_64::*;
use edgegen_format::quant::BlockQ8_0;

#[inline(always)]
unsafe fn hsum256(v: __m256) -> f32 {
    // SAFETY (whole function): register-only intrinsics of AVX, which the
    // caller's target features include.
    unsafe {
        let lo = _mm256_castps256_ps128(v);
        let hi = _mm256_extractf128_ps(v, 1);
        let s = _mm_add_ps(lo, hi);
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

/// Dot product of the first `32 * (x.len() / 32)` elements; F32 weights.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `w.len() >= 4 * x.len()`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_dot_f32_32x(w: &[u8], x: &[f32]) -> f32 {
    let n = x.len() / 32 * 32;
    debug_assert!(w.len() >= 4 * n);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    // SAFETY: every load reads 32 bytes at offsets < 4n <= w.len() from
    // `w`, and 8 floats at offsets < n <= x.len() from `x`; loadu accepts
    // any alignment.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i < n {
            for (k, a) in acc.iter_mut().enumerate() {
                let wv = _mm256_loadu_ps(wp.add(4 * (i + 8 * k)).cast());
                let xv = _mm256_loadu_ps(xp.add(i + 8 * k));
                *a = _mm256_fmadd_ps(wv, xv, *a);
            }
            i += 32;
        }
        hsum256(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ))
    }
}

/// Dot product of the first `32 * (x.len() / 32)` elements; F16 weights.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; `w.len() >= 2 * x.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot_f16_32x(w: &[u8], x: &[f32]) -> f32 {
    let n = x.len() / 32 * 32;
    debug_assert!(w.len() >= 2 * n);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    // SAFETY: each 16-byte load is at an offset < 2n <= w.len(), each
    // 8-float load at an offset < n <= x.len(); both are unaligned loads.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i < n {
            for (k, a) in acc.iter_mut().enumerate() {
                let h = _mm_loadu_si128(wp.add(2 * (i + 8 * k)).cast());
                let wv = _mm256_cvtph_ps(h);
                let xv = _mm256_loadu_ps(xp.add(i + 8 * k));
                *a = _mm256_fmadd_ps(wv, xv, *a);
            }
            i += 32;
        }
        hsum256(_mm256_add_ps(
            _mm256_add_ps(acc[0], acc[1]),
            _mm256_add_ps(acc[2], acc[3]),
        ))
    }
}

/// A block's scale through the F16C instruction: `half`'s portable
/// conversion costs more than the block's 32 multiply-adds.
#[inline(always)]
unsafe fn scale_f16c(b: &BlockQ8_0) -> f32 {
    // SAFETY: register-only F16C intrinsics; every caller enables f16c
    // (directly, or through avx512f).
    unsafe {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
            u16::from_le_bytes(b.d) as i32
        )))
    }
}

/// Dot product over whole Q8_0 blocks: `x.len() / 32` of them.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; `w.len() >= x.len() / 32`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot_q8_0_32x(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    let nb = x.len() / 32;
    debug_assert!(w.len() >= nb);
    let xp = x.as_ptr();
    // SAFETY: block b's 32 quants are read as four 8-byte loads inside the
    // 34-byte block; x is read at offsets < 32 nb <= x.len().
    unsafe {
        let mut acc = _mm256_setzero_ps();
        for (b, blk) in w.iter().take(nb).enumerate() {
            let q = blk.qs.as_ptr().cast::<u8>();
            let mut s = _mm256_setzero_ps();
            for k in 0..4 {
                let q8 = _mm_loadl_epi64(q.add(8 * k).cast());
                let qf = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8));
                s = _mm256_fmadd_ps(qf, _mm256_loadu_ps(xp.add(32 * b + 8 * k)), s);
            }
            acc = _mm256_fmadd_ps(_mm256_set1_ps(scale_f16c(blk)), s, acc);
        }
        hsum256(acc)
    }
}

/// Dot product of the first `64 * (x.len() / 64)` elements; F32 weights.
///
/// # Safety
/// The CPU must support AVX-512F; `w.len() >= 4 * x.len()`.
#[target_feature(enable = "avx512f")]
pub unsafe fn avx512_dot_f32_64x(w: &[u8], x: &[f32]) -> f32 {
    let n = x.len() / 64 * 64;
    debug_assert!(w.len() >= 4 * n);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    // SAFETY: 64-byte loads at offsets < 4n <= w.len() from `w` and 16-float
    // loads at offsets < n <= x.len() from `x`; loadu accepts any alignment.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i < n {
            for (k, a) in acc.iter_mut().enumerate() {
                let wv = _mm512_loadu_ps(wp.add(4 * (i + 16 * k)).cast());
                *a = _mm512_fmadd_ps(wv, _mm512_loadu_ps(xp.add(i + 16 * k)), *a);
            }
            i += 64;
        }
        _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(acc[0], acc[1]),
            _mm512_add_ps(acc[2], acc[3]),
        ))
    }
}

/// Dot product of the first `64 * (x.len() / 64)` elements; F16 weights.
///
/// # Safety
/// The CPU must support AVX-512F; `w.len() >= 2 * x.len()`.
#[target_feature(enable = "avx512f")]
pub unsafe fn avx512_dot_f16_64x(w: &[u8], x: &[f32]) -> f32 {
    let n = x.len() / 64 * 64;
    debug_assert!(w.len() >= 2 * n);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    // SAFETY: 32-byte loads at offsets < 2n <= w.len(); 16-float loads at
    // offsets < n <= x.len(); both unaligned loads.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i < n {
            for (k, a) in acc.iter_mut().enumerate() {
                let h = _mm256_loadu_si256(wp.add(2 * (i + 16 * k)).cast());
                *a = _mm512_fmadd_ps(_mm512_cvtph_ps(h), _mm512_loadu_ps(xp.add(i + 16 * k)), *a);
            }
            i += 64;
        }
        _mm512_reduce_add_ps(_mm512_add_ps(
            _mm512_add_ps(acc[0], acc[1]),
            _mm512_add_ps(acc[2], acc[3]),
        ))
    }
}

/// Dot product over whole Q8_0 blocks: `x.len() / 32` of them.
///
/// # Safety
/// The CPU must support AVX-512F; `w.len() >= x.len() / 32`.
#[target_feature(enable = "avx512f,f16c")]
pub unsafe fn avx512_dot_q8_0_32x(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    let nb = x.len() / 32;
    debug_assert!(w.len() >= nb);
    let xp = x.as_ptr();
    // SAFETY: two 16-byte loads inside each block's 32 quants; 16-float
    // loads at offsets < 32 nb <= x.len().
    unsafe {
        let mut acc = _mm512_setzero_ps();
        for (b, blk) in w.iter().take(nb).enumerate() {
            let q = blk.qs.as_ptr().cast::<u8>();
            let lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q.cast())));
            let hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q.add(16).cast())));
            let s = _mm512_fmadd_ps(
                lo,
                _mm512_loadu_ps(xp.add(32 * b)),
                _mm512_mul_ps(hi, _mm512_loadu_ps(xp.add(32 * b + 16))),
            );
            acc = _mm512_fmadd_ps(_mm512_set1_ps(scale_f16c(blk)), s, acc);
        }
        _mm512_reduce_add_ps(acc)
    }
}

/// Lanes of `x` still to go, as an AVX-512 mask (all ones past 16).
#[inline(always)]
fn mask16(left: usize) -> __mmask16 {
    if left >= 16 {
        0xffff
    } else {
        ((1u32 << left) - 1) as __mmask16
    }
}

/// Four rows of F32 weights (each `4 * x.len()` bytes, any alignment)
/// dotted with `x`; the tail is loaded under a mask, so every element goes
/// through SIMD.
///
/// # Safety
/// The CPU must support AVX-512F; each `w[k].len() >= 4 * x.len()`.
#[target_feature(enable = "avx512f")]
pub unsafe fn avx512_dot4_f32(w: [&[u8]; 4], x: &[f32]) -> [f32; 4] {
    let n = x.len();
    debug_assert!(w.iter().all(|r| r.len() >= 4 * n));
    let xp = x.as_ptr();
    let wp = w.map(|r| r.as_ptr());
    // SAFETY: lane i of a load is at element i0 + i; full loads have
    // i0 + 16 <= n and masked loads touch only lanes with i0 + i < n, so
    // every access is inside x (n floats) and each row (4 n bytes).
    unsafe {
        // Two accumulators per row: eight independent FMA chains hide the
        // FMA latency.
        let mut acc = [_mm512_setzero_ps(); 8];
        let mut i = 0;
        while i + 32 <= n {
            let x0 = _mm512_loadu_ps(xp.add(i));
            let x1 = _mm512_loadu_ps(xp.add(i + 16));
            for k in 0..4 {
                acc[2 * k] =
                    _mm512_fmadd_ps(_mm512_loadu_ps(wp[k].add(4 * i).cast()), x0, acc[2 * k]);
                acc[2 * k + 1] = _mm512_fmadd_ps(
                    _mm512_loadu_ps(wp[k].add(4 * i + 64).cast()),
                    x1,
                    acc[2 * k + 1],
                );
            }
            i += 32;
        }
        while i < n {
            let m = mask16(n - i);
            let xv = _mm512_maskz_loadu_ps(m, xp.add(i));
            for k in 0..4 {
                let wv = _mm512_maskz_loadu_ps(m, wp[k].add(4 * i).cast());
                acc[2 * k] = _mm512_fmadd_ps(wv, xv, acc[2 * k]);
            }
            i += 16;
        }
        [0, 1, 2, 3].map(|k| _mm512_reduce_add_ps(_mm512_add_ps(acc[2 * k], acc[2 * k + 1])))
    }
}

/// Four rows of F16 weights (each `2 * x.len()` bytes) dotted with `x`.
///
/// # Safety
/// The CPU must support AVX-512F, BW and VL; each `w[k].len() >= 2 * x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn avx512_dot4_f16(w: [&[u8]; 4], x: &[f32]) -> [f32; 4] {
    let n = x.len();
    debug_assert!(w.iter().all(|r| r.len() >= 2 * n));
    let xp = x.as_ptr();
    let wp = w.map(|r| r.as_ptr());
    // SAFETY: as in avx512_dot4_f32, with 2-byte elements.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 4];
        let mut i = 0;
        while i < n {
            let m = mask16(n - i);
            let xv = _mm512_maskz_loadu_ps(m, xp.add(i));
            for k in 0..4 {
                let h = _mm256_maskz_loadu_epi16(m, wp[k].add(2 * i).cast());
                acc[k] = _mm512_fmadd_ps(_mm512_cvtph_ps(h), xv, acc[k]);
            }
            i += 16;
        }
        acc.map(|a| _mm512_reduce_add_ps(a))
    }
}

/// Four rows of Q8_0 blocks (each covering `x`) dotted with `x`. Lanes
/// past `x.len()` load x as zero, so a partial last block is exact
/// whatever its padding holds.
///
/// # Safety
/// The CPU must support AVX-512F; each `w[k].len() >= x.len().div_ceil(32)`.
#[target_feature(enable = "avx512f,f16c")]
pub unsafe fn avx512_dot4_q8_0(w: [&[BlockQ8_0]; 4], x: &[f32]) -> [f32; 4] {
    let n = x.len();
    let nb = n.div_ceil(32);
    debug_assert!(w.iter().all(|r| r.len() >= nb));
    let xp = x.as_ptr();
    // SAFETY: the quants are read inside each block (two 16-byte loads of
    // its 32 bytes); x is read under masks limited to its n floats.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 4];
        // b indexes four rows at once, which an iterator over one cannot.
        #[allow(clippy::needless_range_loop)]
        for b in 0..nb {
            let i = 32 * b;
            let x0 = _mm512_maskz_loadu_ps(mask16(n - i), xp.add(i));
            // Only form the pointer when it is in bounds.
            let x1 = if i + 16 < n {
                _mm512_maskz_loadu_ps(mask16(n - i - 16), xp.add(i + 16))
            } else {
                _mm512_setzero_ps()
            };
            for k in 0..4 {
                let blk = &w[k][b];
                let q = blk.qs.as_ptr().cast::<u8>();
                let lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q.cast())));
                let hi =
                    _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q.add(16).cast())));
                let s = _mm512_fmadd_ps(lo, x0, _mm512_mul_ps(hi, x1));
                acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(scale_f16c(blk)), s, acc[k]);
            }
        }
        acc.map(|a| _mm512_reduce_add_ps(a))
    }
}
