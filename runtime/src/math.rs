//! Scalar math for activations: `libm` by default (musl's algorithms in
//! pure Rust: accurate to about 1 ulp and the same bits on every target),
//! or micromath with the `fast-math` feature (exp off by up to 2.4e-3
//! relative, measured; for the smallest parts). `core` has no `exp` on
//! `no_std`, hence this module.

/// e^x.
#[inline]
pub fn exp(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        micromath::F32Ext::exp(x)
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::expf(x)
    }
}

/// tanh(x). micromath has none, so the fast path goes through `exp`.
#[inline]
pub fn tanh(x: f32) -> f32 {
    #[cfg(feature = "fast-math")]
    {
        // tanh x = 1 - 2 / (e^{2x} + 1), saturated where e^{2x} overflows.
        if x > 9.0 {
            return 1.0;
        }
        if x < -9.0 {
            return -1.0;
        }
        1.0 - 2.0 / (exp(2.0 * x) + 1.0)
    }
    #[cfg(not(feature = "fast-math"))]
    {
        libm::tanhf(x)
    }
}

/// sqrt(x).
#[inline]
pub fn sqrt(x: f32) -> f32 {
    libm::sqrtf(x)
}

/// 1 / (1 + e^-x), without overflow.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + exp(-x))
    } else {
        let e = exp(x);
        e / (1.0 + e)
    }
}

/// ln(1 + e^x), without overflow.
#[inline]
pub fn softplus(x: f32) -> f32 {
    let ax = if x < 0.0 { -x } else { x };
    let m = if x > 0.0 { x } else { 0.0 };
    m + libm::log1pf(exp(-ax))
}
