//! Finite-difference checks of every backward pass.
//!
//! Each check builds a scalar `L = sum_i r_i * y_i` from a layer's output `y`
//! and fixed random weights `r`, so that `dL/dy = r`, runs the layer's
//! backward with that upstream gradient, and compares every input gradient
//! with central differences `(L(x + h) - L(x - h)) / 2h`, computed in f64
//! over f32 layers. Tolerance: |analytic - numeric| <= 2e-2 * max(1, |numeric|)
//! with h = 1e-2, which f32 rounding allows and any real bug exceeds.

use super::act::{self, Activation};
use super::gemm::Threads;
use super::linear::Linear;
use super::loss;
use super::params::Layout;
use crate::rng::Rng;

fn randn(r: &mut Rng, n: usize) -> Vec<f32> {
    (0..n).map(|_| r.normal()).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Checks `analytic` against central differences of `f` around `x`.
fn check(name: &str, x: &[f32], analytic: &[f32], f: &dyn Fn(&[f32]) -> f64) {
    let h = 1e-2f32;
    let mut xp = x.to_vec();
    let mut worst = 0f64;
    for i in 0..x.len() {
        xp[i] = x[i] + h;
        let up = f(&xp);
        xp[i] = x[i] - h;
        let down = f(&xp);
        xp[i] = x[i];
        let num = (up - down) / (2.0 * h as f64);
        let err = (analytic[i] as f64 - num).abs() / num.abs().max(1.0);
        worst = worst.max(err);
        assert!(
            err <= 2e-2,
            "{name}[{i}]: analytic {} numeric {num}",
            analytic[i]
        );
    }
    assert!(worst.is_finite(), "{name}: non-finite gradient");
}

#[test]
fn linear_backward_matches_finite_differences() {
    let mut r = Rng::new(1);
    let (b, ic, oc) = (3, 5, 4);
    let mut layout = Layout::default();
    let lin = Linear::new(&mut layout, "l", ic, oc);
    let mut params = vec![0.0; layout.total()];
    lin.init(&mut params, &mut r);
    let x = randn(&mut r, b * ic);
    let rw = randn(&mut r, b * oc);
    let th = Threads(1);
    let loss = |p: &[f32], x: &[f32]| {
        let mut y = vec![0.0; b * oc];
        lin.forward(p, &mut y, x, b, th);
        dot(&y, &rw)
    };
    let mut grads = vec![0.0; layout.total()];
    let mut dx = vec![0.0; b * ic];
    lin.backward(&params, &mut grads, Some(&mut dx), &rw, &x, b, th);
    check("linear dx", &x, &dx, &|xx| loss(&params, xx));
    check("linear dparams", &params, &grads, &|pp| loss(pp, &x));
}

#[test]
fn activation_backwards_match_finite_differences() {
    let mut r = Rng::new(2);
    // Keep inputs away from ReLU's kink, where differences are meaningless.
    let x: Vec<f32> = randn(&mut r, 40)
        .into_iter()
        .map(|v| if v.abs() < 0.05 { v + 0.2 } else { v })
        .collect();
    let rw = randn(&mut r, 40);
    for a in Activation::ALL {
        let f = |x: &[f32]| {
            let mut y = vec![0.0; x.len()];
            act::forward(a, &mut y, x);
            dot(&y, &rw)
        };
        let mut y = vec![0.0; 40];
        act::forward(a, &mut y, &x);
        let mut dx = vec![0.0; 40];
        act::backward(a, &mut dx, &x, &y, &rw);
        check(a.name(), &x, &dx, &f);
    }
}

#[test]
fn bce_and_gaussian_backwards_match_finite_differences() {
    let mut r = Rng::new(3);
    let (rows, d) = (3, 7);
    let logits = randn(&mut r, rows * d);
    let t: Vec<f32> = (0..rows * d).map(|_| r.uniform()).collect();
    let mut l = vec![0.0; rows];
    let mut g = vec![0.0; rows * d];
    loss::bce_with_logits(&mut l, Some(&mut g), &logits, &t, d, 1.0);
    let f = |x: &[f32]| {
        let mut l = vec![0.0; rows];
        loss::bce_with_logits(&mut l, None, x, &t, d, 1.0);
        l.iter().map(|&v| v as f64).sum()
    };
    check("bce", &logits, &g, &f);
    // The loss without gradient is the same number.
    let mut l2 = vec![0.0; rows];
    loss::bce_with_logits(&mut l2, None, &logits, &t, d, 1.0);
    assert_eq!(l, l2);

    loss::gaussian_nll(&mut l, Some(&mut g), &logits, &t, d, 1.0);
    let f = |x: &[f32]| {
        let mut l = vec![0.0; rows];
        loss::gaussian_nll(&mut l, None, x, &t, d, 1.0);
        l.iter().map(|&v| v as f64).sum()
    };
    check("gaussian", &logits, &g, &f);
}

#[test]
fn kl_and_reparam_backwards_match_finite_differences() {
    let mut r = Rng::new(4);
    let (rows, z, stride) = (2, 3, 5);
    let stats: Vec<f32> = randn(&mut r, rows * 2 * z)
        .iter()
        .map(|v| v * 0.5)
        .collect();
    let eps = randn(&mut r, rows * z);
    let rw = randn(&mut r, rows * stride);

    let mut l = vec![0.0; rows];
    let mut d = vec![0.0; rows * 2 * z];
    loss::kl_diag_gaussian(&mut l, Some(&mut d), &stats, z, 1.0);
    let f = |s: &[f32]| {
        let mut l = vec![0.0; rows];
        loss::kl_diag_gaussian(&mut l, None, s, z, 1.0);
        l.iter().map(|&v| v as f64).sum()
    };
    check("kl", &stats, &d, &f);

    let f = |s: &[f32]| {
        let mut out = vec![0.0; rows * stride];
        loss::reparam_forward(&mut out, stride, s, &eps, z);
        dot(&out, &rw)
    };
    let mut d = vec![0.0; rows * 2 * z];
    loss::reparam_backward(&mut d, &rw, stride, &stats, &eps, z);
    check("reparam", &stats, &d, &f);
}
