//! # edgegen-runtime
//!
//! The device side of edgegen: `#![no_std]`, no allocator, weights read in
//! place from GGUF bytes in flash.
//!
//! This first slice only validates a model image; the kernels, layers and
//! samplers arrive with the runtime issue.
//!
//! ```
//! // Not a GGUF file: a typed error, never a panic.
//! assert!(edgegen_runtime::check_image(b"not a model").is_err());
//! ```
#![no_std]
#![deny(missing_docs)]

pub use edgegen_format as format;
use format::{Error, Gguf, arch::Family};

/// Parses a model image and checks its shared keys and data CRC, returning
/// its family. Run once at boot, before trusting any weight.
pub fn check_image(bytes: &[u8]) -> Result<Family, Error> {
    format::arch::check(&Gguf::parse(bytes)?)
}
