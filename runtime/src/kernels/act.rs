//! Element-wise activations over slices, vectorized without giving up
//! libm's bits.
//!
//! A decoder's last layer applies a sigmoid to every output (784 for
//! MNIST): through `libm::expf` one value at a time, with a branch and a
//! division each, that took 4-5 µs of a 20 µs decode. [`expf_lane`] is
//! libm's `expf` (FreeBSD's `e_expf.c`) rewritten without branches: every
//! case is computed and selected, with the same IEEE operations in the same
//! order, so it returns the same bits as `libm::expf` for every input
//! (tested), and the compiler can vectorize a loop over it. The loop is
//! compiled once per instruction set, like the matrix kernels.

#[cfg(target_arch = "x86_64")]
use super::{Isa, isa};

const LN2_HI: f32 = 6.931_457_5e-1; // 0x3f317200
const LN2_LO: f32 = 1.428_606_8e-6; // 0x35bfbe8e
const INV_LN2: f32 = core::f32::consts::LOG2_E; // 0x3fb8aa3b, libm's INV_LN2
const P1: f32 = 1.666_662_5e-1; // 0xaaaa8f.0p-26
const P2: f32 = -2.766_733_3e-3; // -0xb55215.0p-32

/// `2^e` for `e` in `-126..=127`, built from its bits.
#[inline(always)]
fn pow2(e: i32) -> f32 {
    f32::from_bits(((e + 127) as u32) << 23)
}

/// `libm::expf(x)`, bit for bit, as straight-line code.
#[inline(always)]
pub fn expf_lane(x: f32) -> f32 {
    let sign = x.to_bits() >> 31;
    let hx = x.to_bits() & 0x7fff_ffff;
    // Argument reduction: x = k ln2 + r, |r| <= 0.5 ln2, as libm chooses k.
    let half = if sign != 0 { -0.5 } else { 0.5 };
    // Lanes that take a special case below may hold any k (NaN, huge);
    // bounding it before the conversion keeps the shifts below defined and
    // leaves every k that is used unchanged (|x| <= 104 there). `max` and
    // `min` drop a NaN, so the bounded value is a finite float in
    // [-150, 128], which the unchecked conversion truncates exactly as
    // `as` would: without it the compiler checked each lane for NaN and
    // saturation with scalar code (a third of a vectorized sigmoid's time).
    #[allow(clippy::manual_clamp)] // clamp keeps NaN; max/min drop it
    let bounded = (INV_LN2 * x + half).max(-150.0).min(128.0);
    // SAFETY: `bounded` is finite and within i32's range (above).
    let kx: i32 = unsafe { bounded.to_int_unchecked() };
    let k = if hx > 0x3f85_1592 {
        kx
    } else if hx > 0x3eb1_7218 {
        1 - 2 * sign as i32
    } else {
        0
    };
    let kf = k as f32;
    let hi = x - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let r = hi - lo;
    let rr = r * r;
    let c = r - rr * (P1 + rr * P2);
    let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
    // scalbnf(y, k): libm scales by 2^-102 first below 2^-126 and by 2^127
    // first above 2^127, so that only the last multiply rounds.
    let k1 = if k < -126 {
        -102
    } else if k > 127 {
        127
    } else {
        0
    };
    let scaled = y * pow2(k1) * pow2(k - k1);
    if hx > 0x7f80_0000 {
        x // NaN
    } else if sign == 0 && hx >= 0x42b1_7218 {
        x * pow2(127) // overflow: +inf
    } else if sign != 0 && hx >= 0x42cf_f1b5 {
        0.0 // below the smallest subnormal
    } else if hx <= 0x3900_0000 {
        1.0 + x // |x| <= 2^-14
    } else {
        scaled
    }
}

/// `e^x` for the lane functions: [`expf_lane`] where loops over it
/// vectorize; on 32-bit Arm, which has no vector unit to use, `libm::expf`
/// itself, whose branches skip the cases that do not apply (the same
/// bits, tested, in fewer instructions on a Cortex-M4).
#[inline(always)]
fn exp_for_lanes(x: f32) -> f32 {
    if cfg!(target_arch = "arm") {
        libm::expf(x)
    } else {
        expf_lane(x)
    }
}

/// `1 / (1 + e^-x)` as [`crate::math::Libm`]'s scalar sigmoid computes it:
/// with `e = e^-|x|`, `1 / (1 + e)` for x >= 0 and `e / (1 + e)` below.
#[inline(always)]
pub fn sigmoid_lane(x: f32) -> f32 {
    let e = exp_for_lanes(-x.abs());
    let num = if x >= 0.0 { 1.0 } else { e };
    num / (1.0 + e)
}

/// `sqrt(x)`, correctly rounded (IEEE 754), as libm's `sqrtf` is: the
/// same bits. On hard-float 32-bit Arm it is the FPU's `VSQRT.F32`, five
/// instructions with the save of the one S register it uses (stable
/// Rust's `asm!` cannot name those registers as operands on this target,
/// as `int8::dsp` explains), where libm's software square root takes 224
/// bytes of flash and a 256-byte table.
#[inline]
pub fn sqrt(x: f32) -> f32 {
    #[cfg(all(target_arch = "arm", target_abi = "eabihf"))]
    {
        let mut bits = x.to_bits();
        // SAFETY: s0 is saved and restored around its use; the stack
        // holds it for two instructions; no other memory, no flags.
        unsafe {
            core::arch::asm!(
                "vpush {{s0}}",
                "vmov s0, {b}",
                "vsqrt.f32 s0, s0",
                "vmov {b}, s0",
                "vpop {{s0}}",
                b = inout(reg) bits,
                options(pure, nomem, preserves_flags),
            );
        }
        f32::from_bits(bits)
    }
    #[cfg(not(all(target_arch = "arm", target_abi = "eabihf")))]
    libm::sqrtf(x)
}

/// `tanh(x)` from [`expf_lane`]: with `t = e^{-2|x|}`, `sign(x) (1 - t) /
/// (1 + t)`. Not libm's bits (libm's `tanhf` goes through `expm1f`, whose
/// branches do not vectorize): within 1.5e-7 of the true value in absolute
/// terms (tested against f64), which is what a GRU's state, a sum of such
/// values, needs; and the same bits on every instruction set.
#[inline(always)]
pub fn tanh_lane(x: f32) -> f32 {
    let t = exp_for_lanes(-2.0 * x.abs());
    let m = (1.0 - t) / (1.0 + t);
    if x < 0.0 { -m } else { m }
}

/// GELU, tanh form (`0.5 x (1 + tanh(u))`, `u = sqrt(2 / pi) (x + 0.044715
/// x^3)`), computed as `x * sigmoid(2u)`: the same function, since `1 +
/// tanh(u) = 2 sigmoid(2u)`, without the cancellation of `1 + tanh(u)`
/// where `tanh(u)` nears -1, and with one `expf` where libm's `tanhf`
/// takes an `expm1f` and more (half the instructions of a GELU on a
/// Cortex-M4). Tested against f64: within 1e-6 of the exact GELU,
/// relative to the larger of the value and |x| / 1000 (the tanh form
/// through `libm::tanhf`: 1.5e-5, measured the same way).
#[inline(always)]
pub fn gelu_lane(x: f32) -> f32 {
    const TWO_SQRT_2_OVER_PI: f32 = 2.0 * 0.797_884_6;
    x * sigmoid_lane(TWO_SQRT_2_OVER_PI * (x + 0.044_715 * x * x * x))
}

/// A lane function applied in place to a slice, compiled for each
/// instruction set (the loop vectorizes) and dispatched at run time.
macro_rules! slice_kernel {
    ($(#[$doc:meta])* $name:ident, $lane:ident, $body:ident, $avx512:ident, $avx2:ident) => {
        #[inline(always)]
        fn $body(x: &mut [f32]) {
            if cfg!(target_arch = "arm") {
                for v in x {
                    *v = $lane(*v);
                }
                return;
            }
            // Sixteen at a time, the last few through a padded block, so
            // that a short slice (a softmax over a few dozen positions)
            // does not spend most of its time in the scalar remainder
            // loop; each lane's value is the same either way.
            let mut blocks = x.chunks_exact_mut(16);
            for b in &mut blocks {
                for v in b {
                    *v = $lane(*v);
                }
            }
            let rest = blocks.into_remainder();
            if !rest.is_empty() {
                let mut pad = [0f32; 16];
                pad[..rest.len()].copy_from_slice(rest);
                for v in &mut pad {
                    *v = $lane(*v);
                }
                rest.copy_from_slice(&pad[..rest.len()]);
            }
        }

        $(#[$doc])*
        pub fn $name(x: &mut [f32]) {
            #[cfg(target_arch = "x86_64")]
            match isa() {
                // SAFETY: `isa()` names only an ISA this CPU supports.
                Isa::Avx512 => return unsafe { $avx512(x) },
                // SAFETY: as above.
                Isa::Avx2 => return unsafe { $avx2(x) },
                Isa::Scalar => {}
            }
            $body(x)
        }

        /// # Safety
        /// The CPU must support AVX-512F.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f")]
        unsafe fn $avx512(x: &mut [f32]) {
            $body(x)
        }

        /// # Safety
        /// The CPU must support AVX2 and FMA.
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn $avx2(x: &mut [f32]) {
            $body(x)
        }
    };
}

slice_kernel!(
    /// Sigmoid of every element of `x`, in place; the same bits on every
    /// instruction set.
    sigmoid, sigmoid_lane, sigmoid_body, sigmoid_avx512, sigmoid_avx2
);
slice_kernel!(
    /// `e^x` of every element of `x`, in place: `libm::expf`'s bits on
    /// every instruction set (on 32-bit Arm `libm::expf` itself).
    exp, exp_for_lanes, exp_body, exp_avx512, exp_avx2
);
slice_kernel!(
    /// [`tanh_lane`] of every element of `x`, in place.
    tanh, tanh_lane, tanh_body, tanh_avx512, tanh_avx2
);
slice_kernel!(
    /// [`gelu_lane`] of every element of `x`, in place.
    gelu, gelu_lane, gelu_body, gelu_avx512, gelu_avx2
);

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::math::{Libm, Math};

    /// Bit patterns to check: a stride through all 2^32 (every exponent and
    /// both signs), plus a window around each threshold libm branches on.
    fn patterns() -> impl Iterator<Item = u32> {
        let stride = (0..=u32::MAX / 9973).map(|i| i * 9973);
        let edges = [
            0x3900_0000u32,
            0x3eb1_7218,
            0x3f85_1592,
            0x42ae_ac50,
            0x42b1_7218,
            0x42cf_f1b5,
            0x7f80_0000,
            0,
        ]
        .into_iter()
        .flat_map(|e| {
            (e.saturating_sub(2000)..e.saturating_add(2000)).flat_map(|b| [b, b | 0x8000_0000])
        });
        stride.chain(edges)
    }

    fn same(a: f32, b: f32) -> bool {
        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
    }

    #[test]
    fn expf_lane_is_libm_bit_for_bit() {
        let mut n = 0;
        for b in patterns() {
            let x = f32::from_bits(b);
            let (got, want) = (expf_lane(x), libm::expf(x));
            assert!(same(got, want), "expf({x:e}) = {got:e}, libm {want:e}");
            n += 1;
        }
        assert!(n > 400_000);
    }

    /// Slices of every length up to 50 (whole blocks of 16, a padded
    /// last block, or both) give each element's own value.
    #[test]
    fn short_slices_take_every_element_through_the_lane() {
        for n in 0..=50 {
            let orig: std::vec::Vec<f32> = (0..n).map(|i| i as f32 * 0.37 - 9.0).collect();
            let mut xs = orig.clone();
            exp(&mut xs);
            for (&x, &e) in orig.iter().zip(&xs) {
                assert!(same(e, libm::expf(x)), "n {n}: exp({x}) = {e}");
            }
        }
    }

    #[test]
    fn sigmoid_slice_is_the_scalar_sigmoid_on_every_isa() {
        let mut xs: std::vec::Vec<f32> = patterns().map(f32::from_bits).collect();
        let want: std::vec::Vec<f32> = xs.iter().map(|&x| Libm::sigmoid(x)).collect();
        sigmoid(&mut xs);
        for (i, (g, w)) in xs.iter().zip(&want).enumerate() {
            assert!(same(*g, *w), "element {i}: {g:e} vs {w:e}");
        }
        // The generic body too, which other targets run.
        let mut ys: std::vec::Vec<f32> = patterns().map(f32::from_bits).collect();
        sigmoid_body(&mut ys);
        assert!(ys.iter().zip(&want).all(|(g, w)| same(*g, *w)));
    }

    #[test]
    fn exp_slice_is_libm_and_tanh_is_within_its_bound() {
        let mut xs: std::vec::Vec<f32> = patterns().map(f32::from_bits).collect();
        let want: std::vec::Vec<f32> = xs.iter().map(|&x| libm::expf(x)).collect();
        exp(&mut xs);
        assert!(xs.iter().zip(&want).all(|(g, w)| same(*g, *w)));
        let mut worst = 0f64;
        let mut ts: std::vec::Vec<f32> = patterns().map(f32::from_bits).collect();
        let orig = ts.clone();
        tanh(&mut ts);
        for (&x, &t) in orig.iter().zip(&ts) {
            if x.is_nan() {
                assert!(t.is_nan());
                continue;
            }
            worst = worst.max((t as f64 - (x as f64).tanh()).abs());
            assert_eq!(t.to_bits(), tanh_lane(x).to_bits(), "{x:e}");
        }
        assert!(worst < 1.5e-7, "{worst:e}");
    }

    #[test]
    fn gelu_is_within_its_bound_on_every_isa() {
        let mut xs: std::vec::Vec<f32> = patterns().map(f32::from_bits).collect();
        let orig = xs.clone();
        gelu(&mut xs);
        let mut worst = 0f64;
        for (&x, &g) in orig.iter().zip(&xs) {
            assert!(same(g, gelu_lane(x)), "{x:e}");
            let xd = x as f64;
            let u = (2.0 / core::f64::consts::PI).sqrt() * (xd + 0.044715 * xd * xd * xd);
            // 0.5 x (1 + tanh u), in the form that keeps f64's precision
            // where tanh u rounds to -1.
            let want = xd / (1.0 + (-2.0 * u).exp());
            if !want.is_finite() || !x.is_finite() {
                assert!(
                    g.is_nan() == want.is_nan() || x.is_infinite(),
                    "{x:e}: {g:e} vs {want:e}"
                );
                continue;
            }
            // Relative to the value, or to a thousandth of x where the
            // value is smaller: there, the rounding of u in f32 (relative
            // 6e-8, times |2u| in the exponent) dominates, as it does in
            // the tanh form.
            let err = (g as f64 - want).abs();
            worst = worst.max(err / want.abs().max(1e-3 * xd.abs()).max(1e-37));
        }
        assert!(worst < 1e-6, "{worst:e}");
    }
}
