//! aarch64 NEON kernels. NEON is part of the aarch64 baseline, so these
//! need no run-time check. They sum in the canonical order of
//! `kernels::scalar` (dots) and `kernels::gemm` (products over k in turn),
//! with separate multiplies and adds, so they give the scalar reference's
//! bits.

use super::scalar::fold16;
use core::arch::aarch64::*;
use edgegen_format::quant::{BlockQ8_0, f16_le_to_f32};

/// F16 bits (in u16 lanes) to f32, exactly, without the unstable f16 types:
/// shift the exponent and mantissa into place and rescale by 2^112, which
/// also handles subnormals; infinities and NaNs are rebuilt separately.
#[inline(always)]
unsafe fn f16x4_to_f32(h: uint16x4_t) -> float32x4_t {
    // SAFETY (whole function): register-only NEON intrinsics.
    unsafe {
        let h = vmovl_u16(h);
        let sign = vshlq_n_u32(vandq_u32(h, vdupq_n_u32(0x8000)), 16);
        let em = vandq_u32(h, vdupq_n_u32(0x7fff));
        let scaled = vmulq_f32(
            vreinterpretq_f32_u32(vshlq_n_u32(em, 13)),
            vdupq_n_f32(f32::from_bits(0x7780_0000)),
        );
        let is_special = vcgeq_u32(em, vdupq_n_u32(0x7c00));
        let special = vorrq_u32(
            vdupq_n_u32(0x7f80_0000),
            vshlq_n_u32(vandq_u32(em, vdupq_n_u32(0x03ff)), 13),
        );
        let bits = vbslq_u32(is_special, special, vreinterpretq_u32_f32(scaled));
        vreinterpretq_f32_u32(vorrq_u32(bits, sign))
    }
}

/// `acc + a * b`: fused in the fast mode (`FUSED`), a rounded product then
/// a sum in the deterministic one.
#[inline(always)]
unsafe fn madd<const FUSED: bool>(acc: float32x4_t, a: float32x4_t, b: float32x4_t) -> float32x4_t {
    // SAFETY: register-only NEON intrinsics.
    unsafe {
        if FUSED {
            vfmaq_f32(acc, a, b)
        } else {
            vaddq_f32(acc, vmulq_f32(a, b))
        }
    }
}

/// Lanes 0-15 from four vectors, the products of `tail` more elements
/// added one by one (lane `j` takes element `j` of the tail), then the
/// canonical fold.
#[inline(always)]
unsafe fn finish(acc: &[float32x4_t; 4], tail: impl Iterator<Item = f32>) -> f32 {
    let mut l = [0f32; 16];
    // SAFETY: four 4-float stores into a 16-float array.
    unsafe {
        for (k, a) in acc.iter().enumerate() {
            vst1q_f32(l.as_mut_ptr().add(4 * k), *a);
        }
    }
    for (a, p) in l.iter_mut().zip(tail) {
        *a += p;
    }
    fold16(&l)
}

/// The canonical dot product ([`super::scalar::scalar_dot_f32`]'s order
/// and bits) of F32 weights with `x`: lanes 0-15 in four vectors.
///
/// # Safety
/// `w.len() >= 4 * x.len()`.
pub unsafe fn neon_dot_f32<const FUSED: bool>(w: &[u8], x: &[f32]) -> f32 {
    // SAFETY: one row of 4 x.len() bytes, the caller's contract.
    unsafe { neon_dot4_f32::<1, FUSED>(w, 0, 1, x)[0] }
}

/// [`neon_dot_f32`] for F16 weights.
///
/// # Safety
/// `w.len() >= 2 * x.len()`.
pub unsafe fn neon_dot_f16<const FUSED: bool>(w: &[u8], x: &[f32]) -> f32 {
    // SAFETY: one row of 2 x.len() bytes, the caller's contract.
    unsafe { neon_dot4_f16::<1, FUSED>(w, 0, 1, x)[0] }
}

/// [`neon_dot_f32`] for Q8_0 blocks covering `x` (the last in part):
/// weight = scale x quant, exact, then the canonical order.
///
/// # Safety
/// `w.len() >= x.len().div_ceil(32)`.
pub unsafe fn neon_dot_q8_0<const FUSED: bool>(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    // SAFETY: one row of blocks covering x, the caller's contract.
    unsafe { neon_dot4_q8_0::<1, FUSED>(w, 0, 1, x)[0] }
}

/// Rows per NEON panel: four rows' 16 canonical lanes are 16 accumulator
/// registers of the 32, each chunk of x loaded once for all four.
pub const PANEL: usize = 4;

/// Start of row `min(k, rows - 1)` for each panel row; rows past the
/// matrix repeat its last row, so every pointer is in bounds.
#[inline(always)]
fn row_starts<T, const R: usize>(w: &[T], row_len: usize, rows: usize) -> [&[T]; R] {
    core::array::from_fn(|k| &w[k.min(rows - 1) * row_len..])
}

/// Up to `R` rows (4 for a panel, 1 for [`neon_dot_f32`]) of F32 weights
/// dotted with `x`, in the canonical order when not `FUSED`: row `k <
/// rows` starts at byte `k * row_bytes` of `w`; lanes `rows..R` repeat the
/// last row.
///
/// # Safety
/// `1 <= rows <= R` and `w.len() >= (rows - 1) * row_bytes + 4 * x.len()`.
pub unsafe fn neon_dot4_f32<const R: usize, const FUSED: bool>(
    w: &[u8],
    row_bytes: usize,
    rows: usize,
    x: &[f32],
) -> [f32; R] {
    let (n, full) = (x.len(), x.len() / 16 * 16);
    debug_assert!((1..=R).contains(&rows) && w.len() >= (rows - 1) * row_bytes + 4 * n);
    let rw = row_starts::<_, R>(w, row_bytes, rows);
    let xp = x.as_ptr();
    // SAFETY: each row slice holds 4n bytes (the contract); loads read
    // bytes < 4 full of a row and floats < full of x.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 4]; R];
        let mut i = 0;
        while i < full {
            for g in 0..4 {
                let xv = vld1q_f32(xp.add(i + 4 * g));
                for (a, r) in acc.iter_mut().zip(&rw) {
                    let wv = vreinterpretq_f32_u8(vld1q_u8(r.as_ptr().add(4 * (i + 4 * g))));
                    a[g] = madd::<FUSED>(a[g], wv, xv);
                }
            }
            i += 16;
        }
        core::array::from_fn(|k| {
            let tail = rw[k][4 * full..4 * n]
                .chunks_exact(4)
                .zip(&x[full..])
                .map(|(b, &xv)| f32::from_le_bytes([b[0], b[1], b[2], b[3]]) * xv);
            finish(&acc[k], tail)
        })
    }
}

/// [`neon_dot4_f32`] for F16 weights (`2 * x.len()` bytes per row).
///
/// # Safety
/// `1 <= rows <= R` and `w.len() >= (rows - 1) * row_bytes + 2 * x.len()`.
pub unsafe fn neon_dot4_f16<const R: usize, const FUSED: bool>(
    w: &[u8],
    row_bytes: usize,
    rows: usize,
    x: &[f32],
) -> [f32; R] {
    let (n, full) = (x.len(), x.len() / 16 * 16);
    debug_assert!((1..=R).contains(&rows) && w.len() >= (rows - 1) * row_bytes + 2 * n);
    let rw = row_starts::<_, R>(w, row_bytes, rows);
    let xp = x.as_ptr();
    // SAFETY: as in neon_dot4_f32, with 2-byte weights.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 4]; R];
        let mut i = 0;
        while i < full {
            for g in 0..4 {
                let xv = vld1q_f32(xp.add(i + 4 * g));
                for (a, r) in acc.iter_mut().zip(&rw) {
                    let h = vreinterpret_u16_u8(vld1_u8(r.as_ptr().add(2 * (i + 4 * g))));
                    a[g] = madd::<FUSED>(a[g], f16x4_to_f32(h), xv);
                }
            }
            i += 16;
        }
        core::array::from_fn(|k| {
            let tail = rw[k][2 * full..2 * n]
                .chunks_exact(2)
                .zip(&x[full..])
                .map(|(b, &xv)| f16_le_to_f32([b[0], b[1]]) * xv);
            finish(&acc[k], tail)
        })
    }
}

/// [`neon_dot4_f32`] for Q8_0 blocks (weight = scale x quant, exact): row
/// `k < rows` is `w[k * nb..k * nb + x.len().div_ceil(32)]`.
///
/// # Safety
/// `1 <= rows <= R` and `w.len() >= (rows - 1) * nb + x.len().div_ceil(32)`.
pub unsafe fn neon_dot4_q8_0<const R: usize, const FUSED: bool>(
    w: &[BlockQ8_0],
    nb: usize,
    rows: usize,
    x: &[f32],
) -> [f32; R] {
    let n = x.len();
    debug_assert!((1..=R).contains(&rows) && w.len() >= (rows - 1) * nb + n.div_ceil(32));
    let rw = row_starts::<_, R>(w, nb, rows);
    let (full, xp) = (n / 16, x.as_ptr());
    // SAFETY: 16-byte loads inside each block's 32 quants, blocks below
    // n.div_ceil(32) of each row (the contract); floats below 16 full <= n.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); 4]; R];
        for c in 0..full {
            let xv: [float32x4_t; 4] = core::array::from_fn(|g| vld1q_f32(xp.add(16 * c + 4 * g)));
            for (a, r) in acc.iter_mut().zip(&rw) {
                let blk = &r[c / 2];
                let d = vdupq_n_f32(blk.scale());
                let v = vld1q_s8(blk.qs.as_ptr().add(16 * (c % 2)));
                let (lo, hi) = (vmovl_s8(vget_low_s8(v)), vmovl_s8(vget_high_s8(v)));
                let parts = [
                    vget_low_s16(lo),
                    vget_high_s16(lo),
                    vget_low_s16(hi),
                    vget_high_s16(hi),
                ];
                for g in 0..4 {
                    let wv = vmulq_f32(vcvtq_f32_s32(vmovl_s16(parts[g])), d);
                    a[g] = madd::<FUSED>(a[g], wv, xv[g]);
                }
            }
        }
        let start = 16 * full;
        core::array::from_fn(|k| {
            let (d, qs) = rw[k]
                .get(start / 32)
                .map_or((0.0, &[][..]), |b| (b.scale(), &b.qs[start % 32..]));
            let tail = x[start..]
                .iter()
                .zip(qs)
                .map(|(&xv, &q)| (d * q as f32) * xv);
            finish(&acc[k], tail)
        })
    }
}

/// F16 bytes to f32, 4 at a time; returns how many it did
/// (`4 * (dst.len() / 4)`), the caller widens the rest.
///
/// # Safety
/// `src.len() >= 2 * dst.len()`.
pub unsafe fn neon_widen_f16(src: &[u8], dst: &mut [f32]) -> usize {
    let n = dst.len() / 4 * 4;
    debug_assert!(src.len() >= 2 * n);
    let (sp, dp) = (src.as_ptr(), dst.as_mut_ptr());
    // SAFETY: reads 8 bytes at offsets < 2n <= src.len() (as bytes, any
    // alignment) and writes 4 floats at offsets < n <= dst.len().
    unsafe {
        let mut i = 0;
        while i < n {
            let h = vreinterpret_u16_u8(vld1_u8(sp.add(2 * i)));
            vst1q_f32(dp.add(i), f16x4_to_f32(h));
            i += 4;
        }
    }
    n
}

/// The NEON micro-kernel of `kernels::gemm`: `o[r * p + j] (+)= sum_k
/// w(r, k) * x[k * xs + j]` (see `kernels::gemm::Tile`) for `r < h`, `j < p`, `k < kc`,
/// in blocks of 16 pixels (4 q registers) by 6 rows, 24 accumulators; the
/// pixels past the last multiple of 4 go through the scalar kernel.
///
/// # Safety
/// `h <= 6`, `kc <= DEPTH`, `x.len() >= (kc - 1) * xs + p`, `o.len() >= h * p`.
pub unsafe fn neon_gemm6<const FUSED: bool>(t: &super::gemm::Tile<'_>, o: &mut [f32]) {
    let p = t.p;
    let mut j = 0;
    // SAFETY (every call): each block covers whole vectors below p.
    unsafe {
        while j + 16 <= p {
            neon_block::<4, FUSED>(t, o, j);
            j += 16;
        }
        match (p - j) / 4 {
            3 => neon_block::<3, FUSED>(t, o, j),
            2 => neon_block::<2, FUSED>(t, o, j),
            1 => neon_block::<1, FUSED>(t, o, j),
            _ => {}
        }
    }
    let done = p / 4 * 4;
    if done < p {
        super::gemm::scalar_gemm(t, o, done);
    }
}

/// Pixels `j..j + 4 * PV` of [`neon_gemm6`], all below p.
#[inline(always)]
unsafe fn neon_block<const PV: usize, const FUSED: bool>(
    t: &super::gemm::Tile<'_>,
    o: &mut [f32],
    j: usize,
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
    // SAFETY: vectors cover pixels j..j + 4 PV <= p of rows k < kc of x
    // and rows r < h of o, inside the caller's bounds.
    unsafe {
        let mut acc = [[vdupq_n_f32(0.0); PV]; ROWS];
        if !first {
            for (r, a) in acc.iter_mut().enumerate().take(h) {
                for (v, av) in a.iter_mut().enumerate() {
                    *av = vld1q_f32(op.add(r * p + j + 4 * v));
                }
            }
        }
        for k in 0..kc {
            let xr = xp.add(k * xs + j);
            let mut xv = [vdupq_n_f32(0.0); PV];
            for (v, xv) in xv.iter_mut().enumerate() {
                *xv = vld1q_f32(xr.add(4 * v));
            }
            for (r, a) in acc.iter_mut().enumerate() {
                let w = wp.add(4 * (r * ws + k)).cast::<f32>().read_unaligned();
                for (av, &xv) in a.iter_mut().zip(&xv) {
                    *av = madd::<FUSED>(*av, xv, vdupq_n_f32(w));
                }
            }
        }
        for (r, a) in acc.iter().enumerate().take(h) {
            for (v, &av) in a.iter().enumerate() {
                vst1q_f32(op.add(r * p + j + 4 * v), av);
            }
        }
    }
}
