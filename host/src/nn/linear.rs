//! The fully connected layer: `out = inp W^T + b`, with W `(OC, IC)`.
//!
//! Its weight and bias sit next to each other in the flat buffers (W first),
//! so one slice of `OC * IC + OC` values is the whole layer, in parameters
//! and in gradients alike.

use super::gemm::{Threads, gemm};
use super::params::Layout;
use crate::rng::Rng;
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `[values, exact ties, near ties]` over every input that a layer with
/// [`Linear::int8_inputs`] quantized since the last [`take_a8_ties`]
/// ([`edgegen_format::quant::a8_ties`]): how often the `q8_0a8`
/// precision's rounding sits on a knife edge, for `edgegen validate`.
static A8_TIES: [AtomicUsize; 3] = [const { AtomicUsize::new(0) }; 3];

/// Quantizes each row of `x` (`width` values) to int8 per block of 32 and
/// widens it back ([`edgegen_format::quant::fake_quant_a8`]), counting
/// its near ties for [`take_a8_ties`]: what a `q8_0a8` layer multiplies.
pub fn quantize_rows(x: &mut [f32], width: usize) {
    x.par_chunks_mut(width.max(1)).for_each(|row| {
        let t = edgegen_format::quant::a8_ties(row);
        for (c, v) in A8_TIES.iter().zip(t) {
            c.fetch_add(v, Ordering::Relaxed);
        }
        edgegen_format::quant::fake_quant_a8(row);
    });
}

/// Returns the tie counts gathered since the last call, and starts over.
pub fn take_a8_ties() -> [usize; 3] {
    A8_TIES.each_ref().map(|c| c.swap(0, Ordering::Relaxed))
}

/// A linear layer's place in the buffers and its sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Linear {
    /// Offset of W in the flat buffers; b follows it.
    pub offset: usize,
    /// Input features (IC).
    pub inp: usize,
    /// Output features (OC).
    pub out: usize,
    /// Whether [`Self::forward`] first quantizes each input row to int8 per
    /// block of 32 and widens it back
    /// ([`edgegen_format::quant::fake_quant_a8`]): what a `q8_0a8` layer
    /// on a device multiplies, for evaluating and validating that
    /// precision on the host. Training never sets it.
    pub int8_inputs: bool,
}

impl Linear {
    /// Registers `{name}.weight` `(out, inp)` and `{name}.bias` `(out)`.
    pub fn new(layout: &mut Layout, name: &str, inp: usize, out: usize) -> Self {
        let offset = layout.push(format!("{name}.weight"), &[out, inp]);
        layout.push(format!("{name}.bias"), &[out]);
        Self {
            offset,
            inp,
            out,
            int8_inputs: false,
        }
    }

    /// Parameters in this layer.
    pub fn len(&self) -> usize {
        self.out * self.inp + self.out
    }

    /// Whether the layer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// This layer's slice of a flat buffer.
    pub fn of<'a>(&self, buf: &'a [f32]) -> &'a [f32] {
        &buf[self.offset..self.offset + self.len()]
    }

    /// This layer's mutable slice of a flat buffer.
    pub fn of_mut<'a>(&self, buf: &'a mut [f32]) -> &'a mut [f32] {
        &mut buf[self.offset..self.offset + self.len()]
    }

    /// PyTorch's default: W and b uniform in ±1/sqrt(IC).
    pub fn init(&self, params: &mut [f32], rng: &mut Rng) {
        let bound = 1.0 / (self.inp as f32).sqrt();
        for p in self.of_mut(params) {
            *p = (rng.uniform() * 2.0 - 1.0) * bound;
        }
    }

    /// `out (B, OC) = inp (B, IC) W^T + b`.
    pub fn forward(&self, params: &[f32], out: &mut [f32], inp: &[f32], batch: usize, th: Threads) {
        self.forward_residual(params, out, inp, None, batch, th)
    }

    /// [`Self::forward`], plus `res (B, OC)` if given: a residual
    /// connection's add rides on the pass that writes the bias, rather
    /// than taking a pass of its own over the output.
    pub fn forward_residual(
        &self,
        params: &[f32],
        out: &mut [f32],
        inp: &[f32],
        res: Option<&[f32]>,
        batch: usize,
        th: Threads,
    ) {
        let (w, b) = self.of(params).split_at(self.out * self.inp);
        let out = &mut out[..batch * self.out];
        let quantized;
        let inp = if self.int8_inputs {
            let mut q = inp[..batch * self.inp].to_vec();
            quantize_rows(&mut q, self.inp);
            quantized = q;
            &quantized[..]
        } else {
            inp
        };
        // The bias into every row, on the GEMM's threads: the rows are
        // megabytes, which one core writes at a few GB/s.
        let per = batch.div_ceil(th.0.max(1)).max(1) * self.out;
        match res {
            None => out.par_chunks_mut(per).for_each(|rows| {
                for row in rows.chunks_exact_mut(self.out) {
                    row.copy_from_slice(b);
                }
            }),
            Some(res) => out
                .par_chunks_mut(per)
                .zip(res[..batch * self.out].par_chunks(per))
                .for_each(|(rows, res)| {
                    for (row, r) in rows
                        .chunks_exact_mut(self.out)
                        .zip(res.chunks_exact(self.out))
                    {
                        super::fastmath::add_to(row, r, b);
                    }
                }),
        }
        gemm(
            out,
            &inp[..batch * self.inp],
            false,
            w,
            true,
            (batch, self.out, self.inp),
            1.0,
            true,
            th,
        );
    }

    /// Adds `dout W` to `dinp` (if asked), `dout^T inp` to dW and the
    /// column sums of `dout` to db.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        dinp: Option<&mut [f32]>,
        dout: &[f32],
        inp: &[f32],
        batch: usize,
        th: Threads,
    ) {
        self.backward_with(params, grads, dinp, true, dout, inp, batch, th)
    }

    /// [`Self::backward`], but `dinp` gets `dout W` rather than adding it:
    /// a caller whose input gradient has no other source saves zeroing it.
    #[allow(clippy::too_many_arguments)]
    pub fn backward_into(
        &self,
        params: &[f32],
        grads: &mut [f32],
        dinp: &mut [f32],
        dout: &[f32],
        inp: &[f32],
        batch: usize,
        th: Threads,
    ) {
        self.backward_with(params, grads, Some(dinp), false, dout, inp, batch, th)
    }

    #[allow(clippy::too_many_arguments)]
    fn backward_with(
        &self,
        params: &[f32],
        grads: &mut [f32],
        dinp: Option<&mut [f32]>,
        accumulate: bool,
        dout: &[f32],
        inp: &[f32],
        batch: usize,
        th: Threads,
    ) {
        let (ic, oc) = (self.inp, self.out);
        let dout = &dout[..batch * oc];
        let w = &self.of(params)[..oc * ic];
        if let Some(dinp) = dinp {
            gemm(
                &mut dinp[..batch * ic],
                dout,
                false,
                w,
                false,
                (batch, ic, oc),
                1.0,
                accumulate,
                th,
            );
        }
        let (dw, db) = self.of_mut(grads).split_at_mut(oc * ic);
        gemm(
            dw,
            dout,
            true,
            &inp[..batch * ic],
            false,
            (oc, ic, batch),
            1.0,
            true,
            th,
        );
        for row in dout.chunks_exact(oc) {
            super::fastmath::add_assign(db, row);
        }
    }
}
