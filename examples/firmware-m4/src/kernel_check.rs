//! The int8 kernels of this core (`SXTB16`/`SMLAD` and `VCVTR` assembly,
//! `kernels::int8::dsp`) held to the reference on the device itself, bit
//! for bit: odd row counts (a last row alone), partial and several chunks
//! of blocks, a weight code of -128, blocks of zeros, infinities and NaNs
//! in the input (which leave the fast quantizer for the reference one),
//! and the strided outputs of transposed convolutions (`gemm_cols`). The
//! model samples check the same kernels on real shapes; these reach the
//! branches a model may not. Also prints the instructions per
//! multiply-add of a 784 x 400 layer (the documented VAE decoder's big
//! one) with and without int8 activations. And the fast mode's FPv4 Q8_0
//! kernel (`kernels::fpv4`) against its Rust loop, the FPU's f16
//! conversion against the software one, and the FPU's square root
//! against libm's.

use crate::meter;
use cortex_m_semihosting::hprintln;
use edgegen_runtime::format::quant::{BlockA8, BlockQ8_0, QK8_0, f16_le_to_f32, quantize_a8};
use edgegen_runtime::kernels::int8::dot_a8;
use edgegen_runtime::kernels::{Matrix, Weights, gemm_cols, matvec};
use edgegen_runtime::kernels::{fpv4, scalar};
use edgegen_runtime::sample::Rng;

/// Weight blocks, input floats and outputs the largest case needs.
const BLOCKS: usize = 784 * 13;
const INPUTS: usize = 3 * 1100;
const OUTPUTS: usize = 784;

/// `rows` rows of `cols` random weights as Q8_0, row stride whole blocks,
/// with one code of -128 (the format allows it; the quantizer never
/// writes it).
fn weights(r: &mut Rng, w: &mut [BlockQ8_0], rows: usize, cols: usize) -> usize {
    let nb = cols.div_ceil(QK8_0);
    for b in w[..rows * nb].iter_mut() {
        let v: [f32; QK8_0] = core::array::from_fn(|_| r.normal());
        *b = BlockQ8_0::quantize(&v);
    }
    w[0].qs[1] = -128;
    nb
}

/// `want`, bit for bit (any NaN matching any NaN).
fn same(got: f32, want: f32) -> bool {
    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
}

/// The fast mode's f32-activation Q8_0 kernel of this core (`FPv4`
/// assembly, `kernels::fpv4`) against the same operations in Rust
/// (`scalar::portable_dot_q8_0`), bit for bit: whole and part blocks (a
/// last one of 1 to 31 values, in fours and one at a time), infinities,
/// NaNs and zeros among the inputs, and special f16 scales (subnormal,
/// largest, infinite, NaN, negative zero). Then every f16 through the
/// FPU's `VCVTB` against the format's software conversion.
fn fast_q8_0(r: &mut Rng, w: &mut [BlockQ8_0], x: &mut [f32]) -> Result<(), &'static str> {
    let mut cases = 0;
    for len in [1usize, 3, 4, 31, 32, 33, 64, 70, 400, 1088] {
        let n = len.div_ceil(QK8_0);
        weights(r, w, 1, len);
        let x = &mut x[..len];
        for special in 0..4 {
            x.iter_mut().for_each(|v| *v = r.normal());
            match special {
                1 => x[len - 1] = f32::INFINITY,
                2 => x[len / 2] = f32::NAN,
                3 => {
                    x[..len.min(16)].fill(0.0);
                    let scales: [u16; 5] = [0x0001, 0x7bff, 0x7c00, 0x7e01, 0x8000];
                    for (b, d) in w[..n].iter_mut().zip(scales) {
                        b.d = d.to_le_bytes();
                    }
                }
                _ => {}
            }
            let (got, want) = (
                fpv4::dot_q8_0(&w[..n], x),
                scalar::portable_dot_q8_0(&w[..n], x),
            );
            if !same(got, want) {
                hprintln!(
                    "fast q8_0 length {} case {}: {} vs {}",
                    len,
                    special,
                    got,
                    want
                );
                return Err("the FPv4 Q8_0 kernel differs from its order in Rust");
            }
            cases += 1;
        }
    }
    for h in 0..=u16::MAX {
        let (got, want) = (fpv4::vcvtb(h), f16_le_to_f32(h.to_le_bytes()));
        if got.to_bits() != want.to_bits() {
            hprintln!(
                "f16 {:#06x}: {:#010x} vs {:#010x}",
                h,
                got.to_bits(),
                want.to_bits()
            );
            return Err("VCVTB differs from the software f16 conversion");
        }
    }
    hprintln!(
        "kernel-check: {} fast q8_0 cases and 65536 halves bit for bit",
        cases
    );
    Ok(())
}

/// Runs every case; the first mismatch is the error.
pub fn run() -> Result<(), &'static str> {
    let w = static_buf!(
        [BlockQ8_0; BLOCKS] = [BlockQ8_0 {
            d: [0; 2],
            qs: [0; QK8_0]
        }; BLOCKS]
    );
    let x = static_buf!([f32; INPUTS] = [0.0; INPUTS]);
    let out = static_buf!([f32; OUTPUTS] = [0.0; OUTPUTS]);
    let xa = static_buf!([BlockA8; 40] = [BlockA8::ZERO; 40]);
    let col = static_buf!([f32; 1100] = [0.0; 1100]);
    let mut r = Rng::new(11);
    let mut cases = 0;
    for (rows, cols) in [
        (1, 5),
        (3, 32),
        (7, 33),
        (9, 100),
        (17, 31),
        (23, 513),
        (5, 1100),
        (2, 64),
    ] {
        let nb = weights(&mut r, w, rows, cols);
        let m = Matrix::new(Weights::Q8_0(&w[..rows * nb]), rows, cols, nb * QK8_0)
            .ok_or("matrix")?
            .with_int8_activations();
        for special in 0..3 {
            let x = &mut x[..cols];
            x.iter_mut().for_each(|v| *v = r.normal());
            if cols >= 64 {
                x[32..64].fill(0.0);
            }
            if special == 1 {
                x[cols / 2] = f32::INFINITY;
            } else if special == 2 {
                x[0] = f32::NAN;
            }
            matvec(&mut out[..rows], &m, x, |k| k as f32);
            let xa = &mut xa[..nb];
            quantize_a8(x, xa);
            for (k, o) in out[..rows].iter().enumerate() {
                let want = k as f32 + dot_a8(&w[k * nb..], xa, 0.0);
                if !same(*o, want) {
                    hprintln!(
                        "matvec {}x{} case {} row {}: {} vs {}",
                        rows,
                        cols,
                        special,
                        k,
                        o,
                        want
                    );
                    return Err("an int8 matvec differs from the reference");
                }
            }
            cases += 1;
        }
        // Pixels: column j of p at stride xs, outputs at stride p.
        let (p, xs) = (3, 3);
        let x = &mut x[..cols * xs];
        x.iter_mut().for_each(|v| *v = r.normal());
        gemm_cols(&mut out[..rows * p], &m, x, xs, p);
        for j in 0..p {
            for (k, c) in col[..cols].iter_mut().enumerate() {
                *c = x[k * xs + j];
            }
            let xa = &mut xa[..nb];
            quantize_a8(&col[..cols], xa);
            for k in 0..rows {
                let want = dot_a8(&w[k * nb..], xa, 0.0);
                if !same(out[k * p + j], want) {
                    hprintln!("gemm_cols {}x{} pixel {} row {}", rows, cols, j, k);
                    return Err("an int8 gemm_cols differs from the reference");
                }
            }
        }
        cases += 1;
    }
    hprintln!("kernel-check: {} cases bit for bit", cases);
    fast_q8_0(&mut r, w, x)?;
    // The runtime's square root (the FPU's `VSQRT.F32` on this core)
    // against libm's software one, over bit patterns spread across every
    // float: zeros, subnormals, normals, infinities, NaNs, both signs.
    let mut checked = 0u32;
    let mut bits = 0u32;
    loop {
        let x = f32::from_bits(bits);
        if !same(edgegen_runtime::math::sqrt(x), libm::sqrtf(x)) {
            hprintln!("sqrt of {:#010x}", bits);
            return Err("the FPU's square root differs from libm's");
        }
        checked += 1;
        match bits.checked_add(65_537) {
            Some(b) => bits = b,
            None => break,
        }
    }
    hprintln!("kernel-check: sqrt of {} floats bit for bit", checked);
    // The documented VAE decoder's big layer, 784 x 400, batch 1.
    let (rows, cols) = (784, 400);
    let nb = weights(&mut r, w, rows, cols);
    x[..cols].iter_mut().for_each(|v| *v = r.normal());
    let f = Matrix::new(Weights::Q8_0(&w[..rows * nb]), rows, cols, nb * QK8_0).ok_or("matrix")?;
    for (name, m) in [("f32", f), ("int8", f.with_int8_activations())] {
        let t0 = meter::ticks();
        matvec(&mut out[..rows], &m, &x[..cols], |_| 0.0);
        let insns = meter::per(meter::ticks() - t0, 1);
        let macs = rows * cols;
        hprintln!(
            "784x400 {} activations: {} instructions, {}.{:02} per multiply-add",
            name,
            insns,
            insns as usize / macs,
            insns as usize * 100 / macs % 100
        );
    }
    Ok(())
}
