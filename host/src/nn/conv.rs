//! 2-d convolutions over NCHW batches: [`Conv2d`] and [`ConvTranspose2d`],
//! both through im2col and one faer GEMM over the whole batch.
//!
//! The columns matrix is `(C*K*K, B*P)`: one row per kernel tap of each
//! input channel, one column per output position of each image (P of them
//! per image). A convolution is then `Y (OC, B*P) = W (OC, C*K*K) cols`,
//! and a transposed convolution runs the same algebra backwards: its
//! forward is a convolution's data gradient, `cols = W^T X`, scattered
//! back into the image by [`col2im`]. Batching the positions into the
//! GEMM's N makes every GEMM large enough for faer to reach its speed on
//! these small-channel layers (`cargo bench --bench gan_step` measures it
//! against PyTorch).
//!
//! Backward passes recompute the columns from the layer's input instead
//! of keeping them: a pass over memory is cheap next to the GEMMs, and it
//! saves a `C*K*K x B*P` buffer per layer.

use super::gemm::{Threads, gemm};
use super::params::Layout;
use crate::rng::Rng;
use rayon::prelude::*;

/// The window a convolution slides over one image: input `(c, h, w)`, a
/// square kernel `k`, `stride` and zero `pad` on every side, and the
/// output plane `(oh, ow)` that follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geom {
    /// Input channels.
    pub c: usize,
    /// Input height.
    pub h: usize,
    /// Input width.
    pub w: usize,
    /// Kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zero padding on each side.
    pub pad: usize,
    /// Output height.
    pub oh: usize,
    /// Output width.
    pub ow: usize,
}

impl Geom {
    /// The window, or `None` when the kernel does not fit the padded input
    /// or a size is zero.
    pub fn new(c: usize, h: usize, w: usize, k: usize, stride: usize, pad: usize) -> Option<Self> {
        if c == 0 || k == 0 || stride == 0 || h + 2 * pad < k || w + 2 * pad < k {
            return None;
        }
        Some(Self {
            c,
            h,
            w,
            k,
            stride,
            pad,
            oh: (h + 2 * pad - k) / stride + 1,
            ow: (w + 2 * pad - k) / stride + 1,
        })
    }

    /// Rows of the columns matrix: `C*K*K`.
    pub fn taps(&self) -> usize {
        self.c * self.k * self.k
    }

    /// Output positions per image: `OH*OW`.
    pub fn positions(&self) -> usize {
        self.oh * self.ow
    }

    /// Values per input image: `C*H*W`.
    pub fn image_len(&self) -> usize {
        self.c * self.h * self.w
    }

    /// For tap `(ki)` along one axis, the output positions `o` whose input
    /// coordinate `o*stride - pad + ki` lies inside `0..n`: `lo..hi`.
    fn valid(&self, ki: usize, n: usize, out: usize) -> (usize, usize) {
        // o*s + ki >= pad  and  o*s + ki < n + pad
        let lo = self.pad.saturating_sub(ki).div_ceil(self.stride);
        let hi = if n + self.pad > ki {
            ((n + self.pad - ki).div_ceil(self.stride)).min(out)
        } else {
            0
        };
        (lo.min(hi), hi)
    }
}

/// Fills `cols` `(C*K*K, B*P)` from `x` `(B, C, H, W)`: entry
/// `[(c, ki, kj), (b, oy, ox)] = x[b, c, oy*s - pad + ki, ox*s - pad + kj]`,
/// zero outside the image.
pub fn im2col(g: &Geom, x: &[f32], batch: usize, cols: &mut [f32]) {
    let (k, p, hw) = (g.k, g.positions(), g.h * g.w);
    let img = g.image_len();
    cols[..g.taps() * batch * p]
        .par_chunks_mut(batch * p)
        .enumerate()
        .for_each(|(row, dst)| {
            let (c, ki, kj) = (row / (k * k), (row / k) % k, row % k);
            let (ylo, yhi) = g.valid(ki, g.h, g.oh);
            let (xlo, xhi) = g.valid(kj, g.w, g.ow);
            for b in 0..batch {
                let plane = &x[b * img + c * hw..b * img + (c + 1) * hw];
                let out = &mut dst[b * p..(b + 1) * p];
                for oy in 0..g.oh {
                    let orow = &mut out[oy * g.ow..(oy + 1) * g.ow];
                    if oy < ylo || oy >= yhi {
                        orow.fill(0.0);
                        continue;
                    }
                    let iy = oy * g.stride + ki - g.pad;
                    let irow = &plane[iy * g.w..(iy + 1) * g.w];
                    orow[..xlo].fill(0.0);
                    orow[xhi.max(xlo)..].fill(0.0);
                    if g.stride == 1 {
                        let start = xlo + kj - g.pad;
                        orow[xlo..xhi].copy_from_slice(&irow[start..start + (xhi - xlo)]);
                    } else {
                        for ox in xlo..xhi {
                            orow[ox] = irow[ox * g.stride + kj - g.pad];
                        }
                    }
                }
            }
        });
}

/// The adjoint of [`im2col`]: adds every entry of `cols` `(C*K*K, B*P)`
/// into the pixel of `x` `(B, C, H, W)` it was read from.
pub fn col2im(g: &Geom, cols: &[f32], batch: usize, x: &mut [f32]) {
    let (k, p, hw) = (g.k, g.positions(), g.h * g.w);
    let bp = batch * p;
    x[..batch * g.image_len()]
        .par_chunks_mut(g.image_len())
        .enumerate()
        .for_each(|(b, img)| {
            for c in 0..g.c {
                let plane = &mut img[c * hw..(c + 1) * hw];
                for ki in 0..k {
                    let (ylo, yhi) = g.valid(ki, g.h, g.oh);
                    for kj in 0..k {
                        let (xlo, xhi) = g.valid(kj, g.w, g.ow);
                        let row = (c * k + ki) * k + kj;
                        let src = &cols[row * bp + b * p..row * bp + (b + 1) * p];
                        for oy in ylo..yhi {
                            let iy = oy * g.stride + ki - g.pad;
                            let irow = &mut plane[iy * g.w..(iy + 1) * g.w];
                            let srow = &src[oy * g.ow..(oy + 1) * g.ow];
                            for ox in xlo..xhi {
                                irow[ox * g.stride + kj - g.pad] += srow[ox];
                            }
                        }
                    }
                }
            }
        });
}

/// `dst (C, B*P) = src (B, C, P)`: channels first, for the GEMMs.
pub fn to_channel_major(dst: &mut [f32], src: &[f32], batch: usize, c: usize, p: usize) {
    dst[..c * batch * p]
        .par_chunks_mut(batch * p)
        .enumerate()
        .for_each(|(ch, row)| {
            for b in 0..batch {
                row[b * p..(b + 1) * p]
                    .copy_from_slice(&src[(b * c + ch) * p..(b * c + ch + 1) * p]);
            }
        });
}

/// `dst (B, C, P) [+]= src (C, B*P) + bias[c]`: back to NCHW, adding a
/// per-channel bias (or nothing, for an empty `bias`), and adding into
/// `dst` when `accumulate`.
pub fn from_channel_major(
    dst: &mut [f32],
    src: &[f32],
    bias: &[f32],
    (batch, c, p): (usize, usize, usize),
    accumulate: bool,
) {
    dst[..batch * c * p]
        .par_chunks_mut(c * p)
        .enumerate()
        .for_each(|(b, img)| {
            for ch in 0..c {
                let s = &src[ch * batch * p + b * p..ch * batch * p + (b + 1) * p];
                let d = &mut img[ch * p..(ch + 1) * p];
                let bv = bias.get(ch).copied().unwrap_or(0.0);
                if accumulate {
                    d.iter_mut().zip(s).for_each(|(d, &s)| *d += s + bv);
                } else {
                    d.iter_mut().zip(s).for_each(|(d, &s)| *d = s + bv);
                }
            }
        });
}

/// `db[c] += sum over (b, p) of dout[b, c, p]`.
fn bias_grad(db: &mut [f32], dout: &[f32], batch: usize, p: usize) {
    let c = db.len();
    for b in 0..batch {
        for (ch, d) in db.iter_mut().enumerate() {
            *d += dout[(b * c + ch) * p..(b * c + ch + 1) * p]
                .iter()
                .sum::<f32>();
        }
    }
}

/// PyTorch's default for both kinds: W and b uniform in ±1/sqrt(fan_in),
/// with fan_in = weight.size(1) * K * K.
fn init_uniform(params: &mut [f32], fan_in: usize, rng: &mut Rng) {
    let bound = 1.0 / (fan_in as f32).sqrt();
    for p in params {
        *p = (rng.uniform() * 2.0 - 1.0) * bound;
    }
}

/// A convolution: `(B, C, H, W) -> (B, OC, OH, OW)`, weight `(OC, C, K, K)`
/// then bias `(OC)` in the flat buffers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conv2d {
    /// Offset of the weight; the bias follows it.
    pub offset: usize,
    /// The window over the input.
    pub geom: Geom,
    /// Output channels.
    pub oc: usize,
}

impl Conv2d {
    /// Registers `{name}.weight` `(oc, g.c, k, k)` and `{name}.bias` `(oc)`.
    pub fn new(layout: &mut Layout, name: &str, g: Geom, oc: usize) -> Self {
        let offset = layout.push(format!("{name}.weight"), &[oc, g.c, g.k, g.k]);
        layout.push(format!("{name}.bias"), &[oc]);
        Self {
            offset,
            geom: g,
            oc,
        }
    }

    /// Parameters in the layer.
    pub fn len(&self) -> usize {
        self.oc * self.geom.taps() + self.oc
    }

    /// Whether the layer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per output image.
    pub fn out_len(&self) -> usize {
        self.oc * self.geom.positions()
    }

    /// Floats of scratch [`Conv2d::forward`] and [`Conv2d::backward`] need
    /// for `batch` images.
    pub fn scratch_len(&self, batch: usize) -> usize {
        (self.geom.taps() + self.oc) * batch * self.geom.positions()
    }

    /// PyTorch's default initialization.
    pub fn init(&self, params: &mut [f32], rng: &mut Rng) {
        let fan_in = self.geom.taps();
        init_uniform(
            &mut params[self.offset..self.offset + self.len()],
            fan_in,
            rng,
        );
    }

    fn wb<'a>(&self, buf: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        buf[self.offset..self.offset + self.len()].split_at(self.oc * self.geom.taps())
    }

    /// `out (B, OC, OH, OW) = conv(inp (B, C, H, W)) + b`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        params: &[f32],
        out: &mut [f32],
        inp: &[f32],
        batch: usize,
        scratch: &mut [f32],
        th: Threads,
    ) {
        let (g, oc) = (&self.geom, self.oc);
        let bp = batch * g.positions();
        let (cols, y) = scratch.split_at_mut(g.taps() * bp);
        im2col(g, inp, batch, cols);
        let (w, b) = self.wb(params);
        let y = &mut y[..oc * bp];
        gemm(y, w, false, cols, false, (oc, bp, g.taps()), 1.0, false, th);
        from_channel_major(out, y, b, (batch, oc, g.positions()), false);
    }

    /// Adds the weight and bias gradients to `grads`, and the input
    /// gradient to `dinp` when asked.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        dinp: Option<&mut [f32]>,
        dout: &[f32],
        inp: &[f32],
        batch: usize,
        scratch: &mut [f32],
        th: Threads,
    ) {
        let (g, oc) = (&self.geom, self.oc);
        let (p, taps) = (g.positions(), g.taps());
        let bp = batch * p;
        let (cols, dy) = scratch.split_at_mut(taps * bp);
        let (cols, dy) = (&mut cols[..taps * bp], &mut dy[..oc * bp]);
        to_channel_major(dy, dout, batch, oc, p);
        im2col(g, inp, batch, cols);
        let (w, _) = self.wb(params);
        let (dw, db) = grads[self.offset..self.offset + self.len()].split_at_mut(oc * taps);
        bias_grad(db, dout, batch, p);
        gemm(dw, dy, false, cols, true, (oc, taps, bp), 1.0, true, th);
        if let Some(dinp) = dinp {
            // The columns are spent: their buffer takes their gradient.
            gemm(cols, w, true, dy, false, (taps, bp, oc), 1.0, false, th);
            col2im(g, cols, batch, dinp);
        }
    }
}

/// A transposed convolution: `(B, IC, H, W) -> (B, OC, OH, OW)` with
/// `OH = (H - 1) * stride - 2 * pad + K`, weight `(IC, OC, K, K)` (PyTorch's
/// layout: the output channel is axis 1) then bias `(OC)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvTranspose2d {
    /// Offset of the weight; the bias follows it.
    pub offset: usize,
    /// Input channels.
    pub ic: usize,
    /// The window of the convolution this one transposes: over the
    /// output `(OC, OH, OW)`, with `(oh, ow)` the input's size.
    pub geom: Geom,
}

impl ConvTranspose2d {
    /// Registers `{name}.weight` `(ic, oc, k, k)` and `{name}.bias` `(oc)`
    /// for inputs `(ic, h, w)`; `None` if the sizes give no output.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        layout: &mut Layout,
        name: &str,
        (ic, h, w): (usize, usize, usize),
        oc: usize,
        k: usize,
        stride: usize,
        pad: usize,
    ) -> Option<Self> {
        let oh = ((h.checked_sub(1)?) * stride + k).checked_sub(2 * pad)?;
        let ow = ((w.checked_sub(1)?) * stride + k).checked_sub(2 * pad)?;
        let geom = Geom::new(oc, oh, ow, k, stride, pad)?;
        if (geom.oh, geom.ow) != (h, w) || ic == 0 {
            return None;
        }
        let offset = layout.push(format!("{name}.weight"), &[ic, oc, k, k]);
        layout.push(format!("{name}.bias"), &[oc]);
        Some(Self { offset, ic, geom })
    }

    /// Output channels.
    pub fn oc(&self) -> usize {
        self.geom.c
    }

    /// Parameters in the layer.
    pub fn len(&self) -> usize {
        self.ic * self.geom.taps() + self.geom.c
    }

    /// Whether the layer is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per input image.
    pub fn in_len(&self) -> usize {
        self.ic * self.geom.positions()
    }

    /// Values per output image.
    pub fn out_len(&self) -> usize {
        self.geom.image_len()
    }

    /// Floats of scratch for `batch` images.
    pub fn scratch_len(&self, batch: usize) -> usize {
        (self.ic + self.geom.taps()) * batch * self.geom.positions()
    }

    /// PyTorch's default initialization (its fan-in is `weight.size(1) *
    /// K * K`, the output channels, for a transposed convolution).
    pub fn init(&self, params: &mut [f32], rng: &mut Rng) {
        let fan_in = self.geom.taps();
        init_uniform(
            &mut params[self.offset..self.offset + self.len()],
            fan_in,
            rng,
        );
    }

    fn wb<'a>(&self, buf: &'a [f32]) -> (&'a [f32], &'a [f32]) {
        buf[self.offset..self.offset + self.len()].split_at(self.ic * self.geom.taps())
    }

    /// `out (B, OC, OH, OW) = convT(inp (B, IC, H, W)) + b`.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &self,
        params: &[f32],
        out: &mut [f32],
        inp: &[f32],
        batch: usize,
        scratch: &mut [f32],
        th: Threads,
    ) {
        let g = &self.geom;
        let (p, taps, ic) = (g.positions(), g.taps(), self.ic);
        let bp = batch * p;
        let (x, cols) = scratch.split_at_mut(ic * bp);
        let (x, cols) = (&mut x[..ic * bp], &mut cols[..taps * bp]);
        to_channel_major(x, inp, batch, ic, p);
        let (w, b) = self.wb(params);
        gemm(cols, w, true, x, false, (taps, bp, ic), 1.0, false, th);
        let out = &mut out[..batch * g.image_len()];
        let plane = g.h * g.w;
        out.par_chunks_mut(plane).enumerate().for_each(|(i, o)| {
            o.fill(b[i % g.c]);
        });
        col2im(g, cols, batch, out);
    }

    /// Adds the weight and bias gradients to `grads`, and the input
    /// gradient to `dinp` when asked.
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: &mut [f32],
        dinp: Option<&mut [f32]>,
        dout: &[f32],
        inp: &[f32],
        batch: usize,
        scratch: &mut [f32],
        th: Threads,
    ) {
        let g = &self.geom;
        let (p, taps, ic) = (g.positions(), g.taps(), self.ic);
        let bp = batch * p;
        let (x, cols) = scratch.split_at_mut(ic * bp);
        let (x, cols) = (&mut x[..ic * bp], &mut cols[..taps * bp]);
        to_channel_major(x, inp, batch, ic, p);
        im2col(g, dout, batch, cols);
        let (w, _) = self.wb(params);
        let (dw, db) = grads[self.offset..self.offset + self.len()].split_at_mut(ic * taps);
        bias_grad(db, dout, batch, g.h * g.w);
        gemm(dw, x, false, cols, true, (ic, taps, bp), 1.0, true, th);
        if let Some(dinp) = dinp {
            // x is spent: its buffer takes the input gradient.
            gemm(x, w, false, cols, false, (ic, bp, taps), 1.0, false, th);
            from_channel_major(dinp, x, &[], (batch, ic, p), true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook loops, for both kinds: `y[b, o, oy, ox] = bias[o] + sum
    /// x[b, c, oy*s - p + ki, ox*s - p + kj] * w[o, c, ki, kj]`.
    fn conv_naive(
        g: &Geom,
        oc: usize,
        w: &[f32],
        bias: &[f32],
        x: &[f32],
        batch: usize,
    ) -> Vec<f32> {
        let mut y = vec![0f32; batch * oc * g.positions()];
        for b in 0..batch {
            for o in 0..oc {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let mut s = bias[o] as f64;
                        for c in 0..g.c {
                            for ki in 0..g.k {
                                for kj in 0..g.k {
                                    let iy = (oy * g.stride + ki) as isize - g.pad as isize;
                                    let ix = (ox * g.stride + kj) as isize - g.pad as isize;
                                    if iy < 0 || ix < 0 || iy >= g.h as isize || ix >= g.w as isize
                                    {
                                        continue;
                                    }
                                    let xv =
                                        x[((b * g.c + c) * g.h + iy as usize) * g.w + ix as usize];
                                    s +=
                                        xv as f64 * w[((o * g.c + c) * g.k + ki) * g.k + kj] as f64;
                                }
                            }
                        }
                        y[((b * oc + o) * g.oh + oy) * g.ow + ox] = s as f32;
                    }
                }
            }
        }
        y
    }

    fn randn(r: &mut Rng, n: usize) -> Vec<f32> {
        (0..n).map(|_| r.normal()).collect()
    }

    fn close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() < 1e-4 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    #[test]
    fn conv_matches_the_textbook_loops() {
        let mut r = Rng::new(5);
        for &(c, h, w, oc, k, s, p, batch) in &[
            (1, 28, 28, 4, 4, 2, 1, 2),
            (3, 5, 7, 2, 3, 1, 1, 3),
            (2, 6, 6, 3, 4, 2, 0, 1),
            (2, 4, 4, 3, 1, 1, 0, 2),
            (2, 3, 3, 2, 5, 3, 2, 2),
        ] {
            let g = Geom::new(c, h, w, k, s, p).unwrap();
            let mut layout = Layout::default();
            let conv = Conv2d::new(&mut layout, "c", g, oc);
            let params = randn(&mut r, layout.total());
            let x = randn(&mut r, batch * g.image_len());
            let mut y = vec![0f32; batch * conv.out_len()];
            let mut scratch = vec![0f32; conv.scratch_len(batch)];
            conv.forward(&params, &mut y, &x, batch, &mut scratch, Threads(2));
            let (wt, b) = params.split_at(oc * g.taps());
            close(&y, &conv_naive(&g, oc, wt, b, &x, batch), "conv");
        }
    }

    #[test]
    fn transposed_conv_is_the_adjoint_of_conv() {
        // <convT(x), y> = <x, conv(y)> for the same weights (bias zero),
        // with convT's weight (IC, OC, K, K) read as conv's (OC', C', K, K)
        // where OC' = IC and C' = OC.
        let mut r = Rng::new(6);
        for &(ic, h, w, oc, k, s, p, batch) in &[
            (3, 7, 7, 2, 4, 2, 1, 2),
            (2, 3, 4, 3, 3, 1, 1, 1),
            (4, 2, 2, 1, 4, 2, 1, 3),
        ] {
            let mut layout = Layout::default();
            let t = ConvTranspose2d::new(&mut layout, "t", (ic, h, w), oc, k, s, p).unwrap();
            let mut params = randn(&mut r, layout.total());
            let nb = t.oc();
            let n = params.len();
            params[n - nb..].fill(0.0);
            let x = randn(&mut r, batch * t.in_len());
            let mut y = vec![0f32; batch * t.out_len()];
            let mut scratch = vec![0f32; t.scratch_len(batch)];
            t.forward(&params, &mut y, &x, batch, &mut scratch, Threads(1));
            let probe = randn(&mut r, y.len());
            let lhs: f64 = y
                .iter()
                .zip(&probe)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            let conv_y = conv_naive(
                &t.geom,
                ic,
                &params[..n - nb],
                &vec![0.0; ic],
                &probe,
                batch,
            );
            let rhs: f64 = x
                .iter()
                .zip(&conv_y)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum();
            assert!(
                (lhs - rhs).abs() < 1e-3 * (1.0 + lhs.abs()),
                "{lhs} vs {rhs}"
            );
            assert_eq!(
                t.out_len(),
                oc * ((h - 1) * s + k - 2 * p) * ((w - 1) * s + k - 2 * p)
            );
        }
    }
}
