//! # edgegen-format
//!
//! The file format shared by the edgegen host and the device runtime:
//!
//! - a **GGUF v3 reader** ([`Gguf`]) that works in place over `&[u8]`
//!   (for example `include_bytes!` in flash, at any address), checks every
//!   length, count, offset, dimension and alignment once, and turns any
//!   malformed input into an [`Error`], never a panic;
//! - a **writer** (`GgufWriter`, feature `std`) that is deterministic;
//! - **quantization** blocks ([`quant`]): f16 and ggml's Q8_0;
//! - the **edgegen conventions** ([`arch`]): which keys and tensors each
//!   model family stores, and the CRC-32 that catches a corrupted image.
//!
//! `no_std` and allocation-free unless the `std` feature is on.
//!
//! ```
//! use edgegen_format::{arch, Gguf};
//! # #[cfg(feature = "std")] {
//! # use edgegen_format::{GgufWriter, GgmlType};
//! # let mut w = GgufWriter::new();
//! # arch::write_common(&mut w, arch::Family::Vae).unwrap();
//! # w.add_tensor("dec.0.bias", &[4], GgmlType::F32, &[1.0, 2.0, 3.0, 4.0]).unwrap();
//! # let bytes = w.to_bytes();
//! let g = Gguf::parse(&bytes)?;          // validates the header
//! let family = arch::check(&g)?;         // shared keys and the data CRC
//! assert_eq!(family, arch::Family::Vae);
//! let bias = g.tensor("dec.0.bias").unwrap().f32()?;
//! assert_eq!(bias.get(2), Some(3.0));
//! # }
//! # Ok::<(), edgegen_format::Error>(())
//! ```
#![no_std]
#![deny(missing_docs)]
#![forbid(unsafe_op_in_unsafe_fn)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod arch;
mod crc32;
mod error;
mod name;
pub mod quant;
mod reader;
mod types;
mod utf8;
#[cfg(feature = "std")]
mod writer;

pub use crc32::{Crc32, crc32};
pub use error::Error;
pub use name::TensorName;
pub use reader::{
    ALIGNMENT_KEY, ArrayIter, ArrayView, DEFAULT_ALIGNMENT, F16View, F32View, Gguf, KvIter,
    MAX_ARRAY_DEPTH, MAX_DIMS, Q8_0View, TensorInfo, TensorIter, Value,
};
pub use types::{GgmlType, ValueType};
#[cfg(feature = "std")]
pub use writer::{GgufWriter, OwnedValue, WriteError};
