//! One query's causal attention over a KV cache: `softmax(q K^T / sqrt(d))
//! V` for one head, where the cache holds `n` positions of `C` floats and
//! the head owns `d` of them at `off`. The weights of every position are
//! computed once into caller scratch, then the values are summed with
//! them.
//!
//! [`attend`] sums its dot products in 8 independent lanes (which the
//! compiler turns into SIMD on every target) and adds the values row by
//! row; [`attend_scalar`] is the plain reference, one running sum per dot,
//! that tests hold it to. [`attend_q8_0`] reads a cache of Q8_0 blocks,
//! and [`attend_q8_0_pair`] two query heads that share a K/V head there.

use crate::math::{self, DefaultMath, Math};
use edgegen_format::quant::{BlockQ8_0, QK8_0};

/// Lanes of the dot products: one AVX register, two NEON ones.
const LANES: usize = 8;

#[inline]
fn dot_lanes(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        // Each lane by its constant index, so that `acc` lives in
        // registers: as a loop over lanes, a Cortex-M4 build kept it in
        // memory and cleared it through `memset`.
        let a = |l: usize| acc[l] + x[l] * y[l];
        acc = [a(0), a(1), a(2), a(3), a(4), a(5), a(6), a(7)];
    }
    let mut s = 0.0;
    for (x, y) in ar.iter().zip(br) {
        s += x * y;
    }
    // A fixed tree, so the result does not depend on the target.
    let a4 = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    s + ((a4[0] + a4[2]) + (a4[1] + a4[3]))
}

/// The shape of one head's attention over a cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    /// Positions in the cache to attend to (the query's own included).
    pub n: usize,
    /// Floats per cached position (the model width C).
    pub stride: usize,
    /// Where the head's `d` floats start within a position.
    pub off: usize,
    /// The head's width.
    pub d: usize,
}

/// Softmax of `w[..n]` in place (max subtracted first).
///
/// Where there are vector units, the exponentials go through
/// [`Math::exp_slice`] (by default libm's bits, vectorized: the same
/// values as one `expf` call each, which were a sixth of a host text
/// step's attention), then are summed in order; on 32-bit Arm, one pass
/// of `expf` calls, as before, so the Cortex-M4 runs the same
/// instructions.
fn softmax(w: &mut [f32]) {
    let max = math::max_value(w);
    let mut sum = 0.0;
    if cfg!(target_arch = "arm") {
        for v in w.iter_mut() {
            *v = math::exp(*v - max);
            sum += *v;
        }
    } else {
        w.iter_mut().for_each(|v| *v -= max);
        DefaultMath::exp_slice(w);
        for v in w.iter() {
            sum += *v;
        }
    }
    let inv = 1.0 / sum;
    w.iter_mut().for_each(|v| *v *= inv);
}

/// `out (d) = softmax(q . k_j / sqrt(d)) . v_j` over `j < h.n`; `w` holds
/// at least `h.n` floats of scratch. Returns `false` (and leaves `out`
/// alone) when a buffer is too short, which the caller's checks rule out.
///
/// The same arithmetic in the same order on every target; on x86 the
/// code is compiled for the CPU's AVX2 or AVX-512 as well (without fused
/// multiply-adds, so with the same bits). Measured on a host text step at
/// 62% of the time when it was baseline x86-64 code that kept `out` in
/// memory across positions.
pub fn attend(out: &mut [f32], q: &[f32], k: &[f32], v: &[f32], h: Head, w: &mut [f32]) -> bool {
    if !fits(out, q, k, v, h, w) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    match super::isa() {
        // SAFETY: `isa()` names only an ISA this CPU supports.
        super::Isa::Avx512 => unsafe { attend_avx512(out, q, k, v, h, w) },
        // SAFETY: as above.
        super::Isa::Avx2 => unsafe { attend_avx2(out, q, k, v, h, w) },
        super::Isa::Scalar => attend_body(out, q, k, v, h, w, 0),
    }
    #[cfg(not(target_arch = "x86_64"))]
    attend_body(out, q, k, v, h, w, 0);
    true
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn attend_avx512(out: &mut [f32], q: &[f32], k: &[f32], v: &[f32], h: Head, w: &mut [f32]) {
    // SAFETY: AVX-512F implies AVX2; `attend` checked the buffers.
    let done = unsafe { scores8(q, k, h, w) };
    attend_body(out, q, k, v, h, w, done)
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn attend_avx2(out: &mut [f32], q: &[f32], k: &[f32], v: &[f32], h: Head, w: &mut [f32]) {
    // SAFETY: `attend` checked the buffers.
    let done = unsafe { scores8(q, k, h, w) };
    attend_body(out, q, k, v, h, w, done)
}

/// The scores of a head of width 8 ([`dot_lanes`]' tree, then the scale:
/// the same bits), eight positions a step: their keys times the query,
/// transposed so that each position's tree is vertical adds, where one
/// position at a time ended in a horizontal sum. Returns how many
/// positions it scored (a multiple of 8; none for other widths).
///
/// # Safety
/// The CPU must support AVX2, and the buffers must pass `fits`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scores8(q: &[f32], k: &[f32], h: Head, w: &mut [f32]) -> usize {
    use core::arch::x86_64::*;
    if h.d != LANES {
        return 0;
    }
    let scale = _mm256_set1_ps(1.0 / math::sqrt(h.d as f32));
    let zero = _mm256_setzero_ps();
    // SAFETY: `q` holds at least `d` = 8 floats (`fits`).
    let qv = unsafe { _mm256_loadu_ps(q.as_ptr()) };
    let blocks = h.n / 8;
    for b in 0..blocks {
        // SAFETY: positions below `h.n` have their `d` floats at
        // `j * stride + off` inside `k` (`fits`).
        let row = |p: usize| unsafe {
            let at = k.as_ptr().add((b * 8 + p) * h.stride + h.off);
            _mm256_add_ps(zero, _mm256_mul_ps(qv, _mm256_loadu_ps(at)))
        };
        let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
        let (r4, r5, r6, r7) = (row(4), row(5), row(6), row(7));
        let (t0, t1) = (_mm256_unpacklo_ps(r0, r1), _mm256_unpackhi_ps(r0, r1));
        let (t2, t3) = (_mm256_unpacklo_ps(r2, r3), _mm256_unpackhi_ps(r2, r3));
        let (t4, t5) = (_mm256_unpacklo_ps(r4, r5), _mm256_unpackhi_ps(r4, r5));
        let (t6, t7) = (_mm256_unpacklo_ps(r6, r7), _mm256_unpackhi_ps(r6, r7));
        // u_l holds lane l (low half) and lane l + 4 (high half) of
        // positions 0-3; w_l the same of positions 4-7.
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xee>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xee>(t1, t3);
        let w0 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let w1 = _mm256_shuffle_ps::<0xee>(t4, t6);
        let w2 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let w3 = _mm256_shuffle_ps::<0xee>(t5, t7);
        // Lane l of the eight positions, and lane l + 4: a4[l] of each.
        let a4 = |u, w| {
            _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(u, w),
                _mm256_permute2f128_ps::<0x31>(u, w),
            )
        };
        let (a0, a1, a2, a3) = (a4(u0, w0), a4(u1, w1), a4(u2, w2), a4(u3, w3));
        let tree = _mm256_add_ps(_mm256_add_ps(a0, a2), _mm256_add_ps(a1, a3));
        let s = _mm256_mul_ps(_mm256_add_ps(zero, tree), scale);
        // SAFETY: `w` holds at least `h.n` floats (`fits`).
        unsafe { _mm256_storeu_ps(w.as_mut_ptr().add(b * 8), s) };
    }
    blocks * 8
}

/// [`attend`] once its buffers are checked (`fits`), the scores of the
/// first `done` positions already in `w`.
#[inline(always)]
fn attend_body(
    out: &mut [f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    h: Head,
    w: &mut [f32],
    done: usize,
) {
    let scale = 1.0 / math::sqrt(h.d as f32);
    let q = &q[..h.d];
    for (j, s) in w[..h.n].iter_mut().enumerate().skip(done) {
        let kj = &k[j * h.stride + h.off..][..h.d];
        *s = dot_lanes(q, kj) * scale;
    }
    softmax(&mut w[..h.n]);
    let out = &mut out[..h.d];
    if cfg!(target_arch = "arm") {
        // One running sum per output in `out` (a Cortex-M4 has no vector
        // registers to keep them in, and this is the smaller code). The
        // first position starts each sum as `0.0 + p x`, the bits of a
        // zeroed `out` plus its product, without the `memset` call a
        // zeroing pulled into a firmware (0.2 KiB of flash).
        let row = |j: usize| &v[j * h.stride + h.off..][..h.d];
        for (o, &x) in out.iter_mut().zip(row(0)) {
            *o = 0.0 + w[0] * x;
        }
        for (j, &p) in w[..h.n].iter().enumerate().skip(1) {
            for (o, &x) in out.iter_mut().zip(row(j)) {
                *o += p * x;
            }
        }
        return;
    }
    // Eight outputs at a time, summed over the positions in registers
    // (each output's sum in the same order as the running sum above);
    // then the last few.
    let (whole, part) = out.split_at_mut(h.d - h.d % LANES);
    for (c, o) in whole.chunks_exact_mut(LANES).enumerate() {
        let mut acc = [0f32; LANES];
        let at = h.off + c * LANES;
        for (j, &p) in w[..h.n].iter().enumerate() {
            let vj = &v[j * h.stride + at..][..LANES];
            for l in 0..LANES {
                acc[l] += p * vj[l];
            }
        }
        o.copy_from_slice(&acc);
    }
    let at = h.off + whole.len();
    part.fill(0.0);
    for (j, &p) in w[..h.n].iter().enumerate() {
        let vj = &v[j * h.stride + at..][..part.len()];
        for (o, &x) in part.iter_mut().zip(vj) {
            *o += p * x;
        }
    }
}

/// Two query heads that share a K/V head over an f32 cache: `q` holds both
/// queries (`2 h.d` floats), `out` gets both outputs, `w` holds `2 h.n`
/// floats. Each head's arithmetic is [`attend`]'s in the same order (the
/// same bits), interleaved with the other's, so that the two heads'
/// sequential sums (the softmax's and the values') overlap and each value
/// row is read once for both. Returns `false` (and leaves `out` alone)
/// when a buffer is too short.
///
/// ```
/// use edgegen_runtime::kernels::attend::{Head, attend, attend_pair};
/// let k: Vec<f32> = (0..96).map(|i| (i % 7) as f32 - 3.0).collect();
/// let v: Vec<f32> = (0..96).map(|i| (i % 5) as f32).collect();
/// let h = Head { n: 3, stride: 32, off: 8, d: 8 };
/// let q: Vec<f32> = (0..16).map(|i| i as f32 / 8.0).collect();
/// let (mut pair, mut one, mut w) = ([0f32; 16], [0f32; 16], [0f32; 6]);
/// assert!(attend_pair(&mut pair, &q, &k, &v, h, &mut w));
/// assert!(attend(&mut one[..8], &q[..8], &k, &v, h, &mut w));
/// assert!(attend(&mut one[8..], &q[8..], &k, &v, h, &mut w));
/// assert_eq!(pair, one);
/// ```
pub fn attend_pair(
    out: &mut [f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    h: Head,
    w: &mut [f32],
) -> bool {
    let two = h.d.saturating_mul(2);
    if out.len() < two || q.len() < two || w.len() / 2 < h.n || !fits(out, q, k, v, h, w) {
        return false;
    }
    #[cfg(target_arch = "x86_64")]
    match super::isa() {
        // SAFETY: `isa()` names only an ISA this CPU supports.
        super::Isa::Avx512 => unsafe { pair_avx512(out, q, k, v, h, w) },
        // SAFETY: as above.
        super::Isa::Avx2 => unsafe { pair_avx2(out, q, k, v, h, w) },
        super::Isa::Scalar => pair_body(out, q, k, v, h, w, [0, 0]),
    }
    #[cfg(not(target_arch = "x86_64"))]
    pair_body(out, q, k, v, h, w, [0, 0]);
    true
}

/// # Safety
/// The CPU must support AVX-512F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn pair_avx512(out: &mut [f32], q: &[f32], k: &[f32], v: &[f32], h: Head, w: &mut [f32]) {
    // SAFETY: AVX-512F implies AVX2; `attend_pair` checked the buffers.
    let done = unsafe { pair_scores8(q, k, h, w) };
    pair_body(out, q, k, v, h, w, done)
}

/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pair_avx2(out: &mut [f32], q: &[f32], k: &[f32], v: &[f32], h: Head, w: &mut [f32]) {
    // SAFETY: `attend_pair` checked the buffers.
    let done = unsafe { pair_scores8(q, k, h, w) };
    pair_body(out, q, k, v, h, w, done)
}

/// [`scores8`] of both heads of a pair, each into its half of `w`.
///
/// # Safety
/// The CPU must support AVX2, and the buffers must pass `attend_pair`'s
/// checks.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn pair_scores8(q: &[f32], k: &[f32], h: Head, w: &mut [f32]) -> [usize; 2] {
    let (wa, wb) = w.split_at_mut(h.n);
    // SAFETY: as the caller's.
    unsafe { [scores8(q, k, h, wa), scores8(&q[h.d..], k, h, wb)] }
}

/// [`attend_pair`] once its buffers are checked, the scores of each head's
/// first `done[i]` positions already in its half of `w`.
#[inline(always)]
fn pair_body(
    out: &mut [f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    h: Head,
    w: &mut [f32],
    done: [usize; 2],
) {
    let scale = 1.0 / math::sqrt(h.d as f32);
    let heads = w[..2 * h.n].chunks_exact_mut(h.n).zip(done);
    for (i, (wi, start)) in heads.enumerate() {
        let qi = &q[i * h.d..][..h.d];
        for (j, s) in wi.iter_mut().enumerate().skip(start) {
            let kj = &k[j * h.stride + h.off..][..h.d];
            *s = dot_lanes(qi, kj) * scale;
        }
    }
    // `softmax` of each half, its two running sums side by side.
    let (wa, wb) = w[..2 * h.n].split_at_mut(h.n);
    let (ma, mb) = (math::max_value(wa), math::max_value(wb));
    wa.iter_mut().for_each(|x| *x -= ma);
    wb.iter_mut().for_each(|x| *x -= mb);
    DefaultMath::exp_slice(&mut w[..2 * h.n]);
    let (wa, wb) = w[..2 * h.n].split_at_mut(h.n);
    let (mut sa, mut sb) = (0.0, 0.0);
    for (&a, &b) in wa.iter().zip(wb.iter()) {
        sa += a;
        sb += b;
    }
    let (ia, ib) = (1.0 / sa, 1.0 / sb);
    wa.iter_mut().for_each(|x| *x *= ia);
    wb.iter_mut().for_each(|x| *x *= ib);
    // The values, eight outputs of each head at a time, then the rest.
    let (oa, ob) = out[..2 * h.d].split_at_mut(h.d);
    let whole = h.d - h.d % LANES;
    for c in (0..whole).step_by(LANES) {
        let (mut acc_a, mut acc_b) = ([0f32; LANES], [0f32; LANES]);
        for (j, (&pa, &pb)) in wa.iter().zip(wb.iter()).enumerate() {
            let vj = &v[j * h.stride + h.off + c..][..LANES];
            for l in 0..LANES {
                acc_a[l] += pa * vj[l];
                acc_b[l] += pb * vj[l];
            }
        }
        oa[c..c + LANES].copy_from_slice(&acc_a);
        ob[c..c + LANES].copy_from_slice(&acc_b);
    }
    let (pa_out, pb_out) = (&mut oa[whole..], &mut ob[whole..]);
    pa_out.fill(0.0);
    pb_out.fill(0.0);
    for (j, (&pa, &pb)) in wa.iter().zip(wb.iter()).enumerate() {
        let vj = &v[j * h.stride + h.off + whole..][..h.d - whole];
        for ((a, b), &x) in pa_out.iter_mut().zip(pb_out.iter_mut()).zip(vj) {
            *a += pa * x;
            *b += pb * x;
        }
    }
}

/// The reference for [`attend`]: the same arithmetic with one running sum
/// per dot product.
pub fn attend_scalar(
    out: &mut [f32],
    q: &[f32],
    k: &[f32],
    v: &[f32],
    h: Head,
    w: &mut [f32],
) -> bool {
    if !fits(out, q, k, v, h, w) {
        return false;
    }
    let scale = 1.0 / math::sqrt(h.d as f32);
    for j in 0..h.n {
        let mut s = 0.0;
        for i in 0..h.d {
            s += q[i] * k[j * h.stride + h.off + i];
        }
        w[j] = s * scale;
    }
    softmax(&mut w[..h.n]);
    for i in 0..h.d {
        let mut o = 0.0;
        for j in 0..h.n {
            o += w[j] * v[j * h.stride + h.off + i];
        }
        out[i] = o;
    }
    true
}

fn fits(out: &[f32], q: &[f32], k: &[f32], v: &[f32], h: Head, w: &[f32]) -> bool {
    let need = match h.n.checked_sub(1) {
        Some(last) => last * h.stride + h.off + h.d,
        None => return false,
    };
    h.off + h.d <= h.stride
        && out.len() >= h.d
        && q.len() >= h.d
        && k.len() >= need
        && v.len() >= need
        && w.len() >= h.n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::Rng;
    use std::vec::Vec;

    /// A query of `d` normal draws, and keys and values of `len` each.
    fn inputs(r: &mut Rng, d: usize, len: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let mut draw = |n: usize| (0..n).map(|_| r.normal()).collect::<Vec<f32>>();
        (draw(d), draw(len), draw(len))
    }

    /// Every instruction set's `attend` gives the portable code's bits:
    /// heads of width 8 (eight positions a step, then the rest) and others.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn every_isa_attends_with_the_same_bits() {
        use crate::kernels::Isa;
        let mut r = Rng::new(5);
        for (n, stride, off, d) in [
            (37, 32, 8, 8),
            (8, 8, 0, 8),
            (5, 32, 24, 8),
            (70, 64, 16, 16),
            (9, 40, 3, 13),
        ] {
            let (q, k, v) = inputs(&mut r, d, n * stride);
            let h = Head { n, stride, off, d };
            let run = |isa: Isa| {
                let (mut o, mut w) = (std::vec![0f32; d], std::vec![0f32; n]);
                assert!(fits(&o, &q, &k, &v, h, &w));
                // SAFETY: each ISA runs only where this CPU has it.
                match isa {
                    Isa::Avx512 => unsafe { attend_avx512(&mut o, &q, &k, &v, h, &mut w) },
                    Isa::Avx2 => unsafe { attend_avx2(&mut o, &q, &k, &v, h, &mut w) },
                    Isa::Scalar => attend_body(&mut o, &q, &k, &v, h, &mut w, 0),
                }
                (o, w)
            };
            let want = run(Isa::Scalar);
            for isa in [Isa::Avx2, Isa::Avx512]
                .into_iter()
                .filter(|i| i.available())
            {
                let got = run(isa);
                let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&got.1), bits(&want.1), "{isa:?} scores, n {n} d {d}");
                assert_eq!(bits(&got.0), bits(&want.0), "{isa:?} output, n {n} d {d}");
            }
        }
    }

    /// A pair of query heads gives, on every instruction set, the bits of
    /// the two heads attended one at a time.
    #[test]
    fn a_pair_of_f32_heads_attends_as_two_single_heads_do() {
        let mut r = Rng::new(9);
        for (n, stride, off, d) in [
            (37, 32, 8, 8),
            (8, 16, 8, 8),
            (3, 32, 0, 8),
            (21, 48, 16, 16),
            (6, 40, 3, 13),
        ] {
            let (q, k, v) = inputs(&mut r, 2 * d, n * stride);
            let h = Head { n, stride, off, d };
            let mut w = std::vec![0f32; 2 * n];
            let mut one = std::vec![0f32; 2 * d];
            assert!(attend(&mut one[..d], &q[..d], &k, &v, h, &mut w));
            assert!(attend(&mut one[d..], &q[d..], &k, &v, h, &mut w));
            let bits = |x: &[f32]| x.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            let mut pair = std::vec![0f32; 2 * d];
            assert!(attend_pair(&mut pair, &q, &k, &v, h, &mut w));
            assert_eq!(bits(&pair), bits(&one), "n {n} d {d}");
            pair.fill(0.0);
            pair_body(&mut pair, &q, &k, &v, h, &mut w, [0, 0]);
            assert_eq!(bits(&pair), bits(&one), "portable, n {n} d {d}");
            #[cfg(target_arch = "x86_64")]
            for isa in [crate::kernels::Isa::Avx2, crate::kernels::Isa::Avx512] {
                if !isa.available() {
                    continue;
                }
                pair.fill(0.0);
                // SAFETY: only where this CPU has the ISA.
                unsafe {
                    match isa {
                        crate::kernels::Isa::Avx2 => pair_avx2(&mut pair, &q, &k, &v, h, &mut w),
                        _ => pair_avx512(&mut pair, &q, &k, &v, h, &mut w),
                    }
                }
                assert_eq!(bits(&pair), bits(&one), "{isa:?}, n {n} d {d}");
            }
            // Short buffers are refused.
            assert!(!attend_pair(&mut pair[..2 * d - 1], &q, &k, &v, h, &mut w));
            assert!(!attend_pair(&mut pair, &q, &k, &v, h, &mut w[..2 * n - 1]));
        }
    }

    #[test]
    fn the_fast_kernel_matches_the_reference() {
        let mut r = Rng::new(3);
        for (n, stride, off, d) in [
            (1, 8, 0, 8),
            (7, 64, 16, 16),
            (300, 128, 96, 32),
            (5, 20, 3, 13),
        ] {
            let (q, k, v) = inputs(&mut r, d, n * stride);
            let h = Head { n, stride, off, d };
            let (mut a, mut b) = (std::vec![0f32; d], std::vec![0f32; d]);
            let mut w = std::vec![0f32; n];
            assert!(attend(&mut a, &q, &k, &v, h, &mut w));
            assert!(attend_scalar(&mut b, &q, &k, &v, h, &mut w));
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{x} vs {y}");
            }
        }
        // One position: the output is its value.
        let h = Head {
            n: 1,
            stride: 2,
            off: 0,
            d: 2,
        };
        let mut o = [0f32; 2];
        attend(&mut o, &[1.0, 1.0], &[3.0, 4.0], &[5.0, 6.0], h, &mut [0.0]);
        assert_eq!(o, [5.0, 6.0]);
        // Short buffers are refused, not indexed past.
        let h = Head {
            n: 3,
            stride: 2,
            off: 0,
            d: 2,
        };
        assert!(!attend(
            &mut o,
            &[1.0, 1.0],
            &[0.0; 4],
            &[0.0; 6],
            h,
            &mut [0.0; 3]
        ));
    }
}

/// `part + q . c` over codes, one running sum in order, four terms a
/// step (the loop overhead is most of the cost on a Cortex-M4, where a
/// head is 8 or 16 values).
#[inline(always)]
fn dot_codes(mut part: f32, q: &[f32], c: &[i8]) -> f32 {
    let (qc, cc) = (q.chunks_exact(4), c.chunks_exact(4));
    let (qr, cr) = (qc.remainder(), cc.remainder());
    for (x, y) in qc.zip(cc) {
        part += x[0] * y[0] as f32;
        part += x[1] * y[1] as f32;
        part += x[2] * y[2] as f32;
        part += x[3] * y[3] as f32;
    }
    for (x, &y) in qr.iter().zip(cr) {
        part += x * y as f32;
    }
    part
}

/// `out += k * c` over codes, four a step.
#[inline(always)]
fn axpy_codes(out: &mut [f32], k: f32, c: &[i8]) {
    let (oc, cc) = (out.chunks_exact_mut(4), c.chunks_exact(4));
    let cr = cc.remainder();
    for (o, y) in oc.zip(cc) {
        o[0] += k * y[0] as f32;
        o[1] += k * y[1] as f32;
        o[2] += k * y[2] as f32;
        o[3] += k * y[3] as f32;
    }
    let n = out.len() - cr.len();
    for (o, &y) in out[n..].iter_mut().zip(cr) {
        *o += k * y as f32;
    }
}

/// `q . row[off .. off + q.len()]` over a row of Q8_0 blocks, each block's
/// part summed on its codes and scaled once.
#[inline]
fn q8_dot(q: &[f32], row: &[BlockQ8_0], off: usize) -> f32 {
    let (mut s, mut i) = (0.0, 0);
    while i < q.len() {
        let e = off + i;
        let b = &row[e / QK8_0];
        let start = e % QK8_0;
        let n = (QK8_0 - start).min(q.len() - i);
        s += dot_codes(0.0, &q[i..i + n], &b.qs[start..start + n]) * super::f16_to_f32(b.d);
        i += n;
    }
    s
}

/// `out += p * row[off .. off + out.len()]` over a row of Q8_0 blocks.
#[inline]
fn q8_axpy(out: &mut [f32], p: f32, row: &[BlockQ8_0], off: usize) {
    let mut i = 0;
    while i < out.len() {
        let e = off + i;
        let b = &row[e / QK8_0];
        let start = e % QK8_0;
        let n = (QK8_0 - start).min(out.len() - i);
        axpy_codes(
            &mut out[i..i + n],
            p * super::f16_to_f32(b.d),
            &b.qs[start..start + n],
        );
        i += n;
    }
}

/// [`attend`] over a cache stored as Q8_0 blocks: each position's row of
/// `h.stride` values (a multiple of 32) is `h.stride / 32` blocks. A
/// quarter of an f32 cache's memory, for devices whose RAM a long context
/// would not fit otherwise. With the `head8` feature, a head of 8 inside
/// one block goes through a kernel that keeps it in registers (the same
/// bits).
pub fn attend_q8_0(
    out: &mut [f32],
    q: &[f32],
    k: &[BlockQ8_0],
    v: &[BlockQ8_0],
    h: Head,
    w: &mut [f32],
) -> bool {
    attend_q8_0_with(cfg!(feature = "head8"), out, q, k, v, h, w)
}

/// [`attend_q8_0`], through [`head8_in_block`] where it applies if
/// `head8` is set (tests run both ways).
#[inline(always)]
fn attend_q8_0_with(
    head8: bool,
    out: &mut [f32],
    q: &[f32],
    k: &[BlockQ8_0],
    v: &[BlockQ8_0],
    h: Head,
    w: &mut [f32],
) -> bool {
    let bpr = h.stride / QK8_0;
    let ok = h.n > 0
        && h.stride.is_multiple_of(QK8_0)
        && h.off + h.d <= h.stride
        && out.len() >= h.d
        && q.len() >= h.d
        && k.len() >= h.n * bpr
        && v.len() >= h.n * bpr
        && w.len() >= h.n;
    if !ok {
        return false;
    }
    let scale = 1.0 / math::sqrt(h.d as f32);
    if head8 && h.d == 8 && h.off % QK8_0 + 8 <= QK8_0 {
        let (q, out) = (q[..8].try_into(), (&mut out[..8]).try_into());
        if let (Ok(q), Ok(out)) = (q, out) {
            head8_in_block(out, q, k, v, h, scale, w);
            return true;
        }
    }
    let q = &q[..h.d];
    for (j, s) in w[..h.n].iter_mut().enumerate() {
        *s = q8_dot(q, &k[j * bpr..(j + 1) * bpr], h.off) * scale;
    }
    softmax(&mut w[..h.n]);
    let out = &mut out[..h.d];
    out.fill(0.0);
    for (j, &p) in w[..h.n].iter().enumerate() {
        q8_axpy(out, p, &v[j * bpr..(j + 1) * bpr], h.off);
    }
    true
}

/// [`attend_q8_0`] for a head of 8 values inside one block of each
/// position (the checks done): the same sums as the general path, in the
/// same order, written out so that the query and the output stay in
/// registers (the device profile optimizes for size and unrolls nothing).
/// A Cortex-M4 spends about half as many instructions per position here;
/// 8 is the documented text model's head (and llama2.c's stories260K's).
#[inline(never)]
fn head8_in_block(
    out: &mut [f32; 8],
    q: &[f32; 8],
    k: &[BlockQ8_0],
    v: &[BlockQ8_0],
    h: Head,
    scale: f32,
    w: &mut [f32],
) {
    let (bpr, start) = (h.stride / QK8_0, h.off % QK8_0);
    let (kb, vb) = (&k[h.off / QK8_0..], &v[h.off / QK8_0..]);
    let codes = |row: &[BlockQ8_0]| -> (f32, [i8; 8]) {
        let b = &row[0];
        let mut c = [0; 8];
        c.copy_from_slice(&b.qs[start..start + 8]);
        (super::f16_to_f32(b.d), c)
    };
    for (s, row) in w[..h.n].iter_mut().zip(kb.chunks(bpr)) {
        let (d, c) = codes(row);
        let mut part = 0.0;
        part += q[0] * c[0] as f32;
        part += q[1] * c[1] as f32;
        part += q[2] * c[2] as f32;
        part += q[3] * c[3] as f32;
        part += q[4] * c[4] as f32;
        part += q[5] * c[5] as f32;
        part += q[6] * c[6] as f32;
        part += q[7] * c[7] as f32;
        *s = (0.0 + part * d) * scale;
    }
    softmax(&mut w[..h.n]);
    let mut o = [0f32; 8];
    for (&p, row) in w[..h.n].iter().zip(vb.chunks(bpr)) {
        let (d, c) = codes(row);
        let kk = p * d;
        o[0] += kk * c[0] as f32;
        o[1] += kk * c[1] as f32;
        o[2] += kk * c[2] as f32;
        o[3] += kk * c[3] as f32;
        o[4] += kk * c[4] as f32;
        o[5] += kk * c[5] as f32;
        o[6] += kk * c[6] as f32;
        o[7] += kk * c[7] as f32;
    }
    *out = o;
}

/// [`attend_q8_0`] for two query heads that share one K/V head (grouped-
/// query attention): `q[..d]` and `q[d..2 d]` into `out[..d]` and
/// `out[d..2 d]`, with `w` holding both heads' weights (`2 h.n`). The same
/// sums in the same order as two calls of [`attend_q8_0`], so the same
/// bits; for a head of 8 inside one block each position's codes are
/// widened once for both heads, which is most of a head's work on a
/// Cortex-M4. Returns false, doing nothing, where that fast case does not
/// apply; the caller then attends head by head.
///
/// ```
/// use edgegen_format::quant::{BlockQ8_0, quantize_q8_0};
/// use edgegen_runtime::kernels::attend::{Head, attend_q8_0, attend_q8_0_pair};
/// // Three positions of one 32-wide K/V row; the head is values 8..16.
/// let blank = BlockQ8_0 { d: [0; 2], qs: [0; 32] };
/// let kf: Vec<f32> = (0..96).map(|i| (i % 7) as f32 - 3.0).collect();
/// let vf: Vec<f32> = (0..96).map(|i| (i % 5) as f32).collect();
/// let (mut k, mut v) = (vec![blank; 3], vec![blank; 3]);
/// assert!(quantize_q8_0(&kf, &mut k) && quantize_q8_0(&vf, &mut v));
/// let h = Head { n: 3, stride: 32, off: 8, d: 8 };
/// let q: Vec<f32> = (0..16).map(|i| i as f32 / 8.0).collect();
/// let (mut pair, mut one, mut w) = ([0f32; 16], [0f32; 16], [0f32; 6]);
/// assert!(attend_q8_0_pair(&mut pair, &q, &k, &v, h, &mut w));
/// assert!(attend_q8_0(&mut one[..8], &q[..8], &k, &v, h, &mut w));
/// assert!(attend_q8_0(&mut one[8..], &q[8..], &k, &v, h, &mut w));
/// assert_eq!(pair, one);
/// ```
pub fn attend_q8_0_pair(
    out: &mut [f32],
    q: &[f32],
    k: &[BlockQ8_0],
    v: &[BlockQ8_0],
    h: Head,
    w: &mut [f32],
) -> bool {
    let bpr = h.stride / QK8_0;
    let ok = h.n > 0
        && h.d == 8
        && h.stride.is_multiple_of(QK8_0)
        && h.off + 8 <= h.stride
        && h.off % QK8_0 + 8 <= QK8_0
        && k.len() >= h.n * bpr
        && v.len() >= h.n * bpr
        && w.len() >= 2 * h.n;
    let (Some(q), Some(out)) = (q.get(..16), out.get_mut(..16)) else {
        return false;
    };
    let (Ok(q), Ok(out)) = (q.try_into(), out.try_into()) else {
        return false;
    };
    if !ok {
        return false;
    }
    pair8_in_block(out, q, k, v, h, 1.0 / math::sqrt(8.0), w);
    true
}

/// [`head8_in_block`] for two query heads at once ([`attend_q8_0_pair`]):
/// per position, each code is read and widened once and meets both heads;
/// each head's sum still runs in [`head8_in_block`]'s order. Written out
/// element by element so that the 16 query values, both sums and the 16
/// outputs stay in the Cortex-M4's 32 single-precision registers.
#[inline(never)]
fn pair8_in_block(
    out: &mut [f32; 16],
    q: &[f32; 16],
    k: &[BlockQ8_0],
    v: &[BlockQ8_0],
    h: Head,
    scale: f32,
    w: &mut [f32],
) {
    let (bpr, start) = (h.stride / QK8_0, h.off % QK8_0);
    let (kb, vb) = (&k[h.off / QK8_0..], &v[h.off / QK8_0..]);
    let codes = |row: &[BlockQ8_0]| -> (f32, [i8; 8]) {
        let b = &row[0];
        let mut c = [0; 8];
        c.copy_from_slice(&b.qs[start..start + 8]);
        (super::f16_to_f32(b.d), c)
    };
    let (wa, wb) = w[..2 * h.n].split_at_mut(h.n);
    for ((sa, sb), row) in wa.iter_mut().zip(wb.iter_mut()).zip(kb.chunks(bpr)) {
        let (d, c) = codes(row);
        let (mut pa, mut pb) = (0.0, 0.0);
        let x = c[0] as f32;
        pa += q[0] * x;
        pb += q[8] * x;
        let x = c[1] as f32;
        pa += q[1] * x;
        pb += q[9] * x;
        let x = c[2] as f32;
        pa += q[2] * x;
        pb += q[10] * x;
        let x = c[3] as f32;
        pa += q[3] * x;
        pb += q[11] * x;
        let x = c[4] as f32;
        pa += q[4] * x;
        pb += q[12] * x;
        let x = c[5] as f32;
        pa += q[5] * x;
        pb += q[13] * x;
        let x = c[6] as f32;
        pa += q[6] * x;
        pb += q[14] * x;
        let x = c[7] as f32;
        pa += q[7] * x;
        pb += q[15] * x;
        *sa = (0.0 + pa * d) * scale;
        *sb = (0.0 + pb * d) * scale;
    }
    softmax(wa);
    softmax(wb);
    let mut o = [0f32; 16];
    for ((&pa, &pb), row) in wa.iter().zip(wb.iter()).zip(vb.chunks(bpr)) {
        let (d, c) = codes(row);
        let (ka, kb) = (pa * d, pb * d);
        let x = c[0] as f32;
        o[0] += ka * x;
        o[8] += kb * x;
        let x = c[1] as f32;
        o[1] += ka * x;
        o[9] += kb * x;
        let x = c[2] as f32;
        o[2] += ka * x;
        o[10] += kb * x;
        let x = c[3] as f32;
        o[3] += ka * x;
        o[11] += kb * x;
        let x = c[4] as f32;
        o[4] += ka * x;
        o[12] += kb * x;
        let x = c[5] as f32;
        o[5] += ka * x;
        o[13] += kb * x;
        let x = c[6] as f32;
        o[6] += ka * x;
        o[14] += kb * x;
        let x = c[7] as f32;
        o[7] += ka * x;
        o[15] += kb * x;
    }
    *out = o;
}

#[cfg(test)]
mod q8_tests {
    use super::*;
    use crate::sample::Rng;
    use edgegen_format::quant::{dequantize_q8_0, quantize_q8_0};

    /// Two heads of a group attended together give, bit for bit, what
    /// two single calls give; shapes the pair kernel does not take are
    /// refused, so the caller attends head by head.
    #[test]
    fn a_pair_of_heads_attends_as_two_single_heads_do() {
        let mut r = Rng::new(9);
        let blank = BlockQ8_0 {
            d: [0; 2],
            qs: [0; QK8_0],
        };
        for (n, stride, off) in [(1, 32, 0), (2, 32, 24), (53, 64, 40), (256, 32, 8)] {
            let q: std::vec::Vec<f32> = (0..16).map(|_| r.normal()).collect();
            let kf: std::vec::Vec<f32> = (0..n * stride).map(|_| 3.0 * r.normal()).collect();
            let vf: std::vec::Vec<f32> = (0..n * stride).map(|_| r.normal()).collect();
            let (mut kq, mut vq) = (
                std::vec![blank; n * stride / 32],
                std::vec![blank; n * stride / 32],
            );
            assert!(quantize_q8_0(&kf, &mut kq) && quantize_q8_0(&vf, &mut vq));
            let h = Head {
                n,
                stride,
                off,
                d: 8,
            };
            let mut w = std::vec![0f32; 2 * n];
            let mut pair = [0f32; 16];
            assert!(attend_q8_0_pair(&mut pair, &q, &kq, &vq, h, &mut w));
            // One head at a time, by the general loop and by the kernel
            // that keeps a head of 8 in registers (the `head8` feature).
            for head8 in [false, true] {
                let mut single = [0f32; 16];
                for (o, q) in single.chunks_exact_mut(8).zip(q.chunks_exact(8)) {
                    assert!(attend_q8_0_with(head8, o, q, &kq, &vq, h, &mut w));
                }
                assert_eq!(
                    pair.map(f32::to_bits),
                    single.map(f32::to_bits),
                    "n {n} off {off} head8 {head8}"
                );
            }
            // Too little room for both heads' weights.
            assert!(!attend_q8_0_pair(
                &mut pair,
                &q,
                &kq,
                &vq,
                h,
                &mut w[..2 * n - 1]
            ));
        }
        let (k, v) = ([blank; 4], [blank; 4]);
        let mut w = [0f32; 8];
        for h in [
            Head {
                n: 2,
                stride: 64,
                off: 28,
                d: 8,
            },
            Head {
                n: 2,
                stride: 64,
                off: 0,
                d: 16,
            },
        ] {
            assert!(!attend_q8_0_pair(
                &mut [0.0; 32],
                &[0.0; 32],
                &k,
                &v,
                h,
                &mut w
            ));
        }
    }

    #[test]
    fn a_q8_0_cache_attends_as_its_dequantized_values_do() {
        let mut r = Rng::new(8);
        for (n, stride, off, d) in [
            (1, 32, 0, 8),
            (9, 64, 24, 16),
            (40, 32, 8, 8),
            (5, 128, 64, 64),
        ] {
            let q: std::vec::Vec<f32> = (0..d).map(|_| r.normal()).collect();
            let kf: std::vec::Vec<f32> = (0..n * stride).map(|_| r.normal()).collect();
            let vf: std::vec::Vec<f32> = (0..n * stride).map(|_| r.normal()).collect();
            let blank = BlockQ8_0 {
                d: [0; 2],
                qs: [0; QK8_0],
            };
            let (mut kq, mut vq) = (
                std::vec![blank; n * stride / 32],
                std::vec![blank; n * stride / 32],
            );
            assert!(quantize_q8_0(&kf, &mut kq) && quantize_q8_0(&vf, &mut vq));
            let (mut kd, mut vd) = (std::vec![0f32; n * stride], std::vec![0f32; n * stride]);
            assert!(dequantize_q8_0(&kq, &mut kd) && dequantize_q8_0(&vq, &mut vd));
            let h = Head { n, stride, off, d };
            let (mut a, mut b) = (std::vec![0f32; d], std::vec![0f32; d]);
            let mut w = std::vec![0f32; n];
            assert!(attend_q8_0(&mut a, &q, &kq, &vq, h, &mut w));
            assert!(attend_scalar(&mut b, &q, &kd, &vd, h, &mut w));
            for (x, y) in a.iter().zip(&b) {
                assert!((x - y).abs() <= 1e-5 * y.abs().max(1.0), "{x} vs {y}");
            }
        }
        let h = Head {
            n: 2,
            stride: 20,
            off: 0,
            d: 4,
        };
        let blank = BlockQ8_0 {
            d: [0; 2],
            qs: [0; QK8_0],
        };
        assert!(!attend_q8_0(
            &mut [0.0; 4],
            &[0.0; 4],
            &[blank; 2],
            &[blank; 2],
            h,
            &mut [0.0; 2]
        ));
    }
}
