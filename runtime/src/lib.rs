//! # edgegen-runtime
//!
//! The device side of edgegen: `#![no_std]`, no allocator, no panics on any
//! model bytes, and weights read in place from GGUF bytes (for example
//! `include_bytes!` in flash). The caller owns all memory: a scratch slice
//! whose size [`models::Model::scratch_len`] (or a `const fn` such as
//! [`models::vae::scratch_len_for`]) gives.
//!
//! ```
//! # fn model_bytes() -> Vec<u8> {
//! #     use edgegen_format::{arch, GgmlType, GgufWriter};
//! #     let hp = arch::vae::Hparams { image_shape: [1, 2, 2], latent_dim: 2, hidden: [3, 0, 0, 0], n_hidden: 1,
//! #         n_classes: 0, likelihood: arch::vae::Likelihood::Bernoulli, activation: arch::Activation::Relu,
//! #         label_every_layer: false };
//! #     let mut w = GgufWriter::new();
//! #     hp.write(&mut w).unwrap();
//! #     w.add_tensor("dec.0.weight", &[2, 3], GgmlType::F32, &[0.1; 6]).unwrap();
//! #     w.add_tensor("dec.0.bias", &[3], GgmlType::F32, &[0.0; 3]).unwrap();
//! #     w.add_tensor("dec.1.weight", &[3, 4], GgmlType::F32, &[0.2; 12]).unwrap();
//! #     w.add_tensor("dec.1.bias", &[4], GgmlType::F32, &[0.0; 4]).unwrap();
//! #     w.to_bytes()
//! # }
//! use edgegen_runtime::{models::Model, sample::Rng};
//! let bytes = model_bytes(); // on a device: include_bytes!("model.gguf")
//! let Model::VaeDecoder(dec) = Model::from_gguf(&bytes)? else { unreachable!() };
//! let mut scratch = [0f32; 64];          // >= dec.scratch_len()
//! let (mut z, mut img) = ([0f32; 2], [0f32; 4]);
//! dec.sample(&mut Rng::new(7), None, &mut z, &mut scratch, &mut img)?;
//! assert!(img.iter().all(|p| (0.0..=1.0).contains(p)));
//! # Ok::<(), edgegen_runtime::Error>(())
//! ```
#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]

#[cfg(any(test, feature = "std"))]
extern crate std;

#[allow(unsafe_code)]
pub mod kernels;
pub mod layers;
pub mod math;
pub mod models;
pub mod sample;

pub use edgegen_format as format;
pub use edgegen_format::Error;
use format::{Gguf, arch::Family};

/// Parses a model image and checks its shared keys and data CRC, returning
/// its family. Run once at boot, before trusting any weight.
pub fn check_image(bytes: &[u8]) -> Result<Family, Error> {
    format::arch::check(&Gguf::parse(bytes)?)
}
