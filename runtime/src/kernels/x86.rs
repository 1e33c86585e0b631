//! x86_64 kernels: AVX2 with F16C, and AVX-512F.
//!
//! Every kernel sums in the canonical order of `kernels::scalar` (dots) or
//! `kernels::gemm` (products over k, one after another), with separate
//! multiplies and adds, never fused ones: so they give the scalar
//! reference's bits, and a sample on this host is the same bits as on a
//! Cortex-M4F or an aarch64 board. Each function is `unsafe` only because
//! it needs CPU features the caller must check.

use super::scalar::fold16;
use core::arch::x86_64::*;
use edgegen_format::quant::BlockQ8_0;

/// A block's scale through the F16C instruction: `half`'s portable
/// conversion costs more than the block's 32 multiply-adds.
#[inline(always)]
pub(super) unsafe fn scale_f16c(b: &BlockQ8_0) -> f32 {
    // SAFETY: register-only F16C intrinsics; every caller enables f16c
    // (directly, or through avx512f).
    unsafe {
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(
            u16::from_le_bytes(b.d) as i32
        )))
    }
}

/// The canonical fold ([`fold16`]) of lanes 0-7 in `lo` and 8-15 in `hi`.
#[inline(always)]
unsafe fn fold_ymm(lo: __m256, hi: __m256) -> f32 {
    let mut l = [0f32; 16];
    // SAFETY: two 8-float stores into a 16-float array.
    unsafe {
        _mm256_storeu_ps(l.as_mut_ptr(), lo);
        _mm256_storeu_ps(l.as_mut_ptr().add(8), hi);
    }
    fold16(&l)
}

/// `acc + a * b`: one fused multiply-add in the fast mode (`FUSED`), a
/// rounded product then a sum in the deterministic one.
#[inline(always)]
unsafe fn madd256<const FUSED: bool>(acc: __m256, a: __m256, b: __m256) -> __m256 {
    // SAFETY: register-only AVX2/FMA intrinsics, enabled by every caller.
    unsafe {
        if FUSED {
            _mm256_fmadd_ps(a, b, acc)
        } else {
            _mm256_add_ps(acc, _mm256_mul_ps(a, b))
        }
    }
}

/// [`madd256`] in the lanes `mask` selects, `acc` in the others: a product
/// past the end of the row never touches its lane (the canonical order).
#[inline(always)]
unsafe fn madd256_where<const FUSED: bool>(
    acc: __m256,
    a: __m256,
    b: __m256,
    mask: __m256i,
) -> __m256 {
    // SAFETY: register-only AVX intrinsics.
    unsafe { _mm256_blendv_ps(acc, madd256::<FUSED>(acc, a, b), _mm256_castsi256_ps(mask)) }
}

/// `acc + a * b` as [`madd256`], sixteen lanes.
#[inline(always)]
unsafe fn madd512<const FUSED: bool>(acc: __m512, a: __m512, b: __m512) -> __m512 {
    // SAFETY: register-only AVX-512F intrinsics, enabled by every caller.
    unsafe {
        if FUSED {
            _mm512_fmadd_ps(a, b, acc)
        } else {
            _mm512_add_ps(acc, _mm512_mul_ps(a, b))
        }
    }
}

/// [`madd512`] in the lanes of `m`, `acc` in the others.
#[inline(always)]
unsafe fn madd512_where<const FUSED: bool>(
    acc: __m512,
    m: __mmask16,
    a: __m512,
    b: __m512,
) -> __m512 {
    // SAFETY: register-only AVX-512F intrinsics.
    unsafe {
        if FUSED {
            _mm512_mask3_fmadd_ps(a, b, acc, m)
        } else {
            _mm512_mask_add_ps(acc, m, acc, _mm512_mul_ps(a, b))
        }
    }
}

/// Up to 16 F16 values from `src` (2 bytes each), zero-padded: tails read
/// from a copy, never past the row.
#[inline(always)]
fn f16_tail(src: &[u8]) -> [u8; 32] {
    let mut t = [0u8; 32];
    let n = src.len().min(32);
    t[..n].copy_from_slice(&src[..n]);
    t
}

/// The canonical dot product ([`super::scalar::scalar_dot_f32`]'s order
/// and bits) of F32 weights with `x`: lanes 0-7 and 8-15 in two vectors.
///
/// # Safety
/// The CPU must support AVX2; `w.len() >= 4 * x.len()`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_dot_f32<const FUSED: bool>(w: &[u8], x: &[f32]) -> f32 {
    let n = x.len();
    debug_assert!(w.len() >= 4 * n);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    // SAFETY: full loads read elements i..i + 16 <= n; the tail's masked
    // loads touch only lanes below n; loadu and maskload take any
    // alignment.
    unsafe {
        let mut a = [_mm256_setzero_ps(); 2];
        let mut i = 0;
        while i + 16 <= n {
            for (h, a) in a.iter_mut().enumerate() {
                let wv = _mm256_loadu_ps(wp.add(4 * (i + 8 * h)).cast());
                *a = madd256::<FUSED>(*a, wv, _mm256_loadu_ps(xp.add(i + 8 * h)));
            }
            i += 16;
        }
        if i < n {
            for (h, a) in a.iter_mut().enumerate() {
                let m = mask8((n - i).saturating_sub(8 * h));
                let wv = _mm256_maskload_ps(wp.add(4 * (i + 8 * h)).cast(), m);
                let xv = _mm256_maskload_ps(xp.add(i + 8 * h), m);
                *a = madd256_where::<FUSED>(*a, wv, xv, m);
            }
        }
        fold_ymm(a[0], a[1])
    }
}

/// [`avx2_dot_f32`] for F16 weights.
///
/// # Safety
/// The CPU must support AVX2 and F16C; `w.len() >= 2 * x.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot_f16<const FUSED: bool>(w: &[u8], x: &[f32]) -> f32 {
    let n = x.len();
    debug_assert!(w.len() >= 2 * n);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    // SAFETY: as in avx2_dot_f32; the tail's weights come from a padded
    // copy of the row's last bytes.
    unsafe {
        let mut a = [_mm256_setzero_ps(); 2];
        let mut i = 0;
        while i + 16 <= n {
            for (h, a) in a.iter_mut().enumerate() {
                let wv = _mm256_cvtph_ps(_mm_loadu_si128(wp.add(2 * (i + 8 * h)).cast()));
                *a = madd256::<FUSED>(*a, wv, _mm256_loadu_ps(xp.add(i + 8 * h)));
            }
            i += 16;
        }
        if i < n {
            let t = f16_tail(&w[2 * i..2 * n]);
            for (h, a) in a.iter_mut().enumerate() {
                let m = mask8((n - i).saturating_sub(8 * h));
                let wv = _mm256_cvtph_ps(_mm_loadu_si128(t.as_ptr().add(16 * h).cast()));
                let xv = _mm256_maskload_ps(xp.add(i + 8 * h), m);
                *a = madd256_where::<FUSED>(*a, wv, xv, m);
            }
        }
        fold_ymm(a[0], a[1])
    }
}

/// [`avx2_dot_f32`] for Q8_0 blocks covering `x` (the last in part):
/// weight = scale x quant, exact, then the canonical order.
///
/// # Safety
/// The CPU must support AVX2 and F16C; `w.len() >= x.len().div_ceil(32)`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot_q8_0<const FUSED: bool>(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    let n = x.len();
    debug_assert!(w.len() >= n.div_ceil(32));
    let xp = x.as_ptr();
    // SAFETY: quants are read as 8-byte loads inside each 34-byte block;
    // x under masks limited to its n floats.
    unsafe {
        let mut a = [_mm256_setzero_ps(); 2];
        for (b, blk) in w.iter().take(n.div_ceil(32)).enumerate() {
            let d = _mm256_set1_ps(scale_f16c(blk));
            let q = blk.qs.as_ptr().cast::<u8>();
            for k in 0..4 {
                let start = 32 * b + 8 * k;
                if start >= n {
                    break;
                }
                let q8 = _mm_loadl_epi64(q.add(8 * k).cast());
                let wv = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), d);
                let lane = &mut a[k % 2];
                if start + 8 <= n {
                    *lane = madd256::<FUSED>(*lane, wv, _mm256_loadu_ps(xp.add(start)));
                } else {
                    let m = mask8(n - start);
                    let xv = _mm256_maskload_ps(xp.add(start), m);
                    *lane = madd256_where::<FUSED>(*lane, wv, xv, m);
                }
            }
        }
        fold_ymm(a[0], a[1])
    }
}

/// The canonical fold ([`fold16`]) of one vector's lanes.
#[inline(always)]
unsafe fn fold_zmm(v: __m512) -> f32 {
    let mut l = [0f32; 16];
    // SAFETY: one 16-float store into a 16-float array.
    unsafe { _mm512_storeu_ps(l.as_mut_ptr(), v) };
    fold16(&l)
}

/// The canonical dot product ([`super::scalar::scalar_dot_f32`]'s order
/// and bits) of F32 weights with `x`: the 16 lanes are one vector.
///
/// # Safety
/// The CPU must support AVX-512F; `w.len() >= 4 * x.len()`.
#[target_feature(enable = "avx512f")]
pub unsafe fn avx512_dot_f32<const FUSED: bool>(w: &[u8], x: &[f32]) -> f32 {
    let n = x.len();
    debug_assert!(w.len() >= 4 * n);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    // SAFETY: full loads read elements i..i + 16 <= n, the masked tail only
    // lanes below n; unaligned loads.
    unsafe {
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            let p = _mm512_mul_ps(
                _mm512_loadu_ps(wp.add(4 * i).cast()),
                _mm512_loadu_ps(xp.add(i)),
            );
            acc = _mm512_add_ps(acc, p);
            i += 16;
        }
        if i < n {
            let m = mask16(n - i);
            let wv = _mm512_maskz_loadu_ps(m, wp.add(4 * i).cast());
            acc = madd512_where::<FUSED>(acc, m, wv, _mm512_maskz_loadu_ps(m, xp.add(i)));
        }
        fold_zmm(acc)
    }
}

/// [`avx512_dot_f32`] for F16 weights.
///
/// # Safety
/// The CPU must support AVX-512F; `w.len() >= 2 * x.len()`.
#[target_feature(enable = "avx512f")]
pub unsafe fn avx512_dot_f16<const FUSED: bool>(w: &[u8], x: &[f32]) -> f32 {
    let n = x.len();
    debug_assert!(w.len() >= 2 * n);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    // SAFETY: as in avx512_dot_f32; the tail's weights come from a padded
    // copy.
    unsafe {
        let mut acc = _mm512_setzero_ps();
        let mut i = 0;
        while i + 16 <= n {
            let wv = _mm512_cvtph_ps(_mm256_loadu_si256(wp.add(2 * i).cast()));
            acc = madd512::<FUSED>(acc, wv, _mm512_loadu_ps(xp.add(i)));
            i += 16;
        }
        if i < n {
            let m = mask16(n - i);
            let t = f16_tail(&w[2 * i..2 * n]);
            let wv = _mm512_cvtph_ps(_mm256_loadu_si256(t.as_ptr().cast()));
            acc = madd512_where::<FUSED>(acc, m, wv, _mm512_maskz_loadu_ps(m, xp.add(i)));
        }
        fold_zmm(acc)
    }
}

/// [`avx512_dot_f32`] for Q8_0 blocks covering `x` (the last in part).
///
/// # Safety
/// The CPU must support AVX-512F and F16C; `w.len() >= x.len().div_ceil(32)`.
#[target_feature(enable = "avx512f,f16c")]
pub unsafe fn avx512_dot_q8_0<const FUSED: bool>(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    let n = x.len();
    debug_assert!(w.len() >= n.div_ceil(32));
    let xp = x.as_ptr();
    // SAFETY: two 16-byte loads inside each block's quants; x under masks
    // limited to its n floats.
    unsafe {
        let mut acc = _mm512_setzero_ps();
        for (b, blk) in w.iter().take(n.div_ceil(32)).enumerate() {
            let d = _mm512_set1_ps(scale_f16c(blk));
            let q = blk.qs.as_ptr().cast::<__m128i>();
            for h in 0..2 {
                let start = 32 * b + 16 * h;
                if start >= n {
                    break;
                }
                let qf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q.add(h))));
                let wv = _mm512_mul_ps(qf, d);
                let m = mask16(n - start);
                acc = madd512_where::<FUSED>(acc, m, wv, _mm512_maskz_loadu_ps(m, xp.add(start)));
            }
        }
        fold_zmm(acc)
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
        // Loops, not `array::from_fn`: its closure is compiled without
        // the caller's target features, so the intrinsics in it became
        // calls (rustc 1.95: 41% of the text step's time, which halved
        // when they went).
        // Rows 2j, 2j+1 -> per 128-bit chunk [r0 02, r1 02, r0 13, r1 13].
        let mut t = [_mm512_setzero_ps(); 8];
        for (j, tj) in t.iter_mut().enumerate() {
            let (x, y) = (a[2 * j], a[2 * j + 1]);
            *tj = _mm512_add_ps(_mm512_unpacklo_ps(x, y), _mm512_unpackhi_ps(x, y));
        }
        // Rows 4g..4g+4 -> per chunk [r0, r1, r2, r3] partial sums.
        let mut u = [_mm512_setzero_ps(); 4];
        for (g, ug) in u.iter_mut().enumerate() {
            let (x, y) = (_mm512_castps_pd(t[2 * g]), _mm512_castps_pd(t[2 * g + 1]));
            *ug = _mm512_add_ps(
                _mm512_castpd_ps(_mm512_unpacklo_pd(x, y)),
                _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)),
            );
        }
        // Fold the four chunks: [g0 c01, g0 c23, g1 c01, g1 c23], then
        // [g0, g1, g2, g3].
        let v01 = fold_chunks(u[0], u[1]);
        let v23 = fold_chunks(u[2], u[3]);
        fold_chunks(v01, v23)
    }
}

/// The even 128-bit chunks of `x` then `y`, plus their odd chunks: one
/// halving step of [`hsum16`]. A function, not a closure, so that it is
/// inlined into the kernel with the kernel's features
/// (tests/tests/kernel_closures.rs).
#[inline(always)]
unsafe fn fold_chunks(x: __m512, y: __m512) -> __m512 {
    // SAFETY: register-only AVX-512F intrinsics (the caller's contract).
    unsafe {
        _mm512_add_ps(
            _mm512_shuffle_f32x4(x, y, 0b10_00_10_00),
            _mm512_shuffle_f32x4(x, y, 0b11_01_11_01),
        )
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
pub unsafe fn avx512_dot16_f32<const FUSED: bool>(
    w: &[u8],
    row_bytes: usize,
    rows: usize,
    x: &[f32],
) -> [f32; 16] {
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
                *a = madd512::<FUSED>(*a, wv, xv);
            }
            i += 16;
        }
        if i < n {
            let m = mask16(n - i);
            let xv = _mm512_maskz_loadu_ps(m, xp.add(i));
            for (k, a) in acc.iter_mut().enumerate() {
                let wv = _mm512_maskz_loadu_ps(m, rp[k].add(4 * i).cast());
                *a = madd512_where::<FUSED>(*a, m, wv, xv);
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
pub unsafe fn avx512_dot16_f16<const FUSED: bool>(
    w: &[u8],
    row_bytes: usize,
    rows: usize,
    x: &[f32],
) -> [f32; 16] {
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
                *a = madd512::<FUSED>(*a, _mm512_cvtph_ps(h), xv);
            }
            i += 16;
        }
        if i < n {
            let m = mask16(n - i);
            let xv = _mm512_maskz_loadu_ps(m, xp.add(i));
            for (k, a) in acc.iter_mut().enumerate() {
                let h = _mm256_maskz_loadu_epi16(m, rp[k].add(2 * i).cast());
                *a = madd512_where::<FUSED>(*a, m, _mm512_cvtph_ps(h), xv);
            }
        }
        let mut out = [0f32; 16];
        _mm512_storeu_ps(out.as_mut_ptr(), hsum16(&acc));
        out
    }
}

/// Up to sixteen rows of Q8_0 blocks dotted with `x`, each in the
/// canonical order ([`super::scalar::scalar_dot_q8_0`]'s bits): row `k <
/// rows` is `w[k * nb..k * nb + x.len().div_ceil(32)]`; lanes `rows..16`
/// repeat the last row. Lanes past `x.len()` are masked off, so a partial
/// last block's padding never counts.
///
/// # Safety
/// The CPU must support AVX-512F and F16C; `1 <= rows <= 16`,
/// `w.len() >= (rows - 1) * nb + x.len().div_ceil(32)` and
/// `34 * 15 * nb < 2^31`.
#[target_feature(enable = "avx512f,f16c")]
pub unsafe fn avx512_dot16_q8_0<const FUSED: bool>(
    w: &[BlockQ8_0],
    nb: usize,
    rows: usize,
    x: &[f32],
) -> [f32; 16] {
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
        let mut b0 = 0;
        while b0 < nbx {
            let cb = (nbx - b0).min(CHUNK);
            for j in 0..cb {
                let g = _mm512_i32gather_epi32::<1>(offs, wp.add(b0 + j).cast());
                let d = _mm512_cvtph_ps(_mm512_cvtepi32_epi16(g));
                _mm512_storeu_ps(table.as_mut_ptr().add(PANEL * j), d);
            }
            for j in 0..cb {
                let start = 32 * (b0 + j);
                let full = start + 32 <= n;
                let (m0, m1) = (mask16(n - start), mask16((n - start).saturating_sub(16)));
                // Lanes past n load as zero (unmasked loads for whole
                // blocks: a masked load costs a uop more).
                let (x0, x1) = if full {
                    (
                        _mm512_loadu_ps(xp.add(start)),
                        _mm512_loadu_ps(xp.add(start + 16)),
                    )
                } else {
                    (
                        _mm512_maskz_loadu_ps(m0, xp.add(start)),
                        _mm512_maskz_loadu_ps(m1, xp.add(start + 16)),
                    )
                };
                for (k, a) in acc.iter_mut().enumerate() {
                    let d = _mm512_set1_ps(table[PANEL * j + k]);
                    let q = (*wp.add(row(k) + b0 + j)).qs.as_ptr().cast::<__m128i>();
                    let lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q)));
                    let hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q.add(1))));
                    if FUSED {
                        // The fast mode: the block's quants times x first,
                        // then one scaled add (x's zero lanes cancel any
                        // padding).
                        let s = _mm512_fmadd_ps(lo, x0, _mm512_mul_ps(hi, x1));
                        *a = _mm512_fmadd_ps(d, s, *a);
                    } else {
                        // Weight = scale x quant (exact), then the
                        // canonical order: lanes past n never add.
                        *a = madd512_where::<false>(*a, m0, _mm512_mul_ps(lo, d), x0);
                        *a = madd512_where::<false>(*a, m1, _mm512_mul_ps(hi, d), x1);
                    }
                }
            }
            b0 += cb;
        }
        let mut out = [0f32; 16];
        _mm512_storeu_ps(out.as_mut_ptr(), hsum16(&acc));
        out
    }
}

/// Rows per AVX2 panel: each row's 16 canonical lanes are two vectors,
/// so four rows are eight independent add chains, and the 16 registers
/// still hold the input and the weights.
pub const PANEL_AVX2: usize = 4;

/// Lanes of `x` still to go, as an AVX2 load mask (all lanes past 8).
#[inline(always)]
unsafe fn mask8(left: usize) -> __m256i {
    // SAFETY: register-only AVX intrinsics, enabled by every caller.
    unsafe {
        let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        _mm256_cmpgt_epi32(_mm256_set1_epi32(left.min(8) as i32), lanes)
    }
}

/// The canonical folds of four rows' lanes (`a[2k]` lanes 0-7, `a[2k + 1]`
/// lanes 8-15 of row k).
#[inline(always)]
unsafe fn fold_rows4(a: &[__m256; 8]) -> [f32; PANEL_AVX2] {
    // A loop, not `array::from_fn`, whose closure lacks the caller's
    // target features (see `hsum16`).
    let mut out = [0.0; PANEL_AVX2];
    for (k, o) in out.iter_mut().enumerate() {
        // SAFETY: folds of register values.
        *o = unsafe { fold_ymm(a[2 * k], a[2 * k + 1]) };
    }
    out
}

/// Up to four rows of F32 weights dotted with `x`, each in the canonical
/// order ([`avx2_dot_f32`]'s bits): row `k < rows` starts at byte `k *
/// row_bytes` of `w` and holds `x.len()` weights at any alignment; lanes
/// `rows..4` repeat the last row.
///
/// # Safety
/// The CPU must support AVX2; `1 <= rows <= 4` and
/// `w.len() >= (rows - 1) * row_bytes + 4 * x.len()`.
#[target_feature(enable = "avx2,fma")]
pub unsafe fn avx2_dot4_f32<const FUSED: bool>(
    w: &[u8],
    row_bytes: usize,
    rows: usize,
    x: &[f32],
) -> [f32; PANEL_AVX2] {
    let n = x.len();
    debug_assert!((1..=PANEL_AVX2).contains(&rows) && w.len() >= (rows - 1) * row_bytes + 4 * n);
    let (xp, rp) = (x.as_ptr(), row_ptrs::<PANEL_AVX2>(w, row_bytes, rows));
    // SAFETY: full loads read elements i..i + 16 <= n of x and of each row;
    // the masked tail touches only lanes below n; all inside by the
    // contract, at any alignment.
    unsafe {
        let mut a = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i + 16 <= n {
            for h in 0..2 {
                let xv = _mm256_loadu_ps(xp.add(i + 8 * h));
                for k in 0..PANEL_AVX2 {
                    let wv = _mm256_loadu_ps(rp[k].add(4 * (i + 8 * h)).cast());
                    a[2 * k + h] = madd256::<FUSED>(a[2 * k + h], wv, xv);
                }
            }
            i += 16;
        }
        if i < n {
            for h in 0..2 {
                let m = mask8((n - i).saturating_sub(8 * h));
                let xv = _mm256_maskload_ps(xp.add(i + 8 * h), m);
                for k in 0..PANEL_AVX2 {
                    let wv = _mm256_maskload_ps(rp[k].add(4 * (i + 8 * h)).cast(), m);
                    a[2 * k + h] = madd256_where::<FUSED>(a[2 * k + h], wv, xv, m);
                }
            }
        }
        fold_rows4(&a)
    }
}

/// [`avx2_dot4_f32`] for F16 weights (`2 * x.len()` bytes per row).
///
/// # Safety
/// The CPU must support AVX2 and F16C; `1 <= rows <= 4` and
/// `w.len() >= (rows - 1) * row_bytes + 2 * x.len()`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot4_f16<const FUSED: bool>(
    w: &[u8],
    row_bytes: usize,
    rows: usize,
    x: &[f32],
) -> [f32; PANEL_AVX2] {
    let n = x.len();
    debug_assert!((1..=PANEL_AVX2).contains(&rows) && w.len() >= (rows - 1) * row_bytes + 2 * n);
    let (xp, rp) = (x.as_ptr(), row_ptrs::<PANEL_AVX2>(w, row_bytes, rows));
    // SAFETY: as in avx2_dot4_f32; each row's tail comes from a padded copy
    // of its last bytes (inside the row by the contract).
    unsafe {
        let mut a = [_mm256_setzero_ps(); 8];
        let mut i = 0;
        while i + 16 <= n {
            for h in 0..2 {
                let xv = _mm256_loadu_ps(xp.add(i + 8 * h));
                for k in 0..PANEL_AVX2 {
                    let wv = _mm256_cvtph_ps(_mm_loadu_si128(rp[k].add(2 * (i + 8 * h)).cast()));
                    a[2 * k + h] = madd256::<FUSED>(a[2 * k + h], wv, xv);
                }
            }
            i += 16;
        }
        if i < n {
            let tails: [[u8; 32]; PANEL_AVX2] = core::array::from_fn(|k| {
                f16_tail(core::slice::from_raw_parts(rp[k].add(2 * i), 2 * (n - i)))
            });
            for h in 0..2 {
                let m = mask8((n - i).saturating_sub(8 * h));
                let xv = _mm256_maskload_ps(xp.add(i + 8 * h), m);
                for (k, t) in tails.iter().enumerate() {
                    let wv = _mm256_cvtph_ps(_mm_loadu_si128(t.as_ptr().add(16 * h).cast()));
                    a[2 * k + h] = madd256_where::<FUSED>(a[2 * k + h], wv, xv, m);
                }
            }
        }
        fold_rows4(&a)
    }
}

/// Up to four rows of Q8_0 blocks dotted with `x`, each in the canonical
/// order ([`avx2_dot_q8_0`]'s bits): row `k < rows` is `w[k * nb..k * nb
/// + x.len().div_ceil(32)]`; lanes `rows..4` repeat the last row.
///
/// # Safety
/// The CPU must support AVX2 and F16C; `1 <= rows <= 4` and
/// `w.len() >= (rows - 1) * nb + x.len().div_ceil(32)`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn avx2_dot4_q8_0<const FUSED: bool>(
    w: &[BlockQ8_0],
    nb: usize,
    rows: usize,
    x: &[f32],
) -> [f32; PANEL_AVX2] {
    let n = x.len();
    let nbx = n.div_ceil(32);
    debug_assert!((1..=PANEL_AVX2).contains(&rows) && w.len() >= (rows - 1) * nb + nbx);
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let row = |k: usize| k.min(rows - 1) * nb;
    // SAFETY: block b of row k is w[row(k) + b], inside w by the contract;
    // its quants are read as 8-byte loads inside the block; x under masks
    // limited to its n floats.
    unsafe {
        let mut a = [_mm256_setzero_ps(); 8];
        if FUSED {
            // The fast mode, as `avx512_dot16_q8_0`'s: each block's quants
            // times x first, then one scaled add (x's zero lanes past n
            // cancel any padding), alternating two accumulators per row.
            for b in 0..nbx {
                let xs: [__m256; 4] = core::array::from_fn(|g| {
                    let start = 32 * b + 8 * g;
                    if start + 8 <= n {
                        _mm256_loadu_ps(xp.add(start))
                    } else if start < n {
                        _mm256_maskload_ps(xp.add(start), mask8(n - start))
                    } else {
                        _mm256_setzero_ps()
                    }
                });
                for k in 0..PANEL_AVX2 {
                    let blk = &*wp.add(row(k) + b);
                    let q = blk.qs.as_ptr();
                    let wq = |g: usize| {
                        let q8 = _mm_loadl_epi64(q.add(8 * g).cast());
                        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8))
                    };
                    let mut t = _mm256_mul_ps(wq(0), xs[0]);
                    for (g, xg) in xs.iter().enumerate().skip(1) {
                        t = _mm256_fmadd_ps(wq(g), *xg, t);
                    }
                    let lane = &mut a[2 * k + b % 2];
                    *lane = _mm256_fmadd_ps(_mm256_set1_ps(scale_f16c(blk)), t, *lane);
                }
            }
            return fold_rows4(&a);
        }
        for b in 0..nbx {
            let d: [__m256; PANEL_AVX2] =
                core::array::from_fn(|k| _mm256_set1_ps(scale_f16c(&*wp.add(row(k) + b))));
            for g in 0..4 {
                let start = 32 * b + 8 * g;
                if start >= n {
                    break;
                }
                // Whole groups of 8 need no mask (a blend costs a uop).
                let full = start + 8 <= n;
                let m = mask8(n - start);
                let xv = if full {
                    _mm256_loadu_ps(xp.add(start))
                } else {
                    _mm256_maskload_ps(xp.add(start), m)
                };
                for k in 0..PANEL_AVX2 {
                    let q = (*wp.add(row(k) + b)).qs.as_ptr().cast::<u8>();
                    let q8 = _mm_loadl_epi64(q.add(8 * g).cast());
                    let wv = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), d[k]);
                    let lane = &mut a[2 * k + g % 2];
                    *lane = if full {
                        madd256::<FUSED>(*lane, wv, xv)
                    } else {
                        madd256_where::<FUSED>(*lane, wv, xv, m)
                    };
                }
            }
        }
        fold_rows4(&a)
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
pub unsafe fn avx512_gemm6<const FUSED: bool>(t: &super::gemm::Tile<'_>, o: &mut [f32]) {
    let p = t.p;
    let mut j = 0;
    // SAFETY (every call): the blocks cover pixels j..j + 16 * PV, the last
    // vector masked to the pixels below p; see `avx512_block`.
    unsafe {
        while j + 64 <= p {
            avx512_block::<4, FUSED>(t, o, j, 0xffff);
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
                1 => avx512_block::<1, FUSED>(t, o, j, mask),
                2 => avx512_block::<2, FUSED>(t, o, j, mask),
                3 => avx512_block::<3, FUSED>(t, o, j, mask),
                _ => avx512_block::<4, FUSED>(t, o, j, mask),
            }
        }
    }
}

/// Pixels `j..j + 16 * PV` of [`avx512_gemm6`]; the last vector uses `mask`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn avx512_block<const PV: usize, const FUSED: bool>(
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
                    *av = madd512::<FUSED>(*av, w, xv);
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
pub unsafe fn avx2_gemm6<const FUSED: bool>(t: &super::gemm::Tile<'_>, o: &mut [f32]) {
    let p = t.p;
    let mut j = 0;
    // SAFETY (every call): as in `avx512_gemm6`, with `left` lanes from j.
    unsafe {
        while j + 16 <= p {
            avx2_block::<2, FUSED>(t, o, j, 16);
            j += 16;
        }
        let left = p - j;
        if left > 8 {
            avx2_block::<2, FUSED>(t, o, j, left);
        } else if left > 0 {
            avx2_block::<1, FUSED>(t, o, j, left);
        }
    }
}

/// Pixels `j..j + min(8 * PV, left)` of [`avx2_gemm6`], masked past `left`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2_block<const PV: usize, const FUSED: bool>(
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
                    *av = madd256::<FUSED>(*av, w, xv);
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
