//! The GAN's generator on the device: `[z, onehot(label)] -> dense ->
//! (C_0, h0, w0)` (ReLU), then transposed convolutions (kernel 4, stride
//! 2, padding 1) that double the plane, ReLU between them and tanh after
//! the last, mapped to pixels in [0, 1]. Batch norms were folded into the
//! weights at export.
//!
//! A transposed convolution is one matrix product and a scatter: the input
//! plane `X (C_in, P)` as it lies (one row per channel), `cols (C_out*16,
//! P) = W X` through [`kernels::gemm_cols`] (register-blocked SIMD for
//! f32, f16 and Q8_0), and each column's 16 taps per output channel add
//! into the 4 x 4 window of output pixels they belong to.

use super::{check_label, check_len, check_scratch};
use crate::kernels::{self, Matrix};
use crate::layers::{self, Dense, Vector};
use edgegen_format::arch::gan::{self, FC_BIAS, FC_WEIGHT, Hparams, MAX_UP, UP_BIAS, UP_WEIGHT};
use edgegen_format::{Error, Gguf, TensorName};

/// One up block: the weight `(C_out*16, C_in)` and the bias `(C_out)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Up<'a> {
    /// Rows `(oc, ky, kx)`, columns the input channels.
    pub w: Matrix<'a>,
    /// Per output channel.
    pub b: Vector<'a>,
}

/// A generator whose weights stay in the GGUF bytes.
///
/// ```
/// # fn generator_bytes() -> Vec<u8> {
/// #     use edgegen_format::{arch, GgmlType, GgufWriter};
/// #     let hp = arch::gan::Hparams::new([1, 4, 4], 2, 0, &[3]).unwrap();
/// #     let mut w = GgufWriter::new();
/// #     hp.write(&mut w).unwrap();
/// #     w.add_tensor("gen.fc.weight", &[2, 12], GgmlType::F32, &[0.1; 24]).unwrap();
/// #     w.add_tensor("gen.fc.bias", &[12], GgmlType::F32, &[0.0; 12]).unwrap();
/// #     w.add_tensor("gen.up.0.weight", &[3, 16], GgmlType::F32, &[0.5; 48]).unwrap();
/// #     w.add_tensor("gen.up.0.bias", &[1], GgmlType::F32, &[0.0]).unwrap();
/// #     w.to_bytes()
/// # }
/// use edgegen_runtime::models::Model;
/// let bytes = generator_bytes(); // a file from `edgegen export RUN --gguf`
/// let Model::Generator(g) = Model::from_gguf(&bytes)? else { unreachable!() };
/// let mut scratch = [0f32; 96];               // >= g.scratch_len(), 78
/// let mut img = [0f32; 16];                   // C*H*W pixels in [0, 1]
/// g.generate(&[1.0, 1.0], None, &mut scratch, &mut img)?;
/// assert!(img.iter().all(|&p| p > 0.5));      // positive weights, tanh > 0
/// # Ok::<(), edgegen_runtime::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Generator<'a> {
    /// Hyperparameters.
    pub hp: Hparams,
    fc: Dense<'a>,
    up: heapless::Vec<Up<'a>, MAX_UP>,
}

/// Input pixels an up block transforms at a time with the least scratch
/// [`scratch_len_for`] asks for: the columns of 8 pixels of a 64-channel
/// output take 32 KiB, where all 49 of a 7 x 7 plane would take 196 KiB
/// and break a 192 KiB device budget.
pub const MIN_CHUNK: usize = 8;

/// Floats of scratch a generator needs with `chunk` input pixels per
/// matrix product: the input vector, and for the largest up block its
/// input plane, its output plane (unless it is the image), and a chunk's
/// columns. A `const fn`, so firmware sizes a static buffer at compile
/// time.
pub const fn scratch_len_with(hp: &Hparams, chunk: usize) -> usize {
    let mut need = 0;
    let mut i = 0;
    while i < hp.n_up {
        let (h0, w0) = hp.base();
        let p = (h0 << i) * (w0 << i);
        let q = if chunk < p { chunk } else { p };
        let cin = hp.channels[i] as usize;
        let cout = if i + 1 < hp.n_up {
            hp.channels[i + 1] as usize
        } else {
            hp.image_shape[0] as usize
        };
        let out = if i + 1 < hp.n_up { cout * 4 * p } else { 0 };
        let total = cin * p + out + q * cout * 16;
        if total > need {
            need = total;
        }
        i += 1;
    }
    (hp.latent_dim + hp.n_classes) as usize + need
}

/// The least scratch a generator runs in ([`MIN_CHUNK`] pixels at a time).
pub const fn scratch_len_for(hp: &Hparams) -> usize {
    scratch_len_with(hp, MIN_CHUNK)
}

impl<'a> Generator<'a> {
    /// [`crate::models::Model::from_gguf`] for a generator file only:
    /// firmware that only samples links no other family's code.
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let g = Gguf::parse(bytes)?;
        if edgegen_format::arch::check(&g)? != edgegen_format::arch::Family::Gan {
            return Err(Error::BadValue {
                key: edgegen_format::arch::keys::ARCHITECTURE,
                expected: "edgegen.gan",
            });
        }
        Self::from_gguf(&g)
    }

    /// Checks every tensor against the hyperparameters and keeps views of
    /// them. Call after [`edgegen_format::arch::check`].
    pub fn from_gguf(g: &Gguf<'a>) -> Result<Self, Error> {
        let hp = Hparams::read(g)?;
        let zk = (hp.latent_dim + hp.n_classes) as usize;
        let f0 = hp.plane_len(0);
        let fc = Dense {
            w: layers::load_matrix(g, TensorName::fixed(FC_WEIGHT), f0, zk)?,
            b: layers::load_vector(g, TensorName::fixed(FC_BIAS), f0)?,
        };
        let mut up = heapless::Vec::new();
        for i in 0..hp.n_up {
            let (cin, _, _) = hp.plane(i);
            let (cout, _, _) = hp.plane(i + 1);
            let w = layers::load_matrix(g, TensorName::at(UP_WEIGHT, i), cout * 16, cin)?;
            let b = layers::load_vector(g, TensorName::at(UP_BIAS, i), cout)?;
            // Capacity is MAX_UP and n_up <= MAX_UP.
            let _ = up.push(Up { w, b });
        }
        Ok(Self { hp, fc, up })
    }

    /// Floats of scratch [`Generator::generate`] needs at least. More
    /// scratch lets it transform more pixels per matrix product, which
    /// reads the weights fewer times: [`Generator::scratch_len_fast`].
    pub fn scratch_len(&self) -> usize {
        scratch_len_for(&self.hp)
    }

    /// Scratch for one matrix product per up block (every pixel at once):
    /// the fastest, where memory allows.
    pub fn scratch_len_fast(&self) -> usize {
        scratch_len_with(&self.hp, usize::MAX)
    }

    /// Z.
    pub fn latent_dim(&self) -> usize {
        self.hp.latent_dim as usize
    }

    /// C*H*W, the values per image.
    pub fn output_len(&self) -> usize {
        self.hp.image_len()
    }

    /// Bytes of weights and biases.
    pub fn weight_bytes(&self) -> usize {
        self.fc.bytes()
            + self
                .up
                .iter()
                .map(|u| u.w.bytes() + u.b.bytes())
                .sum::<usize>()
    }

    /// Multiply-adds per generated image (saturating: the format bounds
    /// the planes, not their products with the weights, and a 32-bit
    /// device must not trap on a strange file).
    pub fn macs(&self) -> usize {
        let mut n = self.fc.macs();
        for (i, u) in self.up.iter().enumerate() {
            let (_, h, w) = self.hp.plane(i);
            n = n.saturating_add((h * w).saturating_mul(u.w.rows).saturating_mul(u.w.cols));
        }
        n
    }

    /// Generates one image from noise `z` (Z values) into `out` (C*H*W
    /// pixels in [0, 1]). `label` is required by conditional models and
    /// refused by others.
    pub fn generate(
        &self,
        z: &[f32],
        label: Option<u32>,
        scratch: &mut [f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.generate_with::<crate::math::DefaultMath>(z, label, scratch, out)
    }

    /// [`Generator::generate`] with the math functions of `M`.
    pub fn generate_with<M: crate::math::Math>(
        &self,
        z: &[f32],
        label: Option<u32>,
        scratch: &mut [f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (zd, k) = (self.latent_dim(), self.hp.n_classes as usize);
        check_len(zd, z.len())?;
        check_len(self.output_len(), out.len())?;
        check_scratch(self.scratch_len(), scratch.len())?;
        check_label(k, label)?;
        let (v, rest) = scratch.split_at_mut(zd + k);
        v[..zd].copy_from_slice(z);
        v[zd..].fill(0.0);
        if let Some(l) = label {
            v[zd + l as usize] = 1.0;
        }
        // The current plane sits at the start of `rest`, the block's output
        // plane after it, then a chunk's columns; the output then moves to
        // the start for the next block.
        let f0 = self.hp.plane_len(0);
        kernels::matvec(&mut rest[..f0], &self.fc.w, v, |r| self.fc.b.get(r));
        relu(&mut rest[..f0]);
        let n = self.up.len();
        for (i, u) in self.up.iter().enumerate() {
            let (cin, h, w) = self.hp.plane(i);
            let p = h * w;
            let (cout, _, _) = self.hp.plane(i + 1);
            let last = i + 1 == n;
            let olen = if last { 0 } else { cout * 4 * p };
            let (cur, work) = rest.split_at_mut(cin * p);
            let (oplane, work) = work.split_at_mut(olen);
            // As many pixels per product as the scratch holds.
            let q = (work.len() / (cout * 16)).clamp(1, p);
            let cols = &mut work[..q * cout * 16];
            let dst: &mut [f32] = if last { &mut out[..] } else { oplane };
            for (c, plane) in dst.chunks_exact_mut(4 * p).enumerate() {
                plane.fill(u.b.get(c));
            }
            for start in (0..p).step_by(q) {
                let m = q.min(p - start);
                kernels::gemm_cols(&mut cols[..m * cout * 16], &u.w, &cur[start..], p, m);
                scatter(dst, &cols[..m * cout * 16], start, m, (cout, h, w));
            }
            if last {
                // tanh (the runtime's vectorized one, which the GRU
                // shares: libm's `tanhf` would add its `expm1f`, 0.7 KiB
                // of a firmware's flash), then [-1, 1] to pixels.
                M::tanh_slice(out);
                for o in out.iter_mut() {
                    *o = 0.5 * (*o + 1.0);
                }
            } else {
                relu(oplane);
                move_down(rest, cin * p, olen);
            }
        }
        Ok(())
    }

    /// Draws z ~ N(0, I) from `rng` into the first Z floats of `z_buf` and
    /// generates from it.
    pub fn sample(
        &self,
        rng: &mut crate::sample::Rng,
        label: Option<u32>,
        z_buf: &mut [f32],
        scratch: &mut [f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let z = super::draw_noise(rng, z_buf, self.latent_dim())?;
        self.generate(z, label, scratch, out)
    }
}

/// Moves `buf[gap..gap + len]` to `buf[..len]` in pieces of at most `gap`
/// values, so that no piece overlaps its destination: `copy_within` would
/// do it in one call, but its memmove adds 1.5 KiB to a firmware's flash,
/// and memcpy is linked anyway.
fn move_down(buf: &mut [f32], gap: usize, len: usize) {
    let mut d = 0;
    while d < len {
        let n = gap.min(len - d);
        let (dst, src) = buf.split_at_mut(d + gap);
        dst[d..d + n].copy_from_slice(&src[..n]);
        d += n;
    }
}

fn relu(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.max(0.0));
}

/// Adds row `(oc, ky, kx)` of `cols` `(C_out*16, m)`, input pixels
/// `start..start + m`, into the output pixels `(oc, 2y + ky - 1,
/// 2x + kx - 1)` of `dst` `(C_out, 2h, 2w)`: the whole input rows of the
/// chunk in one call ([`kernels::convt`], each output value written once
/// per kernel row), a part row at either end one tap at a time.
fn scatter(
    dst: &mut [f32],
    cols: &[f32],
    start: usize,
    m: usize,
    (cout, h, w): (usize, usize, usize),
) {
    const K: usize = gan::KERNEL;
    const _: () = assert!(gan::KERNEL == 4 && gan::PAD == 1);
    let (oh, ow) = (2 * h, 2 * w);
    // Divisions once per chunk, not per run: 7,000 of them cost as much as
    // the whole matrix product (measured).
    let (y_start, x_start) = (start / w, start % w);
    let isa = kernels::isa();
    for (r4, taps) in cols.chunks_exact(K * m).enumerate().take(cout * K) {
        let (c, ky) = (r4 / K, r4 % K);
        let plane = &mut dst[c * oh * ow..(c + 1) * oh * ow];
        let tap = |kx: usize, j: usize, n: usize| &taps[kx * m + j..kx * m + j + n];
        // A run of `n` pixels of input row y from x0, outside a whole row.
        let part = |plane: &mut [f32], j: usize, y: usize, x0: usize, n: usize| {
            if let Some(oy) = (2 * y + ky).checked_sub(gan::PAD).filter(|&v| v < oh) {
                let orow = &mut plane[oy * ow..(oy + 1) * ow];
                for kx in 0..K {
                    add_run_tap(orow, tap(kx, j, n), x0, kx);
                }
            }
        };
        let (mut j, mut y) = (0, y_start);
        if x_start > 0 {
            let n = (w - x_start).min(m);
            part(plane, 0, y, x_start, n);
            (j, y) = (n, y + 1);
        }
        // The whole rows in one call.
        let whole = (m - j) / w * w;
        if whole > 0 {
            let t = [0, 1, 2, 3].map(|kx| tap(kx, j, whole));
            kernels::convt::add_rows_on(isa, plane, t, w, y, ky);
            (j, y) = (j + whole, y + whole / w);
        }
        if j < m {
            part(plane, j, y, 0, m - j);
        }
    }
}

/// One tap `kx` of a run of input pixels `x0..x0 + src.len()` into an
/// output row: column `2x + kx - 1`. x = 0 falls off the left for kx = 0
/// (skip it), and x = w - 1 off the right for kx = 3, where the
/// every-other-column iterator ends first. Iterators rather than indices:
/// no bounds checks.
fn add_run_tap(orow: &mut [f32], src: &[f32], x0: usize, kx: usize) {
    let t0 = usize::from(kx == 0 && x0 == 0);
    let first = (2 * (x0 + t0) + kx).saturating_sub(gan::PAD);
    let outs = orow
        .get_mut(first..)
        .unwrap_or_default()
        .iter_mut()
        .step_by(2);
    for (o, &v) in outs.zip(src.get(t0..).unwrap_or_default()) {
        *o += v;
    }
}
