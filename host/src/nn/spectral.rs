//! Spectral normalization (Miyato et al., 2018): a weight `W` (`rows`
//! output channels by `cols` inputs, a kernel flattened) is used as
//! `W / sigma`, with `sigma` its largest singular value, estimated by one
//! power iteration per update from a vector `u` kept between updates.
//!
//! Why: it bounds each layer's Lipschitz constant, so a discriminator
//! cannot sharpen its scores without limit; SNGAN uses it without batch
//! norm in the discriminator, as [`crate::models::gan`] does when asked.
//!
//! As in PyTorch's `spectral_norm`, `u` and `v` are constants to the
//! gradient: `sigma = u^T W v`, so `dL/dW = (G - <G, W_sn> u v^T) / sigma`
//! with `G = dL/dW_sn`. The layers themselves run on a copy of the
//! parameters whose normalized weights are `W_sn`, and never know.

use super::fastmath::lanes2;
use super::params::Layout;
use crate::rng::Rng;

/// Below this, a norm counts as zero (PyTorch's `eps`).
const EPS: f32 = 1e-12;

/// One normalized weight: where it is, its matrix shape, and where its
/// `u` (`rows`), `v` (`cols`) and `sigma` (1) are in the buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpectralNorm {
    /// Offset of `W` in the parameters.
    pub weight: usize,
    /// Output channels.
    pub rows: usize,
    /// Inputs per output channel.
    pub cols: usize,
    /// Offset of `u` in the buffers; `v` and `sigma` follow it.
    pub buf: usize,
}

/// `x / max(|x|, EPS)` in place.
fn normalize(x: &mut [f32]) {
    let norm = x.iter().map(|v| v * v).sum::<f32>().sqrt().max(EPS);
    x.iter_mut().for_each(|v| *v /= norm);
}

impl SpectralNorm {
    /// Registers `{name}.sn_u` `(rows)`, `{name}.sn_v` `(cols)` and
    /// `{name}.sn_sigma` `(1)` as buffers for the weight at `weight`.
    pub fn new(buffers: &mut Layout, name: &str, weight: usize, rows: usize, cols: usize) -> Self {
        let buf = buffers.push(format!("{name}.sn_u"), &[rows]);
        buffers.push(format!("{name}.sn_v"), &[cols]);
        buffers.push(format!("{name}.sn_sigma"), &[1]);
        Self {
            weight,
            rows,
            cols,
            buf,
        }
    }

    /// `u` a random unit vector (PyTorch's start), `v` zero, `sigma` 1.
    pub fn init(&self, buffers: &mut [f32], rng: &mut Rng) {
        let (u, rest) =
            buffers[self.buf..self.buf + self.rows + self.cols + 1].split_at_mut(self.rows);
        u.iter_mut().for_each(|x| *x = rng.normal());
        normalize(u);
        rest.fill(0.0);
        rest[self.cols] = 1.0;
    }

    /// One power iteration from the stored `u`: `v = W^T u / |.|`, then
    /// `u = W v / |.|`, both stored; [`SpectralNorm::apply`] takes sigma
    /// from them.
    pub fn iterate(&self, params: &[f32], buffers: &mut [f32]) {
        let (r, c) = (self.rows, self.cols);
        let w = &params[self.weight..self.weight + r * c];
        let (u, v) = buffers[self.buf..self.buf + r + c].split_at_mut(r);
        v.fill(0.0);
        for (row, &ui) in w.chunks_exact(c).zip(u.iter()) {
            v.iter_mut().zip(row).for_each(|(vj, &wj)| *vj += ui * wj);
        }
        normalize(v);
        for (ui, row) in u.iter_mut().zip(w.chunks_exact(c)) {
            *ui = lanes2(row, v, |a, b| a * b);
        }
        normalize(u);
    }

    /// `eff`'s copy of the weight becomes `W / sigma`, with `sigma = u^T W
    /// v` from the stored `u` and `v`, recomputed so that the gradient's
    /// `sigma` is the forward's to the bit.
    pub fn apply(&self, params: &[f32], eff: &mut [f32], buffers: &mut [f32]) {
        let (r, c) = (self.rows, self.cols);
        let w = &params[self.weight..self.weight + r * c];
        let (u, rest) = buffers[self.buf..self.buf + r + c + 1].split_at_mut(r);
        let (v, sigma) = rest.split_at_mut(c);
        let s: f32 = w
            .chunks_exact(c)
            .zip(u.iter())
            .map(|(row, &ui)| ui * lanes2(row, v, |a, b| a * b))
            .sum();
        sigma[0] = s.max(EPS);
        let inv = 1.0 / sigma[0];
        for (o, &x) in eff[self.weight..self.weight + r * c].iter_mut().zip(w) {
            *o = x * inv;
        }
    }

    /// Turns the gradient for `W_sn` (what the layer's backward added into
    /// `grads`) into the gradient for `W`. `eff` holds `W_sn`.
    pub fn backward(&self, grads: &mut [f32], eff: &[f32], buffers: &[f32]) {
        let (r, c) = (self.rows, self.cols);
        let range = self.weight..self.weight + r * c;
        let (u, rest) = buffers[self.buf..self.buf + r + c + 1].split_at(r);
        let (v, sigma) = rest.split_at(c);
        let g = &mut grads[range.clone()];
        let dot: f32 = g.iter().zip(&eff[range]).map(|(a, b)| a * b).sum();
        let inv = 1.0 / sigma[0];
        for (row, &ui) in g.chunks_exact_mut(c).zip(u) {
            let k = dot * ui;
            row.iter_mut()
                .zip(v)
                .for_each(|(gj, &vj)| *gj = (*gj - k * vj) * inv);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The power iteration converges to the largest singular value of a
    /// matrix whose singular values are known: diag(3, 2, 1) rotated.
    #[test]
    fn iteration_finds_the_largest_singular_value() {
        let mut layout = Layout::default();
        let sn = SpectralNorm::new(&mut layout, "w", 0, 3, 4);
        let mut buffers = vec![0f32; layout.total()];
        sn.init(&mut buffers, &mut Rng::new(3));
        // Rows scaled 3, 2, 1 of an orthonormal-row matrix (a 4x4 Hadamard / 2).
        let h = [
            [0.5, 0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5, -0.5],
            [0.5, 0.5, -0.5, -0.5],
        ];
        let w: Vec<f32> = h
            .iter()
            .zip([3.0, 2.0, 1.0])
            .flat_map(|(row, s)| row.iter().map(move |x| x * s))
            .collect();
        for _ in 0..60 {
            sn.iterate(&w, &mut buffers);
        }
        let mut eff = vec![0f32; w.len()];
        sn.apply(&w, &mut eff, &mut buffers);
        let sigma = buffers[sn.buf + 3 + 4];
        assert!((sigma - 3.0).abs() < 1e-4, "sigma {sigma}");
        for (e, x) in eff.iter().zip(&w) {
            assert!((e - x / 3.0).abs() < 1e-5);
        }
    }

    /// The gradient for W against central differences of a loss of
    /// `W / (u^T W v)` with `u` and `v` held.
    #[test]
    fn backward_matches_finite_differences() {
        let (r, c) = (3, 5);
        let mut layout = Layout::default();
        let sn = SpectralNorm::new(&mut layout, "w", 0, r, c);
        let mut buffers = vec![0f32; layout.total()];
        let mut rng = Rng::new(11);
        sn.init(&mut buffers, &mut rng);
        let w: Vec<f32> = (0..r * c).map(|_| rng.normal()).collect();
        let coef: Vec<f32> = (0..r * c).map(|_| rng.normal()).collect();
        sn.iterate(&w, &mut buffers);
        // L = sum(coef * W_sn^2) / 2, so dL/dW_sn = coef * W_sn.
        let loss = |w: &[f32], buffers: &mut [f32]| -> f64 {
            let mut eff = vec![0f32; w.len()];
            sn.apply(w, &mut eff, buffers);
            eff.iter()
                .zip(&coef)
                .map(|(e, k)| 0.5 * (*k as f64) * (*e as f64).powi(2))
                .sum()
        };
        let mut eff = vec![0f32; w.len()];
        sn.apply(&w, &mut eff, &mut buffers);
        let mut g: Vec<f32> = eff.iter().zip(&coef).map(|(e, k)| e * k).collect();
        sn.backward(&mut g, &eff, &buffers);
        let h = 1e-3f32;
        for i in 0..w.len() {
            let (mut a, mut b) = (w.clone(), w.clone());
            a[i] += h;
            b[i] -= h;
            let mut bufs = buffers.clone();
            let fd = (loss(&a, &mut bufs) - loss(&b, &mut bufs)) / (2.0 * h as f64);
            assert!(
                (fd - g[i] as f64).abs() < 2e-3 * (1.0 + fd.abs()),
                "dW[{i}]: analytic {} vs numeric {fd}",
                g[i]
            );
        }
    }
}
