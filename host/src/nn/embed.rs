//! A lookup table: row `i` of a `(K, D)` matrix for index `i`. The
//! conditional GAN's generator takes its label this way; later the text
//! family takes its tokens. Embeddings never decay.

use super::params::Layout;
use crate::rng::Rng;

/// An embedding's place in the buffers and its sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Embedding {
    /// Offset of the table.
    pub offset: usize,
    /// Rows (K).
    pub n: usize,
    /// Width (D).
    pub d: usize,
}

impl Embedding {
    /// Registers `{name}.weight` `(n, d)`, without weight decay.
    pub fn new(layout: &mut Layout, name: &str, n: usize, d: usize) -> Self {
        let offset = layout.push_no_decay(format!("{name}.weight"), &[n, d]);
        Self { offset, n, d }
    }

    /// PyTorch's default: N(0, 1).
    pub fn init(&self, params: &mut [f32], rng: &mut Rng) {
        for p in &mut params[self.offset..self.offset + self.n * self.d] {
            *p = rng.normal();
        }
    }

    /// `out[b] = table[idx[b]]` for each of `idx`; an index past the table
    /// gives zeros (the callers check labels on the way in).
    pub fn forward(&self, params: &[f32], out: &mut [f32], idx: &[u32]) {
        let d = self.d;
        let table = &params[self.offset..self.offset + self.n * d];
        for (o, &i) in out.chunks_exact_mut(d).zip(idx) {
            match table.get(i as usize * d..(i as usize + 1) * d) {
                Some(row) => o.copy_from_slice(row),
                None => o.fill(0.0),
            }
        }
    }

    /// `out[b] += table[idx[b]]`: a per-index bias, as the conditional VAE
    /// adds its label to each decoder layer. Indices past the table add nothing.
    pub fn forward_add(&self, params: &[f32], out: &mut [f32], idx: &[u32]) {
        let d = self.d;
        let table = &params[self.offset..self.offset + self.n * d];
        for (o, &i) in out.chunks_exact_mut(d).zip(idx) {
            if let Some(row) = table.get(i as usize * d..(i as usize + 1) * d) {
                o.iter_mut().zip(row).for_each(|(o, r)| *o += r);
            }
        }
    }

    /// `dtable[idx[b]] += dout[b]`.
    pub fn backward(&self, grads: &mut [f32], dout: &[f32], idx: &[u32]) {
        let d = self.d;
        let table = &mut grads[self.offset..self.offset + self.n * d];
        for (g, &i) in dout.chunks_exact(d).zip(idx) {
            if let Some(row) = table.get_mut(i as usize * d..(i as usize + 1) * d) {
                super::fastmath::add_assign(row, g);
            }
        }
    }
}
