//! Reference kernels: plain Rust, no intrinsics. Every SIMD kernel is tested
//! against these, bit for bit, and targets without SIMD (Cortex-M4F) run
//! them. They define the canonical order of summation ([`fold16`] and the
//! lanes before it) that makes a sample the same bits on every target.
//!
//! Weights are raw little-endian bytes at any alignment, so that they can
//! be read in place from flash.

use super::f16_to_f32;
use edgegen_format::quant::{BlockQ8_0, QK8_0};

/// Lanes of the canonical dot product.
pub const LANES: usize = 16;

/// The canonical fold of the 16 lane sums into one:
/// `((l0 + l2) + (l1 + l3))` within each group of four lanes, then
/// `(g0 + g1) + (g2 + g3)`. The AVX-512 panels' transposing sum computes
/// exactly this tree.
#[inline(always)]
pub fn fold16(l: &[f32; LANES]) -> f32 {
    let g = |b: usize| (l[b] + l[b + 2]) + (l[b + 1] + l[b + 3]);
    (g(0) + g(4)) + (g(8) + g(12))
}

/// The canonical dot product of `x` with weights `w(i)` (each exact in
/// f32): lane `i % 16` adds the rounded product `w(i) * x[i]` (never a
/// fused multiply-add, which the Cortex-M4F cannot reach) in order of
/// `i`, from +0; then [`fold16`]. Every ISA's kernel sums in this order,
/// so every target gives the same bits.
#[inline(always)]
fn dot_by(x: &[f32], w: impl Fn(usize) -> f32) -> f32 {
    let mut l = [0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    let mut base = 0;
    for xc in &mut chunks {
        round16(&mut l, LANES, xc, |j| w(base + j));
        base += LANES;
    }
    let rem = chunks.remainder();
    round16(&mut l, rem.len(), rem, |j| w(base + j));
    fold16(&l)
}

/// Adds `w(j) * x[j]` to lane `j` for each `j` below both `n` (at most 16)
/// and `x.len()`, every lane index a constant, so that the lanes stay in
/// registers: on a Cortex-M4F a loop over them kept them in memory, a
/// load and a store per product. With `n` a literal 16 the checks fold
/// away.
#[inline(always)]
fn round16(l: &mut [f32; LANES], n: usize, x: &[f32], w: impl Fn(usize) -> f32) {
    macro_rules! lanes {
        ($($j:literal)*) => {
            $(
                if $j < n && $j < x.len() {
                    l[$j] += w($j) * x[$j];
                }
            )*
        };
    }
    lanes!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15);
}

/// `sum_i w[i] x[i]` with `w` as F32 bytes (`4 * x.len()` of them), in
/// the canonical order.
pub fn scalar_dot_f32(w: &[u8], x: &[f32]) -> f32 {
    let w = &w[..4 * x.len()];
    dot_by(x, |i| {
        f32::from_le_bytes([w[4 * i], w[4 * i + 1], w[4 * i + 2], w[4 * i + 3]])
    })
}

/// `sum_i w[i] x[i]` with `w` as F16 bytes (`2 * x.len()` of them), in
/// the canonical order.
pub fn scalar_dot_f16(w: &[u8], x: &[f32]) -> f32 {
    let w = &w[..2 * x.len()];
    dot_by(x, |i| f16_to_f32([w[2 * i], w[2 * i + 1]]))
}

/// `sum_i w[i] x[i]` with `w` as Q8_0 blocks covering at least `x.len()`
/// elements (a last block may be used only in part), in the canonical
/// order: weight `i` is its block's scale times its quant, which is exact
/// in f32 (11 by 8 significant bits).
pub fn scalar_dot_q8_0(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    let mut l = [0f32; LANES];
    for (b, xb) in w.iter().zip(x.chunks(QK8_0)) {
        let d = f16_to_f32(b.d);
        // A block is two rounds of the 16 lanes.
        for (h, xh) in xb.chunks(LANES).enumerate() {
            let q = &b.qs[LANES * h..];
            let wq = |j: usize| d * q.get(j).copied().unwrap_or(0) as f32;
            if xh.len() == LANES {
                round16(&mut l, LANES, xh, wq);
            } else {
                round16(&mut l, xh.len(), xh, wq);
            }
        }
    }
    fold16(&l)
}

/// The fast (default) mode's dot product over F32 bytes: four lanes, and
/// nothing promised about the order beyond this target's own. On a
/// Cortex-M4F it takes fewer instructions than the canonical order
/// (`scripts/footprint.sh` measures both).
pub fn fast_dot_f32(w: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 4];
    let (wc, xc) = (w.chunks_exact(16), x.chunks_exact(4));
    let tail = xc.remainder();
    let wtail = wc.remainder();
    for (wb, xb) in wc.zip(xc) {
        for j in 0..4 {
            let b = [wb[4 * j], wb[4 * j + 1], wb[4 * j + 2], wb[4 * j + 3]];
            acc[j] += f32::from_le_bytes(b) * xb[j];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (wb, &xv) in wtail.chunks_exact(4).zip(tail) {
        s += f32::from_le_bytes([wb[0], wb[1], wb[2], wb[3]]) * xv;
    }
    s
}

/// [`fast_dot_f32`] over F16 bytes.
pub fn fast_dot_f16(w: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 4];
    let (wc, xc) = (w.chunks_exact(8), x.chunks_exact(4));
    let tail = xc.remainder();
    let wtail = wc.remainder();
    for (wb, xb) in wc.zip(xc) {
        for j in 0..4 {
            acc[j] += f16_to_f32([wb[2 * j], wb[2 * j + 1]]) * xb[j];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (wb, &xv) in wtail.chunks_exact(2).zip(tail) {
        s += f16_to_f32([wb[0], wb[1]]) * xv;
    }
    s
}

/// [`fast_dot_f32`] over Q8_0 blocks: each block's quants times x summed
/// in turn, then scaled once, which saves the canonical order's multiply
/// per weight.
pub fn fast_dot_q8_0(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    #[cfg(all(edgegen_dsp, target_abi = "eabihf"))]
    return super::fpv4::dot_q8_0(w, x);
    #[cfg(not(all(edgegen_dsp, target_abi = "eabihf")))]
    portable_dot_q8_0(w, x)
}

/// [`fast_dot_q8_0`] in Rust, on every target: the Cortex-M4F runs the
/// same operations in the same order in assembly (`kernels::fpv4`), and
/// its firmware's kernel check holds the two to the same bits.
pub fn portable_dot_q8_0(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    let mut s = 0f32;
    for (b, xb) in w.iter().zip(x.chunks(QK8_0)) {
        let mut bs = 0f32;
        for (q, &xv) in b.qs.iter().zip(xb) {
            bs += *q as f32 * xv;
        }
        s += f16_to_f32(b.d) * bs;
    }
    s
}
