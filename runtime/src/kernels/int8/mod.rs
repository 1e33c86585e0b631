//! Q8_0 weights times int8 activations: the `q8_0a8` precision
//! ([`edgegen_format::arch::ActQuant::Int8`]).
//!
//! With f32 activations every weight costs a sign extension, an int to
//! float conversion and a multiply-add. Here a layer's input is quantized
//! once per block of 32 ([`BlockA8`]), and each weight block's 32 products
//! are summed in integers, exactly; only then is the sum scaled, once per
//! block. So a weight costs a fraction of an instruction on x86 (`vpmaddubsw`
//! or VNNI's `vpdpbusd`), aarch64 and the Cortex-M4's DSP extension
//! (`SMLAD`, two multiply-adds per instruction).
//!
//! # One result on every path
//!
//! Integer sums are exact in any order, and every kernel then adds the
//! scaled block sums of a row in block order, `acc += (d_w * d_x) * sum`,
//! with a rounded product, a rounded product and a rounded sum (never a
//! fused multiply-add). So every ISA gives the bits of [`dot_a8`], in the
//! fast mode as in the deterministic one: the tests check it on odd
//! shapes. The bias is added last, `out = bias + acc`, as in
//! [`matvec`](super::matvec).
//!
//! The input is quantized in chunks of [`CHUNK`] blocks into a stack
//! buffer (576 bytes), so the layer needs no scratch; a chunk continues the
//! rows' sums where the previous one stopped, which keeps the block order.

#[cfg(edgegen_dsp)]
pub mod dsp;
#[cfg(target_arch = "aarch64")]
pub mod neon;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use super::{Isa, Matrix};
use core::mem::MaybeUninit;
use edgegen_format::quant::{BlockA8, BlockQ8_0, QK8_0};

/// Activation blocks quantized at a time (512 inputs).
pub const CHUNK: usize = 16;

/// An activation block as the kernels read it: the DSP kernel's widened
/// codes and scale ([`dsp::Wide`]), a [`BlockA8`] elsewhere.
#[cfg(edgegen_dsp)]
type Prepared = dsp::Wide;
#[cfg(not(edgegen_dsp))]
type Prepared = BlockA8;

/// The sum of a block's 32 products, exact in i32.
#[inline(always)]
pub fn block_sum(w: &[i8; QK8_0], x: &[i8; QK8_0]) -> i32 {
    let mut s = 0i32;
    for (a, b) in w.iter().zip(x) {
        s += *a as i32 * *b as i32;
    }
    s
}

/// The reference: `acc` plus each block's exact integer sum scaled by its
/// two scales, block by block. Blocks past the shorter slice are ignored.
///
/// ```
/// use edgegen_format::quant::{BlockA8, BlockQ8_0};
/// use edgegen_runtime::kernels::int8::dot_a8;
/// let w = BlockQ8_0::quantize(&[0.5; 32]); // d = 0.5 / 127, codes 127
/// let x = BlockA8::quantize(&[2.0; 32]); // d = 2 / 127, codes 127
/// let want = (w.scale() * x.d) * (32 * 127 * 127) as f32;
/// assert_eq!(dot_a8(&[w], &[x], 0.0), want);
/// assert!((want - 32.0).abs() < 1e-2); // the f16 scale rounds 0.5 / 127
/// ```
#[inline]
pub fn dot_a8(w: &[BlockQ8_0], x: &[BlockA8], mut acc: f32) -> f32 {
    for (b, a) in w.iter().zip(x) {
        acc += (b.scale() * a.d) * block_sum(&b.qs, &a.qs) as f32;
    }
    acc
}

/// Rows `0..rows` of `w` (row `r`'s blocks from `w[r * nb]`) dotted with
/// the activation blocks `x`, added into `acc[..rows]`, by the reference.
#[inline]
pub fn scalar_rows_a8(w: &[BlockQ8_0], nb: usize, x: &[BlockA8], acc: &mut [f32]) {
    for (r, a) in acc.iter_mut().enumerate() {
        *a = dot_a8(&w[r * nb..r * nb + x.len()], x, *a);
    }
}

/// How many rows `isa`'s panel kernel computes at once.
#[cfg(not(edgegen_dsp))]
#[inline(always)]
fn panel_rows(isa: Isa) -> usize {
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if x86::vnni() => x86::PANEL_VNNI,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx2 if Isa::Avx2.available() => x86::PANEL_AVX2,
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => neon::PANEL,
        #[allow(unreachable_patterns)]
        _ => 1,
    }
}

/// `acc[..h] += rows r..r + h of w . x` on `isa` (available), `h` rows
/// from `w`, whose row `k` starts at `w[k * nb]` and holds at least
/// `x.len()` blocks.
#[cfg(not(edgegen_dsp))]
#[inline(always)]
fn panel(isa: Isa, w: &[BlockQ8_0], nb: usize, x: &[Prepared], acc: &mut [f32]) {
    let h = acc.len();
    debug_assert!(h >= 1 && w.len() >= (h - 1) * nb + x.len());
    // SAFETY (every arm): the ISA is available (the caller's contract; VNNI
    // is checked), 1 <= h <= the kernel's rows, and w covers h rows of
    // x.len() blocks at stride nb.
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if x86::vnni() => unsafe { x86::vnni_rows16(w, nb, x, acc) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx2 if Isa::Avx2.available() => unsafe {
            x86::avx2_rows8(w, nb, x, acc)
        },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if neon::dotprod() => unsafe { neon::sdot_rows4(w, nb, x, acc) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { neon::neon_rows4(w, nb, x, acc) },
        #[allow(unreachable_patterns)]
        _ => scalar_rows_a8(w, nb, x, acc),
    }
}

/// [`BlockA8::quantize`] on `isa` (available): the same bits.
#[inline(always)]
#[cfg(not(edgegen_dsp))]
fn quantize_on(isa: Isa, x: &[f32]) -> BlockA8 {
    // SAFETY (every arm): the ISA is available; AVX-512BW is checked.
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if super::avx512bw() => unsafe { x86::avx512_quantize(x) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx2 if Isa::Avx2.available() => unsafe { x86::avx2_quantize(x) },
        _ => BlockA8::quantize(x),
    }
}

/// `quant` of block `b` of the input column whose element `k` is
/// `x[k * xs]` (`cols` of them): read in place when the column is
/// contiguous, gathered into a block on the stack otherwise.
#[inline(always)]
fn column<T>(x: &[f32], xs: usize, cols: usize, b: usize, mut quant: impl FnMut(&[f32]) -> T) -> T {
    let s = QK8_0 * b;
    let n = QK8_0.min(cols - s);
    if xs == 1 {
        return quant(&x[s..s + n]);
    }
    let mut col = [0f32; QK8_0];
    for (k, c) in col[..n].iter_mut().enumerate() {
        *c = x[(s + k) * xs];
    }
    quant(&col[..n])
}

/// Block `b` of that column quantized on `isa` (available).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn quantize_block(isa: Isa, x: &[f32], xs: usize, cols: usize, b: usize) -> BlockA8 {
    column(x, xs, cols, b, |v| quantize_on(isa, v))
}

/// Block `b` of that column, as `isa`'s panels read it, into `dst`.
#[inline(always)]
fn prepare(isa: Isa, x: &[f32], xs: usize, cols: usize, b: usize, dst: &mut MaybeUninit<Prepared>) {
    #[cfg(edgegen_dsp)]
    {
        let _ = isa;
        column(x, xs, cols, b, |v| dsp::quantize(v, dst))
    }
    #[cfg(not(edgegen_dsp))]
    dst.write(column(x, xs, cols, b, |v| quantize_on(isa, v)));
}

/// [`super::matvec_on`]'s products for a Q8_0 matrix with int8
/// activations: `out[r] = row r . quantize(x)`, without a bias (the
/// caller adds one where it has one: a Cortex-M4 spends some 5
/// instructions a row on a pass adding 0.0). Returns the rows written.
/// Never inlined, so that the f32-activation path through `matvec_on`
/// stays as small as it was.
#[inline(never)]
pub(super) fn products_a8(
    isa: Isa,
    out: &mut [f32],
    m: &Matrix<'_>,
    w: &[BlockQ8_0],
    x: &[f32],
) -> usize {
    let rows = m.rows.min(out.len());
    let cols = m.cols.min(x.len());
    strided(isa, &mut out[..rows], 1, m, w, x, 1, cols);
    rows
}

/// [`super::gemm_cols_on`] for a Q8_0 matrix with int8 activations: each
/// of the `p` pixels' input column (element `k` at `x[k * xs + j]`) is
/// quantized and multiplied as by [`products_a8`], into `out[r * p + j]`.
#[inline(never)]
pub(super) fn gemm_cols_a8(
    isa: Isa,
    out: &mut [f32],
    m: &Matrix<'_>,
    w: &[BlockQ8_0],
    x: &[f32],
    xs: usize,
    p: usize,
) {
    #[cfg(target_arch = "x86_64")]
    if isa == Isa::Avx512 && x86::vnni() && super::avx512bw() {
        return pixels(Isa::Avx512, out, m, w, x, xs, p);
    }
    #[cfg(target_arch = "x86_64")]
    if matches!(isa, Isa::Avx512 | Isa::Avx2) && Isa::Avx2.available() {
        return pixels(Isa::Avx2, out, m, w, x, xs, p);
    }
    for j in 0..p {
        strided(isa, &mut out[j..], p, m, w, &x[j..], xs, m.cols);
    }
}

/// [`gemm_cols_a8`] with the pixels in the lanes ([`x86::vnni_pixels`]
/// on AVX-512 VNNI, [`x86::avx2_pixels`] on AVX2, which `isa` names and
/// the caller has checked): chunks of 64 pixels by 8 blocks of channels
/// are quantized into a 20 KiB stack buffer (x86 hosts only), then every
/// row's weights meet them with no sum across lanes.
#[cfg(target_arch = "x86_64")]
fn pixels(
    isa: Isa,
    out: &mut [f32],
    m: &Matrix<'_>,
    w: &[BlockQ8_0],
    x: &[f32],
    xs: usize,
    p: usize,
) {
    let (rows, cols, nb) = (m.rows, m.cols, m.stride / QK8_0);
    let nbx = cols.div_ceil(QK8_0);
    let mut lay = x86::PixelBlocks::ZERO;
    for j0 in (0..p).step_by(x86::PIX) {
        let pn = x86::PIX.min(p - j0);
        for c0 in (0..nbx).step_by(x86::PIX_BLOCKS) {
            let kb = x86::PIX_BLOCKS.min(nbx - c0);
            for b in 0..kb {
                for j in 0..x86::PIX {
                    let blk = if j < pn {
                        quantize_block(isa, &x[j0 + j..], xs, cols, c0 + b)
                    } else {
                        BlockA8::ZERO
                    };
                    lay.set(j, b, &blk);
                }
            }
            // SAFETY: AVX-512 with VNNI and BW, or AVX2 (checked by the
            // caller); pn <= PIX, kb <= PIX_BLOCKS; w holds rows of nb >=
            // c0 + kb blocks, and out rows of p >= j0 + pn values (the
            // caller's size check).
            let (wc, oj, first) = (&w[c0..], &mut out[j0..], c0 == 0);
            unsafe {
                if isa == Isa::Avx512 {
                    x86::vnni_pixels(wc, nb, rows, &lay, (pn, kb), oj, p, first)
                } else {
                    x86::avx2_pixels(wc, nb, rows, &lay, (pn, kb), oj, p, first)
                }
            };
        }
    }
}

/// `out[r * os] = row r . quantize(x[k * xs] for k < cols)` for every row
/// `r < m.rows` that `out` holds; the caller has checked that `x` holds
/// `cols` elements at that stride.
#[allow(clippy::too_many_arguments)]
fn strided(
    isa: Isa,
    out: &mut [f32],
    os: usize,
    m: &Matrix<'_>,
    w: &[BlockQ8_0],
    x: &[f32],
    xs: usize,
    cols: usize,
) {
    let rows = m.rows.min(out.len().div_ceil(os));
    let nb = m.stride / QK8_0;
    let nbx = cols.div_ceil(QK8_0);
    #[cfg(not(edgegen_dsp))]
    let step = panel_rows(isa);
    // Not zeroed: on a Cortex-M4 that would cost as much as a small
    // layer's quantization, on every call.
    let mut buf = [const { MaybeUninit::<Prepared>::uninit() }; CHUNK];
    for c0 in (0..nbx).step_by(CHUNK) {
        let cb = CHUNK.min(nbx - c0);
        for (j, blk) in buf[..cb].iter_mut().enumerate() {
            prepare(isa, x, xs, cols, c0 + j, blk);
        }
        // SAFETY: the first `cb` elements were written just above.
        let a: &[Prepared] = unsafe { core::slice::from_raw_parts(buf.as_ptr().cast(), cb) };
        #[cfg(edgegen_dsp)]
        dsp::rows(&w[c0..], nb, rows, a, out, os, c0 == 0);
        #[cfg(not(edgegen_dsp))]
        for r in (0..rows).step_by(step) {
            let h = step.min(rows - r);
            let wr = &w[r * nb + c0..];
            if os == 1 {
                let acc = &mut out[r..r + h];
                if c0 == 0 {
                    acc.fill(0.0);
                }
                panel(isa, wr, nb, a, acc);
            } else {
                let mut acc = [0f32; 16];
                if c0 > 0 {
                    for (k, v) in acc[..h].iter_mut().enumerate() {
                        *v = out[(r + k) * os];
                    }
                }
                panel(isa, wr, nb, a, &mut acc[..h]);
                for (k, v) in acc[..h].iter().enumerate() {
                    out[(r + k) * os] = *v;
                }
            }
        }
    }
    if nbx == 0 {
        for r in 0..rows {
            out[r * os] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::{Weights, matvec_on, tests::rand};
    use super::*;
    use std::vec::Vec;

    /// Rows of Q8_0 blocks from random weights, each row padded (with junk
    /// in the padding's weights, which the zero activations cancel).
    fn q8_rows(seed: &mut u32, rows: usize, cols: usize) -> (Vec<BlockQ8_0>, usize) {
        let stride = cols.div_ceil(32) * 32;
        let w = rand(seed, rows * stride);
        let blocks = w
            .chunks(32)
            .map(|c| BlockQ8_0::quantize(c.try_into().unwrap()))
            .collect();
        (blocks, stride)
    }

    /// Every ISA's matvec gives the reference's bits over shapes with
    /// partial panels, partial blocks and several chunks; a malformed code
    /// of -128 included.
    #[test]
    fn every_isa_gives_the_reference_bits() {
        let mut s = 31;
        for (rows, cols) in [
            (1, 5),
            (3, 32),
            (7, 33),
            (8, 64),
            (9, 100),
            (16, 400),
            (17, 31),
            (23, 513),
            (40, 1100),
            (5, 2048),
        ] {
            let (mut q, stride) = q8_rows(&mut s, rows, cols);
            q[0].qs[1] = -128;
            let mut x = rand(&mut s, cols);
            x[0] = 0.0;
            if cols >= 64 {
                // A block of zeros.
                x[32..64].fill(0.0);
            }
            let m = Matrix::new(Weights::Q8_0(&q), rows, cols, stride)
                .unwrap()
                .with_int8_activations();
            let nb = stride / 32;
            let mut xa = std::vec![BlockA8::ZERO; cols.div_ceil(32)];
            edgegen_format::quant::quantize_a8(&x, &mut xa);
            let want: Vec<f32> = (0..rows)
                .map(|r| r as f32 + dot_a8(&q[r * nb..], &xa, 0.0))
                .collect();
            // No int8 kernel reads the mode (the same sums in both), and
            // the mode is process-wide: other tests hold it on.
            for isa in Isa::ALL.iter().copied().filter(|i| i.available()) {
                let mut out = std::vec![f32::NAN; rows];
                matvec_on(isa, &mut out, &m, &x, |r| r as f32);
                for (r, (o, w)) in out.iter().zip(&want).enumerate() {
                    assert_eq!(o.to_bits(), w.to_bits(), "{isa:?} {rows}x{cols} row {r}");
                }
            }
        }
    }

    /// Every ISA's quantizer gives the reference's blocks, ties, NaNs,
    /// infinities and short blocks included.
    #[test]
    fn every_isa_quantizes_to_the_reference_bits() {
        let mut s = 5;
        let mut cases: Vec<Vec<f32>> = (0..=32).map(|n| rand(&mut s, n)).collect();
        cases.push((0..32).map(|i| i as f32 * 0.5 - 8.0).collect());
        cases.push(std::vec![0.0; 32]);
        cases.push(std::vec![1e-42, -3e-43, 0.0]);
        cases.push(std::vec![f32::NAN, 1.0, -2.0, f32::INFINITY]);
        cases.push(std::vec![f32::NAN, 0.5]);
        for x in &cases {
            let want = BlockA8::quantize(x);
            for isa in Isa::ALL.iter().copied().filter(|i| i.available()) {
                let got = quantize_on(isa, x);
                assert_eq!(got.d.to_bits(), want.d.to_bits(), "{isa:?} {x:?}");
                assert_eq!(got.qs, want.qs, "{isa:?} {x:?}");
            }
        }
    }

    /// The matrix product over pixels is each pixel's matvec, bit for bit,
    /// through the strided path (columns of several chunks included).
    #[test]
    fn gemm_cols_is_the_matvec_of_each_pixel() {
        let mut s = 13;
        for (rows, cols, p, xs) in [
            (5, 7, 3, 3),
            (33, 64, 4, 6),
            (17, 600, 2, 2),
            (20, 300, 70, 70),
            (3, 40, 130, 131),
        ] {
            let (q, stride) = q8_rows(&mut s, rows, cols);
            let x = rand(&mut s, cols * xs);
            let m = Matrix::new(Weights::Q8_0(&q), rows, cols, stride)
                .unwrap()
                .with_int8_activations();
            for isa in Isa::ALL.iter().copied().filter(|i| i.available()) {
                let mut out = std::vec![f32::NAN; rows * p];
                super::super::gemm_cols_on(isa, &mut out, &m, &x, xs, p);
                for j in 0..p {
                    let col: Vec<f32> = (0..cols).map(|k| x[k * xs + j]).collect();
                    let mut want = std::vec![0f32; rows];
                    matvec_on(Isa::Scalar, &mut want, &m, &col, |_| 0.0);
                    for r in 0..rows {
                        assert_eq!(
                            out[r * p + j].to_bits(),
                            want[r].to_bits(),
                            "{isa:?} {r} {j}"
                        );
                    }
                }
            }
        }
    }

    /// The integer path is within its quantization error of the exact
    /// product, and the f32-activation path stays what it was.
    #[test]
    fn int8_activations_cost_only_their_rounding() {
        let mut s = 7;
        let (rows, cols) = (12, 300);
        let (q, stride) = q8_rows(&mut s, rows, cols);
        let x = rand(&mut s, cols);
        let m = Matrix::new(Weights::Q8_0(&q), rows, cols, stride).unwrap();
        let a8 = m.with_int8_activations();
        assert!(a8.int8_activations() && !m.int8_activations());
        let (mut f, mut i) = (std::vec![0f32; rows], std::vec![0f32; rows]);
        matvec_on(Isa::Scalar, &mut f, &m, &x, |_| 0.0);
        matvec_on(Isa::Scalar, &mut i, &a8, &x, |_| 0.0);
        for r in 0..rows {
            // Each activation moves by at most half a step of its block
            // (max|x| / 254 <= 1 / 254), each weight is at most 1.
            let bound = cols as f32 / 254.0;
            assert!(
                (f[r] - i[r]).abs() <= bound,
                "row {r}: {} vs {}",
                f[r],
                i[r]
            );
            assert_ne!(f[r], i[r]);
        }
        // F32 weights ignore the request.
        let b = [0u8; 8];
        let f32m = Matrix::new(Weights::F32(&b), 1, 2, 2).unwrap();
        assert!(!f32m.with_int8_activations().int8_activations());
    }
}
