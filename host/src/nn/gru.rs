//! A GRU layer over batches of sequences, for the audio family's
//! WaveRNN-style candidate: a small recurrent state carries a whole
//! spoken digit (4,000 samples at 8 kHz) where a transformer would need
//! that many positions of context.
//!
//! PyTorch's cell (ONNX's `GRU` with `linear_before_reset = 1`):
//!
//! ```text
//! r  = sigmoid(x W_ir^T + b_ir + h W_hr^T + b_hr)
//! z  = sigmoid(x W_iz^T + b_iz + h W_hz^T + b_hz)
//! n  = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn))
//! h' = (1 - z) * n + z * h
//! ```
//!
//! The weights are PyTorch's `weight_ih_l0` `(3H, I)` and `weight_hh_l0`
//! `(3H, H)`, rows `[r; z; n]`, each with its bias, so the twin's
//! parameters load as they are. Buffers are time-major (`(T, B, .)`): the
//! input projection of every step is one GEMM, and each step's hidden
//! state is a contiguous `(B, H)` block for the step's recurrent GEMM.
//! The backward keeps every step's recurrent gradient, so the weight
//! gradients are two GEMMs over all steps rather than one per step.

use super::gemm::{Threads, gemm};
use super::linear::Linear;
use super::params::Layout;
use crate::rng::Rng;

/// A GRU layer's place in the buffers and its sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gru {
    /// `weight_ih` `(3H, I)` and `bias_ih` `(3H)`.
    pub ih: Linear,
    /// `weight_hh` `(3H, H)` and `bias_hh` `(3H)`.
    pub hh: Linear,
    /// Input features I.
    pub inp: usize,
    /// Hidden size H.
    pub hidden: usize,
}

/// What the forward keeps for the backward, for `T` steps of `B`
/// sequences; allocated once.
#[derive(Debug, Clone, PartialEq)]
pub struct GruActs {
    /// Steps T.
    pub steps: usize,
    /// Sequences B.
    pub batch: usize,
    /// `(T, B, 3H)`: input projections, then (backward) their gradients.
    gx: Vec<f32>,
    /// `(T, B, 3H)`: recurrent projections, then their gradients.
    gh: Vec<f32>,
    /// `(T, B, H)` each: the gates and the candidate.
    r: Vec<f32>,
    z: Vec<f32>,
    n: Vec<f32>,
    /// `(T + 1, B, H)`: the hidden states, the initial one first; steps
    /// `1..=T` are the layer's output.
    pub h: Vec<f32>,
    /// `(B, H)` twice: the running state gradient.
    dh: Vec<f32>,
    dh_next: Vec<f32>,
}

impl GruActs {
    /// Buffers for `steps` steps of `batch` sequences of `g`.
    pub fn new(g: &Gru, steps: usize, batch: usize) -> Self {
        let (tb, h) = (steps * batch, g.hidden);
        Self {
            steps,
            batch,
            gx: vec![0.0; tb * 3 * h],
            gh: vec![0.0; tb * 3 * h],
            r: vec![0.0; tb * h],
            z: vec![0.0; tb * h],
            n: vec![0.0; tb * h],
            h: vec![0.0; (steps + 1) * batch * h],
            dh: vec![0.0; batch * h],
            dh_next: vec![0.0; batch * h],
        }
    }

    /// The outputs, `(T, B, H)`.
    pub fn out(&self) -> &[f32] {
        // Past the initial state's (B, H) block, which `dh` matches.
        &self.h[self.dh.len()..]
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl Gru {
    /// Registers `{name}.weight_ih`, `{name}.bias_ih`, `{name}.weight_hh`
    /// and `{name}.bias_hh`.
    pub fn new(layout: &mut Layout, name: &str, inp: usize, hidden: usize) -> Self {
        let ih = Linear {
            offset: layout.push(format!("{name}.weight_ih"), &[3 * hidden, inp]),
            inp,
            out: 3 * hidden,
            int8_inputs: false,
        };
        layout.push(format!("{name}.bias_ih"), &[3 * hidden]);
        let hh = Linear {
            offset: layout.push(format!("{name}.weight_hh"), &[3 * hidden, hidden]),
            inp: hidden,
            out: 3 * hidden,
            int8_inputs: false,
        };
        layout.push(format!("{name}.bias_hh"), &[3 * hidden]);
        Self {
            ih,
            hh,
            inp,
            hidden,
        }
    }

    /// PyTorch's default: everything uniform in ±1/sqrt(H).
    pub fn init(&self, params: &mut [f32], rng: &mut Rng) {
        let bound = 1.0 / (self.hidden as f32).sqrt();
        for l in [self.ih, self.hh] {
            for p in l.of_mut(params) {
                *p = (rng.uniform() * 2.0 - 1.0) * bound;
            }
        }
    }

    /// Runs `a.steps` steps over `x` `(T, B, I)` from the state in
    /// `a.h`'s first `(B, H)` block (set it before calling: zeros, or the
    /// last state of the previous window for truncated BPTT).
    pub fn forward(&self, params: &[f32], a: &mut GruActs, x: &[f32], th: Threads) {
        let (t_n, b, h) = (a.steps, a.batch, self.hidden);
        self.ih.forward(params, &mut a.gx, x, t_n * b, th);
        for t in 0..t_n {
            let (prev, next) = a.h.split_at_mut((t + 1) * b * h);
            let prev = &prev[t * b * h..];
            let next = &mut next[..b * h];
            let gh = &mut a.gh[t * b * 3 * h..(t + 1) * b * 3 * h];
            self.hh.forward(params, gh, prev, b, th);
            let gx = &a.gx[t * b * 3 * h..(t + 1) * b * 3 * h];
            let at = t * b * h..(t + 1) * b * h;
            let (r, z, n) = (&mut a.r[at.clone()], &mut a.z[at.clone()], &mut a.n[at]);
            for i in 0..b {
                let (gx, gh) = (&gx[i * 3 * h..], &gh[i * 3 * h..]);
                for j in 0..h {
                    let k = i * h + j;
                    let rv = sigmoid(gx[j] + gh[j]);
                    let zv = sigmoid(gx[h + j] + gh[h + j]);
                    let nv = (gx[2 * h + j] + rv * gh[2 * h + j]).tanh();
                    (r[k], z[k], n[k]) = (rv, zv, nv);
                    next[k] = (1.0 - zv) * nv + zv * prev[k];
                }
            }
        }
    }

    /// Adds the parameter gradients for `dout` `(T, B, H)` (the loss's
    /// gradient with respect to every step's output) to `grads`, and, if
    /// asked, writes `dx` `(T, B, I)`. The gradient at the initial state
    /// is left in [`GruActs::dh0`]. Overwrites the kept projections.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        a: &mut GruActs,
        dout: &[f32],
        x: &[f32],
        dx: Option<&mut [f32]>,
        th: Threads,
    ) {
        let (t_n, b, h) = (a.steps, a.batch, self.hidden);
        let w_hh = &self.hh.of(params)[..3 * h * h];
        a.dh.fill(0.0);
        for t in (0..t_n).rev() {
            let prev = &a.h[t * b * h..(t + 1) * b * h];
            let at = t * b * h..(t + 1) * b * h;
            let (r, z, n) = (&a.r[at.clone()], &a.z[at.clone()], &a.n[at]);
            let rows = t * b * 3 * h..(t + 1) * b * 3 * h;
            let (gx, gh) = (&mut a.gx[rows.clone()], &mut a.gh[rows]);
            let dout = &dout[t * b * h..(t + 1) * b * h];
            for i in 0..b {
                let (gx, gh) = (&mut gx[i * 3 * h..], &mut gh[i * 3 * h..]);
                for j in 0..h {
                    let k = i * h + j;
                    let dh = a.dh[k] + dout[k];
                    let (rv, zv, nv) = (r[k], z[k], n[k]);
                    let dn = dh * (1.0 - zv) * (1.0 - nv * nv);
                    let dz = dh * (prev[k] - nv) * zv * (1.0 - zv);
                    let dr = dn * gh[2 * h + j] * rv * (1.0 - rv);
                    a.dh_next[k] = dh * zv;
                    (gx[j], gx[h + j], gx[2 * h + j]) = (dr, dz, dn);
                    (gh[j], gh[h + j], gh[2 * h + j]) = (dr, dz, dn * rv);
                }
            }
            // dh_prev = dh * z + dgh W_hh.
            gemm(
                &mut a.dh_next,
                gh,
                false,
                w_hh,
                false,
                (b, h, 3 * h),
                1.0,
                true,
                th,
            );
            std::mem::swap(&mut a.dh, &mut a.dh_next);
        }
        // Weight gradients over all steps at once.
        let tb = t_n * b;
        self.hh
            .backward(params, grads, None, &a.gh, &a.h[..tb * h], tb, th);
        match dx {
            Some(dx) => {
                self.ih
                    .backward_into(params, grads, &mut dx[..tb * self.inp], &a.gx, x, tb, th)
            }
            None => self.ih.backward(params, grads, None, &a.gx, x, tb, th),
        }
    }
}

impl GruActs {
    /// After [`Gru::backward`]: the gradient at the initial state, `(B,
    /// H)`.
    pub fn dh0(&self) -> &[f32] {
        &self.dh
    }
}
