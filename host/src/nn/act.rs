//! Elementwise activations: forward and backward over whole batch buffers.
//!
//! The formulas match the runtime and the ONNX export exactly; GELU is the
//! tanh approximation everywhere.

pub use edgegen_format::arch::Activation;

use super::fastmath::{fmadd, tanh_fma};

const SQRT_2_OVER_PI: f32 = 0.797_884_6;
const GELU_C: f32 = 0.044_715;

/// `out[i] = f(inp[i])`.
pub fn forward(act: Activation, out: &mut [f32], inp: &[f32]) {
    debug_assert_eq!(out.len(), inp.len());
    let it = out.iter_mut().zip(inp);
    match act {
        Activation::Relu => it.for_each(|(o, &x)| *o = x.max(0.0)),
        Activation::LeakyRelu => it.for_each(|(o, &x)| {
            *o = if x > 0.0 {
                x
            } else {
                Activation::LEAKY_SLOPE * x
            }
        }),
        Activation::Tanh => it.for_each(|(o, &x)| *o = x.tanh()),
        Activation::Sigmoid => it.for_each(|(o, &x)| *o = sigmoid(x)),
        Activation::Gelu => par_rows(out, inp, gelu_forward),
        Activation::Softplus => it.for_each(|(o, &x)| *o = softplus(x)),
    }
}

/// `dinp[i] += dout[i] * f'(inp[i])`, given the forward's input and output.
pub fn backward(act: Activation, dinp: &mut [f32], inp: &[f32], out: &[f32], dout: &[f32]) {
    debug_assert!(dinp.len() == inp.len() && inp.len() == out.len() && out.len() == dout.len());
    let it = dinp.iter_mut().zip(inp.iter().zip(out).zip(dout));
    match act {
        Activation::Relu => it.for_each(|(d, ((&x, _), &g))| *d += if x > 0.0 { g } else { 0.0 }),
        Activation::LeakyRelu => it.for_each(|(d, ((&x, _), &g))| {
            *d += if x > 0.0 {
                g
            } else {
                Activation::LEAKY_SLOPE * g
            }
        }),
        Activation::Tanh => it.for_each(|(d, ((_, &y), &g))| *d += g * (1.0 - y * y)),
        Activation::Sigmoid => it.for_each(|(d, ((_, &y), &g))| *d += g * y * (1.0 - y)),
        Activation::Gelu => {
            use rayon::prelude::*;
            dinp.par_chunks_mut(PAR_CHUNK)
                .zip(inp.par_chunks(PAR_CHUNK))
                .zip(dout.par_chunks(PAR_CHUNK))
                .for_each(|((d, x), g)| gelu_backward(d, x, g));
        }
        Activation::Softplus => it.for_each(|(d, ((&x, _), &g))| *d += g * sigmoid(x)),
    }
}

/// Elements per parallel chunk of GELU (its tanh is most of a
/// transformer's elementwise work): large enough that rayon's overhead
/// vanishes, small enough that both cores share a layer.
const PAR_CHUNK: usize = 1 << 14;

/// `f(out, inp)` over chunks of both on the rayon pool.
fn par_rows(out: &mut [f32], inp: &[f32], f: fn(&mut [f32], &[f32])) {
    use rayon::prelude::*;
    out.par_chunks_mut(PAR_CHUNK)
        .zip(inp.par_chunks(PAR_CHUNK))
        .for_each(|(o, x)| f(o, x));
}

/// [`backward`], but writing `dinp` rather than adding to it (for an input
/// gradient with no other source: nothing needs zeroing first).
pub fn backward_into(act: Activation, dinp: &mut [f32], inp: &[f32], out: &[f32], dout: &[f32]) {
    if act == Activation::Gelu {
        use rayon::prelude::*;
        dinp.par_chunks_mut(PAR_CHUNK)
            .zip(inp.par_chunks(PAR_CHUNK))
            .zip(dout.par_chunks(PAR_CHUNK))
            .for_each(|((d, x), g)| gelu_backward_set(d, x, g));
        return;
    }
    dinp.fill(0.0);
    backward(act, dinp, inp, out, dout);
}

// GELU, tanh form, with the branch-free tanh so that the loop is SIMD.
super::fastmath::dispatch_fma! {
    fn gelu_forward(out: &mut [f32], inp: &[f32]) {
        for (o, &x) in out.iter_mut().zip(inp) {
            let u = SQRT_2_OVER_PI * x * fmadd::<FMA>(GELU_C * x, x, 1.0);
            let hx = 0.5 * x;
            *o = fmadd::<FMA>(hx, tanh_fma::<FMA>(u), hx);
        }
    }
}

/// `gelu'(x)`: with `t = tanh(u)`, `u = sqrt(2/pi) (x + c x^3)`,
/// `0.5 (1 + t) + 0.5 x (1 - t^2) u'`.
#[inline(always)]
fn gelu_grad<const FMA: bool>(x: f32) -> f32 {
    let x2 = x * x;
    let t = tanh_fma::<FMA>(SQRT_2_OVER_PI * x * fmadd::<FMA>(GELU_C, x2, 1.0));
    let du = SQRT_2_OVER_PI * fmadd::<FMA>(3.0 * GELU_C, x2, 1.0);
    let hx = 0.5 * x;
    fmadd::<FMA>(hx * fmadd::<FMA>(-t, t, 1.0), du, fmadd::<FMA>(0.5, t, 0.5))
}

// `dinp = dout * gelu'(inp)`.
super::fastmath::dispatch_fma! {
    fn gelu_backward_set(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
        for ((d, &x), &g) in dinp.iter_mut().zip(inp).zip(dout) {
            *d = g * gelu_grad::<FMA>(x);
        }
    }
}

// `dinp += dout * gelu'(inp)`.
super::fastmath::dispatch_fma! {
    fn gelu_backward(dinp: &mut [f32], inp: &[f32], dout: &[f32]) {
        for ((d, &x), &g) in dinp.iter_mut().zip(inp).zip(dout) {
            *d = fmadd::<FMA>(g, gelu_grad::<FMA>(x), *d);
        }
    }
}

/// `1 / (1 + e^-x)`, without overflow for large |x|.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^x)`, without overflow.
#[inline]
pub fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}
