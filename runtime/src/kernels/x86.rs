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

/// Rows per AVX-512 panel: sixteen accumulators are sixteen independent
/// FMA chains (the two FMA ports need eight to hide the latency), and
/// their sums fit one vector, which `hsum16` fills in 45 operations where
/// a `reduce_add` per row would take 8 each on one dependency chain.
pub const PANEL: usize = 16;

/// Start of row `min(k, rows - 1)` for each of `P` panel rows; rows past
/// the matrix repeat its last row, so every pointer is in bounds.
#[inline(always)]
fn row_ptrs<const P: usize>(w: &[u8], row_bytes: usize, rows: usize) -> [*const u8; P] {
    let last = w[(rows - 1) * row_bytes..].as_ptr();
    let mut p = [last; P];
    for (k, r) in p.iter_mut().enumerate().take(rows - 1) {
        *r = last.wrapping_sub((rows - 1 - k) * row_bytes);
    }
    p
}

/// Lane `k` of the result is the sum of the lanes of `a[k]`.
#[inline(always)]
unsafe fn hsum16(a: &[__m512; 16]) -> __m512 {
    // SAFETY (whole function): register-only AVX-512F intrinsics.
    unsafe {
        // Rows 2j, 2j+1 -> per 128-bit chunk [r0 02, r1 02, r0 13, r1 13].
        let t: [__m512; 8] = core::array::from_fn(|j| {
            let (x, y) = (a[2 * j], a[2 * j + 1]);
            _mm512_add_ps(_mm512_unpacklo_ps(x, y), _mm512_unpackhi_ps(x, y))
        });
        // Rows 4g..4g+4 -> per chunk [r0, r1, r2, r3] partial sums.
        let u: [__m512; 4] = core::array::from_fn(|g| {
            let (x, y) = (_mm512_castps_pd(t[2 * g]), _mm512_castps_pd(t[2 * g + 1]));
            _mm512_add_ps(
                _mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)),
            )
        });
        // Fold the four chunks: [g0 c01, g0 c23, g1 c01, g1 c23], then
        // [g0, g1, g2, g3].
        let fold = |x: __m512, y: __m512| {
            _mm512_add_ps(
                _mm512_shuffle_f32x4(x, y, 0b10_00_10_00),
                _mm512_shuffle_f32x4(x, y, 0b11_01_11_01),
            )
        };
        let v01 = fold(u[0], u[1]);
        let v23 = fold(u[2], u[3]);
        fold(v01, v23)
    }
}

/// Up to sixteen rows of F32 weights dotted with `x`: row `k < rows`
/// starts at byte `k * row_bytes` of `w` and holds `x.len()` weights at any
/// alignment. Lanes `rows..16` of the result repeat the last row: a short
/// panel costs a full one, once per matrix, and needs no second kernel.
///
/// # Safety
/// The CPU must support AVX-512F; `1 <= rows <= 16` and
/// `w.len() >= (rows - 1) * row_bytes + 4 * x.len()`.
#[target_feature(enable = "avx512f")]
pub unsafe fn avx512_dot16_f32(w: &[u8], row_bytes: usize, rows: usize, x: &[f32]) -> [f32; 16] {
    let n = x.len();
    debug_assert!((1..=PANEL).contains(&rows) && w.len() >= (rows - 1) * row_bytes + 4 * n);
    let (xp, rp) = (x.as_ptr(), row_ptrs::<PANEL>(w, row_bytes, rows));
    // SAFETY: lane l of a load at column i reads element i + l of x and of
    // each row; full loads have i + 16 <= n, masked ones only lanes with
    // i + l < n, so every access is inside x and inside w by the contract.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 16];
        let mut i = 0;
        // Full vectors unmasked (a masked load costs an extra uop), then
        // the tail under a mask.
        while i + 16 <= n {
            let xv = _mm512_loadu_ps(xp.add(i));
            for (k, a) in acc.iter_mut().enumerate() {
                let wv = _mm512_loadu_ps(rp[k].add(4 * i).cast());
                *a = _mm512_fmadd_ps(wv, xv, *a);
            }
            i += 16;
        }
        if i < n {
            let m = mask16(n - i);
            let xv = _mm512_maskz_loadu_ps(m, xp.add(i));
            for (k, a) in acc.iter_mut().enumerate() {
                let wv = _mm512_maskz_loadu_ps(m, rp[k].add(4 * i).cast());
                *a = _mm512_fmadd_ps(wv, xv, *a);
            }
        }
        let mut out = [0f32; 16];
        _mm512_storeu_ps(out.as_mut_ptr(), hsum16(&acc));
        out
    }
}

/// [`avx512_dot16_f32`] for F16 weights (`2 * x.len()` bytes per row).
///
/// # Safety
/// The CPU must support AVX-512F, BW and VL; `1 <= rows <= 16` and
/// `w.len() >= (rows - 1) * row_bytes + 2 * x.len()`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn avx512_dot16_f16(w: &[u8], row_bytes: usize, rows: usize, x: &[f32]) -> [f32; 16] {
    let n = x.len();
    debug_assert!((1..=PANEL).contains(&rows) && w.len() >= (rows - 1) * row_bytes + 2 * n);
    let (xp, rp) = (x.as_ptr(), row_ptrs::<PANEL>(w, row_bytes, rows));
    // SAFETY: as in avx512_dot16_f32, with 2-byte elements.
    unsafe {
        let mut acc = [_mm512_setzero_ps(); 16];
        let mut i = 0;
        while i + 16 <= n {
            let xv = _mm512_loadu_ps(xp.add(i));
            for (k, a) in acc.iter_mut().enumerate() {
                let h = _mm256_loadu_si256(rp[k].add(2 * i).cast());
                *a = _mm512_fmadd_ps(_mm512_cvtph_ps(h), xv, *a);
            }
            i += 16;
        }
        if i < n {
            let m = mask16(n - i);
            let xv = _mm512_maskz_loadu_ps(m, xp.add(i));
            for (k, a) in acc.iter_mut().enumerate() {
                let h = _mm256_maskz_loadu_epi16(m, rp[k].add(2 * i).cast());
                *a = _mm512_fmadd_ps(_mm512_cvtph_ps(h), xv, *a);
            }
        }
        let mut out = [0f32; 16];
        _mm512_storeu_ps(out.as_mut_ptr(), hsum16(&acc));
        out
    }
}

/// Up to sixteen rows of Q8_0 blocks dotted with `x`: row `k < rows` is
/// `w[k * nb..k * nb + x.len().div_ceil(32)]`; lanes `rows..16` repeat the
/// last row. Lanes past `x.len()` load x as zero, so a partial last block
/// is exact whatever its padding holds.
///
/// # Safety
/// The CPU must support AVX-512F and F16C; `1 <= rows <= 16`,
/// `w.len() >= (rows - 1) * nb + x.len().div_ceil(32)` and
/// `34 * 15 * nb < 2^31`.
#[target_feature(enable = "avx512f,f16c")]
pub unsafe fn avx512_dot16_q8_0(w: &[BlockQ8_0], nb: usize, rows: usize, x: &[f32]) -> [f32; 16] {
    let n = x.len();
    let nbx = n.div_ceil(32);
    debug_assert!((1..=PANEL).contains(&rows) && w.len() >= (rows - 1) * nb + nbx);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let row = |k: usize| k.min(rows - 1) * nb;
    // SAFETY: block b of row k is w[row(k) + b], inside w by the contract; its
    // quants are read as two 16-byte loads inside the block and its scale
    // as one u16; x is read under masks limited to its n floats.
    unsafe {
        // Scales go through a stack table, eight blocks at a time: one
        // gather of 4 bytes at each of the sixteen rows' block starts (the
        // f16 scale and two quants) and one conversion per block, then
        // each row's FMA broadcasts its scale straight from the table (a
        // load, not a shuffle on the busy port 5, nor a horizontal sum).
        const CHUNK: usize = 8;
        let offs = _mm512_loadu_si512(
            core::array::from_fn::<i32, PANEL, _>(|k| (34 * row(k)) as i32)
                .as_ptr()
                .cast(),
        );
        let mut acc = [_mm512_setzero_ps(); 16];
        let mut table = [0f32; CHUNK * PANEL];
        let mut xt = [0f32; 32];
        let mut b0 = 0;
        while b0 < nbx {
            let cb = (nbx - b0).min(CHUNK);
            for j in 0..cb {
                let g = _mm512_i32gather_epi32::<1>(offs, wp.add(b0 + j).cast());
                let d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
                _mm512_storeu_ps(table.as_mut_ptr().add(PANEL * j), d);
            }
            for j in 0..cb {
                let b = b0 + j;
                let xb = if 32 * b + 32 <= n {
                    xp.add(32 * b)
                } else {
                    // The partial last block meets a zero-padded copy of
                    // x's tail, so its padding never counts.
                    xt[..n - 32 * b].copy_from_slice(&x[32 * b..]);
                    xt.as_ptr()
                };
                let x0 = _mm512_loadu_ps(xb);
                let x1 = _mm512_loadu_ps(xb.add(16));
                for (k, a) in acc.iter_mut().enumerate() {
                    let q = (*wp.add(row(k) + b)).qs.as_ptr().cast::<__m128i>();
                    let lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q)));
                    let hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q.add(1))));
                    let s = _mm512_fmadd_ps(lo, x0, _mm512_mul_ps(hi, x1));
                    *a = _mm512_fmadd_ps(_mm512_set1_ps(table[PANEL * j + k]), s, *a);
                }
            }
            b0 += cb;
        }
        let mut out = [0f32; 16];
        _mm512_storeu_ps(out.as_mut_ptr(), hsum16(&acc));
        out
    }
}

/// Rows per AVX2 panel: eight accumulators hide the FMA latency on two
/// ports, and `hsum8` folds their sums into one vector.
pub const PANEL_AVX2: usize = 8;

/// Lane `k` of the result is the sum of the lanes of `a[k]`.
#[inline(always)]
unsafe fn hsum8(a: &[__m256; 8]) -> __m256 {
    // SAFETY (whole function): register-only AVX intrinsics.
    unsafe {
        // Per 128-bit half: [r0, r1, r2, r3] partial sums, then rows 4-7.
        let lo = _mm256_hadd_ps(_mm256_hadd_ps(a[0], a[1]), _mm256_hadd_ps(a[2], a[3]));
        let hi = _mm256_hadd_ps(_mm256_hadd_ps(a[4], a[5]), _mm256_hadd_ps(a[6], a[7]));
        _mm256_add_ps(
            _mm256_permute2f128_ps(lo, hi, 0x20),
            _mm256_permute2f128_ps(lo, hi, 0x31),
        )
    }
}

/// Lanes of `x` still to go, as an AVX2 load mask (all lanes past 8).
#[inline(always)]
unsafe fn mask8(left: usize) -> __m256i {
    // SAFETY: register-only AVX intrinsics, enabled by every caller.
    unsafe {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(left.min(8) as i32), lanes)
    }
}

/// Up to eight rows of F32 weights dotted with `x`: row `k < rows` starts
/// at byte `k * row_bytes` of `w` and holds `x.len()` weights at any
/// alignment; lanes `rows..8` repeat the last row. The tail goes through a
/// masked load, so every element is done here.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `1 <= rows <= 8` and
/// `w.len() >= (rows - 1) * row_bytes + 4 * x.len()`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_dot8_f32(w: &[u8], row_bytes: usize, rows: usize, x: &[f32]) -> [f32; 8] {
    let n = x.len();
    debug_assert!((1..=PANEL_AVX2).contains(&rows) && w.len() >= (rows - 1) * row_bytes + 4 * n);
    let (xp, rp) = (x.as_ptr(), row_ptrs::<PANEL_AVX2>(w, row_bytes, rows));
    // SAFETY: full loads read elements i..i + 8 <= n of x and of each row;
    // the masked tail touches only lanes below n; all inside by the
    // contract, and loadu/maskload accept any alignment.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i + 8 <= n {
            let xv = _mm256_loadu_ps(xp.add(i));
            for (k, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(_mm256_loadu_ps(rp[k].add(4 * i).cast()), xv, *a);
            }
            i += 8;
        }
        if i < n {
            let m = mask8(n - i);
            let xv = _mm256_maskload_ps(xp.add(i), m);
            for (k, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(_mm256_maskload_ps(rp[k].add(4 * i).cast(), m), xv, *a);
            }
        }
        let mut out = [0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), hsum8(&acc));
        out
    }
}

/// [`avx2_dot8_f32`] for F16 weights (`2 * x.len()` bytes per row); a
/// tail of fewer than 8 weights is copied out first (AVX2 has no 16-bit
/// masked load).
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; `1 <= rows <= 8` and
/// `w.len() >= (rows - 1) * row_bytes + 2 * x.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot8_f16(w: &[u8], row_bytes: usize, rows: usize, x: &[f32]) -> [f32; 8] {
    let n = x.len();
    debug_assert!((1..=PANEL_AVX2).contains(&rows) && w.len() >= (rows - 1) * row_bytes + 2 * n);
    let (xp, rp) = (x.as_ptr(), row_ptrs::<PANEL_AVX2>(w, row_bytes, rows));
    // SAFETY: as in avx2_dot8_f32, with 2-byte elements; the tail reads
    // the n - i halves that lie inside each row.
    unsafe {
        let mut acc = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i + 8 <= n {
            let xv = _mm256_loadu_ps(xp.add(i));
            for (k, a) in acc.iter_mut().enumerate() {
                let h = _mm_loadu_si128(rp[k].add(2 * i).cast());
                *a = _mm256_fmadd_ps(_mm256_cvtph_ps(h), xv, *a);
            }
            i += 8;
        }
        if i < n {
            let xv = _mm256_maskload_ps(xp.add(i), mask8(n - i));
            for (k, a) in acc.iter_mut().enumerate() {
                let mut t = [0u16; 8];
                for (j, v) in t.iter_mut().enumerate().take(n - i) {
                    *v = rp[k].add(2 * (i + j)).cast::<u16>().read_unaligned();
                }
                let h = _mm_loadu_si128(t.as_ptr().cast());
                *a = _mm256_fmadd_ps(_mm256_cvtph_ps(h), xv, *a);
            }
        }
        let mut out = [0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), hsum8(&acc));
        out
    }
}

/// Up to eight rows of Q8_0 blocks dotted with `x`: row `k < rows` is
/// `w[k * nb..k * nb + x.len().div_ceil(32)]`; lanes `rows..8` repeat the
/// last row. A partial last block meets a zero-padded copy of x's tail, so
/// it is exact whatever its padding holds.
///
/// # Safety
/// The CPU must support AVX2, FMA and F16C; `1 <= rows <= 8` and
/// `w.len() >= (rows - 1) * nb + x.len().div_ceil(32)`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot8_q8_0(w: &[BlockQ8_0], nb: usize, rows: usize, x: &[f32]) -> [f32; 8] {
    let n = x.len();
    let (whole, nbx) = (n / 32, n.div_ceil(32));
    debug_assert!((1..=PANEL_AVX2).contains(&rows) && w.len() >= (rows - 1) * nb + nbx);
    let wp = w.as_ptr();
    let row = |k: usize| k.min(rows - 1) * nb;
    // SAFETY: block b < nbx of row k is w[row(k) + b], inside w by the
    // contract; its quants are read as four 8-byte loads inside the block;
    // x is read at offsets < 32 whole <= n, its tail through a copy.
    unsafe {
        // As in the AVX-512 panel: per block, the eight rows' partial sums
        // are folded into one vector and scaled by their eight scales.
        let block = |b: usize, xb: *const f32, acc: __m256| {
            let xv: [__m256; 4] = core::array::from_fn(|j| _mm256_loadu_ps(xb.add(8 * j)));
            let s: [__m256; 8] = core::array::from_fn(|k| {
                let q = (*wp.add(row(k) + b)).qs.as_ptr();
                let qf = |j: usize| {
                    _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(q.add(8 * j).cast())))
                };
                _mm256_fmadd_ps(
                    qf(0),
                    xv[0],
                    _mm256_fmadd_ps(
                        qf(1),
                        xv[1],
                        _mm256_fmadd_ps(qf(2), xv[2], _mm256_mul_ps(qf(3), xv[3])),
                    ),
                )
            });
            let d: [u16; 8] = core::array::from_fn(|k| u16::from_le_bytes((*wp.add(row(k) + b)).d));
            let dv = _mm256_cvtph_ps(_mm_loadu_si128(d.as_ptr().cast()));
            _mm256_fmadd_ps(dv, hsum8(&s), acc)
        };
        let mut acc = _mm256_setzero_ps();
        for b in 0..whole {
            acc = block(b, x.as_ptr().add(32 * b), acc);
        }
        if whole < nbx {
            let mut t = [0f32; 32];
            t[..n - 32 * whole].copy_from_slice(&x[32 * whole..]);
            acc = block(whole, t.as_ptr(), acc);
        }
        let mut out = [0f32; 8];
        _mm256_storeu_ps(out.as_mut_ptr(), acc);
        out
    }
}

/// F16 bytes to f32 with F16C, 8 at a time; returns how many it did
/// (`8 * (dst.len() / 8)`), the caller widens the rest.
///
/// # Safety
/// The CPU must support AVX and F16C; `src.len() >= 2 * dst.len()`.
#[target_feature(enable = "avx,f16c")]
pub unsafe fn f16c_widen(src: &[u8], dst: &mut [f32]) -> usize {
    let n = dst.len() / 8 * 8;
    debug_assert!(src.len() >= 2 * n);
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    // SAFETY: reads 16 bytes at offsets < 2n <= src.len() and writes 8
    // floats at offsets < n <= dst.len(); unaligned forms throughout.
    unsafe {
        let mut i = 0;
        while i < n {
            let h = _mm_loadu_si128(sp.add(2 * i).cast());
            _mm256_storeu_ps(dp.add(i), _mm256_cvtph_ps(h));
            i += 8;
        }
    }
    n
}

/// The AVX-512 micro-kernel of `kernels::gemm`: `o[r * p + j] (+)=
/// sum_k w(r, k) * x[k * xs + j]` (see `kernels::gemm::Tile`) for `r < h`, `j < p`,
/// `k < kc`. Blocks of 64 pixels (4 zmm) by 6 rows keep 24 accumulators
/// in registers over the whole depth; the last block's last vector is
/// masked.
///
/// # Safety
/// The CPU must support AVX-512F; the tile's sizes hold (`h <= 6`, `kc
/// <= DEPTH`, `x.len() >= (kc - 1) * xs + p`, `w` holds 6 rows of `kc`)
/// and `o.len() >= h * p`.
#[target_feature(enable = "avx512f")]
pub unsafe fn avx512_gemm6(t: &super::gemm::Tile<'_>, o: &mut [f32]) {
    let p = t.p;
    let mut j = 0;
    // SAFETY (every call): the blocks cover pixels j..j + 16 * PV, the last
    // vector masked to the pixels below p; see `avx512_block`.
    unsafe {
        while j + 64 <= p {
            avx512_block::<4>(t, o, j, 0xffff);
            j += 64;
        }
        let left = p - j;
        if left > 0 {
            let tail = left % 16;
            let mask: u16 = if tail == 0 {
                0xffff
            } else {
                (1u16 << tail) - 1
            };
            match left.div_ceil(16) {
                1 => avx512_block::<1>(t, o, j, mask),
                2 => avx512_block::<2>(t, o, j, mask),
                3 => avx512_block::<3>(t, o, j, mask),
                _ => avx512_block::<4>(t, o, j, mask),
            }
        }
    }
}

/// Pixels `j..j + 16 * PV` of [`avx512_gemm6`]; the last vector uses `mask`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn avx512_block<const PV: usize>(
    t: &super::gemm::Tile<'_>,
    o: &mut [f32],
    j: usize,
    mask: u16,
) {
    use super::gemm::ROWS;
    let super::gemm::Tile {
        w,
        ws,
        kc,
        x,
        xs,
        p,
        h,
        first,
    } = *t;
    let (xp, op, wp) = (x.as_ptr(), o.as_mut_ptr(), w.as_ptr());
    let m = |v: usize| if v + 1 == PV { mask } else { 0xffff };
    // SAFETY: vector v covers pixels j + 16v .. j + 16v + 16, all below p
    // but the masked last; x reads stay in row k < kc, o accesses in rows
    // r < h (the caller's bounds); w holds ROWS rows of kc.
    unsafe {
        let mut acc = [[_mm512_setzero_ps(); PV]; ROWS];
        if !first {
            for (r, a) in acc.iter_mut().enumerate().take(h) {
                for (v, av) in a.iter_mut().enumerate() {
                    *av = _mm512_maskz_loadu_ps(m(v), op.add(r * p + j + 16 * v));
                }
            }
        }
        for k in 0..kc {
            let xr = xp.add(k * xs + j);
            let mut xv = [_mm512_setzero_ps(); PV];
            for (v, xv) in xv.iter_mut().enumerate() {
                *xv = _mm512_maskz_loadu_ps(m(v), xr.add(16 * v));
            }
            for (r, a) in acc.iter_mut().enumerate() {
                let w = _mm512_set1_ps(wp.add(4 * (r * ws + k)).cast::<f32>().read_unaligned());
                for (av, &xv) in a.iter_mut().zip(&xv) {
                    *av = _mm512_fmadd_ps(w, xv, *av);
                }
            }
        }
        for (r, a) in acc.iter().enumerate().take(h) {
            for (v, &av) in a.iter().enumerate() {
                _mm512_mask_storeu_ps(op.add(r * p + j + 16 * v), m(v), av);
            }
        }
    }
}

/// The AVX2 micro-kernel of `kernels::gemm`, as [`avx512_gemm6`] with
/// blocks of 16 pixels (2 ymm) by 6 rows: 12 accumulators, 2 inputs and a
/// broadcast weight fill 15 of the 16 registers.
///
/// # Safety
/// The CPU must support AVX2 and FMA; as [`avx512_gemm6`].
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_gemm6(t: &super::gemm::Tile<'_>, o: &mut [f32]) {
    let p = t.p;
    let mut j = 0;
    // SAFETY (every call): as in `avx512_gemm6`, with `left` lanes from j.
    unsafe {
        while j + 16 <= p {
            avx2_block::<2>(t, o, j, 16);
            j += 16;
        }
        let left = p - j;
        if left > 8 {
            avx2_block::<2>(t, o, j, left);
        } else if left > 0 {
            avx2_block::<1>(t, o, j, left);
        }
    }
}

/// Pixels `j..j + min(8 * PV, left)` of [`avx2_gemm6`], masked past `left`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_block<const PV: usize>(
    t: &super::gemm::Tile<'_>,
    o: &mut [f32],
    j: usize,
    left: usize,
) {
    use super::gemm::ROWS;
    let super::gemm::Tile {
        w,
        ws,
        kc,
        x,
        xs,
        p,
        h,
        first,
    } = *t;
    let (xp, op, wp) = (x.as_ptr(), o.as_mut_ptr(), w.as_ptr());
    // SAFETY: as in `avx512_block`; lanes at or past `left` are masked off
    // in every load and store of x and o.
    unsafe {
        let mut masks = [_mm256_setzero_si256(); PV];
        for (v, mk) in masks.iter_mut().enumerate() {
            *mk = mask8(left.saturating_sub(8 * v));
        }
        let mut acc = [[_mm256_setzero_ps(); PV]; ROWS];
        if !first {
            for (r, a) in acc.iter_mut().enumerate().take(h) {
                for (v, av) in a.iter_mut().enumerate() {
                    *av = _mm256_maskload_ps(op.add(r * p + j + 8 * v), masks[v]);
                }
            }
        }
        for k in 0..kc {
            let xr = xp.add(k * xs + j);
            let mut xv = [_mm256_setzero_ps(); PV];
            for (v, xv) in xv.iter_mut().enumerate() {
                *xv = _mm256_maskload_ps(xr.add(8 * v), masks[v]);
            }
            for (r, a) in acc.iter_mut().enumerate() {
                let w = _mm256_set1_ps(wp.add(4 * (r * ws + k)).cast::<f32>().read_unaligned());
                for (av, &xv) in a.iter_mut().zip(&xv) {
                    *av = _mm256_fmadd_ps(w, xv, *av);
                }
            }
        }
        for (r, a) in acc.iter().enumerate().take(h) {
            for (v, &av) in a.iter().enumerate() {
                _mm256_maskstore_ps(op.add(r * p + j + 8 * v), masks[v], av);
            }
        }
    }
}

/// Q8_0 blocks to f32: 32 values per block, `dst.len() == 32 * src.len()`.
///
/// # Safety
/// The CPU must support AVX2 and F16C.
#[target_feature(enable = "avx2,f16c")]
pub unsafe fn avx2_widen_q8_0(src: &[BlockQ8_0], dst: &mut [f32]) {
    debug_assert!(dst.len() >= 32 * src.len());
    let dp = dst.as_mut_ptr();
    // SAFETY: each block's 32 bytes of qs are read as one 32-byte load
    // (any alignment), and its 32 floats written at 32 i < dst.len().
    unsafe {
        for (i, b) in src.iter().enumerate() {
            let d = _mm256_set1_ps(scale_f16c(b));
            let q = _mm256_loadu_si256(b.qs.as_ptr().cast());
            let lo = _mm256_castsi256_si128(q);
            let hi = _mm256_extracti128_si256(q, 1);
            for (k, part) in [lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)]
                .into_iter()
                .enumerate()
            {
                let f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(part));
                _mm256_storeu_ps(dp.add(32 * i + 8 * k), _mm256_mul_ps(d, f));
            }
        }
    }
}
