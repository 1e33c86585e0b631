//! Reference kernels: plain Rust, no intrinsics. Every SIMD kernel is tested
//! against these, and targets without SIMD (Cortex-M4F) run them.
//!
//! Weights are raw little-endian bytes at any alignment, so that they can
//! be read in place from flash.

use edgegen_format::quant::f16_le_to_f32;
use edgegen_format::quant::{BlockQ8_0, QK8_0};

/// `sum_i w[i] x[i]` with `w` as F32 bytes (`4 * x.len()` of them).
pub fn scalar_dot_f32(w: &[u8], x: &[f32]) -> f32 {
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

/// `sum_i w[i] x[i]` with `w` as F16 bytes (`2 * x.len()` of them).
pub fn scalar_dot_f16(w: &[u8], x: &[f32]) -> f32 {
    let mut acc = [0f32; 4];
    let (wc, xc) = (w.chunks_exact(8), x.chunks_exact(4));
    let tail = xc.remainder();
    let wtail = wc.remainder();
    for (wb, xb) in wc.zip(xc) {
        for j in 0..4 {
            acc[j] += f16_le_to_f32([wb[2 * j], wb[2 * j + 1]]) * xb[j];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (wb, &xv) in wtail.chunks_exact(2).zip(tail) {
        s += f16_le_to_f32([wb[0], wb[1]]) * xv;
    }
    s
}

/// `sum_i w[i] x[i]` with `w` as Q8_0 blocks covering at least `x.len()`
/// elements; a last block may be used only in part.
pub fn scalar_dot_q8_0(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    let mut s = 0f32;
    for (b, xb) in w.iter().zip(x.chunks(QK8_0)) {
        let mut bs = 0f32;
        for (q, &xv) in b.qs.iter().zip(xb) {
            bs += *q as f32 * xv;
        }
        s += b.scale() * bs;
    }
    s
}
