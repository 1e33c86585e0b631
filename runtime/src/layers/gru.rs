//! One GRU step, for recurrent sampling on the device: the state lives in
//! the caller's memory and each step reads every weight once, in place.
//!
//! PyTorch's cell (ONNX `GRU` with `linear_before_reset = 1`), gate rows
//! `[r; z; n]`:
//!
//! ```text
//! gx = W_ih x + b_ih,  gh = W_hh h + b_hh          (3H each)
//! r = sigmoid(gx_r + gh_r),  z = sigmoid(gx_z + gh_z)
//! n = tanh(gx_n + r * gh_n)
//! h' = (1 - z) * n + z * h
//! ```

use super::Dense;
use crate::kernels;
use crate::math::Math;

/// A GRU cell's weights, read in place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gru<'a> {
    /// `W_ih` `(3H, I)` and `b_ih`.
    pub ih: Dense<'a>,
    /// `W_hh` `(3H, H)` and `b_hh`.
    pub hh: Dense<'a>,
}

/// Floats of scratch a step of a cell with `hidden` units needs: both
/// projections.
pub const fn scratch_len(hidden: usize) -> usize {
    6 * hidden
}

impl Gru<'_> {
    /// H.
    pub fn hidden(&self) -> usize {
        self.hh.w.cols
    }

    /// I.
    pub fn input(&self) -> usize {
        self.ih.w.cols
    }

    /// Multiply-adds per step.
    pub fn macs(&self) -> usize {
        self.ih.macs() + self.hh.macs()
    }

    /// Advances the state `h` (H values) by one input `x` (I values), with
    /// the math functions of `M`. The caller checks the lengths (`x` is
    /// `I`, `h` is `H`, `scratch` at least [`scratch_len`]); the shapes
    /// were checked at load (`3H` rows in both, `H` columns in `W_hh`).
    pub fn step_with<M: Math>(&self, x: &[f32], h: &mut [f32], scratch: &mut [f32]) {
        let n = self.hidden();
        let (gx, rest) = scratch.split_at_mut(3 * n);
        let gh = &mut rest[..3 * n];
        kernels::matvec(gx, &self.ih.w, x, |r| self.ih.b.get(r));
        kernels::matvec(gh, &self.hh.w, h, |r| self.hh.b.get(r));
        // The gates' pre-activations in place in gx, then each activation
        // over a whole slice (vectorized).
        let (rz, gx_n) = gx.split_at_mut(2 * n);
        let (gh_rz, gh_n) = gh.split_at(2 * n);
        rz.iter_mut().zip(gh_rz).for_each(|(a, &b)| *a += b);
        M::sigmoid_slice(rz);
        let (r, z) = rz.split_at(n);
        for j in 0..n {
            gx_n[j] += r[j] * gh_n[j];
        }
        M::tanh_slice(gx_n);
        for j in 0..n {
            h[j] = (1.0 - z[j]) * gx_n[j] + z[j] * h[j];
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::layers::{load_matrix, load_vector};
    use crate::math::DefaultMath;
    use edgegen_format::quant::{BlockQ8_0, QK8_0};
    use edgegen_format::{GgmlType, Gguf, GgufWriter, TensorName};
    use std::vec::Vec;

    fn rand(seed: &mut u32, n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                ((*seed >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }

    /// The weights as the file stores them, widened back (what the
    /// reference computes with).
    fn stored(w: &[f32], cols: usize, ty: GgmlType) -> Vec<f32> {
        match ty {
            GgmlType::F32 => w.to_vec(),
            GgmlType::F16 => w.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect(),
            _ => w
                .chunks_exact(cols)
                .flat_map(|row| {
                    let mut r = row.to_vec();
                    r.resize(cols.div_ceil(QK8_0) * QK8_0, 0.0);
                    r.chunks_exact(QK8_0)
                        .flat_map(|c| {
                            let b = BlockQ8_0::quantize(c.try_into().unwrap());
                            (0..QK8_0).map(move |i| b.scale() * b.qs[i] as f32)
                        })
                        .take(cols)
                        .collect::<Vec<_>>()
                })
                .collect(),
        }
    }

    /// Steps on every weight type against the formulas in f64 over the
    /// stored (rounded) weights, with the state fed back.
    #[test]
    fn steps_match_the_formulas() {
        let (i_n, h_n) = (5, 7);
        let mut seed = 3;
        let w_ih = rand(&mut seed, 3 * h_n * i_n, 0.8);
        let w_hh = rand(&mut seed, 3 * h_n * h_n, 0.8);
        let b_ih = rand(&mut seed, 3 * h_n, 0.3);
        let b_hh = rand(&mut seed, 3 * h_n, 0.3);
        for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
            let mut w = GgufWriter::new();
            let mut add = |name: &str, v: &[f32], rows: usize, cols: usize| {
                let (data, stride) = if ty == GgmlType::Q8_0 {
                    let s = cols.div_ceil(QK8_0) * QK8_0;
                    let mut d = Vec::new();
                    for r in v.chunks_exact(cols) {
                        d.extend_from_slice(r);
                        d.resize(d.len() + s - cols, 0.0);
                    }
                    (d, s)
                } else {
                    (v.to_vec(), cols)
                };
                w.add_tensor(name, &[stride as u64, rows as u64], ty, &data)
                    .unwrap();
            };
            add("ih", &w_ih, 3 * h_n, i_n);
            add("hh", &w_hh, 3 * h_n, h_n);
            w.add_tensor("bi", &[3 * h_n as u64], GgmlType::F32, &b_ih)
                .unwrap();
            w.add_tensor("bh", &[3 * h_n as u64], GgmlType::F32, &b_hh)
                .unwrap();
            let bytes = w.to_bytes();
            let g = Gguf::parse(&bytes).unwrap();
            let cell = Gru {
                ih: Dense {
                    w: load_matrix(&g, TensorName::fixed("ih"), 3 * h_n, i_n).unwrap(),
                    b: load_vector(&g, TensorName::fixed("bi"), 3 * h_n).unwrap(),
                },
                hh: Dense {
                    w: load_matrix(&g, TensorName::fixed("hh"), 3 * h_n, h_n).unwrap(),
                    b: load_vector(&g, TensorName::fixed("bh"), 3 * h_n).unwrap(),
                },
            };
            assert_eq!(
                (cell.input(), cell.hidden(), cell.macs()),
                (i_n, h_n, 3 * h_n * (i_n + h_n))
            );
            let (wi, wh) = (stored(&w_ih, i_n, ty), stored(&w_hh, h_n, ty));
            let mut h = rand(&mut seed, h_n, 0.5);
            let mut want: Vec<f64> = h.iter().map(|&v| v as f64).collect();
            let mut scratch = std::vec![f32::NAN; scratch_len(h_n)];
            for step in 0..6 {
                let x = rand(&mut seed, i_n, 1.0);
                cell.step_with::<DefaultMath>(&x, &mut h, &mut scratch);
                let dot = |w: &[f32], row: usize, v: &[f64]| -> f64 {
                    v.iter()
                        .enumerate()
                        .map(|(c, &x)| w[row * v.len() + c] as f64 * x)
                        .sum()
                };
                let xv: Vec<f64> = x.iter().map(|&v| v as f64).collect();
                let g = |k: usize| {
                    (
                        dot(&wi, k, &xv) + b_ih[k] as f64,
                        dot(&wh, k, &want) + b_hh[k] as f64,
                    )
                };
                let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
                let next: Vec<f64> = (0..h_n)
                    .map(|j| {
                        let ((xr, hr), (xz, hz), (xn, hn)) = (g(j), g(h_n + j), g(2 * h_n + j));
                        let (r, z) = (sig(xr + hr), sig(xz + hz));
                        let n = (xn + r * hn).tanh();
                        (1.0 - z) * n + z * want[j]
                    })
                    .collect();
                want = next;
                for (j, (&a, &b)) in h.iter().zip(&want).enumerate() {
                    assert!(
                        (a as f64 - b).abs() < 2e-6,
                        "{ty:?} step {step} unit {j}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
