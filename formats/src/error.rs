//! The one error type of the format crate.
//!
//! Every variant carries the byte offset (from the start of the blob) where
//! the problem was found, so that a host tool can say "byte 1234 of
//! model.gguf" and a device can log a single number.

use crate::types::{GgmlType, ValueType};
use core::fmt;

/// Everything that can be wrong with GGUF bytes or with a model stored in them.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// The blob ends before an item that starts at `offset` and needs `needed` bytes.
    Truncated {
        /// Where the item starts.
        offset: usize,
        /// How many bytes it needs from there.
        needed: u64,
        /// How many bytes the blob has from there.
        available: u64,
    },
    /// A count read at `offset` promises more items than the rest of the
    /// blob could hold, at `min_size` bytes each at the least.
    CountTooLarge {
        /// Where the items start.
        offset: usize,
        /// The count stored.
        count: u64,
        /// The smallest size one item can have.
        min_size: u64,
        /// How many bytes the blob has from there.
        available: u64,
    },
    /// The first four bytes are not `GGUF`.
    BadMagic {
        /// The four bytes found.
        found: [u8; 4],
    },
    /// Only GGUF version 3 is read.
    UnsupportedVersion {
        /// The version in the header.
        found: u32,
    },
    /// A metadata value type id that GGUF does not define.
    BadValueType {
        /// Where the id is.
        offset: usize,
        /// The id found.
        found: u32,
    },
    /// A tensor type id that this crate does not know the block layout of.
    UnsupportedTensorType {
        /// Where the id is.
        offset: usize,
        /// The id found.
        found: u32,
    },
    /// A key, string value or tensor name that is not UTF-8.
    BadUtf8 {
        /// Where the string's bytes start.
        offset: usize,
    },
    /// A bool value that is neither 0 nor 1.
    BadBool {
        /// Where the byte is.
        offset: usize,
        /// The byte found.
        found: u8,
    },
    /// Arrays nested deeper than [`crate::MAX_ARRAY_DEPTH`].
    TooDeep {
        /// Where the innermost array starts.
        offset: usize,
    },
    /// A count, size or offset whose arithmetic overflows.
    Overflow {
        /// Where the field is.
        offset: usize,
    },
    /// `general.alignment` is not a non-zero power of two stored as a u32.
    BadAlignment {
        /// Where the value is.
        offset: usize,
        /// The value found (0 if it had the wrong type).
        found: u64,
    },
    /// A tensor with more than four dimensions.
    TooManyDims {
        /// Where the dimension count is.
        offset: usize,
        /// The count found.
        found: u32,
    },
    /// A block-quantized tensor whose first dimension is not a multiple of the block.
    RowNotBlockMultiple {
        /// Where the tensor info starts.
        offset: usize,
        /// The first (fastest-varying) dimension.
        ne0: u64,
        /// The block size the type needs.
        block: u64,
    },
    /// A tensor data offset that is not a multiple of the alignment.
    MisalignedTensor {
        /// Where the tensor info starts.
        offset: usize,
        /// The data offset found, relative to the data section.
        data_offset: u64,
        /// The alignment in force.
        alignment: u64,
    },
    /// A tensor whose data runs past the end of the blob.
    TensorOutOfBounds {
        /// Where the tensor info starts.
        offset: usize,
        /// Where its data would end.
        end: u64,
        /// The blob's length.
        len: usize,
    },
    /// A key that the model needs is missing.
    MissingKey {
        /// The key.
        key: &'static str,
    },
    /// A key holds a value of another type.
    WrongValueType {
        /// The key.
        key: &'static str,
        /// The type the convention requires.
        expected: ValueType,
        /// The type found.
        found: ValueType,
    },
    /// A key holds a value outside what the model accepts.
    BadValue {
        /// The key.
        key: &'static str,
        /// What the convention requires, in words.
        expected: &'static str,
    },
    /// A tensor that the model needs is missing.
    MissingTensor {
        /// The tensor's name (a pattern and index, for per-layer tensors).
        name: crate::TensorName,
    },
    /// A tensor has another type than the one asked for.
    WrongTensorType {
        /// The type asked for.
        expected: GgmlType,
        /// The type stored.
        found: GgmlType,
    },
    /// A tensor has another shape than the hyperparameters imply.
    WrongShape {
        /// The tensor's name (a pattern and index, for per-layer tensors).
        name: crate::TensorName,
        /// The shape implied, in GGUF order (fastest-varying first).
        expected: [u32; 4],
        /// The shape stored (a dimension past `u32::MAX` reads as it).
        found: [u32; 4],
    },
    /// A caller's buffer has the wrong length.
    BufferSize {
        /// The length needed.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// A sequence model's context is full and its policy is to stop.
    ContextFull {
        /// The context length, fixed at export.
        context: usize,
    },
    /// The CRC-32 of the tensor data does not match `edgegen.data_crc32`.
    CrcMismatch {
        /// The stored value.
        stored: u32,
        /// The value computed over the data section.
        computed: u32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match *self {
            Truncated {
                offset,
                needed,
                available,
            } => write!(
                f,
                "truncated: the item at byte {offset} needs {needed} bytes, and the file has {available} from there"
            ),
            CountTooLarge {
                offset,
                count,
                min_size,
                available,
            } => write!(
                f,
                "damaged count: {count} items of at least {min_size} bytes each at byte {offset}, \
                 and the file has {available} bytes from there"
            ),
            BadMagic { found } => write!(f, "bad magic {found:02x?}: expected \"GGUF\""),
            UnsupportedVersion { found } => {
                write!(f, "GGUF version {found} is not supported: expected 3")
            }
            BadValueType { offset, found } => write!(
                f,
                "byte {offset}: metadata value type {found} is not a GGUF type (expected 0..=12)"
            ),
            UnsupportedTensorType { offset, found } => {
                write!(f, "byte {offset}: tensor type {found} is not supported")
            }
            BadUtf8 { offset } => write!(f, "byte {offset}: string is not valid UTF-8"),
            BadBool { offset, found } => {
                write!(f, "byte {offset}: bool value {found} (expected 0 or 1)")
            }
            TooDeep { offset } => write!(
                f,
                "byte {offset}: arrays nested deeper than {}",
                crate::MAX_ARRAY_DEPTH
            ),
            Overflow { offset } => write!(f, "byte {offset}: size arithmetic overflows"),
            BadAlignment { offset, found } => write!(
                f,
                "byte {offset}: general.alignment = {found} (expected a u32 power of two)"
            ),
            TooManyDims { offset, found } => {
                write!(
                    f,
                    "byte {offset}: tensor has {found} dimensions (expected at most 4)"
                )
            }
            RowNotBlockMultiple { offset, ne0, block } => write!(
                f,
                "byte {offset}: tensor row of {ne0} elements is not a multiple of the block size {block}"
            ),
            MisalignedTensor {
                offset,
                data_offset,
                alignment,
            } => write!(
                f,
                "byte {offset}: tensor data offset {data_offset} is not a multiple of the alignment {alignment}"
            ),
            TensorOutOfBounds { offset, end, len } => write!(
                f,
                "byte {offset}: tensor data ends at byte {end}, past the end of the file ({len} bytes)"
            ),
            MissingKey { key } => write!(f, "missing metadata key {key}"),
            WrongValueType {
                key,
                expected,
                found,
            } => {
                write!(f, "metadata key {key} is {found:?}, expected {expected:?}")
            }
            BadValue { key, expected } => write!(f, "metadata key {key}: expected {expected}"),
            MissingTensor { name } => {
                write!(f, "missing tensor {}", crate::name::Described(name))
            }
            WrongTensorType { expected, found } => {
                write!(f, "tensor type is {found:?}, expected {expected:?}")
            }
            WrongShape {
                name,
                expected,
                found,
            } => write!(
                f,
                "tensor {} has shape {found:?}, expected {expected:?} (GGUF order, fastest first)",
                crate::name::Described(name)
            ),
            BufferSize { expected, found } => {
                write!(f, "buffer holds {found} values, expected {expected}")
            }
            ContextFull { context } => write!(
                f,
                "the context of {context} positions is full (the model's policy is to stop)"
            ),
            CrcMismatch { stored, computed } => write!(
                f,
                "tensor data CRC-32 is {computed:#010x} but edgegen.data_crc32 says {stored:#010x}: the file is corrupt"
            ),
        }
    }
}

impl core::error::Error for Error {}
