//! The GGUF v3 reader: zero-copy views over a byte slice that may live in
//! flash at any address.
//!
//! [`Gguf::parse`] walks the whole header once and checks every length,
//! count, offset, dimension and alignment with checked arithmetic. After it
//! returns `Ok`, the iterators re-walk bytes that are known to be valid, so
//! they yield plain items rather than `Result`s.
//!
//! Layout (all integers little-endian):
//! `magic "GGUF" | version u32 | n_tensors u64 | n_kv u64 | kv* | tensor_info* | pad to alignment | data`.

use crate::error::Error;
use crate::quant::{BlockQ8_0, QK8_0};
use crate::types::{GgmlType, ValueType};

/// Arrays inside arrays deeper than this are refused, so that hostile bytes
/// cannot exhaust a small device stack through recursion.
pub const MAX_ARRAY_DEPTH: usize = 4;
/// The data alignment when [`ALIGNMENT_KEY`] is absent.
pub const DEFAULT_ALIGNMENT: usize = 32;
/// The container's own key for the data alignment (u32, optional): part of
/// GGUF itself, not of any model family, so it lives beside the reader and
/// the writer that honour it.
pub const ALIGNMENT_KEY: &str = "general.alignment";
/// ggml tensors have at most four dimensions.
pub const MAX_DIMS: usize = 4;

type Result<T> = core::result::Result<T, Error>;

// ---------------------------------------------------------------------------
// Cursor: bounds-checked little-endian reads

#[derive(Clone)]
struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(b: &'a [u8], pos: usize) -> Self {
        Self { b, pos }
    }

    fn remaining(&self) -> usize {
        self.b.len().saturating_sub(self.pos)
    }

    fn take(&mut self, n: u64) -> Result<&'a [u8]> {
        let rest = self.b.get(self.pos..).unwrap_or(&[]);
        match usize::try_from(n).ok().and_then(|n| rest.get(..n)) {
            Some(s) => {
                self.pos += s.len();
                Ok(s)
            }
            None => Err(Error::Truncated {
                offset: self.pos,
                needed: n,
                available: rest.len() as u64,
            }),
        }
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut a = [0u8; N];
        a.iter_mut()
            .zip(self.take(N as u64)?)
            .for_each(|(d, &b)| *d = b);
        Ok(a)
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.arr()?))
    }

    fn string(&mut self) -> Result<&'a str> {
        let len = self.u64()?;
        let off = self.pos;
        let bytes = self.take(len)?;
        crate::utf8::str_from(bytes).ok_or(Error::BadUtf8 { offset: off })
    }

    /// Fails early when `count` items of at least `min_size` bytes each
    /// cannot fit, so a hostile count never drives a long loop. (Multiplies
    /// rather than divides: no 64-bit division on 32-bit targets.)
    fn check_count(&self, count: u64, min_size: u64) -> Result<()> {
        if count
            .checked_mul(min_size)
            .is_none_or(|need| need > self.remaining() as u64)
        {
            return Err(Error::CountTooLarge {
                offset: self.pos,
                count,
                min_size,
                available: self.remaining() as u64,
            });
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Metadata values

/// One metadata value, borrowed from the blob.
#[derive(Debug, Clone, Copy, PartialEq)]
#[allow(missing_docs)]
pub enum Value<'a> {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(&'a str),
    Array(ArrayView<'a>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl<'a> Value<'a> {
    /// The value's GGUF type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::String(_) => ValueType::String,
            Value::Array(_) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    /// Any integer type, if it is non-negative.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v as u64),
            Value::U16(v) => Some(v as u64),
            Value::U32(v) => Some(v as u64),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Either float type.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Value::F32(v) => Some(v as f64),
            Value::F64(v) => Some(v),
            _ => None,
        }
    }

    /// The string, for string values.
    pub fn as_str(&self) -> Option<&'a str> {
        match *self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The array view, for array values.
    pub fn as_array(&self) -> Option<ArrayView<'a>> {
        match *self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }
}

fn read_value<'a>(c: &mut Cursor<'a>, ty: ValueType, depth: usize) -> Result<Value<'a>> {
    let Some(size) = ty.fixed_size() else {
        return Ok(if ty == ValueType::String {
            Value::String(c.string()?)
        } else {
            Value::Array(read_array(c, depth + 1)?)
        });
    };
    // Every fixed-size type through one bounds check and one
    // little-endian load: ten reads, each with its own error path, took
    // a device 0.7 KiB more flash.
    let offset = c.pos;
    let mut bits = 0u64;
    for (i, &b) in c.take(size as u64)?.iter().enumerate() {
        bits |= (b as u64) << (8 * i);
    }
    let (b8, b16, b32) = (bits as u8, bits as u16, bits as u32);
    Ok(match ty {
        ValueType::U8 => Value::U8(b8),
        ValueType::I8 => Value::I8(b8 as i8),
        ValueType::U16 => Value::U16(b16),
        ValueType::I16 => Value::I16(b16 as i16),
        ValueType::U32 => Value::U32(b32),
        ValueType::I32 => Value::I32(b32 as i32),
        ValueType::F32 => Value::F32(f32::from_bits(b32)),
        ValueType::U64 => Value::U64(bits),
        ValueType::I64 => Value::I64(bits as i64),
        ValueType::F64 => Value::F64(f64::from_bits(bits)),
        ValueType::Bool if b8 <= 1 => Value::Bool(b8 == 1),
        ValueType::Bool => return Err(Error::BadBool { offset, found: b8 }),
        // No fixed size: read above.
        ValueType::String | ValueType::Array => {
            return Err(Error::BadValueType {
                offset,
                found: ty as u32,
            });
        }
    })
}

fn read_value_type(c: &mut Cursor<'_>) -> Result<ValueType> {
    let offset = c.pos;
    let found = c.u32()?;
    ValueType::from_u32(found).ok_or(Error::BadValueType { offset, found })
}

fn read_array<'a>(c: &mut Cursor<'a>, depth: usize) -> Result<ArrayView<'a>> {
    if depth > MAX_ARRAY_DEPTH {
        return Err(Error::TooDeep { offset: c.pos });
    }
    let elem = read_value_type(c)?;
    let len_offset = c.pos;
    let len = c.u64()?;
    let start = c.pos;
    match elem.fixed_size() {
        Some(size) => {
            let n = len
                .checked_mul(size as u64)
                .ok_or(Error::Overflow { offset: len_offset })?;
            let body = c.take(n)?;
            if elem == ValueType::Bool
                && let Some(i) = body.iter().position(|&b| b > 1)
            {
                return Err(Error::BadBool {
                    offset: start + i,
                    found: body[i],
                });
            }
        }
        None => {
            // A string takes at least its 8-byte length; an array at least
            // its 4-byte type and 8-byte length.
            c.check_count(len, if elem == ValueType::String { 8 } else { 12 })?;
            for _ in 0..len {
                read_value(c, elem, depth)?;
            }
        }
    }
    Ok(ArrayView {
        elem,
        // `len` items fit in the blob, so they fit in usize.
        len: len as usize,
        bytes: &c.b[start..c.pos],
        depth,
    })
}

/// A metadata array, borrowed from the blob.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArrayView<'a> {
    elem: ValueType,
    len: usize,
    bytes: &'a [u8],
    depth: usize,
}

impl<'a> ArrayView<'a> {
    /// The element type.
    pub fn elem_type(&self) -> ValueType {
        self.elem
    }
    /// The element count.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The encoded elements (for fixed-size types, `len * size` bytes).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The elements in order.
    pub fn iter(&self) -> ArrayIter<'a> {
        ArrayIter {
            c: Cursor::new(self.bytes, 0),
            elem: self.elem,
            left: self.len,
            depth: self.depth,
        }
    }
    /// Element `i`: O(1) for fixed-size types, O(i) for strings and arrays.
    pub fn get(&self, i: usize) -> Option<Value<'a>> {
        match self.elem.fixed_size() {
            Some(size) if i < self.len => {
                let mut c = Cursor::new(self.bytes, i * size);
                read_value(&mut c, self.elem, self.depth).ok()
            }
            _ => self.iter().nth(i),
        }
    }
}

/// Iterator over an [`ArrayView`].
#[derive(Clone)]
pub struct ArrayIter<'a> {
    c: Cursor<'a>,
    elem: ValueType,
    left: usize,
    depth: usize,
}

impl<'a> Iterator for ArrayIter<'a> {
    type Item = Value<'a>;
    fn next(&mut self) -> Option<Value<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        read_value(&mut self.c, self.elem, self.depth).ok()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

// ---------------------------------------------------------------------------
// Tensor infos

/// A tensor's header entry and its data, borrowed from the blob.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TensorInfo<'a> {
    name: &'a str,
    n_dims: usize,
    dims: [u64; MAX_DIMS],
    ty: GgmlType,
    data_offset: u64,
    data: &'a [u8],
}

struct RawInfo<'a> {
    at: usize,
    name: &'a str,
    n_dims: usize,
    dims: [u64; MAX_DIMS],
    ty: GgmlType,
    rel_offset: u64,
    n_bytes: u64,
}

fn read_tensor_info<'a>(c: &mut Cursor<'a>) -> Result<RawInfo<'a>> {
    let at = c.pos;
    let name = c.string()?;
    let nd_offset = c.pos;
    let n_dims = c.u32()?;
    if n_dims as usize > MAX_DIMS {
        return Err(Error::TooManyDims {
            offset: nd_offset,
            found: n_dims,
        });
    }
    let n_dims = n_dims as usize;
    let mut dims = [1u64; MAX_DIMS];
    let mut n_elements: u64 = 1;
    for d in dims.iter_mut().take(n_dims) {
        *d = c.u64()?;
        n_elements = n_elements
            .checked_mul(*d)
            .ok_or(Error::Overflow { offset: at })?;
    }
    let ty_offset = c.pos;
    let id = c.u32()?;
    let ty = GgmlType::from_u32(id).ok_or(Error::UnsupportedTensorType {
        offset: ty_offset,
        found: id,
    })?;
    let rel_offset = c.u64()?;
    let block = ty.block().0;
    // Block sizes are powers of two (tested in types.rs).
    if dims[0] & (block - 1) != 0 {
        return Err(Error::RowNotBlockMultiple {
            offset: at,
            ne0: dims[0],
            block,
        });
    }
    let n_bytes = ty
        .bytes_for(n_elements)
        .ok_or(Error::Overflow { offset: at })?;
    Ok(RawInfo {
        at,
        name,
        n_dims,
        dims,
        ty,
        rel_offset,
        n_bytes,
    })
}

impl<'a> TensorInfo<'a> {
    /// The tensor's name.
    pub fn name(&self) -> &'a str {
        self.name
    }
    /// Its dimensions in GGUF order: the fastest-varying first, so a
    /// row-major `(rows, cols)` matrix is `[cols, rows]`.
    pub fn shape(&self) -> &[u64] {
        &self.dims[..self.n_dims]
    }
    /// The dimensions padded with ones to four.
    pub fn dims4(&self) -> [u64; MAX_DIMS] {
        self.dims
    }
    /// The element type.
    pub fn ggml_type(&self) -> GgmlType {
        self.ty
    }
    /// The element count.
    pub fn n_elements(&self) -> usize {
        // Validated at parse time to fit the data, hence usize.
        self.dims.iter().product::<u64>() as usize
    }
    /// The data's offset from the start of the data section.
    pub fn data_offset(&self) -> u64 {
        self.data_offset
    }
    /// The raw data bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.data
    }

    fn expect(&self, ty: GgmlType) -> Result<()> {
        if self.ty == ty {
            Ok(())
        } else {
            Err(Error::WrongTensorType {
                expected: ty,
                found: self.ty,
            })
        }
    }

    /// A view of F32 data.
    pub fn f32(&self) -> Result<F32View<'a>> {
        self.expect(GgmlType::F32)?;
        Ok(F32View(self.data))
    }
    /// A view of F16 data.
    pub fn f16(&self) -> Result<F16View<'a>> {
        self.expect(GgmlType::F16)?;
        Ok(F16View(self.data))
    }
    /// A view of Q8_0 blocks.
    pub fn q8_0(&self) -> Result<Q8_0View<'a>> {
        self.expect(GgmlType::Q8_0)?;
        let blocks = BlockQ8_0::cast_slice(self.data).ok_or(Error::WrongTensorType {
            expected: GgmlType::Q8_0,
            found: self.ty,
        })?;
        Ok(Q8_0View(blocks))
    }

    /// Writes the tensor as f32 into `out`, which must hold exactly
    /// `n_elements()` values. Works for F32, F16 and Q8_0.
    pub fn dequantize_into(&self, out: &mut [f32]) -> Result<()> {
        let n = self.n_elements();
        if out.len() != n {
            return Err(Error::BufferSize {
                expected: n,
                found: out.len(),
            });
        }
        match self.ty {
            GgmlType::F32 => self.f32()?.iter().zip(out).for_each(|(v, o)| *o = v),
            GgmlType::F16 => self.f16()?.iter().zip(out).for_each(|(v, o)| *o = v),
            GgmlType::Q8_0 => {
                for (b, o) in self
                    .q8_0()?
                    .blocks()
                    .iter()
                    .zip(out.chunks_exact_mut(QK8_0))
                {
                    let mut tmp = [0f32; QK8_0];
                    b.dequantize(&mut tmp);
                    o.copy_from_slice(&tmp);
                }
            }
            other => {
                return Err(Error::WrongTensorType {
                    expected: GgmlType::F32,
                    found: other,
                });
            }
        }
        Ok(())
    }
}

/// F32 tensor data, read in place (the bytes may be unaligned).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F32View<'a>(&'a [u8]);

impl<'a> F32View<'a> {
    /// Element count.
    pub fn len(&self) -> usize {
        self.0.len() / 4
    }
    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The raw little-endian bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
    /// Element `i`.
    pub fn get(&self, i: usize) -> Option<f32> {
        let b = self.0.get(i.checked_mul(4)?..i.checked_mul(4)? + 4)?;
        Some(f32::from_le_bytes(b.try_into().ok()?))
    }
    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        self.0
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The elements as a slice in place, when the bytes are 4-byte aligned
    /// on a little-endian target (GGUF aligns tensor data to 32 bytes, so
    /// a file in aligned memory always is); `None` otherwise, and the
    /// caller reads through [`F32View::iter`]. A loop over a slice takes a
    /// Cortex-M4 a third fewer instructions than one over bytes.
    ///
    /// ```
    /// use edgegen_format::{GgmlType, Gguf, GgufWriter};
    /// let mut w = GgufWriter::new();
    /// w.add_tensor("v", &[2], GgmlType::F32, &[1.0f32, 2.0]).unwrap();
    /// let bytes = w.to_bytes();
    /// let v = Gguf::parse(&bytes).unwrap().tensor("v").unwrap().f32().unwrap();
    /// // In place where the bytes are aligned, else through `iter`.
    /// let sum: f32 = match v.as_slice() {
    ///     Some(s) => s.iter().sum(),
    ///     None => v.iter().sum(),
    /// };
    /// assert_eq!(sum, 3.0);
    /// ```
    pub fn as_slice(&self) -> Option<&'a [f32]> {
        if cfg!(target_endian = "big") {
            return None;
        }
        // SAFETY: every bit pattern is a valid f32, and `align_to` only
        // puts in `mid` what is aligned for f32.
        let (head, mid, tail) = unsafe { self.0.align_to::<f32>() };
        (head.is_empty() && tail.is_empty()).then_some(mid)
    }
}

/// F16 tensor data, read in place.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct F16View<'a>(&'a [u8]);

impl<'a> F16View<'a> {
    /// Element count.
    pub fn len(&self) -> usize {
        self.0.len() / 2
    }
    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The raw little-endian bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
    /// Element `i`, widened to f32.
    pub fn get(&self, i: usize) -> Option<f32> {
        let b = self.0.get(i.checked_mul(2)?..i.checked_mul(2)? + 2)?;
        Some(crate::quant::f16_le_to_f32([b[0], b[1]]))
    }
    /// The elements in order, widened to f32.
    pub fn iter(&self) -> impl Iterator<Item = f32> + 'a {
        self.0
            .chunks_exact(2)
            .map(|b| crate::quant::f16_le_to_f32([b[0], b[1]]))
    }
}

/// Q8_0 tensor data, viewed in place as blocks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Q8_0View<'a>(&'a [BlockQ8_0]);

impl<'a> Q8_0View<'a> {
    /// The blocks.
    pub fn blocks(&self) -> &'a [BlockQ8_0] {
        self.0
    }
    /// Element count.
    pub fn len(&self) -> usize {
        self.0.len() * QK8_0
    }
    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Element `i`, dequantized.
    pub fn get(&self, i: usize) -> Option<f32> {
        let b = self.0.get(i / QK8_0)?;
        Some(b.scale() * b.qs[i % QK8_0] as f32)
    }
}

// ---------------------------------------------------------------------------
// The file

/// A parsed GGUF v3 file, borrowing its bytes.
///
/// ```
/// # fn main() -> Result<(), edgegen_format::Error> {
/// // The smallest valid file: header, no metadata, no tensors.
/// let mut bytes = b"GGUF".to_vec();
/// bytes.extend(3u32.to_le_bytes());
/// bytes.extend(0u64.to_le_bytes());
/// bytes.extend(0u64.to_le_bytes());
/// let g = edgegen_format::Gguf::parse(&bytes)?;
/// assert_eq!(g.tensor_count(), 0);
/// assert!(edgegen_format::Gguf::parse(&bytes[..20]).is_err());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Gguf<'a> {
    bytes: &'a [u8],
    n_kv: usize,
    n_tensors: usize,
    kv_start: usize,
    tensors_start: usize,
    data_start: usize,
    alignment: usize,
}

impl<'a> Gguf<'a> {
    /// Validates the whole header and every tensor's placement.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let mut c = Cursor::new(bytes, 0);
        let found = c.arr::<4>()?;
        if &found != b"GGUF" {
            return Err(Error::BadMagic { found });
        }
        let version = c.u32()?;
        if version != 3 {
            return Err(Error::UnsupportedVersion { found: version });
        }
        let n_tensors = c.u64()?;
        let n_kv = c.u64()?;
        // A key/value takes at least 8 (key length) + 4 (type) + 1 bytes.
        c.check_count(n_kv, 13)?;
        let kv_start = c.pos;
        let mut alignment = DEFAULT_ALIGNMENT;
        for _ in 0..n_kv {
            let key = c.string()?;
            let ty = read_value_type(&mut c)?;
            let offset = c.pos;
            let value = read_value(&mut c, ty, 0)?;
            if key == ALIGNMENT_KEY {
                alignment = match value {
                    Value::U32(a) if a.is_power_of_two() => a as usize,
                    v => {
                        return Err(Error::BadAlignment {
                            offset,
                            found: v.as_u64().unwrap_or(0),
                        });
                    }
                };
            }
        }
        let tensors_start = c.pos;
        // A tensor info takes at least 8 (name) + 4 (dims) + 4 (type) + 8 (offset).
        c.check_count(n_tensors, 24)?;
        for _ in 0..n_tensors {
            read_tensor_info(&mut c)?;
        }
        let data_start = c
            .pos
            .checked_next_multiple_of(alignment)
            .ok_or(Error::Overflow { offset: c.pos })?;
        // Second pass, now that the data section's start is known.
        let mut c2 = Cursor::new(bytes, tensors_start);
        for _ in 0..n_tensors {
            let t = read_tensor_info(&mut c2)?;
            // The alignment is a power of two (checked above).
            if t.rel_offset & (alignment as u64 - 1) != 0 {
                return Err(Error::MisalignedTensor {
                    offset: t.at,
                    data_offset: t.rel_offset,
                    alignment: alignment as u64,
                });
            }
            let end = (data_start as u64)
                .checked_add(t.rel_offset)
                .and_then(|s| s.checked_add(t.n_bytes))
                .ok_or(Error::Overflow { offset: t.at })?;
            if end > bytes.len() as u64 {
                return Err(Error::TensorOutOfBounds {
                    offset: t.at,
                    end,
                    len: bytes.len(),
                });
            }
        }
        Ok(Self {
            bytes,
            // Both counts were checked against the blob's length above.
            n_kv: n_kv as usize,
            n_tensors: n_tensors as usize,
            kv_start,
            tensors_start,
            data_start,
            alignment,
        })
    }

    /// The bytes this view was parsed from.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The number of metadata key/value pairs.
    pub fn kv_count(&self) -> usize {
        self.n_kv
    }
    /// The number of tensors.
    pub fn tensor_count(&self) -> usize {
        self.n_tensors
    }
    /// The alignment of tensor data (`general.alignment`, default 32).
    pub fn alignment(&self) -> usize {
        self.alignment
    }
    /// Where the data section starts in the blob.
    pub fn data_start(&self) -> usize {
        self.data_start
    }
    /// The data section: from its aligned start to the end of the blob.
    pub fn data(&self) -> &'a [u8] {
        self.bytes.get(self.data_start..).unwrap_or(&[])
    }

    /// The metadata pairs in file order.
    pub fn metadata(&self) -> KvIter<'a> {
        KvIter {
            c: Cursor::new(self.bytes, self.kv_start),
            left: self.n_kv,
        }
    }

    /// The first value stored under `key`.
    pub fn get(&self, key: &str) -> Option<Value<'a>> {
        self.metadata().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The tensors in file order.
    pub fn tensors(&self) -> TensorIter<'a> {
        TensorIter {
            c: Cursor::new(self.bytes, self.tensors_start),
            left: self.n_tensors,
            data_start: self.data_start,
        }
    }

    /// The first tensor named `name`.
    pub fn tensor(&self, name: &str) -> Option<TensorInfo<'a>> {
        self.tensors().find(|t| t.name == name)
    }

    /// The tensor `name` names (a fixed name, or a per-layer pattern and
    /// its index), found without formatting the name anywhere.
    pub fn tensor_named(&self, name: crate::TensorName) -> Option<TensorInfo<'a>> {
        self.tensors().find(|t| name.matches(t.name))
    }

    /// The CRC-32 of [`Gguf::data`].
    pub fn data_crc32(&self) -> u32 {
        crate::crc32(self.data())
    }

    /// The value under `key`, which must exist.
    pub fn require(&self, key: &'static str) -> Result<Value<'a>> {
        self.get(key).ok_or(Error::MissingKey { key })
    }

    fn wrong(key: &'static str, expected: ValueType, v: &Value<'_>) -> Error {
        Error::WrongValueType {
            key,
            expected,
            found: v.value_type(),
        }
    }

    /// A u32 under `key`; any other type is an error.
    pub fn require_u32(&self, key: &'static str) -> Result<u32> {
        match self.require(key)? {
            Value::U32(v) => Ok(v),
            v => Err(Self::wrong(key, ValueType::U32, &v)),
        }
    }

    /// An f32 under `key`; any other type is an error.
    pub fn require_f32(&self, key: &'static str) -> Result<f32> {
        match self.require(key)? {
            Value::F32(v) => Ok(v),
            v => Err(Self::wrong(key, ValueType::F32, &v)),
        }
    }

    /// A string under `key`; any other type is an error.
    pub fn require_str(&self, key: &'static str) -> Result<&'a str> {
        match self.require(key)? {
            Value::String(v) => Ok(v),
            v => Err(Self::wrong(key, ValueType::String, &v)),
        }
    }

    /// A u32 array under `key`, copied into `out`; returns how many were
    /// written. More elements than `out` holds is an error.
    pub fn require_u32_array(&self, key: &'static str, out: &mut [u32]) -> Result<usize> {
        let v = self.require(key)?;
        let a = match v {
            Value::Array(a) if a.elem_type() == ValueType::U32 => a,
            Value::Array(_) => {
                return Err(Error::BadValue {
                    key,
                    expected: "an array of u32",
                });
            }
            v => return Err(Self::wrong(key, ValueType::Array, &v)),
        };
        if a.len() > out.len() {
            return Err(Error::BadValue {
                key,
                expected: "fewer elements",
            });
        }
        for (o, x) in out.iter_mut().zip(a.iter()) {
            *o = match x {
                Value::U32(x) => x,
                _ => 0,
            };
        }
        Ok(a.len())
    }
}

/// Iterator over metadata pairs.
#[derive(Clone)]
pub struct KvIter<'a> {
    c: Cursor<'a>,
    left: usize,
}

impl<'a> Iterator for KvIter<'a> {
    type Item = (&'a str, Value<'a>);
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let key = self.c.string().ok()?;
        let ty = read_value_type(&mut self.c).ok()?;
        let v = read_value(&mut self.c, ty, 0).ok()?;
        Some((key, v))
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

/// Iterator over tensor infos.
#[derive(Clone)]
pub struct TensorIter<'a> {
    c: Cursor<'a>,
    left: usize,
    data_start: usize,
}

impl<'a> Iterator for TensorIter<'a> {
    type Item = TensorInfo<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let t = read_tensor_info(&mut self.c).ok()?;
        let start = self
            .data_start
            .checked_add(usize::try_from(t.rel_offset).ok()?)?;
        let end = start.checked_add(usize::try_from(t.n_bytes).ok()?)?;
        Some(TensorInfo {
            name: t.name,
            n_dims: t.n_dims,
            dims: t.dims,
            ty: t.ty,
            data_offset: t.rel_offset,
            data: self.c.b.get(start..end)?,
        })
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}
