//! The model families the runtime runs. Each is a `Config` (the GGUF
//! hyperparameters), weights borrowed from the GGUF bytes, and a forward
//! pass over caller scratch.

pub mod audio;
pub mod gan;
pub mod transformer;
pub mod vae;

use edgegen_format::arch::{self, Family};
use edgegen_format::{Error, Gguf};

/// `Ok` when a buffer holds exactly `expected` values.
pub(crate) fn check_len(expected: usize, found: usize) -> Result<(), Error> {
    if expected == found {
        Ok(())
    } else {
        Err(Error::BufferSize { expected, found })
    }
}

/// `Ok` when a scratch buffer holds at least `need` floats.
pub(crate) fn check_scratch(need: usize, found: usize) -> Result<(), Error> {
    if found >= need {
        Ok(())
    } else {
        Err(Error::BufferSize {
            expected: need,
            found,
        })
    }
}

/// `Ok` when `label` fits a model of `k` classes (none when `k` is 0):
/// every conditional family takes its label the same way.
pub(crate) fn check_label(k: usize, label: Option<u32>) -> Result<(), Error> {
    match (k, label) {
        (0, None) => Ok(()),
        (0, Some(_)) => Err(Error::BadValue {
            key: "label",
            expected: "none: this model is unconditional",
        }),
        (_, None) => Err(Error::BadValue {
            key: "label",
            expected: "a class label: this model is conditional",
        }),
        (k, Some(l)) if l as usize >= k => Err(Error::BadValue {
            key: "label",
            expected: "a label below the model's n_classes",
        }),
        _ => Ok(()),
    }
}

/// The model a `from_gguf_in` built in `slot`, given what its loader
/// returned: on an error the slot is emptied, never left holding a part of
/// a model.
#[inline(always)]
pub(crate) fn loaded<T>(slot: &mut Option<T>, load: Result<(), Error>) -> Result<&T, Error> {
    if let Err(e) = load {
        *slot = None;
        return Err(e);
    }
    // The loader returned `Ok`, so the slot holds the model.
    slot.as_ref().ok_or(Error::MissingKey {
        key: arch::keys::ARCHITECTURE,
    })
}

/// Draws z ~ N(0, I) from `rng` into the first `zd` floats of `z_buf` and
/// returns them: the noise every sampling family starts from.
pub(crate) fn draw_noise<'z>(
    rng: &mut crate::sample::Rng,
    z_buf: &'z mut [f32],
    zd: usize,
) -> Result<&'z [f32], Error> {
    let found = z_buf.len();
    let z = z_buf.get_mut(..zd).ok_or(Error::BufferSize {
        expected: zd,
        found,
    })?;
    rng.fill_normal(z);
    Ok(z)
}

/// A model loaded from GGUF bytes.
///
/// A text model keeps a handle per block in place (no allocator), so this
/// enum is as large as the largest family; firmware that links one family
/// holds that family's type alone.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)]
pub enum Model<'a> {
    /// A VAE decoder.
    VaeDecoder(vae::VaeDecoder<'a>),
    /// A VAE encoder.
    VaeEncoder(vae::VaeEncoder<'a>),
    /// A GAN generator.
    Generator(gan::Generator<'a>),
    /// A text transformer.
    Text(transformer::Transformer<'a>),
    /// An audio GRU.
    Audio(audio::Audio<'a>),
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
            Family::Gan => Ok(Model::Generator(gan::Generator::from_gguf(&g)?)),
            Family::Text => Ok(Model::Text(transformer::Transformer::from_gguf(
                &g,
                Family::Text,
            )?)),
            Family::Audio => Ok(Model::Audio(audio::Audio::from_gguf(&g)?)),
        }
    }

    /// Floats of scratch the model needs.
    pub fn scratch_len(&self) -> usize {
        match self {
            Model::VaeDecoder(d) => d.scratch_len(),
            Model::VaeEncoder(e) => e.scratch_len(),
            Model::Generator(g) => g.scratch_len(),
            Model::Text(t) => t.scratch_len(),
            Model::Audio(a) => a.scratch_len(),
        }
    }
}
