//! The GGUF v3 writer (feature `std`), used by the host's exporter.
//!
//! It keeps everything in insertion order and uses no hash maps, so the same
//! model always gives the same bytes. Tensor data is padded to the alignment
//! (32 by default) after every tensor, as gguf-py does, so the file also ends
//! aligned.

use crate::quant::{BlockQ8_0, QK8_0, f32_to_f16_bits};
use crate::types::{GgmlType, ValueType};
use std::string::{String, ToString};
use std::vec::Vec;
use std::{fmt, io};

/// An owned metadata value, for writing.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub enum OwnedValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    String(String),
    Array(ValueType, Vec<OwnedValue>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl OwnedValue {
    /// The value's GGUF type.
    pub fn value_type(&self) -> ValueType {
        match self {
            Self::U8(_) => ValueType::U8,
            Self::I8(_) => ValueType::I8,
            Self::U16(_) => ValueType::U16,
            Self::I16(_) => ValueType::I16,
            Self::U32(_) => ValueType::U32,
            Self::I32(_) => ValueType::I32,
            Self::F32(_) => ValueType::F32,
            Self::Bool(_) => ValueType::Bool,
            Self::String(_) => ValueType::String,
            Self::Array(..) => ValueType::Array,
            Self::U64(_) => ValueType::U64,
            Self::I64(_) => ValueType::I64,
            Self::F64(_) => ValueType::F64,
        }
    }

    /// An array of u32.
    pub fn u32s(v: &[u32]) -> Self {
        Self::Array(ValueType::U32, v.iter().map(|&x| Self::U32(x)).collect())
    }

    /// An array of strings.
    pub fn strs(v: &[&str]) -> Self {
        Self::Array(
            ValueType::String,
            v.iter().map(|s| Self::String(s.to_string())).collect(),
        )
    }

    fn check(&self) -> bool {
        match self {
            Self::Array(elem, items) => items.iter().all(|i| i.value_type() == *elem && i.check()),
            _ => true,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::U8(v) => out.push(*v),
            Self::I8(v) => out.push(*v as u8),
            Self::U16(v) => out.extend(v.to_le_bytes()),
            Self::I16(v) => out.extend(v.to_le_bytes()),
            Self::U32(v) => out.extend(v.to_le_bytes()),
            Self::I32(v) => out.extend(v.to_le_bytes()),
            Self::F32(v) => out.extend(v.to_le_bytes()),
            Self::Bool(v) => out.push(*v as u8),
            Self::String(s) => put_str(out, s),
            Self::Array(elem, items) => {
                out.extend((*elem as u32).to_le_bytes());
                out.extend((items.len() as u64).to_le_bytes());
                for i in items {
                    i.encode(out);
                }
            }
            Self::U64(v) => out.extend(v.to_le_bytes()),
            Self::I64(v) => out.extend(v.to_le_bytes()),
            Self::F64(v) => out.extend(v.to_le_bytes()),
        }
    }
}

macro_rules! from_scalar {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for OwnedValue {
            fn from(x: $t) -> Self {
                Self::$v(x)
            }
        }
    )*};
}
from_scalar!(u8 => U8, i8 => I8, u16 => U16, i16 => I16, u32 => U32, i32 => I32,
    f32 => F32, bool => Bool, String => String, u64 => U64, i64 => I64, f64 => F64);

impl From<&str> for OwnedValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_string())
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend((s.len() as u64).to_le_bytes());
    out.extend(s.as_bytes());
}

/// What the writer refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WriteError {
    /// The key was added before.
    DuplicateKey(String),
    /// A tensor of that name was added before.
    DuplicateTensor(String),
    /// An array holds an element of another type than it declares.
    MixedArray(String),
    /// The data does not hold as many elements as the dimensions imply.
    ElementCount {
        /// The tensor.
        name: String,
        /// The product of the dimensions.
        expected: usize,
        /// The elements given.
        found: usize,
    },
    /// Q8_0 needs the first dimension to be a multiple of 32.
    RowNotBlockMultiple {
        /// The tensor.
        name: String,
        /// The first (fastest-varying) dimension.
        ne0: u64,
    },
    /// More than four dimensions.
    TooManyDims(String),
    /// Only F32, F16 and Q8_0 are written from f32 values.
    UnsupportedType(GgmlType),
    /// The alignment is not a power of two.
    BadAlignment(usize),
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DuplicateKey(k) => write!(f, "metadata key {k} is set twice"),
            Self::DuplicateTensor(n) => write!(f, "tensor {n} is added twice"),
            Self::MixedArray(k) => write!(f, "array {k} mixes element types"),
            Self::ElementCount {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor {name}: {found} values given, its dimensions need {expected}"
            ),
            Self::RowNotBlockMultiple { name, ne0 } => write!(
                f,
                "tensor {name}: Q8_0 needs rows of a multiple of 32 elements, found {ne0}"
            ),
            Self::TooManyDims(n) => write!(f, "tensor {n} has more than 4 dimensions"),
            Self::UnsupportedType(t) => write!(f, "cannot write {t:?} tensors from f32"),
            Self::BadAlignment(a) => write!(f, "alignment {a} is not a power of two"),
        }
    }
}

impl std::error::Error for WriteError {}

#[derive(Debug, Clone)]
struct PendingTensor {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    data: Vec<u8>,
}

/// Builds a GGUF v3 file in memory.
///
/// ```
/// use edgegen_format::{GgmlType, Gguf, GgufWriter};
/// let mut w = GgufWriter::new();
/// w.add("general.architecture", "edgegen.vae").unwrap();
/// // A row-major (2, 32) matrix is stored with dims [32, 2]: fastest first.
/// w.add_tensor("w", &[32, 2], GgmlType::Q8_0, &[0.5; 64]).unwrap();
/// w.add_data_crc32("edgegen.data_crc32").unwrap();
/// let bytes = w.to_bytes();
/// let g = Gguf::parse(&bytes).unwrap();
/// assert_eq!(g.tensor("w").unwrap().shape(), &[32, 2]);
/// assert_eq!(g.require_u32("edgegen.data_crc32").unwrap(), g.data_crc32());
/// ```
#[derive(Debug, Clone)]
pub struct GgufWriter {
    kvs: Vec<(String, OwnedValue)>,
    tensors: Vec<PendingTensor>,
    alignment: usize,
    crc_key: Option<String>,
}

impl Default for GgufWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl GgufWriter {
    /// An empty file with the default alignment of 32.
    pub fn new() -> Self {
        Self {
            kvs: Vec::new(),
            tensors: Vec::new(),
            alignment: crate::DEFAULT_ALIGNMENT,
            crc_key: None,
        }
    }

    /// Sets another data alignment, and records it as `general.alignment`.
    pub fn set_alignment(&mut self, alignment: usize) -> Result<(), WriteError> {
        if !alignment.is_power_of_two() || alignment > u32::MAX as usize {
            return Err(WriteError::BadAlignment(alignment));
        }
        self.alignment = alignment;
        self.add(crate::reader::ALIGNMENT_KEY, alignment as u32)
    }

    fn key_free(&self, key: &str) -> Result<(), WriteError> {
        if self.kvs.iter().any(|(k, _)| k == key) || self.crc_key.as_deref() == Some(key) {
            return Err(WriteError::DuplicateKey(key.to_string()));
        }
        Ok(())
    }

    /// Whether a metadata pair (or the CRC's) has the key `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.key_free(key).is_err()
    }

    /// Adds a metadata pair.
    pub fn add(&mut self, key: &str, value: impl Into<OwnedValue>) -> Result<(), WriteError> {
        self.key_free(key)?;
        let value = value.into();
        if !value.check() {
            return Err(WriteError::MixedArray(key.to_string()));
        }
        self.kvs.push((key.to_string(), value));
        Ok(())
    }

    /// Asks for a u32 pair under `key` holding the CRC-32 of the data
    /// section, computed when the bytes are produced.
    pub fn add_data_crc32(&mut self, key: &str) -> Result<(), WriteError> {
        self.key_free(key)?;
        self.crc_key = Some(key.to_string());
        Ok(())
    }

    /// Adds a tensor from f32 values, stored as `ty` (F32, F16 or Q8_0).
    /// `dims` are in GGUF order, fastest-varying first.
    pub fn add_tensor(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: GgmlType,
        values: &[f32],
    ) -> Result<(), WriteError> {
        let data = match ty {
            GgmlType::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            GgmlType::F16 => values
                .iter()
                .flat_map(|v| f32_to_f16_bits(*v).to_le_bytes())
                .collect(),
            GgmlType::Q8_0 => {
                if dims.first().copied().unwrap_or(1) % QK8_0 as u64 != 0 {
                    return Err(WriteError::RowNotBlockMultiple {
                        name: name.to_string(),
                        ne0: dims.first().copied().unwrap_or(1),
                    });
                }
                values
                    .chunks(QK8_0)
                    .flat_map(|c| {
                        let mut a = [0f32; QK8_0];
                        a[..c.len()].copy_from_slice(c);
                        BlockQ8_0::quantize(&a).to_bytes()
                    })
                    .collect()
            }
            other => return Err(WriteError::UnsupportedType(other)),
        };
        let expected: u64 = dims.iter().product();
        if expected != values.len() as u64 {
            return Err(WriteError::ElementCount {
                name: name.to_string(),
                expected: expected as usize,
                found: values.len(),
            });
        }
        self.add_tensor_bytes(name, dims, ty, data)
    }

    /// Adds a tensor whose bytes are already encoded as `ty`.
    pub fn add_tensor_bytes(
        &mut self,
        name: &str,
        dims: &[u64],
        ty: GgmlType,
        data: Vec<u8>,
    ) -> Result<(), WriteError> {
        if self.tensors.iter().any(|t| t.name == name) {
            return Err(WriteError::DuplicateTensor(name.to_string()));
        }
        if dims.len() > crate::MAX_DIMS {
            return Err(WriteError::TooManyDims(name.to_string()));
        }
        let n: u64 = dims.iter().product();
        let ne0 = dims.first().copied().unwrap_or(1);
        if ne0 % ty.block().0 != 0 {
            return Err(WriteError::RowNotBlockMultiple {
                name: name.to_string(),
                ne0,
            });
        }
        if ty.bytes_for(n) != Some(data.len() as u64) {
            return Err(WriteError::ElementCount {
                name: name.to_string(),
                expected: ty.bytes_for(n).unwrap_or(0) as usize,
                found: data.len(),
            });
        }
        self.tensors.push(PendingTensor {
            name: name.to_string(),
            dims: dims.to_vec(),
            ty,
            data,
        });
        Ok(())
    }

    /// The finished file.
    pub fn to_bytes(&self) -> Vec<u8> {
        let a = self.alignment;
        // Data section first, so that its CRC can go into the header.
        let mut data = Vec::new();
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            offsets.push(data.len() as u64);
            data.extend(&t.data);
            data.resize(data.len().next_multiple_of(a), 0);
        }
        let mut out = Vec::with_capacity(data.len() + 4096);
        out.extend(b"GGUF");
        out.extend(3u32.to_le_bytes());
        out.extend((self.tensors.len() as u64).to_le_bytes());
        let n_kv = self.kvs.len() + self.crc_key.is_some() as usize;
        out.extend((n_kv as u64).to_le_bytes());
        let crc = self
            .crc_key
            .as_ref()
            .map(|k| (k.clone(), OwnedValue::U32(crate::crc32(&data))));
        for (k, v) in self.kvs.iter().chain(crc.iter()) {
            put_str(&mut out, k);
            out.extend((v.value_type() as u32).to_le_bytes());
            v.encode(&mut out);
        }
        for (t, off) in self.tensors.iter().zip(offsets) {
            put_str(&mut out, &t.name);
            out.extend((t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend(d.to_le_bytes());
            }
            out.extend((t.ty as u32).to_le_bytes());
            out.extend(off.to_le_bytes());
        }
        out.resize(out.len().next_multiple_of(a), 0);
        out.extend(data);
        out
    }

    /// Writes the finished file to `w`.
    pub fn write_to(&self, w: &mut impl io::Write) -> io::Result<()> {
        w.write_all(&self.to_bytes())
    }
}
