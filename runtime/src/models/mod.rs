//! The model families the runtime runs. Each is a `Config` (the GGUF
//! hyperparameters), weights borrowed from the GGUF bytes, and a forward
//! pass over caller scratch.

pub mod vae;

use edgegen_format::arch::{self, Family};
use edgegen_format::{Error, Gguf};

/// A model loaded from GGUF bytes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Model<'a> {
    /// A VAE decoder.
    VaeDecoder(vae::VaeDecoder<'a>),
    /// A VAE encoder.
    VaeEncoder(vae::VaeEncoder<'a>),
}

impl<'a> Model<'a> {
    /// Parses and validates `bytes` once: the container, the shared keys,
    /// the data CRC, the hyperparameters, and every tensor's type and shape.
    /// The weights stay where they are.
    pub fn from_gguf(bytes: &'a [u8]) -> Result<Self, Error> {
        let g = Gguf::parse(bytes)?;
        match arch::check(&g)? {
            Family::Vae => match arch::vae::Part::read(&g)? {
                arch::vae::Part::Decoder => Ok(Model::VaeDecoder(vae::VaeDecoder::from_gguf(&g)?)),
                arch::vae::Part::Encoder => Ok(Model::VaeEncoder(vae::VaeEncoder::from_gguf(&g)?)),
            },
            _ => Err(Error::BadValue {
                key: arch::keys::ARCHITECTURE,
                expected: "edgegen.vae (the other families are not in the runtime yet)",
            }),
        }
    }

    /// Floats of scratch the model needs.
    pub fn scratch_len(&self) -> usize {
        match self {
            Model::VaeDecoder(d) => d.scratch_len(),
            Model::VaeEncoder(e) => e.scratch_len(),
        }
    }
}
