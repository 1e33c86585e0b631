//! Matrix times many vectors, for layers that reuse one weight matrix over
//! many inputs (the generator's transposed convolutions apply the same
//! weights at every input pixel).
//!
//! [`matvec`](super::matvec) reads each weight once per input, which bounds
//! it by memory. Here a panel of [`ROWS`] weight rows and [`DEPTH`] columns
//! is widened to f32 once into a stack buffer, and a register-blocked
//! micro-kernel multiplies it with the inputs laid out input-major (`x[k *
//! xs + j]`: a plane's channels, one row per channel). Each weight is then
//! broadcast once per block of pixels (64 on AVX-512, 16 on AVX2 and NEON)
//! and the accumulators stay in registers across the whole depth: the
//! products run at the FMA units' rate rather than the memory's.
//!
//! Every ISA adds the products over k one after another; in the
//! deterministic mode each product and sum is rounded (separate multiplies
//! and adds, never fused), so all give the same bits: the canonical order
//! a generator's image needs to hash the same on every target. The fast
//! mode fuses them where the CPU can. `cargo bench -p edgegen --bench runtime` and `edgegen bench`
//! time it; `tests` below check every ISA bit for bit.

use super::f16_to_f32;
use super::{Isa, Matrix, Weights};
use edgegen_format::quant::{BlockQ8_0, QK8_0};
#[cfg(test)]
use half::f16;

/// Weight rows per panel: the micro-kernels' accumulators are `ROWS`
/// rows by one block of pixels (6 x 4 zmm registers on AVX-512).
pub const ROWS: usize = 6;
/// Weight columns per panel: 6 x 128 f32 is 3 KiB of stack.
pub const DEPTH: usize = 128;

/// `out (m.rows, p) = W x` with `x` input-major: element `(k, j)` at
/// `x[k * xs + j]` for `k < m.cols`, `j < p <= xs`. Does nothing when the
/// slices are too short for those sizes (callers size them; no panic).
pub fn gemm_cols(out: &mut [f32], m: &Matrix<'_>, x: &[f32], xs: usize, p: usize) {
    gemm_cols_on(super::isa(), out, m, x, xs, p)
}

/// [`gemm_cols`] on a chosen instruction set, or on the scalar reference
/// where this CPU lacks it.
pub fn gemm_cols_on(isa: Isa, out: &mut [f32], m: &Matrix<'_>, x: &[f32], xs: usize, p: usize) {
    let isa = isa.or_scalar();
    let (rows, cols) = (m.rows, m.cols);
    let fits = p <= xs
        && rows.checked_mul(p).is_some_and(|n| n <= out.len())
        && (cols == 0
            || (cols - 1)
                .checked_mul(xs)
                .and_then(|n| n.checked_add(p))
                .is_some_and(|n| n <= x.len()));
    if !fits || p == 0 {
        return;
    }
    if cols == 0 {
        out[..rows * p].fill(0.0);
        return;
    }
    #[cfg(feature = "int8")]
    if let (true, Weights::Q8_0(w)) = (m.int8_activations(), m.w) {
        return super::int8::gemm_cols_a8(isa, out, m, w, x, xs, p);
    }
    let mut panel = [0f32; ROWS * DEPTH];
    for r0 in (0..rows).step_by(ROWS) {
        let h = ROWS.min(rows - r0);
        for k0 in (0..cols).step_by(DEPTH) {
            let kc = DEPTH.min(cols - k0);
            // F32 weights are read in place where a whole panel of rows
            // exists (the kernels compute ROWS rows, whatever h is);
            // otherwise they are widened (or copied) into `panel`.
            let (w, ws) = match m.w {
                Weights::F32(b) if h == ROWS && cfg!(target_endian = "little") => {
                    let start = 4 * (r0 * m.stride + k0);
                    let end = 4 * ((r0 + ROWS - 1) * m.stride + k0 + kc);
                    (&b[start..end], m.stride)
                }
                _ => {
                    m.widen_panel(isa, r0, h, k0, kc, &mut panel);
                    (bytes_of(&panel), DEPTH)
                }
            };
            let t = Tile {
                w,
                ws,
                kc,
                x: &x[k0 * xs..(k0 + kc - 1) * xs + p],
                xs,
                p,
                h,
                first: k0 == 0,
            };
            micro(isa, &t, &mut out[r0 * p..(r0 + h) * p]);
        }
    }
}

/// One panel's product, what every micro-kernel reads: `o[r * p + j]
/// (+)= sum_k w(r, k) * x[k * xs + j]` for `r < h`, `j < p`, `k < kc`,
/// where `first` starts from zero and otherwise adds to what `o` holds.
/// The kernels compute all `ROWS` rows of `w` (f32 as native-endian
/// bytes at any alignment, element `(r, k)` at bytes `4 * (r * ws + k)`)
/// and store the first `h`.
#[derive(Clone, Copy)]
pub struct Tile<'a> {
    /// The weights, through row `ROWS - 1`'s `kc`-th element.
    pub w: &'a [u8],
    /// Elements from one weight row to the next.
    pub ws: usize,
    /// Depth.
    pub kc: usize,
    /// The inputs, through row `kc - 1`'s `p`-th element.
    pub x: &'a [f32],
    /// Elements from one input row to the next.
    pub xs: usize,
    /// Pixels, and the output's row length.
    pub p: usize,
    /// Output rows to store.
    pub h: usize,
    /// Whether to start from zero.
    pub first: bool,
}

impl Tile<'_> {
    /// Weight `(r, k)`.
    #[inline(always)]
    pub fn get(&self, r: usize, k: usize) -> f32 {
        let i = 4 * (r * self.ws + k);
        f32::from_ne_bytes([self.w[i], self.w[i + 1], self.w[i + 2], self.w[i + 3]])
    }
}

/// The bytes of a float buffer.
fn bytes_of(panel: &[f32; ROWS * DEPTH]) -> &[u8] {
    // SAFETY: f32 has no padding or invalid bit patterns as bytes; the
    // length is the buffer's size in bytes, and the borrow ties the
    // lifetimes. The bytes are in native order, as `Tile` reads them.
    unsafe { core::slice::from_raw_parts(panel.as_ptr().cast(), core::mem::size_of_val(panel)) }
}

/// The tile's product into `o` on `isa`.
#[inline]
fn micro(isa: Isa, t: &Tile<'_>, o: &mut [f32]) {
    let Tile {
        w,
        ws,
        kc,
        x,
        xs,
        p,
        h,
        ..
    } = *t;
    debug_assert!(h <= ROWS && kc <= DEPTH && o.len() >= h * p && x.len() >= (kc - 1) * xs + p);
    debug_assert!(w.len() >= 4 * ((ROWS - 1) * ws + kc));
    // SAFETY (every arm): `isa` is available (`or_scalar` above), and the
    // kernels read x[k * xs + j] and write o[r * p + j] for k < kc, j < p,
    // r < h only, and w(r, k) for r < ROWS, k < kc, which the slices hold
    // (checked by the caller).
    // The fast mode fuses multiplies and adds; the scalar reference never
    // does, in either mode.
    #[cfg_attr(
        not(any(target_arch = "x86_64", target_arch = "aarch64")),
        allow(unused_variables)
    )]
    let det = super::deterministic();
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if det => unsafe { super::x86::avx512_gemm6::<false>(t, o) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { super::x86::avx512_gemm6::<true>(t, o) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if det => unsafe { super::x86::avx2_gemm6::<false>(t, o) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { super::x86::avx2_gemm6::<true>(t, o) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if det => unsafe { super::neon::neon_gemm6::<false>(t, o) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { super::neon::neon_gemm6::<true>(t, o) },
        Isa::Scalar => scalar_gemm(t, o, 0),
    }
}

/// The reference micro-kernel, also the pixel tail of the NEON one: pixels
/// `from..p`.
pub fn scalar_gemm(t: &Tile<'_>, o: &mut [f32], from: usize) {
    let Tile {
        kc,
        x,
        xs,
        p,
        h,
        first,
        ..
    } = *t;
    for (r, orow) in o.chunks_exact_mut(p).take(h).enumerate() {
        let orow = &mut orow[from..];
        if first {
            orow.fill(0.0);
        }
        for k in 0..kc {
            let w = t.get(r, k);
            let xr = &x[k * xs + from..k * xs + p];
            orow.iter_mut().zip(xr).for_each(|(o, &x)| *o += w * x);
        }
    }
}

impl Matrix<'_> {
    /// Rows `r0..r0 + h`, columns `k0..k0 + kc` widened to f32 into
    /// `panel[i * DEPTH + k]`; rows past `h` are left as they are (the
    /// micro-kernels compute them but never store them).
    fn widen_panel(
        &self,
        isa: Isa,
        r0: usize,
        h: usize,
        k0: usize,
        kc: usize,
        panel: &mut [f32; ROWS * DEPTH],
    ) {
        let s = self.stride;
        for i in 0..h {
            let dst = &mut panel[i * DEPTH..i * DEPTH + kc];
            let start = (r0 + i) * s + k0;
            match self.w {
                Weights::F32(b) => {
                    for (d, c) in dst
                        .iter_mut()
                        .zip(b[4 * start..4 * (start + kc)].chunks_exact(4))
                    {
                        *d = f32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                    }
                }
                Weights::F16(b) => widen_f16(isa, &b[2 * start..2 * (start + kc)], dst),
                // k0 is a multiple of DEPTH, itself of QK8_0: whole blocks
                // from the row's start, the last one possibly in part.
                Weights::Q8_0(b) => widen_q8_0(isa, &b[start / QK8_0..], dst),
            }
        }
    }
}

const _: () = assert!(DEPTH.is_multiple_of(QK8_0));

/// Q8_0 blocks to f32, `dst.len()` values from the first block on.
#[inline]
fn widen_q8_0(isa: Isa, src: &[BlockQ8_0], dst: &mut [f32]) {
    let done = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx2 if Isa::Avx2.available() => {
            let whole = (dst.len() / QK8_0).min(src.len());
            // SAFETY: AVX2 checked, and F16C comes with either ISA (see
            // `Isa`); the kernel reads `whole` blocks, writes 32 floats each.
            unsafe { super::x86::avx2_widen_q8_0(&src[..whole], &mut dst[..whole * QK8_0]) };
            whole
        }
        _ => 0,
    };
    for (blk, d) in src[done..]
        .iter()
        .zip(dst[done * QK8_0..].chunks_mut(QK8_0))
    {
        let scale = f16_to_f32(blk.d);
        d.iter_mut()
            .zip(&blk.qs)
            .for_each(|(d, &q)| *d = scale * q as f32);
    }
}

/// F16 bytes to f32 (`src.len() == 2 * dst.len()`), with F16C or NEON
/// where there is one: `half`'s software path costs 2 ns an element.
#[inline]
fn widen_f16(isa: Isa, src: &[u8], dst: &mut [f32]) {
    let n = match isa {
        // SAFETY: AVX2 and AVX-512 both imply F16C here (see `Isa`), and
        // the kernel reads 2 n bytes and writes n floats, n <= dst.len().
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 | Isa::Avx2 => unsafe { super::x86::f16c_widen(src, dst) },
        // SAFETY: NEON is baseline; same bounds.
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { super::neon::neon_widen_f16(src, dst) },
        Isa::Scalar => 0,
    };
    for (d, c) in dst[n..].iter_mut().zip(src[2 * n..].chunks_exact(2)) {
        *d = f16_to_f32([c[0], c[1]]);
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::super::tests::rand;
    use super::*;
    use std::vec::Vec;

    /// Element `(r, k)` of a matrix, widened one at a time.
    fn elem(m: &Matrix<'_>, r: usize, k: usize) -> f32 {
        let i = r * m.stride + k;
        match m.w {
            Weights::F32(b) => f32::from_le_bytes(b[4 * i..4 * i + 4].try_into().unwrap()),
            Weights::F16(b) => f16::from_le_bytes([b[2 * i], b[2 * i + 1]]).to_f32(),
            Weights::Q8_0(b) => {
                let blk = &b[i / QK8_0];
                blk.scale() * blk.qs[i % QK8_0] as f32
            }
        }
    }

    /// Every ISA against a plain f64 product of the widened weights, for
    /// each storage type, over row counts that leave partial panels,
    /// depths past one panel, and pixel counts with every kind of tail.
    #[test]
    fn every_isa_gives_the_canonical_products_bits() {
        // The mode is process-wide; no test here turns it off again.
        super::super::set_deterministic(true);
        let mut seed = 7u32;
        for &(rows, cols) in &[(1, 1), (5, 3), (7, 33), (16, 64), (13, 129), (64, 300)] {
            let wf = rand(&mut seed, rows * cols);
            let q8_stride = cols.div_ceil(QK8_0) * QK8_0;
            let f32b: Vec<u8> = wf.iter().flat_map(|v| v.to_le_bytes()).collect();
            let f16b: Vec<u8> = wf
                .iter()
                .flat_map(|v| f16::from_f32(*v).to_le_bytes())
                .collect();
            let mut blocks = Vec::new();
            for r in 0..rows {
                let mut row = wf[r * cols..(r + 1) * cols].to_vec();
                row.resize(q8_stride, 0.0);
                for c in row.chunks_exact(QK8_0) {
                    blocks.push(BlockQ8_0::quantize(c.try_into().unwrap()));
                }
            }
            let mats = [
                Matrix::new(Weights::F32(&f32b), rows, cols, cols).unwrap(),
                Matrix::new(Weights::F16(&f16b), rows, cols, cols).unwrap(),
                Matrix::new(Weights::Q8_0(&blocks), rows, cols, q8_stride).unwrap(),
            ];
            for &p in &[1usize, 3, 4, 15, 16, 17, 49, 64, 65, 100, 196] {
                let xs = p + 3;
                let x = rand(&mut seed, cols * xs);
                for m in &mats {
                    // The canonical order: products over k added one after
                    // another from +0, each rounded, never fused.
                    let mut want = std::vec![0f32; rows * p];
                    for r in 0..rows {
                        for j in 0..p {
                            want[r * p + j] =
                                (0..cols).fold(0f32, |a, k| a + elem(m, r, k) * x[k * xs + j]);
                        }
                    }
                    for &isa in Isa::ALL.iter().filter(|i| i.available()) {
                        let mut out = std::vec![f32::NAN; rows * p];
                        gemm_cols_on(isa, &mut out, m, &x, xs, p);
                        for (i, (&o, &w)) in out.iter().zip(&want).enumerate() {
                            assert_eq!(
                                o.to_bits(),
                                w.to_bits(),
                                "{isa:?} {:?} rows {rows} cols {cols} p {p} at {i}: {o} vs {w}",
                                core::mem::discriminant(&m.w)
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn short_buffers_do_nothing() {
        let w = [0u8; 4 * 6];
        let m = Matrix::new(Weights::F32(&w), 2, 3, 3).unwrap();
        let mut out = [1f32; 3];
        gemm_cols(&mut out, &m, &[0.0; 9], 3, 3);
        assert_eq!(out, [1.0; 3]);
        gemm_cols(&mut out, &m, &[0.0; 9], 2, 3);
        assert_eq!(out, [1.0; 3]);
    }
}
