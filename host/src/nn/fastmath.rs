//! Vectorizable `exp` and `log1p` for the training engine's elementwise
//! hot loops, and a CPU-feature dispatcher to compile them for AVX2 and
//! AVX-512 while the binary stays portable.
//!
//! Why: the Bernoulli loss takes one `exp` and one `log1p` per pixel, and
//! glibc's scalar calls cost as much as all of the VAE's GEMMs together.
//! These polynomials are branch-free, so LLVM turns whole loops into SIMD.
//! Accuracy (tested against std): `exp` within 2 ulp on [-87, 0], `log1p`
//! within 3e-7 relative on [0, 1].

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
/// 1.5 * 2^23: adding and subtracting it rounds to the nearest integer.
const ROUND: f32 = 12_582_912.0;

/// `e^x` for `x <= 0`; inputs below -87.33 give 0 (the true value is below
/// f32's normal range).
#[inline(always)]
pub fn exp_neg(x: f32) -> f32 {
    exp_neg_fma::<false>(x)
}

/// [`exp_neg`] with its multiply-adds fused when `FMA` (inside a
/// [`dispatch_fma!`] body): the polynomial is a chain of them.
#[inline(always)]
pub fn exp_neg_fma<const FMA: bool>(x_in: f32) -> f32 {
    let x = x_in.max(-87.33);
    // `k` holds round(x log2 e) in its low mantissa bits (ROUND's exponent
    // leaves units there), so the scale below is built with integer ops
    // alone: `n as i32` would be a saturating cast, which LLVM does one lane
    // at a time and which cost GELU most of its time.
    let k = fmadd::<FMA>(x, LOG2E, ROUND);
    let n = k - ROUND;
    let r = fmadd::<FMA>(-n, LN2_HI, x);
    let r = fmadd::<FMA>(-n, LN2_LO, r);
    // exp(r) on [-ln2/2, ln2/2]: Taylor to degree 7 (error < 2e-9).
    let p = 1.0 / 5040.0;
    let p = fmadd::<FMA>(p, r, 1.0 / 720.0);
    let p = fmadd::<FMA>(p, r, 1.0 / 120.0);
    let p = fmadd::<FMA>(p, r, 1.0 / 24.0);
    let p = fmadd::<FMA>(p, r, 1.0 / 6.0);
    let p = fmadd::<FMA>(p, r, 0.5);
    let p = fmadd::<FMA>(p, r, 1.0);
    let p = fmadd::<FMA>(p, r, 1.0);
    let scale = f32::from_bits(((k.to_bits() as i32 - ROUND.to_bits() as i32 + 127) << 23) as u32);
    if x_in < -87.33 { 0.0 } else { p * scale }
}

/// `tanh(x)` as `sign(x) (1 - e) / (1 + e)` with `e = e^(-2|x|)`: within
/// 2e-7 absolute of std's (near 0 its relative error grows, which GELU's
/// `1 + tanh` never sees). glibc's `tanhf` took 46 ns a call in GELU, more
/// than a transformer's GEMMs.
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    tanh_fma::<false>(x)
}

/// [`tanh`] with fused multiply-adds when `FMA` (see [`exp_neg_fma`]).
#[inline(always)]
pub fn tanh_fma<const FMA: bool>(x: f32) -> f32 {
    let e = exp_neg_fma::<FMA>(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

/// `ln(1 + e)` for `e` in [0, 1], as `2 atanh(s)` with `s = e / (2 + e)`
/// in [0, 1/3], summed to s^17.
#[inline(always)]
pub fn log1p_unit(e: f32) -> f32 {
    let s = e / (2.0 + e);
    let s2 = s * s;
    let p = 1.0 / 17.0;
    let p = p * s2 + 1.0 / 15.0;
    let p = p * s2 + 1.0 / 13.0;
    let p = p * s2 + 1.0 / 11.0;
    let p = p * s2 + 1.0 / 9.0;
    let p = p * s2 + 1.0 / 7.0;
    let p = p * s2 + 1.0 / 5.0;
    let p = p * s2 + 1.0 / 3.0;
    let p = p * s2 + 1.0;
    2.0 * s * p
}

/// `sum f(x)` over a row in eight independent f32 lanes, which the
/// compiler keeps in one vector register (a single running sum would be
/// a chain of dependent adds).
#[inline(always)]
pub fn lanes(row: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = row.chunks_exact(8);
    let tail = chunks.remainder();
    for ch in chunks {
        for (a, &x) in acc.iter_mut().zip(ch) {
            *a += f(x);
        }
    }
    acc.iter().sum::<f32>() + tail.iter().map(|&x| f(x)).sum::<f32>()
}

/// The largest value of a row (negative infinity if empty), in sixteen
/// lanes: `fold(f32::max)` is one dependent chain that LLVM keeps scalar.
/// A NaN in the row may or may not win, as in a plain comparison.
#[inline(always)]
pub fn lanes_max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let chunks = row.chunks_exact(16);
    let tail = chunks.remainder();
    for ch in chunks {
        for (a, &x) in acc.iter_mut().zip(ch) {
            *a = if x > *a { x } else { *a };
        }
    }
    acc.iter()
        .chain(tail)
        .fold(f32::NEG_INFINITY, |a, &x| if x > a { x } else { a })
}

/// [`lanes`] over two rows side by side: `sum f(a, b)`.
#[inline(always)]
pub fn lanes2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for ((s, &x), &y) in acc.iter_mut().zip(ca).zip(cb) {
            *s += f(x, y);
        }
    }
    let t = n - n % 8;
    acc.iter().sum::<f32>()
        + a[t..]
            .iter()
            .zip(&b[t..])
            .map(|(&x, &y)| f(x, y))
            .sum::<f32>()
}

/// Makes this thread treat subnormal floats as zero (x86 FTZ and DAZ).
///
/// Why: late in training, some gradients and Adam moments underflow into
/// the subnormal range, where every x86 multiply costs about a hundred
/// cycles; one such value per SIMD lane is enough to slow a whole epoch
/// by a third. Values below 1.2e-38 carry no information for training.
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    {
        let mut csr: u32 = 0;
        // SAFETY: stmxcsr stores the 4-byte MXCSR register into `csr`,
        // which is a valid, writable u32 on our stack frame.
        unsafe { core::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack)) };
        csr |= 0x8040; // FTZ (bit 15) and DAZ (bit 6)
        // SAFETY: ldmxcsr loads MXCSR from `csr`; setting FTZ/DAZ only
        // changes how subnormals round, never memory safety.
        unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, readonly)) };
    }
}

/// Compiles `$body` (a closure-free block over its arguments) three times:
/// for AVX-512, for AVX2+FMA, and for the baseline, and picks one at run
/// time with std's cached feature detection.
macro_rules! dispatch {
    ($vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
                fn v4($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) $(-> $ret)? { imp($($arg),*) }
                if std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512dq")
                {
                    // SAFETY: the features v4 was compiled for were detected on this CPU.
                    return unsafe { v4($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the features v3 was compiled for were detected on this CPU.
                    return unsafe { v3($($arg),*) };
                }
            }
            imp($($arg),*)
        }
    };
}
pub(crate) use dispatch;

/// [`dispatch!`] for a body that multiplies and adds: it sees a `const
/// FMA: bool`, true in the AVX-512 and AVX2 builds (whose `mul_add` is one
/// fused instruction) and false in the baseline one (where `mul_add` would
/// be a call into libm), for [`fmadd`].
macro_rules! dispatch_fma {
    ($vis:vis fn $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? $body:block) => {
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn imp<const FMA: bool>($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
                fn v4($($arg: $ty),*) $(-> $ret)? { imp::<true>($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                fn v3($($arg: $ty),*) $(-> $ret)? { imp::<true>($($arg),*) }
                if std::is_x86_feature_detected!("avx512f")
                    && std::is_x86_feature_detected!("avx512vl")
                    && std::is_x86_feature_detected!("avx512dq")
                {
                    // SAFETY: the features v4 was compiled for were detected on this CPU.
                    return unsafe { v4($($arg),*) };
                }
                if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                    // SAFETY: the features v3 was compiled for were detected on this CPU.
                    return unsafe { v3($($arg),*) };
                }
            }
            imp::<false>($($arg),*)
        }
    };
}
pub(crate) use dispatch_fma;

// `dst += src`, elementwise: the residual adds, embedding and bias
// gradients. Compiled for AVX-512 and AVX2 like the rest of this module
// (a plain loop in the baseline build is SSE, four lanes at most, or
// scalar when it sits in an iterator adapter LLVM does not inline).
dispatch! {
    pub fn add_assign(dst: &mut [f32], src: &[f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d += s;
        }
    }
}

// `dst = a + b`, elementwise (a linear layer's bias plus its residual).
dispatch! {
    pub fn add_to(dst: &mut [f32], a: &[f32], b: &[f32]) {
        for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
            *d = x + y;
        }
    }
}

/// `a * b + c`, fused when `FMA` (see [`dispatch_fma!`]).
#[inline(always)]
pub fn fmadd<const FMA: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FMA { a.mul_add(b, c) } else { a * b + c }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_and_log1p_match_std() {
        let mut worst_exp = 0f32;
        for i in 0..=200_000 {
            let x = -87.0 * i as f32 / 200_000.0;
            let (a, b) = (exp_neg(x), x.exp());
            worst_exp = worst_exp.max((a - b).abs() / b);
        }
        assert!(worst_exp < 3e-7, "exp rel err {worst_exp}");
        // The fused forms (here `mul_add` calls libm: slow, but exact).
        for i in 0..=20_000 {
            let x = -87.0 * i as f32 / 20_000.0;
            let (a, b) = (exp_neg_fma::<true>(x), x.exp());
            assert!((a - b).abs() / b < 3e-7, "fused exp({x}) = {a}, not {b}");
            let y = 12.0 * (i as f32 / 10_000.0 - 1.0);
            let (a, b) = (tanh_fma::<true>(y), y.tanh());
            assert!((a - b).abs() < 2e-7, "fused tanh({y}) = {a}, not {b}");
        }
        assert_eq!(exp_neg_fma::<true>(-1000.0), 0.0);
        assert_eq!(exp_neg(-1000.0), 0.0);
        assert_eq!(exp_neg(0.0), 1.0);
        let mut worst_log = 0f32;
        for i in 0..=100_000 {
            let e = i as f32 / 100_000.0;
            let (a, b) = (log1p_unit(e), e.ln_1p());
            if b > 0.0 {
                worst_log = worst_log.max((a - b).abs() / b);
            }
        }
        assert!(worst_log < 3e-7, "log1p rel err {worst_log}");
        assert!(log1p_unit(1e-30) > 0.0 && log1p_unit(0.0) == 0.0);
        let mut worst_tanh = 0f32;
        for i in -200_000..=200_000 {
            let x = 12.0 * i as f32 / 200_000.0;
            worst_tanh = worst_tanh.max((tanh(x) - x.tanh()).abs());
        }
        assert!(worst_tanh < 2e-7, "tanh abs err {worst_tanh}");
        assert_eq!((tanh(0.0), tanh(100.0), tanh(-100.0)), (0.0, 1.0, -1.0));
    }
}
