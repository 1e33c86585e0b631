//! Layers over caller buffers: dense, the activations, layer norm, and
//! the GRU cell ([`gru`]).

pub mod gru;
pub mod lpc;

use crate::kernels::{self, Matrix};
use crate::math::{self, Math};
use edgegen_format::arch::{ActQuant, Activation};
use edgegen_format::{Error, F16View, F32View, GgmlType, Gguf, TensorName};

/// A bias or norm vector, read in place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Vector<'a> {
    /// F32 values.
    F32(F32View<'a>),
    /// F16 values.
    F16(F16View<'a>),
}

impl Vector<'_> {
    /// Element `i` (0 past the end).
    #[inline]
    pub fn get(&self, i: usize) -> f32 {
        match self {
            Vector::F32(v) => v.get(i),
            Vector::F16(v) => v.get(i),
        }
        .unwrap_or(0.0)
    }
    /// Adds the first `out.len()` elements to `out` (0 past the end), in a
    /// loop the compiler vectorizes: per-element `get` calls cost a
    /// microsecond over a 784-wide layer.
    #[inline]
    pub fn add_to(&self, out: &mut [f32]) {
        self.add_range_to(0, out)
    }

    /// Adds elements `start .. start + out.len()` to `out` (0 past the
    /// end): row `start / out.len()` of a table stored as one vector. F32
    /// values in aligned memory (a firmware's model, a file read into a
    /// buffer) are added as a slice.
    #[inline]
    pub fn add_range_to(&self, start: usize, out: &mut [f32]) {
        match self {
            Vector::F32(v) => {
                if let Some(s) = v.as_slice() {
                    let s = s.get(start..).unwrap_or(&[]);
                    for (o, b) in out.iter_mut().zip(s) {
                        *o += b;
                    }
                    return;
                }
                let bytes = v.bytes().get(start.saturating_mul(4)..).unwrap_or(&[]);
                for (o, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                    *o += f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                }
            }
            Vector::F16(v) => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o += v.get(start.saturating_add(i)).unwrap_or(0.0);
                }
            }
        }
    }

    /// Bytes of storage.
    pub fn bytes(&self) -> usize {
        match self {
            Vector::F32(v) => v.bytes().len(),
            Vector::F16(v) => v.bytes().len(),
        }
    }

    /// Element count.
    pub fn len(&self) -> usize {
        match self {
            Vector::F32(v) => v.len(),
            Vector::F16(v) => v.len(),
        }
    }
    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A fully connected layer: `y = W x + b`, W `(out, in)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Dense<'a> {
    /// The weight.
    pub w: Matrix<'a>,
    /// The bias, `out` long.
    pub b: Vector<'a>,
}

/// Reads `name` as a weight of `rows x cols` (GGUF shape `[stride, rows]`,
/// where Q8_0 rows may be zero-padded to whole blocks), multiplying int8
/// activations where the file says so ([`ActQuant`]).
pub fn load_matrix<'a>(
    g: &Gguf<'a>,
    name: TensorName,
    rows: usize,
    cols: usize,
) -> Result<Matrix<'a>, Error> {
    use kernels::Weights;
    let t = g.tensor_named(name).ok_or(Error::MissingTensor { name })?;
    let stride = match t.ggml_type() {
        GgmlType::Q8_0 => cols.div_ceil(32) * 32,
        _ => cols,
    };
    let expected = [stride as u64, rows as u64, 1, 1];
    if t.dims4() != expected || t.shape().len() != 2 {
        return Err(Error::WrongShape {
            name,
            expected: dims32(expected),
            found: dims32(t.dims4()),
        });
    }
    let w = match t.ggml_type() {
        GgmlType::F32 => Weights::F32(t.bytes()),
        GgmlType::F16 => Weights::F16(t.bytes()),
        GgmlType::Q8_0 => Weights::Q8_0(t.q8_0()?.blocks()),
        found => {
            return Err(Error::WrongTensorType {
                expected: GgmlType::F32,
                found,
            });
        }
    };
    let m = Matrix::new(w, rows, cols, stride).ok_or(Error::WrongShape {
        name,
        expected: dims32(expected),
        found: dims32(t.dims4()),
    })?;
    match ActQuant::read(g)? {
        ActQuant::F32 => Ok(m),
        #[cfg(feature = "int8")]
        ActQuant::Int8 => Ok(m.with_int8_activations()),
        #[cfg(not(feature = "int8"))]
        ActQuant::Int8 => Err(Error::BadValue {
            key: edgegen_format::arch::keys::ACTIVATIONS,
            expected: "f32: this edgegen-runtime was built without its `int8` feature, which int8 activations need",
        }),
    }
}

fn dims32(d: [u64; 4]) -> [u32; 4] {
    d.map(|v| v.min(u32::MAX as u64) as u32)
}

/// Reads `name` as a vector of `n` F32 or F16 values.
pub fn load_vector<'a>(g: &Gguf<'a>, name: TensorName, n: usize) -> Result<Vector<'a>, Error> {
    load_f32_or_f16(g, name, [n as u64, 1, 1, 1], 1)
}

/// Reads `name` as a table of `rows` rows of `cols` F32 or F16 values
/// (GGUF shape `[cols, rows]`), kept as one vector: row `r` starts at
/// `r * cols`.
pub fn load_table<'a>(
    g: &Gguf<'a>,
    name: TensorName,
    rows: usize,
    cols: usize,
) -> Result<Vector<'a>, Error> {
    load_f32_or_f16(g, name, [cols as u64, rows as u64, 1, 1], 2)
}

/// `name` as F32 or F16 values in place, after checking its `ndim`
/// dimensions against `expected`.
fn load_f32_or_f16<'a>(
    g: &Gguf<'a>,
    name: TensorName,
    expected: [u64; 4],
    ndim: usize,
) -> Result<Vector<'a>, Error> {
    let t = g.tensor_named(name).ok_or(Error::MissingTensor { name })?;
    if t.dims4() != expected || t.shape().len() != ndim {
        return Err(Error::WrongShape {
            name,
            expected: dims32(expected),
            found: dims32(t.dims4()),
        });
    }
    match t.ggml_type() {
        GgmlType::F32 => Ok(Vector::F32(t.f32()?)),
        GgmlType::F16 => Ok(Vector::F16(t.f16()?)),
        found => Err(Error::WrongTensorType {
            expected: GgmlType::F32,
            found,
        }),
    }
}

impl Dense<'_> {
    /// Bytes of weight and bias storage.
    pub fn bytes(&self) -> usize {
        self.w.bytes() + self.b.bytes()
    }

    /// Multiply-adds per input.
    pub fn macs(&self) -> usize {
        self.w.rows * self.w.cols
    }

    /// `out = W x + b` for one input; `x.len() == w.cols`, `out.len() == w.rows`.
    #[inline]
    pub fn forward(&self, out: &mut [f32], x: &[f32]) {
        // A bias of -0.0, which adds nothing to any value (0.0 would turn a
        // sum of -0.0 into +0.0), so the compiler drops the kernels' bias
        // pass: a Cortex-M4 spent some 5 instructions a row adding 0.0.
        kernels::matvec(out, &self.w, x, |_| -0.0);
        self.b.add_to(out);
    }
}

/// Applies `act` in place, with [`math::DefaultMath`].
pub fn activate(act: Activation, x: &mut [f32]) {
    activate_with::<math::DefaultMath>(act, x)
}

/// Applies `act` in place, with the math functions of `M`.
pub fn activate_with<M: Math>(act: Activation, x: &mut [f32]) {
    match act {
        Activation::Relu => x
            .iter_mut()
            .for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 }),
        Activation::LeakyRelu => x.iter_mut().for_each(|v| {
            if *v < 0.0 {
                *v *= Activation::LEAKY_SLOPE
            }
        }),
        Activation::Tanh => M::tanh_slice(x),
        Activation::Sigmoid => M::sigmoid_slice(x),
        Activation::Gelu => M::gelu_slice(x),
        Activation::Softplus => x.iter_mut().for_each(|v| *v = M::softplus(*v)),
    }
}

/// Layer norm of `x` into `out` (as long as `x`):
/// `(x - mean) / sqrt(var + eps) * g + b`. Out of place, so that the
/// residual stream stays in `x`: a transformer block copied it before
/// each of its norms.
pub fn layer_norm(out: &mut [f32], x: &[f32], g: &Vector<'_>, b: &Vector<'_>, eps: f32) {
    let n = x.len().max(1) as f32;
    let mean = x.iter().sum::<f32>() / n;
    let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    let inv = 1.0 / math::sqrt(var + eps);
    let norm = |v: f32, g: f32, b: f32| (v - mean) * inv * g + b;
    // F32 gains in aligned memory (a firmware's model is) as slices: the
    // same arithmetic without a `get` (a match and a bounds check) per
    // element, which was half of a layer norm on a Cortex-M4.
    if let (Vector::F32(gv), Vector::F32(bv)) = (g, b)
        && let (Some(gs), Some(bs)) = (gv.as_slice(), bv.as_slice())
        && gs.len() >= x.len()
        && bs.len() >= x.len()
    {
        for (((o, &v), &g), &b) in out.iter_mut().zip(x).zip(gs).zip(bs) {
            *o = norm(v, g, b);
        }
        return;
    }
    for (i, (o, &v)) in out.iter_mut().zip(x).enumerate() {
        *o = norm(v, g.get(i), b.get(i));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_norm_normalizes() {
        let ones = [1f32.to_le_bytes(); 4].concat();
        let zeros = [0u8; 16];
        let gv = Vector::F32(f32_view(&ones));
        let bv = Vector::F32(f32_view(&zeros));
        let mut x = [0f32; 4];
        layer_norm(&mut x, &[1.0, 2.0, 3.0, 4.0], &gv, &bv, 0.0);
        let m: f32 = x.iter().sum::<f32>() / 4.0;
        let v: f32 = x.iter().map(|a| a * a).sum::<f32>() / 4.0;
        assert!(m.abs() < 1e-6 && (v - 1.0).abs() < 1e-5);
    }

    fn f32_view(b: &[u8]) -> F32View<'_> {
        // Build through a real GGUF so the view type stays opaque.
        extern crate std;
        let mut w = edgegen_format::GgufWriter::new();
        let vals: std::vec::Vec<f32> = b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        w.add_tensor("v", &[vals.len() as u64], GgmlType::F32, &vals)
            .unwrap();
        let bytes = std::boxed::Box::leak(w.to_bytes().into_boxed_slice());
        Gguf::parse(bytes)
            .unwrap()
            .tensor("v")
            .unwrap()
            .f32()
            .unwrap()
    }

    #[test]
    fn activations_match_their_formulas() {
        let mut x = [-2.0f32, -0.5, 0.0, 0.7, 3.0];
        let orig = x;
        activate(Activation::LeakyRelu, &mut x);
        assert_eq!(x[0], -0.4);
        x = orig;
        activate(Activation::Gelu, &mut x);
        assert!((x[4] - 2.996_363_4).abs() < 1e-5 && x[2] == 0.0);
        x = orig;
        activate(Activation::Sigmoid, &mut x);
        assert!((x[3] - 0.668_187_8).abs() < 1e-6);
    }
}
