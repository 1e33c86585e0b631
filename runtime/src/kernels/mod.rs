//! Matrix-vector products with f32 accumulation over F32, F16 and Q8_0
//! weights read in place.
//!
//! One safe entry point per operation ([`dot_f32`] and its kin, [`matvec`], [`matmul`]);
//! per-architecture modules share function names, `{isa}_{op}_{dtype}_{tile}`.
//! The implementation is chosen by `cfg(target_feature)`, so `no_std` builds
//! need no run-time detection; with the `std` feature the host also detects
//! AVX2 at run time. The scalar module is always compiled: it is the
//! reference and the Cortex-M path, where `fpv4` holds the fast mode's
//! Q8_0 dot product (and the f16 conversion) in FPv4 assembly, with the
//! scalar module's operations in its order. With the `int8` feature, `int8` holds
//! the integer path of Q8_0 weights times int8 activations (the `q8_0a8`
//! precision), which a matrix takes when its file asks for it.
//!
//! # The same bits on every target
//!
//! In the deterministic mode ([`set_deterministic`], or the
//! `deterministic` feature) every kernel sums in one canonical order, so a
//! model, a seed and its inputs give bit-identical samples on x86_64
//! (scalar, AVX2, AVX-512), aarch64 (NEON) and thumbv7em (scalar), which
//! lets a user show that a sample on a device came from the model they
//! trained. The fast mode, the default, fuses multiplies and adds where
//! the CPU can and sums Q8_0 blocks before scaling them; its results agree
//! to rounding, not to the bit. The canonical order:
//!
//! - a dot product puts element `i`'s product in lane `i % 16`, adds the
//!   lane's products in order from +0, and folds the 16 lanes by one fixed
//!   tree ([`scalar::fold16`]); Q8_0 and F16 weights widen exactly first
//!   (a Q8_0 weight is scale times quant, exact in f32);
//! - a matrix product ([`gemm`]) adds each output's products over k in
//!   turn;
//! - products and sums round separately: no kernel uses a fused
//!   multiply-add, which `no_std` Rust cannot ask for on the Cortex-M4F
//!   (`core` has no `f32::mul_add`; the M4's `VMLA` rounds twice, as a
//!   multiply then an add do);
//! - the other arithmetic (norms, attention, the GRU's gates, sampling) is
//!   plain Rust, the same code everywhere, and the math functions are
//!   `libm`'s, or vectorized copies with its bits ([`act`]).
//!
//! The tests hold every ISA's kernels to the scalar bits, and
//! `tests/tests/determinism.rs`, the firmware and the aarch64 sampler
//! tests compare the hashes of whole samples across targets. The
//! `fast-math` feature gives this up (micromath's `exp` differs from
//! libm's); so would NaNs, whose bits differ between x86 and Arm.

pub mod act;
pub mod attend;
pub mod convt;
#[cfg(all(edgegen_dsp, target_abi = "eabihf"))]
pub mod fpv4;
pub mod gemm;
#[cfg(feature = "int8")]
pub mod int8;
#[cfg(target_arch = "aarch64")]
pub mod neon;
pub mod scalar;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use edgegen_format::quant::{BlockQ8_0, QK8_0};
pub use gemm::{gemm_cols, gemm_cols_on};

/// An IEEE half's little-endian bytes as f32, the same bits on every
/// target: the FPU's `VCVTB` on a Cortex-M4F (`fpv4::vcvtb`), the
/// format's software conversion elsewhere. Every f16 weight and Q8_0
/// scale that the scalar kernels, the gemm's widening, attention and
/// `Matrix::add_row_to` read one at a time goes through it; the aarch64
/// kernels and the int8 reference call the format's `BlockQ8_0::scale`,
/// the same software conversion off the Cortex-M4F.
#[inline(always)]
pub fn f16_to_f32(b: [u8; 2]) -> f32 {
    #[cfg(all(edgegen_dsp, target_abi = "eabihf"))]
    return fpv4::vcvtb(u16::from_le_bytes(b));
    #[cfg(not(all(edgegen_dsp, target_abi = "eabihf")))]
    edgegen_format::quant::f16_le_to_f32(b)
}

/// A weight matrix's storage, borrowed from the model bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Weights<'a> {
    /// Little-endian f32, `4 * stride * rows` bytes.
    F32(&'a [u8]),
    /// Little-endian IEEE half, `2 * stride * rows` bytes.
    F16(&'a [u8]),
    /// ggml Q8_0 blocks, `stride / 32 * rows` of them.
    Q8_0(&'a [BlockQ8_0]),
}

/// A row-major `rows x cols` matrix; each stored row holds `stride >= cols`
/// elements (Q8_0 rows are padded to whole blocks).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Matrix<'a> {
    /// The storage.
    pub w: Weights<'a>,
    /// Rows (output features).
    pub rows: usize,
    /// Columns used (input features).
    pub cols: usize,
    /// Elements per stored row.
    pub stride: usize,
    /// Whether inputs are quantized to int8 first ([`int8`]).
    a8: bool,
}

impl<'a> Matrix<'a> {
    /// Wraps storage after checking that it holds `rows` rows of `stride`
    /// elements and that `cols <= stride`; `None` otherwise.
    pub fn new(w: Weights<'a>, rows: usize, cols: usize, stride: usize) -> Option<Self> {
        let n = rows.checked_mul(stride)?;
        let ok = cols <= stride
            && match w {
                Weights::F32(b) => b.len() == n.checked_mul(4)?,
                Weights::F16(b) => b.len() == n.checked_mul(2)?,
                Weights::Q8_0(b) => stride.is_multiple_of(QK8_0) && b.len() == n / QK8_0,
            };
        ok.then_some(Self {
            w,
            rows,
            cols,
            stride,
            a8: false,
        })
    }

    /// The same matrix multiplying int8 activations ([`int8`]) where its
    /// weights are Q8_0; F32 and F16 weights are returned unchanged. Needs
    /// the `int8` feature.
    ///
    /// ```
    /// use edgegen_format::quant::BlockQ8_0;
    /// use edgegen_runtime::kernels::{Matrix, Weights, matvec};
    /// let w = [BlockQ8_0::quantize(&[0.25; 32])];
    /// let m = Matrix::new(Weights::Q8_0(&w), 1, 32, 32).unwrap().with_int8_activations();
    /// let mut out = [0.0];
    /// matvec(&mut out, &m, &[1.0; 32], |_| 0.0);
    /// assert!((out[0] - 8.0).abs() < 1e-2);
    /// ```
    #[cfg(feature = "int8")]
    pub fn with_int8_activations(self) -> Self {
        Self {
            a8: matches!(self.w, Weights::Q8_0(_)),
            ..self
        }
    }

    /// Whether the inputs are quantized to int8 (with the `int8` feature,
    /// `Matrix::with_int8_activations`).
    pub fn int8_activations(&self) -> bool {
        self.a8
    }

    /// Bytes of weight storage.
    pub fn bytes(&self) -> usize {
        match self.w {
            Weights::F32(b) | Weights::F16(b) => b.len(),
            Weights::Q8_0(b) => b.len() * 34,
        }
    }

    /// Row `r` dotted with `x` (`x.len() == cols`).
    #[inline]
    pub fn row_dot(&self, r: usize, x: &[f32]) -> f32 {
        #[cfg(feature = "int8")]
        if let (true, Weights::Q8_0(b)) = (self.a8, self.w) {
            let mut out = [0f32];
            let one = Matrix { rows: 1, ..*self };
            let s = self.stride;
            int8::products_a8(isa(), &mut out, &one, &b[r * s / QK8_0..], x);
            return out[0];
        }
        self.row_dot_on(isa(), r, x)
    }

    /// Adds row `r` (its `cols` values, dequantized) into `out`: an
    /// embedding lookup in a table stored as a matrix. Nothing for a row
    /// past the end.
    pub fn add_row_to(&self, r: usize, out: &mut [f32]) {
        if r >= self.rows {
            return;
        }
        let (s, c) = (self.stride, self.cols.min(out.len()));
        match self.w {
            Weights::F32(b) => {
                for (o, x) in out[..c].iter_mut().zip(b[4 * r * s..].chunks_exact(4)) {
                    *o += f32::from_le_bytes([x[0], x[1], x[2], x[3]]);
                }
            }
            Weights::F16(b) => {
                for (o, x) in out[..c].iter_mut().zip(b[2 * r * s..].chunks_exact(2)) {
                    *o += f16_to_f32([x[0], x[1]]);
                }
            }
            Weights::Q8_0(b) => {
                let blocks = &b[r * s / QK8_0..(r + 1) * s / QK8_0];
                for (o, blk) in out[..c].chunks_mut(QK8_0).zip(blocks) {
                    let d = f16_to_f32(blk.d);
                    for (o, &q) in o.iter_mut().zip(&blk.qs) {
                        *o += d * q as f32;
                    }
                }
            }
        }
    }

    /// [`Matrix::row_dot`] on `isa`, which must be available, for f32
    /// activations (int8 ones take the `int8` module's path before this).
    #[inline]
    fn row_dot_on(&self, isa: Isa, r: usize, x: &[f32]) -> f32 {
        let (s, c) = (self.stride, self.cols);
        match self.w {
            Weights::F32(b) => dot_f32_on(isa, &b[4 * r * s..4 * (r * s + c)], x),
            Weights::F16(b) => dot_f16_on(isa, &b[2 * r * s..2 * (r * s + c)], x),
            Weights::Q8_0(b) => dot_q8_0_on(isa, &b[r * s / QK8_0..(r + 1) * s / QK8_0], x),
        }
    }
}

/// The instruction set the kernels run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// Plain Rust.
    Scalar,
    /// x86_64 AVX2 with FMA and F16C.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// x86_64 AVX-512F.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// aarch64 NEON.
    #[cfg(target_arch = "aarch64")]
    Neon,
}

impl Isa {
    /// Every instruction set of this architecture, the reference first.
    pub const ALL: &'static [Isa] = &[
        Isa::Scalar,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2,
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512,
        #[cfg(target_arch = "aarch64")]
        Isa::Neon,
    ];

    /// Whether this CPU can run `self`: fixed at compile time by
    /// `target_feature`, or, with the `std` feature, detected at run time.
    #[inline(always)]
    pub fn available(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                if cfg!(all(target_feature = "avx512f", target_feature = "f16c")) {
                    return true;
                }
                #[cfg(feature = "std")]
                return detect::avx512();
                #[allow(unreachable_code)]
                false
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                if cfg!(all(
                    target_feature = "avx2",
                    target_feature = "fma",
                    target_feature = "f16c"
                )) {
                    return true;
                }
                #[cfg(feature = "std")]
                return detect::avx2();
                #[allow(unreachable_code)]
                false
            }
        }
    }

    /// `self` where this CPU has it, the scalar reference otherwise: what
    /// makes the `unsafe` calls of the `*_on` kernels sound.
    #[inline(always)]
    fn or_scalar(self) -> Isa {
        if self.available() { self } else { Isa::Scalar }
    }
}

/// Whether the kernels sum in the canonical order ([`set_deterministic`]).
static DETERMINISTIC: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(cfg!(feature = "deterministic"));

/// Chooses the deterministic mode (`true`): every kernel sums in the
/// canonical order of this module's documentation, so samples are the
/// same bits on every target, at a cost (on a Cortex-M4F about 1.5 times
/// the instructions at Q8_0, and on x86 separate multiplies and adds
/// where the fast mode fuses them). The fast mode (`false`) is the
/// default, unless the `deterministic` feature is on, which also makes
/// `false` here do nothing. It applies from the next kernel call, in every
/// thread, and needs the `std` feature: without it the mode is the one the
/// crate was built with.
///
/// ```
/// use edgegen_runtime::kernels::{deterministic, set_deterministic};
/// set_deterministic(true); // a host (the `std` feature) follows this
/// let canonical = deterministic(); // what the kernels will do
/// # let _ = canonical;
/// set_deterministic(false);
/// ```
pub fn set_deterministic(on: bool) {
    DETERMINISTIC.store(on, core::sync::atomic::Ordering::Relaxed);
}

/// Whether the deterministic mode is on ([`set_deterministic`]). Without
/// `std` the mode is fixed when the crate is built (the `deterministic`
/// feature), so that a firmware image links one set of kernels only.
///
/// ```
/// // Off unless asked for: the fast mode is the default.
/// let fast = !edgegen_runtime::kernels::deterministic();
/// # let _ = fast;
/// ```
#[inline(always)]
pub fn deterministic() -> bool {
    cfg!(feature = "deterministic")
        || (cfg!(any(test, feature = "std"))
            && DETERMINISTIC.load(core::sync::atomic::Ordering::Relaxed))
}

/// [`force_isa`]'s choice: 0 for none, else 1 + the index in [`Isa::ALL`].
static FORCED: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);

/// Makes [`isa`] return `isa` (where this CPU has it; the scalar reference
/// otherwise) until called again, or the best ISA again with `None`: for
/// tests and benchmarks that run whole models on each instruction set.
/// Every ISA gives the same bits (the canonical order), so other threads
/// sampling meanwhile get the same results, only at another speed.
///
/// ```
/// use edgegen_runtime::kernels::{Isa, force_isa, isa};
/// force_isa(Some(Isa::Scalar));
/// assert_eq!(isa(), Isa::Scalar);
/// force_isa(None);
/// ```
pub fn force_isa(isa: Option<Isa>) {
    let v = isa
        .and_then(|i| Isa::ALL.iter().position(|&a| a == i))
        .map_or(0, |p| p as u8 + 1);
    FORCED.store(v, core::sync::atomic::Ordering::Relaxed);
}

/// The best instruction set this CPU has (or the one [`force_isa`] set).
/// It only ever names an ISA the CPU supports, which is what makes the
/// `unsafe` calls below sound.
#[inline(always)]
pub fn isa() -> Isa {
    let f = FORCED.load(core::sync::atomic::Ordering::Relaxed);
    if f != 0 {
        return Isa::ALL
            .get(f as usize - 1)
            .map_or(Isa::Scalar, |i| i.or_scalar());
    }
    #[cfg(target_arch = "aarch64")]
    return Isa::Neon;
    #[cfg(target_arch = "x86_64")]
    for i in [Isa::Avx512, Isa::Avx2] {
        if i.available() {
            return i;
        }
    }
    #[allow(unreachable_code)]
    Isa::Scalar
}

/// `sum w[i] x[i]` over F32 bytes; `w.len()` must be `4 * x.len()`.
#[inline]
pub fn dot_f32(w: &[u8], x: &[f32]) -> f32 {
    dot_f32_on(isa(), w, x)
}

/// [`dot_f32`] on `isa`, which must be available. Every ISA sums in the
/// canonical order ([`scalar::scalar_dot_f32`]), so all give the same bits.
#[inline]
fn dot_f32_on(isa: Isa, w: &[u8], x: &[f32]) -> f32 {
    let w = &w[..4 * x.len()];
    // SAFETY (every arm): `isa` is available (the callers' contract), and
    // w.len() = 4 x.len().
    let det = deterministic();
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if det => unsafe { x86::avx512_dot_f32::<false>(w, x) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::avx512_dot_f32::<true>(w, x) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if det => unsafe { x86::avx2_dot_f32::<false>(w, x) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::avx2_dot_f32::<true>(w, x) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if det => unsafe { neon::neon_dot_f32::<false>(w, x) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { neon::neon_dot_f32::<true>(w, x) },
        Isa::Scalar if det => scalar::scalar_dot_f32(w, x),
        Isa::Scalar => scalar::fast_dot_f32(w, x),
    }
}

/// `sum w[i] x[i]` over F16 bytes; `w.len()` must be `2 * x.len()`.
#[inline]
pub fn dot_f16(w: &[u8], x: &[f32]) -> f32 {
    dot_f16_on(isa(), w, x)
}

/// [`dot_f16`] on `isa`, which must be available; the canonical order.
#[inline]
fn dot_f16_on(isa: Isa, w: &[u8], x: &[f32]) -> f32 {
    let w = &w[..2 * x.len()];
    // SAFETY (every arm): as in `dot_f32_on`, with w.len() = 2 x.len().
    let det = deterministic();
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if det => unsafe { x86::avx512_dot_f16::<false>(w, x) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::avx512_dot_f16::<true>(w, x) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if det => unsafe { x86::avx2_dot_f16::<false>(w, x) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::avx2_dot_f16::<true>(w, x) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if det => unsafe { neon::neon_dot_f16::<false>(w, x) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { neon::neon_dot_f16::<true>(w, x) },
        Isa::Scalar if det => scalar::scalar_dot_f16(w, x),
        Isa::Scalar => scalar::fast_dot_f16(w, x),
    }
}

/// `sum w[i] x[i]` over Q8_0 blocks covering `x` (the last one possibly in part).
#[inline]
pub fn dot_q8_0(w: &[BlockQ8_0], x: &[f32]) -> f32 {
    dot_q8_0_on(isa(), w, x)
}

/// [`dot_q8_0`] on `isa`, which must be available; the canonical order.
#[inline]
fn dot_q8_0_on(isa: Isa, w: &[BlockQ8_0], x: &[f32]) -> f32 {
    let w = &w[..x.len().div_ceil(QK8_0)];
    // SAFETY (every arm): `isa` is available (the callers' contract), and
    // w covers x.
    let det = deterministic();
    match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 if det => unsafe { x86::avx512_dot_q8_0::<false>(w, x) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unsafe { x86::avx512_dot_q8_0::<true>(w, x) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 if det => unsafe { x86::avx2_dot_q8_0::<false>(w, x) },
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => unsafe { x86::avx2_dot_q8_0::<true>(w, x) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon if det => unsafe { neon::neon_dot_q8_0::<false>(w, x) },
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => unsafe { neon::neon_dot_q8_0::<true>(w, x) },
        Isa::Scalar if det => scalar::scalar_dot_q8_0(w, x),
        Isa::Scalar => scalar::fast_dot_q8_0(w, x),
    }
}

/// The most rows a panel kernel computes at once.
const MAX_PANEL: usize = 16;

impl Matrix<'_> {
    /// Rows `r..r + h` dotted with `x` by one multi-row SIMD kernel, which
    /// loads each chunk of `x` once for all its rows: `Some((h, sums))`
    /// with `1 <= h <= left`, or `None` where this CPU has no panel kernel
    /// for the storage type. `left >= 1` rows remain from `r`; `isa` must
    /// be available.
    #[inline]
    fn panel(
        &self,
        isa: Isa,
        r: usize,
        left: usize,
        x: &[f32],
    ) -> Option<(usize, [f32; MAX_PANEL])> {
        #[cfg(target_arch = "x86_64")]
        {
            let (s, c) = (self.stride, self.cols);
            let mut out = [0f32; MAX_PANEL];
            match isa {
                Isa::Avx512 => {
                    let h = left.min(x86::PANEL);
                    let det = deterministic();
                    // SAFETY (every arm): AVX-512F (and BW/VL for F16) is
                    // available, as the callers and `avx512bw()` say; each slice
                    // ends where row r + h - 1 ends and h <= 16; the Q8_0
                    // arm checks that the gather offsets fit an i32.
                    out = match self.w {
                        Weights::F32(b) => {
                            let w = &b[4 * r * s..4 * ((r + h - 1) * s + c)];
                            if det {
                                unsafe { x86::avx512_dot16_f32::<false>(w, 4 * s, h, x) }
                            } else {
                                unsafe { x86::avx512_dot16_f32::<true>(w, 4 * s, h, x) }
                            }
                        }
                        Weights::F16(b) if avx512bw() => {
                            let w = &b[2 * r * s..2 * ((r + h - 1) * s + c)];
                            if det {
                                unsafe { x86::avx512_dot16_f16::<false>(w, 2 * s, h, x) }
                            } else {
                                unsafe { x86::avx512_dot16_f16::<true>(w, 2 * s, h, x) }
                            }
                        }
                        Weights::Q8_0(b) if 34 * 15 * (s / QK8_0) < i32::MAX as usize => {
                            let nb = s / QK8_0;
                            let w = &b[r * nb..(r + h - 1) * nb + c.div_ceil(QK8_0)];
                            if det {
                                unsafe { x86::avx512_dot16_q8_0::<false>(w, nb, h, x) }
                            } else {
                                unsafe { x86::avx512_dot16_q8_0::<true>(w, nb, h, x) }
                            }
                        }
                        _ => return None,
                    };
                    return Some((h, out));
                }
                Isa::Avx2 => {
                    let h = left.min(x86::PANEL_AVX2);
                    let det = deterministic();
                    // SAFETY (every arm): AVX2 and F16C are available, as
                    // the callers say; each slice ends where row r + h - 1
                    // ends and h <= 4.
                    let d = match self.w {
                        Weights::F32(b) => {
                            let w = &b[4 * r * s..4 * ((r + h - 1) * s + c)];
                            if det {
                                unsafe { x86::avx2_dot4_f32::<false>(w, 4 * s, h, x) }
                            } else {
                                unsafe { x86::avx2_dot4_f32::<true>(w, 4 * s, h, x) }
                            }
                        }
                        Weights::F16(b) => {
                            let w = &b[2 * r * s..2 * ((r + h - 1) * s + c)];
                            if det {
                                unsafe { x86::avx2_dot4_f16::<false>(w, 2 * s, h, x) }
                            } else {
                                unsafe { x86::avx2_dot4_f16::<true>(w, 2 * s, h, x) }
                            }
                        }
                        Weights::Q8_0(b) => {
                            let nb = s / QK8_0;
                            let w = &b[r * nb..(r + h - 1) * nb + c.div_ceil(QK8_0)];
                            if det {
                                unsafe { x86::avx2_dot4_q8_0::<false>(w, nb, h, x) }
                            } else {
                                unsafe { x86::avx2_dot4_q8_0::<true>(w, nb, h, x) }
                            }
                        }
                    };
                    out[..x86::PANEL_AVX2].copy_from_slice(&d);
                    return Some((h, out));
                }
                Isa::Scalar => {}
            }
        }
        #[cfg(target_arch = "aarch64")]
        if isa == Isa::Neon {
            let (s, c) = (self.stride, self.cols);
            let h = left.min(neon::PANEL);
            let det = deterministic();
            // SAFETY (every arm): NEON is baseline; each slice ends where
            // row r + h - 1 ends and h <= 4.
            let d = match self.w {
                Weights::F32(b) => {
                    let w = &b[4 * r * s..4 * ((r + h - 1) * s + c)];
                    if det {
                        unsafe { neon::neon_dot4_f32::<{ neon::PANEL }, false>(w, 4 * s, h, x) }
                    } else {
                        unsafe { neon::neon_dot4_f32::<{ neon::PANEL }, true>(w, 4 * s, h, x) }
                    }
                }
                Weights::F16(b) => {
                    let w = &b[2 * r * s..2 * ((r + h - 1) * s + c)];
                    if det {
                        unsafe { neon::neon_dot4_f16::<{ neon::PANEL }, false>(w, 2 * s, h, x) }
                    } else {
                        unsafe { neon::neon_dot4_f16::<{ neon::PANEL }, true>(w, 2 * s, h, x) }
                    }
                }
                Weights::Q8_0(b) => {
                    let nb = s / QK8_0;
                    let w = &b[r * nb..(r + h - 1) * nb + c.div_ceil(QK8_0)];
                    if det {
                        unsafe { neon::neon_dot4_q8_0::<{ neon::PANEL }, false>(w, nb, h, x) }
                    } else {
                        unsafe { neon::neon_dot4_q8_0::<{ neon::PANEL }, true>(w, nb, h, x) }
                    }
                }
            };
            let mut out = [0f32; MAX_PANEL];
            out[..neon::PANEL].copy_from_slice(&d);
            return Some((h, out));
        }
        let _ = (isa, r, left, x);
        None
    }
}

/// Whether AVX-512BW and VL are available (16-bit masked loads, for F16).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn avx512bw() -> bool {
    if cfg!(all(
        target_feature = "avx512bw",
        target_feature = "avx512vl"
    )) {
        return true;
    }
    #[cfg(feature = "std")]
    return std::is_x86_feature_detected!("avx512bw") && std::is_x86_feature_detected!("avx512vl");
    #[allow(unreachable_code)]
    false
}

/// `out[r] = bias[r] + sum_c W[r, c] x[c]`; `x.len() == m.cols`,
/// `out.len() == m.rows`, `bias` either empty or `m.rows` long.
pub fn matvec(out: &mut [f32], m: &Matrix<'_>, x: &[f32], bias: impl Fn(usize) -> f32) {
    matvec_on(isa(), out, m, x, bias)
}

/// [`matvec`] on a chosen instruction set, or on the scalar reference where
/// this CPU lacks it: for tests and benchmarks that compare the paths.
pub fn matvec_on(
    isa: Isa,
    out: &mut [f32],
    m: &Matrix<'_>,
    x: &[f32],
    bias: impl Fn(usize) -> f32,
) {
    let isa = isa.or_scalar();
    #[cfg(feature = "int8")]
    if let (true, Weights::Q8_0(w)) = (m.a8, m.w) {
        let rows = int8::products_a8(isa, out, m, w, x);
        for (r, o) in out[..rows].iter_mut().enumerate() {
            *o += bias(r);
        }
        return;
    }
    let rows = m.rows.min(out.len());
    let mut r = 0;
    while r < rows {
        let Some((h, d)) = m.panel(isa, r, rows - r, x) else {
            break;
        };
        for (k, v) in d.into_iter().enumerate().take(h) {
            out[r + k] = bias(r + k) + v;
        }
        r += h;
    }
    // A slice, not `.take(rows).skip(r)`, whose `nth` a Cortex-M4 build
    // kept as a 104-byte function.
    for (i, o) in out[..rows].iter_mut().enumerate().skip(r) {
        *o = bias(i) + m.row_dot_on(isa, i, x);
    }
}

/// [`matvec`] for `n` inputs: `x` is `(n, cols)`, `out` is `(n, rows)`.
pub fn matmul(out: &mut [f32], m: &Matrix<'_>, x: &[f32], n: usize, bias: impl Fn(usize) -> f32) {
    for (o, xi) in out
        .chunks_exact_mut(m.rows)
        .zip(x.chunks_exact(m.cols))
        .take(n)
    {
        matvec(o, m, xi, &bias);
    }
}

#[cfg(all(any(test, feature = "std"), target_arch = "x86_64"))]
mod detect {
    extern crate std;
    pub fn avx2() -> bool {
        std::is_x86_feature_detected!("avx2")
            && std::is_x86_feature_detected!("fma")
            && std::is_x86_feature_detected!("f16c")
    }
    pub fn avx512() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("f16c")
    }
}

#[cfg(test)]
mod tests {
    //! Every SIMD path against the scalar reference, on random data with
    //! odd sizes and tails: in the deterministic mode the same bits as the
    //! canonical order spelled out plainly; in the fast one within a stated
    //! budget, |fast - canonical| <= 1e-6 * n for inputs in [-1, 1].
    extern crate std;
    use super::*;
    use std::vec::Vec;

    /// Uniform in [-1, 1) from a xorshift seed; the gemm tests share it.
    pub(super) fn rand(seed: &mut u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 17;
                *seed ^= *seed << 5;
                (*seed as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// Every instruction set this CPU has.
    fn isas() -> impl Iterator<Item = Isa> {
        Isa::ALL.iter().copied().filter(|i| i.available())
    }

    const SIZES: [usize; 13] = [1, 7, 16, 31, 32, 33, 63, 64, 65, 100, 400, 785, 1024];

    type Dot<W> = (&'static str, fn(&[W], &[f32]) -> f32);

    /// The whole-row dot of each ISA this CPU has, in the deterministic
    /// mode (`FUSED` false) or the fast one, the reference first.
    fn simd_f32<const FUSED: bool>() -> Vec<Dot<u8>> {
        let mut v: Vec<Dot<u8>> = std::vec![("scalar", scalar::scalar_dot_f32)];
        // SAFETY (every closure): the ISA is available (checked), and
        // w.len() = 4 x.len() (the tests' contract).
        #[cfg(target_arch = "x86_64")]
        if detect::avx2() {
            v.push(("avx2", |w, x| unsafe { x86::avx2_dot_f32::<FUSED>(w, x) }));
        }
        #[cfg(target_arch = "x86_64")]
        if detect::avx512() {
            v.push(("avx512", |w, x| unsafe {
                x86::avx512_dot_f32::<FUSED>(w, x)
            }));
        }
        #[cfg(target_arch = "aarch64")]
        v.push(("neon", |w, x| unsafe { neon::neon_dot_f32::<FUSED>(w, x) }));
        v
    }

    fn simd_f16<const FUSED: bool>() -> Vec<Dot<u8>> {
        let mut v: Vec<Dot<u8>> = std::vec![("scalar", scalar::scalar_dot_f16)];
        // SAFETY (every closure): as in simd_f32, w.len() = 2 x.len().
        #[cfg(target_arch = "x86_64")]
        if detect::avx2() {
            v.push(("avx2", |w, x| unsafe { x86::avx2_dot_f16::<FUSED>(w, x) }));
        }
        #[cfg(target_arch = "x86_64")]
        if detect::avx512() {
            v.push(("avx512", |w, x| unsafe {
                x86::avx512_dot_f16::<FUSED>(w, x)
            }));
        }
        #[cfg(target_arch = "aarch64")]
        v.push(("neon", |w, x| unsafe { neon::neon_dot_f16::<FUSED>(w, x) }));
        v
    }

    fn simd_q8<const FUSED: bool>() -> Vec<Dot<BlockQ8_0>> {
        let mut v: Vec<Dot<BlockQ8_0>> = std::vec![("scalar", scalar::scalar_dot_q8_0)];
        // SAFETY (every closure): as in simd_f32, w covers x.
        #[cfg(target_arch = "x86_64")]
        if detect::avx2() {
            v.push(("avx2", |w, x| unsafe { x86::avx2_dot_q8_0::<FUSED>(w, x) }));
        }
        #[cfg(target_arch = "x86_64")]
        if detect::avx512() {
            v.push(("avx512", |w, x| unsafe {
                x86::avx512_dot_q8_0::<FUSED>(w, x)
            }));
        }
        #[cfg(target_arch = "aarch64")]
        v.push(("neon", |w, x| unsafe { neon::neon_dot_q8_0::<FUSED>(w, x) }));
        v
    }

    /// The canonical order in plain words, independently of the kernels:
    /// lane i % 16 sums the rounded products in order, then the fold.
    fn canonical(w: &[f32], x: &[f32]) -> f32 {
        let mut l = [0f32; 16];
        for (i, (a, b)) in w.iter().zip(x).enumerate() {
            l[i % 16] += a * b;
        }
        let g = |b: usize| (l[b] + l[b + 2]) + (l[b + 1] + l[b + 3]);
        (g(0) + g(4)) + (g(8) + g(12))
    }

    #[test]
    fn a_simd_path_is_tested_where_one_exists() {
        let n = simd_f32::<true>().len();
        #[cfg(target_arch = "aarch64")]
        assert!(n >= 2, "no NEON kernel ran");
        #[cfg(target_arch = "x86_64")]
        if std::is_x86_feature_detected!("avx2") {
            assert!(n >= 2, "no AVX2 kernel ran");
        }
    }

    #[test]
    fn f32_and_f16_dots_are_the_canonical_bits_on_every_isa() {
        let mut s = 1;
        for n in SIZES {
            let w = rand(&mut s, n);
            let x = rand(&mut s, n);
            let wb: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
            let hb: Vec<u8> = w
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect();
            let want = canonical(&w, &x);
            for (name, f) in simd_f32::<false>() {
                let got = f(&wb, &x);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{name} f32 n={n}: {got} vs {want}"
                );
                // Weights at an odd address read the same.
                let mut shifted = std::vec![0u8; 1];
                shifted.extend(&wb);
                let got = f(&shifted[1..], &x);
                assert_eq!(got.to_bits(), want.to_bits(), "{name} f32 unaligned n={n}");
            }
            let wh: Vec<f32> = w.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
            let want = canonical(&wh, &x);
            for (name, f) in simd_f16::<false>() {
                let got = f(&hb, &x);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{name} f16 n={n}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn f16_specials_convert_exactly() {
        // Subnormal, normal, max, infinities and zero, in every lane position.
        let vals: [u16; 16] = [
            1, 0x3c00, 0x7bff, 0x7c00, 0xfc00, 0x8001, 0, 0x8000, 0x0400, 0x3555, 0xc000, 2, 3,
            0x03ff, 0x4248, 0xbc00,
        ];
        for i in 0..16 {
            // The value alone in lane i (an infinity elsewhere would make
            // 0 * inf = NaN), the input 1 there and 0.5 in the other lanes.
            let mut lanes = [0u16; 16];
            lanes[i] = vals[i];
            let hb: Vec<u8> = lanes.iter().flat_map(|v| v.to_le_bytes()).collect();
            let mut x = [0.5f32; 16];
            x[i] = 1.0;
            let want = half::f16::from_bits(vals[i]).to_f32();
            for (name, f) in simd_f16::<true>().into_iter().chain(simd_f16::<false>()) {
                let got = f(&hb, &x);
                assert!(
                    got == want || (got.is_nan() && want.is_nan()),
                    "{name} lane {i}: {got} vs {want}"
                );
            }
        }
    }

    /// The fast mode's kernels (fused where the CPU can, Q8_0 scaled per
    /// block on the scalar path) agree with the canonical sums to
    /// rounding.
    #[test]
    fn fast_dots_agree_with_the_canonical_ones_to_rounding() {
        let mut s = 5;
        for n in SIZES {
            let w = rand(&mut s, n);
            let x = rand(&mut s, n);
            let wb: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
            let hb: Vec<u8> = w
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect();
            let blocks: Vec<BlockQ8_0> = w
                .chunks(32)
                .map(|c| {
                    let mut b = [0f32; 32];
                    b[..c.len()].copy_from_slice(c);
                    BlockQ8_0::quantize(&b)
                })
                .collect();
            let tol = 1e-6 * n as f32;
            let close = |name: &str, got: f32, want: f32| {
                assert!((got - want).abs() <= tol, "{name} n={n}: {got} vs {want}")
            };
            let fast32: Vec<Dot<u8>> = simd_f32::<true>()
                .into_iter()
                .chain([(
                    "scalar fast",
                    scalar::fast_dot_f32 as fn(&[u8], &[f32]) -> f32,
                )])
                .collect();
            for (name, f) in fast32 {
                close(name, f(&wb, &x), scalar::scalar_dot_f32(&wb, &x));
            }
            let fast16: Vec<Dot<u8>> = simd_f16::<true>()
                .into_iter()
                .chain([(
                    "scalar fast",
                    scalar::fast_dot_f16 as fn(&[u8], &[f32]) -> f32,
                )])
                .collect();
            for (name, f) in fast16 {
                close(name, f(&hb, &x), scalar::scalar_dot_f16(&hb, &x));
            }
            let fastq: Vec<Dot<BlockQ8_0>> = simd_q8::<true>()
                .into_iter()
                .chain([(
                    "scalar fast",
                    scalar::fast_dot_q8_0 as fn(&[BlockQ8_0], &[f32]) -> f32,
                )])
                .collect();
            for (name, f) in fastq {
                close(name, f(&blocks, &x), scalar::scalar_dot_q8_0(&blocks, &x));
            }
        }
    }

    /// `rows` rows of `cols` weights (row-major in `w`) as Q8_0 blocks,
    /// each row zero-padded to whole blocks; and the blocks per row.
    #[allow(dead_code)] // only the x86 and aarch64 tests use it
    fn padded_q8_rows(w: &[f32], rows: usize, cols: usize) -> (Vec<BlockQ8_0>, usize) {
        let nb = cols.div_ceil(32);
        let mut q = std::vec![BlockQ8_0 { d: [0; 2], qs: [0; 32] }; rows * nb];
        for r in 0..rows {
            let mut row = std::vec![0f32; 32 * nb];
            row[..cols].copy_from_slice(&w[r * cols..(r + 1) * cols]);
            edgegen_format::quant::quantize_q8_0(&row, &mut q[r * nb..(r + 1) * nb]);
        }
        (q, nb)
    }

    /// AVX2's fast (fused) Q8_0 panel agrees with the canonical rows to
    /// rounding, junk in the last block's padding included (x's zero lanes
    /// past the row cancel it); the deterministic panels are held to the
    /// bit by the panel test below.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn avx2_fast_q8_0_panel_agrees_with_the_canonical_rows() {
        if !Isa::Avx2.available() {
            return;
        }
        let mut s = 19;
        for (rows, cols) in [(1, 5), (3, 33), (4, 64), (2, 100), (4, 390)] {
            let w = rand(&mut s, rows * cols);
            let x = rand(&mut s, cols);
            let (mut q, nb) = padded_q8_rows(&w, rows, cols);
            if cols % 32 != 0 {
                for r in 0..rows {
                    q[r * nb + nb - 1].qs[cols % 32..].fill(77);
                }
            }
            // SAFETY: AVX2, FMA and F16C (`available` checks all three); q
            // holds `rows` rows of nb blocks.
            let got = unsafe { x86::avx2_dot4_q8_0::<true>(&q, nb, rows, &x) };
            let tol = 1e-6 * cols as f32;
            for (r, g) in got.iter().enumerate().take(rows) {
                let want = scalar::scalar_dot_q8_0(&q[r * nb..(r + 1) * nb], &x);
                assert!(
                    (g - want).abs() <= tol,
                    "{rows}x{cols} row {r}: {g} vs {want}"
                );
            }
        }
    }

    /// NEON's fast (fused) panels agree with the canonical rows to
    /// rounding; the deterministic ones are held to the bit by the panel
    /// test below.
    #[cfg(target_arch = "aarch64")]
    #[test]
    fn neon_fast_panels_agree_with_the_canonical_rows() {
        let mut s = 17;
        for (rows, cols) in [(1, 5), (3, 33), (4, 64), (2, 100)] {
            let w = rand(&mut s, rows * cols);
            let x = rand(&mut s, cols);
            let wb: Vec<u8> = w.iter().flat_map(|v| v.to_le_bytes()).collect();
            let hb: Vec<u8> = w
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect();
            let (q, nb) = padded_q8_rows(&w, rows, cols);
            // SAFETY: NEON is baseline; each buffer holds `rows` rows.
            let (f, h, q8) = unsafe {
                (
                    neon::neon_dot4_f32::<{ neon::PANEL }, true>(&wb, 4 * cols, rows, &x),
                    neon::neon_dot4_f16::<{ neon::PANEL }, true>(&hb, 2 * cols, rows, &x),
                    neon::neon_dot4_q8_0::<{ neon::PANEL }, true>(&q, nb, rows, &x),
                )
            };
            let tol = 1e-6 * cols as f32;
            for r in 0..rows {
                let want = scalar::scalar_dot_f32(&wb[4 * r * cols..4 * (r + 1) * cols], &x);
                assert!((f[r] - want).abs() <= tol, "f32 {rows}x{cols} row {r}");
                let want = scalar::scalar_dot_f16(&hb[2 * r * cols..2 * (r + 1) * cols], &x);
                assert!((h[r] - want).abs() <= tol, "f16 {rows}x{cols} row {r}");
                let want = scalar::scalar_dot_q8_0(&q[r * nb..(r + 1) * nb], &x);
                assert!((q8[r] - want).abs() <= tol, "q8_0 {rows}x{cols} row {r}");
            }
        }
    }

    #[test]
    fn q8_0_dots_are_the_canonical_bits_with_partial_last_block() {
        let mut s = 9;
        for n in SIZES {
            let nb = n.div_ceil(32);
            let blocks: Vec<BlockQ8_0> = (0..nb)
                .map(|_| {
                    let v = rand(&mut s, 32);
                    BlockQ8_0::quantize(&v.try_into().unwrap())
                })
                .collect();
            let x = rand(&mut s, n);
            let wq: Vec<f32> = blocks
                .iter()
                .flat_map(|b| b.qs.map(|q| b.scale() * q as f32))
                .collect();
            let want = canonical(&wq[..n], &x);
            for (name, f) in simd_q8::<false>() {
                let got = f(&blocks, &x);
                assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{name} q8_0 n={n}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn panel_matvecs_are_the_scalar_rows_bits_for_every_type_and_isa() {
        // The mode is process-wide; no test here turns it off again.
        set_deterministic(true);
        let mut s = 21;
        // Panels of 16 (AVX-512) and 4 (AVX2, NEON) rows, full and short, over
        // columns with and without tails and partial Q8_0 blocks.
        for (rows, cols) in [
            (1, 5),
            (4, 16),
            (7, 33),
            (9, 400),
            (13, 20),
            (8, 100),
            (16, 64),
            (17, 31),
            (33, 7),
            (37, 129),
            (48, 400),
        ] {
            let wv = rand(&mut s, rows * cols);
            let x = rand(&mut s, cols);
            let f32b: Vec<u8> = wv.iter().flat_map(|v| v.to_le_bytes()).collect();
            let f16b: Vec<u8> = wv
                .iter()
                .flat_map(|v| half::f16::from_f32(*v).to_le_bytes())
                .collect();
            let stride = cols.div_ceil(32) * 32;
            let mut q = std::vec![BlockQ8_0 { d: [0; 2], qs: [0; 32] }; rows * stride / 32];
            for r in 0..rows {
                let mut row = std::vec![0f32; stride];
                row[..cols].copy_from_slice(&wv[r * cols..(r + 1) * cols]);
                // Junk in the padding must not matter.
                row[cols..].fill(7.0);
                edgegen_format::quant::quantize_q8_0(
                    &row,
                    &mut q[r * stride / 32..(r + 1) * stride / 32],
                );
            }
            let mats = [
                Matrix::new(Weights::F32(&f32b), rows, cols, cols).unwrap(),
                Matrix::new(Weights::F16(&f16b), rows, cols, cols).unwrap(),
                Matrix::new(Weights::Q8_0(&q), rows, cols, stride).unwrap(),
            ];
            for (m, isa) in mats.into_iter().flat_map(|m| isas().map(move |i| (m, i))) {
                let mut out = std::vec![0f32; rows];
                matvec_on(isa, &mut out, &m, &x, |r| r as f32);
                for (r, o) in out.iter().enumerate() {
                    let want = r as f32
                        + match m.w {
                            Weights::F32(b) => {
                                scalar::scalar_dot_f32(&b[4 * r * cols..4 * (r + 1) * cols], &x)
                            }
                            Weights::F16(b) => {
                                scalar::scalar_dot_f16(&b[2 * r * cols..2 * (r + 1) * cols], &x)
                            }
                            Weights::Q8_0(b) => scalar::scalar_dot_q8_0(
                                &b[r * stride / 32..(r + 1) * stride / 32],
                                &x,
                            ),
                        };
                    assert_eq!(
                        o.to_bits(),
                        want.to_bits(),
                        "{isa:?} {rows}x{cols} {:?} row {r}: {o} vs {want}",
                        m.w
                    );
                }
            }
        }
    }

    #[test]
    fn matrix_checks_its_storage() {
        let b = [0u8; 4 * 6];
        assert!(Matrix::new(Weights::F32(&b), 2, 3, 3).is_some());
        assert!(Matrix::new(Weights::F32(&b), 2, 4, 3).is_none());
        assert!(Matrix::new(Weights::F32(&b), 3, 3, 3).is_none());
        assert!(Matrix::new(Weights::F32(&b), usize::MAX, 3, 3).is_none());
        let q = [BlockQ8_0 {
            d: [0; 2],
            qs: [0; 32],
        }; 2];
        assert!(Matrix::new(Weights::Q8_0(&q), 2, 20, 32).is_some());
        assert!(Matrix::new(Weights::Q8_0(&q), 2, 20, 20).is_none());
    }
}
