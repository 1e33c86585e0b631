//! Scalar math for activations: `libm` by default (musl's algorithms in
//! pure Rust: accurate to about 1 ulp and the same bits on every target),
//! or micromath with the `fast-math` feature (exp off by up to 2.4e-3
//! relative, measured; for the smallest parts). `core` has no `exp` on
//! `no_std`, hence this module.
//!
//! The implementations are types behind one trait, [`Math`], so that a host
//! can run both and measure the difference ([`DefaultMath`] is the one the
//! features select).

/// The functions the layers need.
pub trait Math {
    /// e^x.
    fn exp(x: f32) -> f32;
    /// tanh(x).
    fn tanh(x: f32) -> f32;
    /// 1 / (1 + e^-x), without overflow.
    #[inline]
    fn sigmoid(x: f32) -> f32 {
        if x >= 0.0 {
            1.0 / (1.0 + Self::exp(-x))
        } else {
            let e = Self::exp(x);
            e / (1.0 + e)
        }
    }
    /// [`Math::sigmoid`] of every element of `x`, in place.
    #[inline]
    fn sigmoid_slice(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = Self::sigmoid(*v));
    }
    /// [`Math::exp`] of every element of `x`, in place.
    #[inline]
    fn exp_slice(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = Self::exp(*v));
    }
    /// [`Math::tanh`] of every element of `x`, in place (possibly a
    /// faster form of it: see the implementations).
    #[inline]
    fn tanh_slice(x: &mut [f32]) {
        x.iter_mut().for_each(|v| *v = Self::tanh(*v));
    }
    /// GELU (tanh form) of every element of `x`, in place.
    #[inline]
    fn gelu_slice(x: &mut [f32]) {
        x.iter_mut().for_each(|v| {
            let u = 0.797_884_6 * (*v + 0.044_715 * *v * *v * *v);
            *v = 0.5 * *v * (1.0 + Self::tanh(u));
        })
    }
    /// ln(1 + e^x), without overflow.
    #[inline]
    fn softplus(x: f32) -> f32 {
        let ax = if x < 0.0 { -x } else { x };
        let m = if x > 0.0 { x } else { 0.0 };
        m + libm::log1pf(Self::exp(-ax))
    }
}

/// libm: accurate, and the same bits on every target.
#[derive(Debug, Clone, Copy)]
pub struct Libm;

impl Math for Libm {
    #[inline]
    fn exp(x: f32) -> f32 {
        libm::expf(x)
    }
    #[inline]
    fn tanh(x: f32) -> f32 {
        libm::tanhf(x)
    }
    /// Vectorized, with the same bits as the scalar [`Math::sigmoid`]
    /// (see [`crate::kernels::act`]).
    #[inline]
    fn sigmoid_slice(x: &mut [f32]) {
        crate::kernels::act::sigmoid(x)
    }
    /// Vectorized, libm's bits.
    #[inline]
    fn exp_slice(x: &mut [f32]) {
        crate::kernels::act::exp(x)
    }
    /// Vectorized through `e^{-2|x|}` (see
    /// [`crate::kernels::act::tanh_lane`]): within 1.5e-7 of tanh, not
    /// `libm::tanhf`'s bits.
    #[inline]
    fn tanh_slice(x: &mut [f32]) {
        crate::kernels::act::tanh(x)
    }
    /// Vectorized, as `x sigmoid(2u)` (see
    /// [`crate::kernels::act::gelu_lane`]): not `libm::tanhf`'s form.
    #[inline]
    fn gelu_slice(x: &mut [f32]) {
        crate::kernels::act::gelu(x)
    }
}

/// micromath: smaller and faster, coarser.
#[cfg(feature = "micromath")]
#[derive(Debug, Clone, Copy)]
pub struct Micro;

#[cfg(feature = "micromath")]
impl Math for Micro {
    #[inline]
    fn exp(x: f32) -> f32 {
        micromath::F32Ext::exp(x)
    }
    /// micromath has no tanh: `1 - 2 / (e^{2x} + 1)`, saturated where
    /// `e^{2x}` would overflow.
    #[inline]
    fn tanh(x: f32) -> f32 {
        if x > 9.0 {
            return 1.0;
        }
        if x < -9.0 {
            return -1.0;
        }
        1.0 - 2.0 / (Self::exp(2.0 * x) + 1.0)
    }
}

/// The implementation the features select.
#[cfg(feature = "fast-math")]
pub type DefaultMath = Micro;
/// The implementation the features select.
#[cfg(not(feature = "fast-math"))]
pub type DefaultMath = Libm;

/// The largest value of `x` that is not NaN (-inf if none), as a softmax
/// subtracts it. On 32-bit Arm, where `f32::max` is a call to `fmaxf`, a
/// compare; elsewhere `f32::max` in sixteen lanes. The two differ only in
/// which zero they return among +0 and -0, which `v - max` cannot tell
/// apart.
#[inline]
pub fn max_value(x: &[f32]) -> f32 {
    if cfg!(target_arch = "arm") {
        x.iter()
            .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m })
    } else {
        // Sixteen running maxima, then theirs: independent chains where
        // one fold waited on every compare. The maximum is the same value
        // in any order (up to the sign of a zero, as above).
        let mut lanes = [f32::NEG_INFINITY; 16];
        let mut blocks = x.chunks_exact(16);
        for b in &mut blocks {
            for (m, &v) in lanes.iter_mut().zip(b) {
                *m = m.max(v);
            }
        }
        let rest = blocks.remainder().iter();
        rest.chain(&lanes).fold(f32::NEG_INFINITY, |m, &v| m.max(v))
    }
}

/// e^x with [`DefaultMath`].
#[inline]
pub fn exp(x: f32) -> f32 {
    DefaultMath::exp(x)
}

/// tanh(x) with [`DefaultMath`].
#[inline]
pub fn tanh(x: f32) -> f32 {
    DefaultMath::tanh(x)
}

/// sqrt(x).
#[inline]
pub fn sqrt(x: f32) -> f32 {
    crate::kernels::act::sqrt(x)
}

/// Sigmoid with [`DefaultMath`].
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    DefaultMath::sigmoid(x)
}

/// Softplus with [`DefaultMath`].
#[inline]
pub fn softplus(x: f32) -> f32 {
    DefaultMath::softplus(x)
}

#[cfg(all(test, feature = "micromath"))]
mod tests {
    use super::*;

    #[test]
    fn micromath_error_is_as_measured() {
        let mut worst = 0f32;
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let (a, b) = (Micro::exp(x), Libm::exp(x));
            worst = worst.max((a - b).abs() / b);
        }
        // The brief's measurement: up to 2.4e-3 relative over [-20, 20].
        assert!(worst > 1e-4 && worst < 3e-3, "{worst}");
    }
}

#[cfg(test)]
mod max_tests {
    use super::max_value;

    /// The largest non-NaN value, as one fold over `f32::max` finds it,
    /// for every length to 40, with NaNs and both zeros among the values
    /// (a zero's sign may differ, which `v - max` cannot tell apart).
    #[test]
    fn max_value_is_the_folds_maximum() {
        let fold = |x: &[f32]| x.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        for n in 0..=40usize {
            for salt in 0..4u32 {
                let x: [f32; 40] = core::array::from_fn(|i| match (i as u32 * 7 + salt) % 11 {
                    0 => f32::NAN,
                    1 => -0.0,
                    2 => 0.0,
                    k => (k as f32 - 6.0) * (i as f32 + 1.0),
                });
                let (got, want) = (max_value(&x[..n]), fold(&x[..n]));
                assert!(
                    got == want || (got.is_nan() && want.is_nan()),
                    "n {n}: {got} vs {want}"
                );
            }
        }
    }
}
