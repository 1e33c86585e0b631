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
    check_with(name, x, analytic, f, 1e-2)
}

/// [`check`] with step `h`.
fn check_with(name: &str, x: &[f32], analytic: &[f32], f: &dyn Fn(&[f32]) -> f64, h: f32) {
    check_every(name, x, analytic, f, h, 1)
}

/// [`check_with`] at every `every`th input only (for inputs too many to
/// differentiate each).
fn check_every(
    name: &str,
    x: &[f32],
    analytic: &[f32],
    f: &dyn Fn(&[f32]) -> f64,
    h: f32,
    every: usize,
) {
    let mut xp = x.to_vec();
    let mut worst = 0f64;
    for i in (0..x.len()).step_by(every) {
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

/// The GRU through time, from a non-zero initial state: every parameter,
/// the inputs and the initial state against central differences, on two
/// threads (the recurrent GEMMs split).
#[test]
fn gru_backward_matches_finite_differences() {
    use super::gru::{Gru, GruActs};
    let mut r = Rng::new(21);
    let (t_n, b, i_n, h) = (5, 2, 3, 4);
    let mut layout = Layout::default();
    let g = Gru::new(&mut layout, "gru", i_n, h);
    let mut params = vec![0.0; layout.total()];
    g.init(&mut params, &mut r);
    // Larger weights than the init's, so that the gates saturate somewhat.
    params.iter_mut().for_each(|p| *p *= 3.0);
    let x = randn(&mut r, t_n * b * i_n);
    let h0: Vec<f32> = randn(&mut r, b * h).iter().map(|v| 0.5 * v).collect();
    let rw = randn(&mut r, t_n * b * h);
    let th = Threads(2);
    let loss = |p: &[f32], x: &[f32], h0: &[f32]| {
        let mut a = GruActs::new(&g, t_n, b);
        a.h[..b * h].copy_from_slice(h0);
        g.forward(p, &mut a, x, th);
        dot(a.out(), &rw)
    };
    let mut a = GruActs::new(&g, t_n, b);
    a.h[..b * h].copy_from_slice(&h0);
    g.forward(&params, &mut a, &x, th);
    let mut grads = vec![0.0; layout.total()];
    let mut dx = vec![f32::NAN; t_n * b * i_n];
    g.backward(&params, &mut grads, &mut a, &rw, &x, Some(&mut dx), th);
    check("gru dx", &x, &dx, &|xx| loss(&params, xx, &h0));
    check("gru dh0", &h0, a.dh0(), &|hh| loss(&params, &x, hh));
    check("gru dparams", &params, &grads, &|pp| loss(pp, &x, &h0));
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
    // GELU's vector kernels (forward, and the backward that writes) against
    // its formula in f64, over many vectors of inputs. (Below about -5,
    // f32's tanh is -1 and the true values, under 1e-5, come out as 0.)
    let x: Vec<f32> = (0..4001).map(|i| (i as f32 - 2000.0) / 200.0).collect();
    let g = randn(&mut r, x.len());
    let (mut y, mut dx) = (vec![0.0; x.len()], vec![f32::NAN; x.len()]);
    act::forward(Activation::Gelu, &mut y, &x);
    act::backward_into(Activation::Gelu, &mut dx, &x, &y, &g);
    for ((&x, (&y, &d)), &g) in x.iter().zip(y.iter().zip(&dx)).zip(&g) {
        let x = x as f64;
        let u = (2.0 / std::f64::consts::PI).sqrt() * (x + 0.044715 * x * x * x);
        let du = (2.0 / std::f64::consts::PI).sqrt() * (1.0 + 3.0 * 0.044715 * x * x);
        let t = u.tanh();
        let want = 0.5 * x * (1.0 + t);
        let dwant = g as f64 * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du);
        assert!(
            (y as f64 - want).abs() < 1e-5 * want.abs().max(1.0),
            "gelu({x}) = {y}, not {want}"
        );
        assert!(
            (d as f64 - dwant).abs() < 1e-5 * dwant.abs().max(1.0),
            "gelu'({x}) = {d}, not {dwant}"
        );
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
fn softmax_cross_entropy_backward_matches_finite_differences() {
    let mut r = Rng::new(10);
    let (rows, k) = (4, 5);
    let logits = randn(&mut r, rows * k);
    let labels = [0u32, 4, 2, 2];
    let mut l = vec![0.0; rows];
    let mut g = vec![0.0; rows * k];
    loss::softmax_cross_entropy(&mut l, Some(&mut g), &logits, &labels, k, 1.0);
    let f = |x: &[f32]| {
        let mut l = vec![0.0; rows];
        loss::softmax_cross_entropy(&mut l, None, x, &labels, k, 1.0);
        l.iter().map(|&v| v as f64).sum()
    };
    check("softmax cross-entropy", &logits, &g, &f);
    // The in-place form (training's) gives the same loss and gradient,
    // on rows longer than the max's and the sum's lanes.
    let (rows, k) = (3, 37);
    let logits: Vec<f32> = randn(&mut r, rows * k).iter().map(|v| 4.0 * v).collect();
    let labels = [36u32, 0, 17];
    let (mut l, mut g) = (vec![0.0; rows], vec![0.0; rows * k]);
    loss::softmax_cross_entropy(&mut l, Some(&mut g), &logits, &labels, k, 0.25);
    let (mut l2, mut g2) = (vec![0.0; rows], logits.clone());
    loss::softmax_cross_entropy_in_place(&mut l2, &mut g2, &labels, k, 0.25);
    assert_eq!((&l, &g), (&l2, &g2));
    check(
        "softmax cross-entropy, long rows",
        &logits,
        &g2,
        &|x: &[f32]| {
            let mut l = vec![0.0; rows];
            loss::softmax_cross_entropy(&mut l, None, x, &labels, k, 0.25);
            // The losses are not scaled; the gradient is.
            0.25 * l.iter().map(|&v| v as f64).sum::<f64>()
        },
    );
    // Uniform logits cost log k.
    let mut l = vec![0.0; 1];
    loss::softmax_cross_entropy(&mut l, None, &[0.3; 5], &[1], 5, 1.0);
    assert!((l[0] - 5f32.ln()).abs() < 1e-6);
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

#[test]
fn conv_and_transposed_conv_backwards_match_finite_differences() {
    use super::conv::{Conv2d, ConvTranspose2d, Geom};
    let mut r = Rng::new(5);
    let th = Threads(2);
    // (C, H, W, OC, K, stride, pad, B): DCGAN's k4 s2 p1, a same-size 3x3,
    // and a kernel that overhangs the image.
    for &(c, h, w, oc, k, s, p, b) in &[
        (2, 6, 6, 3, 4, 2, 1, 2),
        (2, 4, 5, 2, 3, 1, 1, 2),
        (1, 3, 3, 2, 5, 2, 2, 1),
    ] {
        let g = Geom::new(c, h, w, k, s, p).unwrap();
        let mut layout = Layout::default();
        let conv = Conv2d::new(&mut layout, "c", g, oc);
        let mut params = vec![0.0; layout.total()];
        conv.init(&mut params, &mut r);
        let x = randn(&mut r, b * g.image_len());
        let rw = randn(&mut r, b * conv.out_len());
        let mut scratch = vec![0.0; conv.scratch_len(2)];
        let loss = |p: &[f32], x: &[f32]| {
            let mut y = vec![0.0; b * conv.out_len()];
            let mut sc = vec![0.0; conv.scratch_len(2)];
            conv.forward(p, &mut y, x, b, &mut sc, th);
            dot(&y, &rw)
        };
        let mut grads = vec![0.0; layout.total()];
        let mut dx = vec![0.0; x.len()];
        conv.backward(
            &params,
            Some(&mut grads),
            Some(&mut dx),
            &rw,
            &x,
            b,
            &mut scratch,
            th,
        );
        check("conv dx", &x, &dx, &|xx| loss(&params, xx));
        check("conv dparams", &params, &grads, &|pp| loss(pp, &x));

        // The transposed convolution from (oc, oh, ow) back to (c, h, w).
        let mut layout = Layout::default();
        let t = ConvTranspose2d::new(&mut layout, "t", (oc, g.oh, g.ow), c, k, s, p);
        // Not every conv's output maps back to the same size (strides that
        // drop pixels); those that do not are skipped by construction.
        let Some(t) = t else { continue };
        let mut params = vec![0.0; layout.total()];
        t.init(&mut params, &mut r);
        let x = randn(&mut r, b * t.in_len());
        let rw = randn(&mut r, b * t.out_len());
        let loss = |p: &[f32], x: &[f32]| {
            let mut y = vec![0.0; b * t.out_len()];
            let mut sc = vec![0.0; t.scratch_len(2)];
            t.forward(p, &mut y, x, b, &mut sc, th);
            dot(&y, &rw)
        };
        let mut scratch = vec![0.0; t.scratch_len(2)];
        let mut grads = vec![0.0; layout.total()];
        let mut dx = vec![0.0; x.len()];
        t.backward(
            &params,
            Some(&mut grads),
            Some(&mut dx),
            &rw,
            &x,
            b,
            &mut scratch,
            th,
        );
        check("convT dx", &x, &dx, &|xx| loss(&params, xx));
        check("convT dparams", &params, &grads, &|pp| loss(pp, &x));
    }
}

#[test]
fn batch_norm_backward_matches_finite_differences_in_1d_and_2d() {
    use super::norm::BatchNorm;
    let mut r = Rng::new(6);
    for &(b, c, s) in &[(4, 3, 1), (2, 3, 5)] {
        let (mut pl, mut bl) = (Layout::default(), Layout::default());
        let bn = BatchNorm::new(&mut pl, &mut bl, "bn", c, s);
        let mut params = vec![0.0; pl.total()];
        let mut buffers = vec![0.0; bl.total()];
        bn.init(&mut params, &mut buffers);
        // A scale and shift away from (1, 0), so both gradients show.
        for (i, p) in params.iter_mut().enumerate() {
            *p += 0.3 * (i as f32 - 2.0);
        }
        let x: Vec<f32> = randn(&mut r, b * c * s)
            .iter()
            .map(|v| 2.0 * v + 0.5)
            .collect();
        let rw = randn(&mut r, b * c * s);
        let loss = |p: &[f32], x: &[f32]| {
            let mut y = vec![0.0; x.len()];
            let mut saved = vec![0.0; bn.saved_len()];
            let mut buf = buffers.clone();
            bn.forward_train(p, &mut buf, &mut y, x, b, &mut saved);
            dot(&y, &rw)
        };
        let mut y = vec![0.0; x.len()];
        let mut saved = vec![0.0; bn.saved_len()];
        let mut buf = buffers.clone();
        bn.forward_train(&params, &mut buf, &mut y, &x, b, &mut saved);
        // Normalized per channel: mean 0 and variance 1 before the affine.
        let (mut grads, mut dx) = (vec![0.0; pl.total()], vec![0.0; x.len()]);
        bn.backward(&params, &mut grads, &mut dx, &rw, &x, b, &saved);
        check("bn dx", &x, &dx, &|xx| loss(&params, xx));
        check("bn dparams", &params, &grads, &|pp| loss(pp, &x));
        // The running statistics moved a tenth of the way to the batch's,
        // and eval mode with running statistics equal to the batch's
        // (biased variance) gives the training output.
        let (rm, _) = bn.running(&buf);
        let mean0: f32 = (0..b)
            .flat_map(|i| x[i * c * s..i * c * s + s].to_vec())
            .sum::<f32>()
            / (b * s) as f32;
        assert!(
            (rm[0] - 0.1 * mean0).abs() < 1e-5,
            "{} vs {}",
            rm[0],
            0.1 * mean0
        );
        let mut same = buffers.clone();
        let (m, rs) = saved.split_at(c);
        for ch in 0..c {
            same[bn.buf_offset + ch] = m[ch];
            same[bn.buf_offset + c + ch] = 1.0 / (rs[ch] * rs[ch]) - super::norm::EPS;
        }
        let mut y2 = vec![0.0; x.len()];
        bn.forward_eval(&params, &same, &mut y2, &x, b);
        for (a, e) in y.iter().zip(&y2) {
            assert!((a - e).abs() < 1e-3, "{a} vs {e}");
        }
    }
}

#[test]
fn embedding_and_dropout_backwards_match_finite_differences() {
    use super::embed::Embedding;
    let mut r = Rng::new(7);
    let mut layout = Layout::default();
    let e = Embedding::new(&mut layout, "emb", 4, 3);
    assert!(!layout.entries[0].decay, "embeddings never decay");
    let mut params = vec![0.0; layout.total()];
    e.init(&mut params, &mut r);
    let idx = [2u32, 0, 2, 3, 9];
    let rw = randn(&mut r, idx.len() * 3);
    let loss = |p: &[f32]| {
        let mut y = vec![0.0; idx.len() * 3];
        e.forward(p, &mut y, &idx);
        dot(&y, &rw)
    };
    let mut grads = vec![0.0; layout.total()];
    e.backward(&mut grads, &rw, &idx);
    check("embedding", &params, &grads, &loss);

    let x = randn(&mut r, 50);
    let rw = randn(&mut r, 50);
    let mut mask = vec![0.0; 50];
    let mut y = vec![0.0; 50];
    super::dropout::forward(&mut y, &x, &mut mask, 0.3, &mut Rng::new(8));
    let dropped = mask.iter().filter(|&&m| m == 0.0).count();
    assert!(
        (5..=25).contains(&dropped),
        "{dropped} of 50 dropped at p = 0.3"
    );
    assert!(
        mask.iter()
            .all(|&m| m == 0.0 || (m - 1.0 / 0.7).abs() < 1e-6)
    );
    let f = |x: &[f32]| {
        let mut y = vec![0.0; 50];
        let mut m = vec![0.0; 50];
        super::dropout::forward(&mut y, x, &mut m, 0.3, &mut Rng::new(8));
        dot(&y, &rw)
    };
    let mut dx = vec![0.0; 50];
    super::dropout::backward(&mut dx, &rw, &mask);
    check("dropout", &x, &dx, &f);
}

#[test]
fn gan_generator_and_projection_discriminator_match_finite_differences() {
    use crate::models::gan::{Gan, GanConfig, GenActs, Mode};
    let mut r = Rng::new(9);
    let m = Gan::new(GanConfig {
        image_shape: [2, 8, 4],
        latent: 3,
        n_classes: 2,
        g_width: 4,
        d_width: 2,
        spectral_norm: false,
        d_hidden: 0,
    })
    .unwrap();
    let (gl, dl) = (m.gen_.layout.total(), m.disc.layout.total());
    let (mut gp, mut dp) = (vec![0.0; gl], vec![0.0; dl]);
    let mut buffers = vec![0.0; m.buffers.total()];
    m.init(&mut gp, &mut dp, &mut buffers, &mut r);
    // Larger weights than DCGAN's 0.02, so that every path carries signal.
    gp.iter_mut().for_each(|v| *v += 0.3 * r.normal());
    dp.iter_mut().for_each(|v| *v += 0.3 * r.normal());
    let (b, th) = (3, Threads(1));
    let d = m.cfg.image_len();
    let z = randn(&mut r, b * 3);
    let labels = [1u32, 0, 1];
    let rw = randn(&mut r, b * d);
    let gen_loss = |p: &[f32]| {
        let mut a = GenActs::new(&m, b);
        a.set_input(&m.cfg, &z, &labels);
        let mut buf = buffers.clone();
        m.gen_.forward(p, &mut buf, &mut a, b, Mode::Train, th);
        dot(&a.out[..b * d], &rw)
    };
    let mut a = GenActs::new(&m, b);
    a.set_input(&m.cfg, &z, &labels);
    let mut buf = buffers.clone();
    m.gen_.forward(&gp, &mut buf, &mut a, b, Mode::Train, th);
    a.d_out[..b * d].copy_from_slice(&rw);
    let mut g = vec![0.0; gl];
    m.gen_.backward(&gp, &mut g, &mut a, b, th);
    // ReLUs between batch norms of three rows put kinks within 1e-2 of
    // some weights; 1e-3 steps over none of them.
    check_with("generator", &gp, &g, &gen_loss, 1e-3);

    check_discriminator("discriminator", &m, &dp, &buffers, &labels, &mut r, 1e-2);
}

/// Checks a discriminator's gradients for three random images (with
/// `labels`) and its parameters `dp` against central differences of step
/// `h`, the loss a random weighting of its scores.
fn check_discriminator(
    what: &str,
    m: &crate::models::gan::Gan,
    dp: &[f32],
    buffers: &[f32],
    labels: &[u32; 3],
    r: &mut Rng,
    h: f32,
) {
    use crate::models::gan::{DiscActs, Mode};
    let (b, th) = (3, Threads(1));
    let d = m.cfg.image_len();
    let x: Vec<f32> = randn(r, b * d).iter().map(|v| v.tanh()).collect();
    let rl = randn(r, b);
    let loss = |p: &[f32], x: &[f32]| {
        let mut a = DiscActs::new(m, b);
        a.x[..b * d].copy_from_slice(x);
        a.labels[..b].copy_from_slice(labels);
        let mut buf = buffers.to_vec();
        m.disc.forward(p, &mut buf, &mut a, b, Mode::Train, th);
        dot(&a.logit[..b], &rl)
    };
    let mut a = DiscActs::new(m, b);
    a.x[..b * d].copy_from_slice(&x);
    a.labels[..b].copy_from_slice(labels);
    let mut buf = buffers.to_vec();
    m.disc.forward(dp, &mut buf, &mut a, b, Mode::Train, th);
    a.d_logit[..b].copy_from_slice(&rl);
    let mut g = vec![0.0; m.disc.layout.total()];
    m.disc.backward(dp, Some(&mut g), &mut a, b, true, th);
    let dx = &a.d_x[..b * d];
    check_with(&format!("{what} dx"), &x, dx, &|xx| loss(dp, xx), h);
    check_with(&format!("{what} dparams"), dp, &g, &|pp| loss(pp, &x), h);
}

#[test]
fn spectral_norm_discriminator_matches_finite_differences() {
    use crate::models::gan::{DiscActs, Gan, GanConfig, Mode};
    let mut r = Rng::new(21);
    // With a hidden dense layer, it is normalized too (four weights).
    for d_hidden in [0, 5] {
        let m = Gan::new(GanConfig {
            image_shape: [1, 8, 8],
            latent: 3,
            n_classes: 0,
            g_width: 4,
            d_width: 2,
            spectral_norm: true,
            d_hidden,
        })
        .unwrap();
        let sn = if d_hidden > 0 { 4 } else { 3 };
        assert!(m.disc.bn.is_none() && m.disc.sn.len() == sn);
        // Stored only when set: runs from before the flag still match theirs.
        let stored = serde_json::to_value(&m.cfg).unwrap();
        assert_eq!(stored["spectral_norm"], true);
        let plain = GanConfig {
            spectral_norm: false,
            ..m.cfg.clone()
        };
        assert!(
            serde_json::to_value(&plain)
                .unwrap()
                .get("spectral_norm")
                .is_none()
        );
        let dl = m.disc.layout.total();
        let mut gp = vec![0.0; m.gen_.layout.total()];
        let mut dp = vec![0.0; dl];
        let mut buffers = vec![0.0; m.buffers.total()];
        m.init(&mut gp, &mut dp, &mut buffers, &mut r);
        dp.iter_mut().for_each(|v| *v += 0.3 * r.normal());
        // One power iteration, then u and v are held, as within a step.
        let mut eff = vec![];
        m.disc.normalized(&dp, &mut eff, &mut buffers, true);
        let (b, th) = (3, Threads(1));
        let d = m.cfg.image_len();
        let x: Vec<f32> = randn(&mut r, b * d).iter().map(|v| v.tanh()).collect();
        let rl = randn(&mut r, b);
        let loss = |p: &[f32]| {
            let mut buf = buffers.clone();
            let mut e = vec![];
            let pe = m.disc.normalized(p, &mut e, &mut buf, false).to_vec();
            let mut a = DiscActs::new(&m, b);
            a.x[..b * d].copy_from_slice(&x);
            m.disc.forward(&pe, &mut buf, &mut a, b, Mode::Train, th);
            dot(&a.logit[..b], &rl)
        };
        let mut buf = buffers.clone();
        let pe = m.disc.normalized(&dp, &mut eff, &mut buf, false).to_vec();
        let mut a = DiscActs::new(&m, b);
        a.x[..b * d].copy_from_slice(&x);
        m.disc.forward(&pe, &mut buf, &mut a, b, Mode::Train, th);
        a.d_logit[..b].copy_from_slice(&rl);
        let mut g = vec![0.0; dl];
        m.disc.backward(&pe, Some(&mut g), &mut a, b, false, th);
        m.disc.normalized_backward(&mut g, &pe, &buf);
        check_with("spectral-norm discriminator", &dp, &g, &loss, 1e-3);
    }
}

/// The discriminator's hidden dense layer: the score (and, conditional,
/// the projection) read its output, whose gradient reaches phi through
/// it; without it they read phi, as before.
#[test]
fn gan_discriminator_hidden_layer_matches_finite_differences() {
    use crate::models::gan::{Gan, GanConfig};
    let mut r = Rng::new(34);
    for (n_classes, d_hidden) in [(0, 5), (2, 5), (2, 0)] {
        let m = Gan::new(GanConfig {
            image_shape: [1, 8, 8],
            latent: 3,
            n_classes,
            g_width: 4,
            d_width: 2,
            spectral_norm: false,
            d_hidden,
        })
        .unwrap();
        let what = format!("classes {n_classes}, hidden {d_hidden}");
        let phi = 4 * 2 * 2;
        let feat = if d_hidden > 0 { d_hidden } else { phi };
        assert_eq!(
            m.disc.hidden.map(|h| (h.inp, h.out)),
            (d_hidden > 0).then_some((phi, 5))
        );
        assert_eq!(m.disc.fc.inp, feat, "{what}");
        assert_eq!(m.disc.embed.map(|e| e.d), (n_classes > 0).then_some(feat));
        // Stored only when set, as spectral_norm: runs from before it
        // still match the model they rebuild.
        let stored = serde_json::to_value(&m.cfg).unwrap();
        assert_eq!(stored.get("d_hidden").is_some(), d_hidden > 0, "{what}");
        let mut gp = vec![0.0; m.gen_.layout.total()];
        let mut dp = vec![0.0; m.disc.layout.total()];
        let mut buffers = vec![0.0; m.buffers.total()];
        m.init(&mut gp, &mut dp, &mut buffers, &mut r);
        dp.iter_mut().for_each(|v| *v += 0.3 * r.normal());
        // LeakyReLU kinks (after the batch norm of three rows, and in the
        // hidden layer) sit within 1e-3 of some inputs and weights; steps
        // of 1e-4 cross none for this seed (seed 33 puts one within 1e-4
        // of a weight: its differences move toward the analytic value as
        // the step shrinks). The f32 loss's rounding stays well under the
        // 2% tolerance.
        check_discriminator(&what, &m, &dp, &buffers, &[1, 0, 1], &mut r, 1e-4);
    }
}

#[test]
fn layernorm_matches_finite_differences() {
    use super::layernorm::LayerNorm;
    let mut r = Rng::new(31);
    // Rows shorter than the backward's 16 lanes, and rows of whole lane
    // blocks plus a tail.
    for (rows, c) in [(11, 7), (5, 37)] {
        let mut layout = Layout::default();
        let ln = LayerNorm::new(&mut layout, "ln", c);
        let mut p = vec![0.0; layout.total()];
        ln.init(&mut p);
        p.iter_mut().for_each(|v| *v += 0.5 * r.normal());
        let x: Vec<f32> = (0..rows * c)
            .map(|i| r.normal() + (i % c) as f32 * 0.3)
            .collect();
        let rw = randn(&mut r, rows * c);
        let run = |p: &[f32], x: &[f32]| {
            let (mut y, mut s) = (vec![0.0; rows * c], vec![0.0; 2 * rows]);
            ln.forward(p, &mut y, &mut s, x, rows);
            (y, s)
        };
        let (_, saved) = run(&p, &x);
        let mut g = vec![0.0; p.len()];
        let mut dx = vec![0.0; rows * c];
        ln.backward(&p, &mut g, &mut dx, &rw, &x, &saved, rows);
        check("layernorm dx", &x, &dx, &|xx| dot(&run(&p, xx).0, &rw));
        check("layernorm dparams", &p, &g, &|pp| dot(&run(pp, &x).0, &rw));
    }
}

#[test]
fn causal_attention_matches_finite_differences_and_the_textbook() {
    use super::attention::Attention;
    let mut r = Rng::new(32);
    // Multi-head, grouped-query and multi-query; then heads of 40 values
    // over 66 positions, which take every width of the kernels' register
    // blocks (four, two and one vectors of positions, two and one
    // of values), checked at every 31st input.
    for (h, kvh, b, t, c, every) in [
        (2, 2, 2, 5, 8, 1),
        (4, 2, 2, 5, 8, 1),
        (4, 1, 2, 5, 8, 1),
        (2, 1, 1, 66, 80, 31),
    ] {
        let att = Attention::new(h, kvh, c).unwrap();
        let d = c / h;
        let w = att.qkv_dim();
        let qkv = randn(&mut r, b * t * w);
        let rw = randn(&mut r, b * t * c);
        let run = |qkv: &[f32]| {
            let (mut o, mut l) = (vec![0.0; b * t * c], vec![0.0; b * h * t]);
            att.forward(&mut o, &mut l, qkv, b, t);
            (o, l)
        };
        let (out, lse) = run(&qkv);
        // The textbook: a (T, T) masked softmax per head, in f64.
        for bi in 0..b {
            for hd in 0..h {
                let kv = hd / (h / kvh);
                for i in 0..t {
                    let at = |j: usize, part: usize, e: usize| {
                        let col = match part {
                            0 => hd * d,
                            1 => c + kv * d,
                            _ => c + kvh * d + kv * d,
                        };
                        qkv[(bi * t + j) * w + col + e] as f64
                    };
                    let s: Vec<f64> = (0..=i)
                        .map(|j| {
                            (0..d).map(|e| at(i, 0, e) * at(j, 1, e)).sum::<f64>()
                                / (d as f64).sqrt()
                        })
                        .collect();
                    let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let z: f64 = s.iter().map(|v| (v - m).exp()).sum();
                    for e in 0..d {
                        let want: f64 = s
                            .iter()
                            .enumerate()
                            .map(|(j, v)| (v - m).exp() / z * at(j, 2, e))
                            .sum();
                        let got = out[(bi * t + i) * c + hd * d + e] as f64;
                        assert!(
                            (want - got).abs() < 1e-5,
                            "H {h} KV {kvh}: out[{bi},{i},{hd},{e}]: {got} vs {want}"
                        );
                    }
                    let l = lse[(bi * h + hd) * t + i] as f64;
                    assert!((l - (m + z.ln())).abs() < 1e-5);
                }
            }
        }
        // Written, not added to: what was there before does not count.
        let mut dqkv = vec![f32::NAN; qkv.len()];
        att.backward(&mut dqkv, &rw, &out, &lse, &qkv, b, t);
        check_every(
            "attention dqkv",
            &qkv,
            &dqkv,
            &|x| dot(&run(x).0, &rw),
            1e-2,
            every,
        );
        // A later query never reaches an earlier position's output: the mask.
        let mut later = qkv.clone();
        later[(t - 1) * w + c] += 1.0;
        let (o2, _) = run(&later);
        assert_eq!(&o2[..(t - 1) * c], &out[..(t - 1) * c]);
    }
}
