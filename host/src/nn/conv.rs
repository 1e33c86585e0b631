//! 2-d convolutions over NCHW batches: [`Conv2d`] and [`ConvTranspose2d`],
//! through im2col and faer, a block of images at a time on each thread.
//!
//! The columns are position-major: a block of images gives `colsT`
//! `(B*P, C*K*K)`, one row per output position (P = OH*OW per image) and
//! one column per kernel tap of each input channel. A convolution is then
//! `Y^T (B*P, OC) = colsT W^T`, and a transposed convolution runs the same
//! algebra backwards: its forward is a convolution's data gradient,
//! `colsT = X^T W`, gathered back into the image by [`col2im`].
//!
//! Why this orientation: faer's kernels tile the output's columns in
//! 16-float registers, and every GEMM here then puts a wide dimension
//! there (OC, or C*K*K) instead of the 49 positions of a 7 x 7 plane.
//! `cargo bench --bench gemm_shapes -- gan` measured the forward at 133
//! GFLOP/s on one thread this way against 90 channel-major, in one run.
//! Why blocks of a few images per thread, with single-threaded GEMMs: a
//! block's columns (about 1 MB) stay in L2 between the transform and the
//! GEMM, and the threads never wait on each other inside a layer. Batch-
//! wide columns over all 128 images measured 1.15x PyTorch's step time.
//! Backward passes build the columns again from the layer's input, which
//! costs less than keeping them.

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
}

/// One plane of an image with the window's zero border, `(H + 2 pad) x
/// (W + 2 pad)`, reused channel after channel: the column transforms then
/// move each kernel row's K taps as one run, with no bounds to test per
/// tap. (`perf` over a DCGAN epoch: a table of gathers with a bounds test
/// per tap took 7.7% of the samples in `im2col`; these runs, with K known
/// at compile time, 5.2%.)
pub struct Padded {
    buf: Vec<f32>,
    pw: usize,
}

impl Padded {
    /// A zeroed plane for `g`'s input.
    pub fn new(g: &Geom) -> Self {
        let pw = g.w + 2 * g.pad;
        Self {
            buf: vec![0.0; (g.h + 2 * g.pad) * pw],
            pw,
        }
    }
}

/// `im2col` for channel `c`, already in `pad`, with kernel size `k`.
/// Always inlined, and called with a literal `k` for the common kernels,
/// so that each run of `k` taps becomes a fixed-size move.
#[inline(always)]
fn im2col_plane(g: &Geom, k: usize, pad: &[f32], pw: usize, c: usize, cols: &mut [f32]) {
    let (s, taps) = (g.stride, g.taps());
    for oy in 0..g.oh {
        for ox in 0..g.ow {
            let row = &mut cols[(oy * g.ow + ox) * taps + c * k * k..][..k * k];
            for ki in 0..k {
                row[ki * k..(ki + 1) * k].copy_from_slice(&pad[(oy * s + ki) * pw + ox * s..][..k]);
            }
        }
    }
}

/// Fills `cols` `(P, C*K*K)` from one image `x` `(C, H, W)`: entry
/// `[(oy, ox), (c, ki, kj)] = x[c, oy*s - pad + ki, ox*s - pad + kj]`,
/// zero outside the image. `pad` is [`Padded::new`]'s for `g`.
pub fn im2col(g: &Geom, x: &[f32], cols: &mut [f32], pad: &mut Padded) {
    let (hw, pw, p0) = (g.h * g.w, pad.pw, g.pad);
    for (c, plane) in x[..g.image_len()].chunks_exact(hw).enumerate() {
        // Only the interior is written: the border stays zero.
        for (y, src) in plane.chunks_exact(g.w).enumerate() {
            pad.buf[(y + p0) * pw + p0..][..g.w].copy_from_slice(src);
        }
        match g.k {
            3 => im2col_plane(g, 3, &pad.buf, pw, c, cols),
            4 => im2col_plane(g, 4, &pad.buf, pw, c, cols),
            5 => im2col_plane(g, 5, &pad.buf, pw, c, cols),
            k => im2col_plane(g, k, &pad.buf, pw, c, cols),
        }
    }
}

/// [`col2im`] with kernel size `k` (a literal for the common kernels, as
/// in [`im2col_plane`]). Walks `cols` in memory order, position by
/// position and channel by channel, adding each run of taps straight into
/// its pixels: the columns stream from L2 and the `K` rows of every plane
/// a position touches stay in L1 across the row of positions. (`perf` over
/// a DCGAN epoch: channel by channel, which read each position's taps at a
/// stride of `C*K*K` floats into a zeroed padded plane, took 11.5% of the
/// samples; this order 5.5%, and `cargo bench --bench gan` went from 1.06x
/// to 0.98x PyTorch's epoch.) Taps that fall in the padding are skipped.
#[inline(always)]
fn col2im_k(g: &Geom, k: usize, cols: &[f32], x: &mut [f32]) {
    let (s, taps, kk, hw, w) = (g.stride, g.taps(), k * k, g.h * g.w, g.w);
    // The kernel rows (or columns) of a window that land in the image.
    let span = |o: usize, n: usize| {
        let first = (o * s) as isize - g.pad as isize;
        let lo = (-first).clamp(0, k as isize) as usize;
        let hi = (n as isize - first).clamp(0, k as isize) as usize;
        (first + lo as isize, lo, hi)
    };
    for oy in 0..g.oh {
        let (y, ki0, ki1) = span(oy, g.h);
        for ox in 0..g.ow {
            let (xx, kj0, kj1) = span(ox, w);
            if ki0 >= ki1 || kj0 >= kj1 {
                continue;
            }
            let (y, xx) = (y as usize, xx as usize);
            let row = &cols[(oy * g.ow + ox) * taps..][..taps];
            let inside = ki0 == 0 && ki1 == k && kj0 == 0 && kj1 == k;
            for (src, plane) in row.chunks_exact(kk).zip(x.chunks_exact_mut(hw)) {
                if inside {
                    for (ki, src) in src.chunks_exact(k).enumerate() {
                        let dst = &mut plane[(y + ki) * w + xx..][..k];
                        for (d, &v) in dst.iter_mut().zip(src) {
                            *d += v;
                        }
                    }
                } else {
                    for ki in ki0..ki1 {
                        let dst = &mut plane[(y + ki - ki0) * w + xx..][..kj1 - kj0];
                        for (d, &v) in dst.iter_mut().zip(&src[ki * k + kj0..ki * k + kj1]) {
                            *d += v;
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of [`im2col`]: adds into every pixel of `x` `(C, H, W)` the
/// entries of `cols` `(P, C*K*K)` that were read from it (what lands in
/// the border is dropped), position after position.
pub fn col2im(g: &Geom, cols: &[f32], x: &mut [f32]) {
    let (cols, x) = (&cols[..g.positions() * g.taps()], &mut x[..g.image_len()]);
    match g.k {
        3 => col2im_k(g, 3, cols, x),
        4 => col2im_k(g, 4, cols, x),
        5 => col2im_k(g, 5, cols, x),
        k => col2im_k(g, k, cols, x),
    }
}

/// `dst (P, C) = src (C, P)` for one image (or back, with the sizes
/// swapped): the GEMMs' layout to NCHW and back.
fn transpose(dst: &mut [f32], src: &[f32], rows: usize, cols: usize) {
    for (r, row) in src[..rows * cols].chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            dst[c * rows + r] = v;
        }
    }
}

/// Floats of columns a block may hold: about 1 MB, to stay in L2.
const BLOCK_FLOATS: usize = 1 << 18;

/// Images per block for `per_image` floats of columns each.
fn block_images(per_image: usize) -> usize {
    (BLOCK_FLOATS / per_image.max(1)).max(1)
}

/// How a batch is shared among the threads: `groups` runs of `per`
/// images, each with its own slice of the scratch.
fn split(batch: usize, th: Threads) -> (usize, usize) {
    let groups = th.0.clamp(1, batch.max(1));
    let per = batch.div_ceil(groups).max(1);
    (batch.div_ceil(per), per)
}

/// The threads a call can use: no more than its scratch has room for.
fn fit(th: Threads, scratch: &[f32], each: usize) -> Threads {
    Threads(th.0.min(scratch.len() / each.max(1)).max(1))
}

/// Per group: `(first image, images, scratch slice)`.
fn tasks(
    batch: usize,
    th: Threads,
    scratch: &mut [f32],
    each: usize,
) -> Vec<(usize, usize, &mut [f32])> {
    let (groups, per) = split(batch, th);
    scratch[..groups * each]
        .chunks_exact_mut(each)
        .enumerate()
        .map(|(i, s)| (i * per, per.min(batch - i * per), s))
        .collect()
}

/// Each group's slice of a per-image buffer (`len` floats an image), or
/// `None` for every group when there is no buffer.
fn shares(
    buf: Option<&mut [f32]>,
    batch: usize,
    len: usize,
    th: Threads,
) -> Vec<Option<&mut [f32]>> {
    let (groups, per) = split(batch, th);
    match buf {
        Some(v) => v[..batch * len].chunks_mut(per * len).map(Some).collect(),
        None => (0..groups).map(|_| None).collect(),
    }
}

/// Adds every group's `(dW, db)` (at the end of its scratch) into `grads`.
fn reduce(grads: &mut [f32], scratch: &[f32], groups: usize, each: usize) {
    let n = grads.len();
    for s in scratch[..groups * each].chunks_exact(each) {
        for (g, &v) in grads.iter_mut().zip(&s[each - n..]) {
            *g += v;
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

    /// Images per block.
    fn block(&self) -> usize {
        block_images(self.geom.positions() * self.geom.taps())
    }

    /// Scratch per thread: a block's columns and outputs `(B*P, OC)`, and
    /// the thread's own `(dW, db)`.
    fn each(&self) -> usize {
        let p = self.geom.positions();
        self.block() * p * (self.geom.taps() + self.oc) + self.len()
    }

    /// Floats of scratch [`Conv2d::forward`] and [`Conv2d::backward`] need
    /// on `threads` threads.
    pub fn scratch_len(&self, threads: usize) -> usize {
        threads.max(1) * self.each()
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
        let th = fit(th, scratch, self.each());
        let g = &self.geom;
        let (p, taps, oc, d, ol) = (
            g.positions(),
            g.taps(),
            self.oc,
            g.image_len(),
            self.out_len(),
        );
        let blk = self.block();
        let (w, b) = self.wb(params);
        tasks(batch, th, scratch, self.each())
            .into_par_iter()
            .zip(shares(Some(out), batch, ol, th))
            .for_each(|((first, n, s), out)| {
                let Some(out) = out else { return };
                let mut pad = Padded::new(g);
                let (cols, rest) = s.split_at_mut(blk * p * taps);
                let yt = &mut rest[..blk * p * oc];
                for start in (0..n).step_by(blk) {
                    let m = blk.min(n - start);
                    for i in 0..m {
                        let x = &inp[(first + start + i) * d..][..d];
                        im2col(g, x, &mut cols[i * p * taps..(i + 1) * p * taps], &mut pad);
                    }
                    let (cols, yt) = (&cols[..m * p * taps], &mut yt[..m * p * oc]);
                    gemm(
                        yt,
                        cols,
                        false,
                        w,
                        true,
                        (m * p, oc, taps),
                        1.0,
                        false,
                        Threads(1),
                    );
                    for i in 0..m {
                        let y = &mut out[(start + i) * ol..(start + i + 1) * ol];
                        transpose(y, &yt[i * p * oc..(i + 1) * p * oc], p, oc);
                        for (row, &bv) in y.chunks_exact_mut(p).zip(b) {
                            row.iter_mut().for_each(|v| *v += bv);
                        }
                    }
                }
            });
    }

    /// Adds the weight and bias gradients to `grads` (when given) and the
    /// input gradient to `dinp` (when asked).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: Option<&mut [f32]>,
        dinp: Option<&mut [f32]>,
        dout: &[f32],
        inp: &[f32],
        batch: usize,
        scratch: &mut [f32],
        th: Threads,
    ) {
        let th = fit(th, scratch, self.each());
        let g = &self.geom;
        let (p, taps, oc, d, ol) = (
            g.positions(),
            g.taps(),
            self.oc,
            g.image_len(),
            self.out_len(),
        );
        let blk = self.block();
        let (w, _) = self.wb(params);
        let (len, each) = (self.len(), self.each());
        let want_grads = grads.is_some();
        let (groups, _) = split(batch, th);
        tasks(batch, th, scratch, each)
            .into_par_iter()
            .zip(shares(dinp, batch, d, th))
            .for_each(|((first, n, s), mut din)| {
                let mut pad = Padded::new(g);
                let (cols, rest) = s.split_at_mut(blk * p * taps);
                let (dyt, gw) = rest.split_at_mut(blk * p * oc);
                gw.fill(0.0);
                let (dw, db) = gw.split_at_mut(oc * taps);
                for start in (0..n).step_by(blk) {
                    let m = blk.min(n - start);
                    for i in 0..m {
                        let dy = &dout[(first + start + i) * ol..][..ol];
                        transpose(&mut dyt[i * p * oc..(i + 1) * p * oc], dy, oc, p);
                        for (bv, row) in db.iter_mut().zip(dy.chunks_exact(p)) {
                            *bv += row.iter().sum::<f32>();
                        }
                    }
                    let dyt = &dyt[..m * p * oc];
                    let cols = &mut cols[..m * p * taps];
                    if want_grads {
                        for i in 0..m {
                            let x = &inp[(first + start + i) * d..][..d];
                            im2col(g, x, &mut cols[i * p * taps..(i + 1) * p * taps], &mut pad);
                        }
                        gemm(
                            dw,
                            dyt,
                            true,
                            cols,
                            false,
                            (oc, taps, m * p),
                            1.0,
                            true,
                            Threads(1),
                        );
                    }
                    if let Some(din) = din.as_deref_mut() {
                        // The columns are spent: their buffer takes their gradient.
                        gemm(
                            cols,
                            dyt,
                            false,
                            w,
                            false,
                            (m * p, taps, oc),
                            1.0,
                            false,
                            Threads(1),
                        );
                        for i in 0..m {
                            let dx = &mut din[(start + i) * d..(start + i + 1) * d];
                            col2im(g, &cols[i * p * taps..(i + 1) * p * taps], dx);
                        }
                    }
                }
            });
        if let Some(grads) = grads {
            reduce(
                &mut grads[self.offset..self.offset + len],
                scratch,
                groups,
                each,
            );
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
    /// Whether [`Self::forward`] first quantizes each input pixel's `IC`
    /// channels to int8 per block of 32 and widens them back, as a
    /// `q8_0a8` generator on a device does (its transposed convolutions
    /// multiply each pixel's channel vector). Training never sets it.
    pub int8_inputs: bool,
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
        Some(Self {
            offset,
            ic,
            geom,
            int8_inputs: false,
        })
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

    /// Images per block.
    fn block(&self) -> usize {
        block_images(self.geom.positions() * self.geom.taps())
    }

    /// Scratch per thread: a block's columns and inputs `(B*P, IC)`, and
    /// the thread's own `(dW, db)`.
    fn each(&self) -> usize {
        let p = self.geom.positions();
        self.block() * p * (self.geom.taps() + self.ic) + self.len()
    }

    /// Floats of scratch on `threads` threads.
    pub fn scratch_len(&self, threads: usize) -> usize {
        threads.max(1) * self.each()
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
        let quantized;
        let inp = if self.int8_inputs {
            quantized = int8_channels(
                &inp[..batch * self.in_len()],
                self.ic,
                self.geom.positions(),
            );
            &quantized[..]
        } else {
            inp
        };
        let th = fit(th, scratch, self.each());
        let g = &self.geom;
        let (p, taps, ic, hw) = (g.positions(), g.taps(), self.ic, g.h * g.w);
        let (il, ol, blk) = (self.in_len(), self.out_len(), self.block());
        let (w, b) = self.wb(params);
        tasks(batch, th, scratch, self.each())
            .into_par_iter()
            .zip(shares(Some(out), batch, ol, th))
            .for_each(|((first, n, s), out)| {
                let Some(out) = out else { return };
                let (cols, rest) = s.split_at_mut(blk * p * taps);
                let xt = &mut rest[..blk * p * ic];
                for start in (0..n).step_by(blk) {
                    let m = blk.min(n - start);
                    for i in 0..m {
                        let x = &inp[(first + start + i) * il..][..il];
                        transpose(&mut xt[i * p * ic..(i + 1) * p * ic], x, ic, p);
                    }
                    let cols = &mut cols[..m * p * taps];
                    gemm(
                        cols,
                        &xt[..m * p * ic],
                        false,
                        w,
                        false,
                        (m * p, taps, ic),
                        1.0,
                        false,
                        Threads(1),
                    );
                    for i in 0..m {
                        let y = &mut out[(start + i) * ol..(start + i + 1) * ol];
                        // Zeros first and the bias last, so that each pixel
                        // is bias + (its taps summed in position order).
                        y.fill(0.0);
                        col2im(g, &cols[i * p * taps..(i + 1) * p * taps], y);
                        for (plane, &bv) in y.chunks_exact_mut(hw).zip(b) {
                            plane.iter_mut().for_each(|v| *v += bv);
                        }
                    }
                }
            });
    }

    /// Adds the weight and bias gradients to `grads` (when given), and the
    /// input gradient to `dinp` (when asked).
    #[allow(clippy::too_many_arguments)]
    pub fn backward(
        &self,
        params: &[f32],
        grads: Option<&mut [f32]>,
        dinp: Option<&mut [f32]>,
        dout: &[f32],
        inp: &[f32],
        batch: usize,
        scratch: &mut [f32],
        th: Threads,
    ) {
        let th = fit(th, scratch, self.each());
        let g = &self.geom;
        let (p, taps, ic, oc, hw) = (g.positions(), g.taps(), self.ic, g.c, g.h * g.w);
        let (il, ol, len, each, blk) = (
            self.in_len(),
            self.out_len(),
            self.len(),
            self.each(),
            self.block(),
        );
        let (w, _) = self.wb(params);
        let want_grads = grads.is_some();
        let (groups, _) = split(batch, th);
        tasks(batch, th, scratch, each)
            .into_par_iter()
            .zip(shares(dinp, batch, il, th))
            .for_each(|((first, n, s), mut din)| {
                let mut pad = Padded::new(g);
                let (cols, rest) = s.split_at_mut(blk * p * taps);
                let (xt, gw) = rest.split_at_mut(blk * p * ic);
                gw.fill(0.0);
                let (dw, db) = gw.split_at_mut(ic * taps);
                for start in (0..n).step_by(blk) {
                    let m = blk.min(n - start);
                    for i in 0..m {
                        let dy = &dout[(first + start + i) * ol..][..ol];
                        im2col(g, dy, &mut cols[i * p * taps..(i + 1) * p * taps], &mut pad);
                        for (bv, plane) in db[..oc].iter_mut().zip(dy.chunks_exact(hw)) {
                            *bv += plane.iter().sum::<f32>();
                        }
                    }
                    let cols = &cols[..m * p * taps];
                    let xt = &mut xt[..m * p * ic];
                    if want_grads {
                        for i in 0..m {
                            let x = &inp[(first + start + i) * il..][..il];
                            transpose(&mut xt[i * p * ic..(i + 1) * p * ic], x, ic, p);
                        }
                        gemm(
                            dw,
                            xt,
                            true,
                            cols,
                            false,
                            (ic, taps, m * p),
                            1.0,
                            true,
                            Threads(1),
                        );
                    }
                    if let Some(din) = din.as_deref_mut() {
                        // x^T is spent: its buffer takes the input's gradient.
                        gemm(
                            xt,
                            cols,
                            false,
                            w,
                            true,
                            (m * p, ic, taps),
                            1.0,
                            false,
                            Threads(1),
                        );
                        for i in 0..m {
                            let dx = &mut din[(start + i) * il..(start + i + 1) * il];
                            let src = &xt[i * p * ic..(i + 1) * p * ic];
                            for (c, row) in dx.chunks_exact_mut(p).enumerate() {
                                for (j, v) in row.iter_mut().enumerate() {
                                    *v += src[j * ic + c];
                                }
                            }
                        }
                    }
                }
            });
        if let Some(grads) = grads {
            reduce(
                &mut grads[self.offset..self.offset + len],
                scratch,
                groups,
                each,
            );
        }
    }
}

/// `x`, images `(IC, HW)` one after another, with each pixel's `ic`
/// channels quantized to int8 per block of 32 and widened back
/// ([`super::linear::quantize_rows`], which also counts near ties).
fn int8_channels(x: &[f32], ic: usize, hw: usize) -> Vec<f32> {
    let img = ic * hw;
    let mut rows = vec![0f32; x.len()];
    for (b, im) in x.chunks_exact(img.max(1)).enumerate() {
        for (c, plane) in im.chunks_exact(hw.max(1)).enumerate() {
            for (q, v) in plane.iter().enumerate() {
                rows[(b * hw + q) * ic + c] = *v;
            }
        }
    }
    super::linear::quantize_rows(&mut rows, ic);
    let mut out = vec![0f32; x.len()];
    for (b, im) in out.chunks_exact_mut(img.max(1)).enumerate() {
        for (c, plane) in im.chunks_exact_mut(hw.max(1)).enumerate() {
            for (q, v) in plane.iter_mut().enumerate() {
                *v = rows[(b * hw + q) * ic + c];
            }
        }
    }
    out
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
            let mut scratch = vec![0f32; conv.scratch_len(2)];
            conv.forward(&params, &mut y, &x, batch, &mut scratch, Threads(2));
            let (wt, b) = params.split_at(oc * g.taps());
            close(&y, &conv_naive(&g, oc, wt, b, &x, batch), "conv");
        }
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), C> = <x, col2im(C)>, with windows clipped on every
        // side and windows that lie wholly in the padding (pad >= k).
        let mut r = Rng::new(7);
        for &(c, h, w, k, s, p) in &[
            (3, 7, 7, 4, 2, 1),
            (2, 5, 4, 3, 1, 1),
            (2, 4, 5, 5, 2, 2),
            (1, 3, 3, 1, 1, 1),
            (2, 4, 3, 2, 3, 2),
            (1, 6, 6, 6, 1, 0),
        ] {
            let g = Geom::new(c, h, w, k, s, p).unwrap();
            let x = randn(&mut r, g.image_len());
            let probe = randn(&mut r, g.positions() * g.taps());
            let mut cols = vec![0f32; probe.len()];
            im2col(&g, &x, &mut cols, &mut Padded::new(&g));
            let mut back = randn(&mut r, x.len());
            let before = back.clone();
            col2im(&g, &probe, &mut back);
            let dot = |a: &[f32], b: &[f32]| -> f64 {
                a.iter().zip(b).map(|(a, b)| *a as f64 * *b as f64).sum()
            };
            let added: Vec<f32> = back.iter().zip(&before).map(|(a, b)| a - b).collect();
            let (lhs, rhs) = (dot(&cols, &probe), dot(&x, &added));
            assert!(
                (lhs - rhs).abs() < 1e-4 * (1.0 + lhs.abs()),
                "{c}x{h}x{w} k{k} s{s} p{p}: {lhs} vs {rhs}"
            );
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
            let mut scratch = vec![0f32; t.scratch_len(1)];
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
