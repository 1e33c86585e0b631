//! The edgegen conventions on top of GGUF: the keys every model stores, the
//! four model families, and each family's hyperparameters and tensor names.
//! `formats/README.md` is the prose version of this module.

use crate::error::Error;
use crate::reader::Gguf;

/// The version of these conventions that this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Keys shared by every family.
pub mod keys {
    /// `"edgegen.<family>"`.
    pub const ARCHITECTURE: &str = "general.architecture";
    /// A human-readable model name (optional).
    pub const NAME: &str = "general.name";
    /// [`super::FORMAT_VERSION`] as a u32.
    pub const FORMAT_VERSION: &str = "edgegen.format_version";
    /// CRC-32 (IEEE) of the data section, as a u32.
    pub const DATA_CRC32: &str = "edgegen.data_crc32";
    /// How a Q8_0 weight's input is multiplied ([`super::ActQuant`]): the
    /// string `"f32"` (the default when absent) or `"int8"`.
    pub const ACTIVATIONS: &str = "edgegen.activations";
}

/// What a Q8_0 layer multiplies its weights with: the activations as they
/// are, or quantized to int8 per block of 32 ([`crate::quant::BlockA8`]),
/// so that each block's 32 products sum exactly in integers: the
/// `q8_0a8` precision, about four times faster on every CPU the runtime
/// targets. The rounding is part of the file's meaning (it changes the
/// model's outputs), which is why it is stored. F32 and F16 weights
/// ignore it.
///
/// ```
/// # #[cfg(feature = "std")] {
/// use edgegen_format::{arch::{self, ActQuant}, Gguf, GgufWriter};
/// let mut w = GgufWriter::new();
/// arch::write_common(&mut w, arch::Family::Vae).unwrap();
/// ActQuant::Int8.write(&mut w).unwrap();
/// let bytes = w.to_bytes();
/// assert_eq!(ActQuant::read(&Gguf::parse(&bytes).unwrap()), Ok(ActQuant::Int8));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActQuant {
    /// f32 activations (every file written before the key existed).
    #[default]
    F32,
    /// int8 codes with an f32 scale per block of 32, rounded half to even.
    Int8,
}

impl ActQuant {
    /// The stored name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::Int8 => "int8",
        }
    }

    /// Reads [`keys::ACTIVATIONS`]; absent means [`ActQuant::F32`].
    pub fn read(g: &Gguf<'_>) -> Result<Self, Error> {
        match g.get(keys::ACTIVATIONS).map(|v| v.as_str()) {
            None => Ok(Self::F32),
            Some(Some("f32")) => Ok(Self::F32),
            Some(Some("int8")) => Ok(Self::Int8),
            Some(_) => Err(Error::BadValue {
                key: keys::ACTIVATIONS,
                expected: "the string f32 or int8",
            }),
        }
    }

    /// Stores the choice; [`ActQuant::F32`] writes nothing, so such files
    /// stay byte for byte what they were.
    #[cfg(feature = "std")]
    pub fn write(self, w: &mut crate::GgufWriter) -> Result<(), crate::WriteError> {
        match self {
            Self::F32 => Ok(()),
            Self::Int8 => w.add(keys::ACTIVATIONS, self.name()),
        }
    }
}

/// A model family; its architecture string is `edgegen.<name>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Variational autoencoder (MLP), optionally class-conditional.
    Vae,
    /// DCGAN-style generator, optionally class-conditional.
    Gan,
    /// Byte-level autoregressive transformer over text.
    Text,
    /// A GRU over 8-bit mu-law audio samples.
    Audio,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 4] = [Family::Vae, Family::Gan, Family::Text, Family::Audio];

    /// The value of `general.architecture`.
    pub const fn arch(self) -> &'static str {
        match self {
            Family::Vae => "edgegen.vae",
            Family::Gan => "edgegen.gan",
            Family::Text => "edgegen.text",
            Family::Audio => "edgegen.audio",
        }
    }

    /// The family whose architecture string is `arch`.
    pub fn from_arch(arch: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|f| f.arch() == arch)
    }
}

/// Checks the shared keys and the data CRC, and returns the family.
///
/// Run this once when a model is loaded: a device then knows that its flash
/// image is intact before it trusts a single weight.
pub fn check(g: &Gguf<'_>) -> Result<Family, Error> {
    let v = g.require_u32(keys::FORMAT_VERSION)?;
    if v != FORMAT_VERSION {
        return Err(Error::BadValue {
            key: keys::FORMAT_VERSION,
            expected: "1",
        });
    }
    let family = Family::from_arch(g.require_str(keys::ARCHITECTURE)?).ok_or(Error::BadValue {
        key: keys::ARCHITECTURE,
        expected: "edgegen.vae, edgegen.gan, edgegen.text or edgegen.audio",
    })?;
    let stored = g.require_u32(keys::DATA_CRC32)?;
    let computed = g.data_crc32();
    if stored != computed {
        return Err(Error::CrcMismatch { stored, computed });
    }
    Ok(family)
}

/// An elementwise nonlinearity, stored by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// max(x, 0)
    Relu,
    /// x for x > 0, else 0.2 x (the DCGAN slope, fixed).
    LeakyRelu,
    /// tanh(x)
    Tanh,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// The tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    Gelu,
    /// ln(1 + e^x)
    Softplus,
}

impl Activation {
    /// Every activation.
    pub const ALL: [Activation; 6] = [
        Self::Relu,
        Self::LeakyRelu,
        Self::Tanh,
        Self::Sigmoid,
        Self::Gelu,
        Self::Softplus,
    ];
    /// The slope of [`Activation::LeakyRelu`] below zero.
    pub const LEAKY_SLOPE: f32 = 0.2;

    /// The stored name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Relu => "relu",
            Self::LeakyRelu => "leaky_relu",
            Self::Tanh => "tanh",
            Self::Sigmoid => "sigmoid",
            Self::Gelu => "gelu",
            Self::Softplus => "softplus",
        }
    }

    /// The activation stored as `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.name() == name)
    }
}

/// The VAE family: an MLP encoder `x -> h_0 -> ... -> (mu, logvar)` and a
/// mirrored decoder `[z, onehot(label)] -> h_last -> ... -> h_0 -> x`.
pub mod vae {
    use super::{Activation, Error, Gguf};

    /// `[C, H, W]` of the images, u32 array.
    pub const IMAGE_SHAPE: &str = "edgegen.vae.image_shape";
    /// Latent size, u32.
    pub const LATENT_DIM: &str = "edgegen.vae.latent_dim";
    /// Hidden widths in encoder order, u32 array (1 to 4 entries).
    pub const HIDDEN_DIMS: &str = "edgegen.vae.hidden_dims";
    /// Number of classes for a conditional model, 0 otherwise; u32.
    pub const N_CLASSES: &str = "edgegen.vae.n_classes";
    /// `"bernoulli"` (decoder outputs logits, pixels = sigmoid) or
    /// `"gaussian"` (decoder outputs means, clamped to [0, 1]).
    pub const LIKELIHOOD: &str = "edgegen.vae.likelihood";
    /// The hidden activation's name.
    pub const ACTIVATION: &str = "edgegen.vae.activation";
    /// `"decoder"` or `"encoder"`: which network's tensors the file holds.
    /// Optional; a file without it holds a decoder.
    pub const PART: &str = "edgegen.vae.part";
    /// Conditional decoders: whether the label also enters every decoder
    /// layer after the first, as a per-class bias ([`DEC_LABEL`]) added
    /// before the activation. Bool, optional; absent means false (files
    /// written before it existed).
    pub const LABEL_EVERY_LAYER: &str = "edgegen.vae.label_every_layer";

    /// Which network of a VAE a file holds.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Part {
        /// `[z, onehot] -> pixels`: what a device samples with.
        Decoder,
        /// `[x, onehot] -> (mu, logvar)`: what maps images into the latent
        /// space, for latent walks between real images.
        Encoder,
    }

    impl Part {
        /// The stored name.
        pub const fn name(self) -> &'static str {
            match self {
                Self::Decoder => "decoder",
                Self::Encoder => "encoder",
            }
        }

        /// Reads [`PART`]; a file without it holds a decoder.
        pub fn read(g: &Gguf<'_>) -> Result<Self, Error> {
            let Some(v) = g.get(PART) else {
                return Ok(Self::Decoder);
            };
            match v.as_str() {
                Some("decoder") => Ok(Self::Decoder),
                Some("encoder") => Ok(Self::Encoder),
                _ => Err(Error::BadValue {
                    key: PART,
                    expected: "the string decoder or encoder",
                }),
            }
        }
    }

    /// The most hidden layers a VAE may have.
    pub const MAX_HIDDEN: usize = 4;

    /// Decoder layer `i`'s weight, GGUF shape `[in, out]` (a row-major
    /// `(out, in)` matrix). Layer 0 reads `[z, onehot]`; the last writes
    /// pixels. A pattern: see [`TensorName::at`](crate::TensorName::at).
    pub const DEC_WEIGHT: &str = "dec.{i}.weight";
    /// Decoder layer `i`'s bias, GGUF shape `[out]`.
    pub const DEC_BIAS: &str = "dec.{i}.bias";
    /// Decoder layer `i`'s per-class bias (`i >= 1`, with
    /// [`LABEL_EVERY_LAYER`]), GGUF shape `[out, K]`: row `c` is added for
    /// label `c`. Always F32, as biases are.
    pub const DEC_LABEL: &str = "dec.{i}.label.weight";
    /// Encoder layer `i`'s weight, GGUF shape `[in, out]`. Layer 0 reads
    /// `[x, onehot]`.
    pub const ENC_WEIGHT: &str = "enc.{i}.weight";
    /// Encoder layer `i`'s bias.
    pub const ENC_BIAS: &str = "enc.{i}.bias";
    /// The encoder heads: weight `[h_last, latent]` and bias `[latent]`.
    pub const ENC_MU_WEIGHT: &str = "enc.mu.weight";
    /// See [`ENC_MU_WEIGHT`].
    pub const ENC_MU_BIAS: &str = "enc.mu.bias";
    /// See [`ENC_MU_WEIGHT`].
    pub const ENC_LOGVAR_WEIGHT: &str = "enc.logvar.weight";
    /// See [`ENC_MU_WEIGHT`].
    pub const ENC_LOGVAR_BIAS: &str = "enc.logvar.bias";

    /// The output distribution of the decoder.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Likelihood {
        /// Logits; pixels are their sigmoid.
        Bernoulli,
        /// Means with unit variance; pixels are clamped to [0, 1].
        Gaussian,
    }

    impl Likelihood {
        /// The stored name.
        pub const fn name(self) -> &'static str {
            match self {
                Self::Bernoulli => "bernoulli",
                Self::Gaussian => "gaussian",
            }
        }
        /// The likelihood stored as `name`.
        pub fn from_name(name: &str) -> Option<Self> {
            [Self::Bernoulli, Self::Gaussian]
                .into_iter()
                .find(|l| l.name() == name)
        }
    }

    /// A VAE's hyperparameters.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Hparams {
        /// `[C, H, W]`.
        pub image_shape: [u32; 3],
        /// Latent size.
        pub latent_dim: u32,
        /// Hidden widths in encoder order; only `..n_hidden` are used.
        pub hidden: [u32; MAX_HIDDEN],
        /// How many hidden layers.
        pub n_hidden: usize,
        /// Classes, 0 if unconditional.
        pub n_classes: u32,
        /// Output distribution.
        pub likelihood: Likelihood,
        /// Hidden activation.
        pub activation: Activation,
        /// Conditional decoders: the label also enters every decoder layer
        /// after the first ([`LABEL_EVERY_LAYER`]).
        pub label_every_layer: bool,
    }

    impl Hparams {
        /// Hyperparameters with `hidden` widths in encoder order; `None`
        /// unless there are 1 to [`MAX_HIDDEN`] of them. Spares writers the
        /// fixed-size array and its count.
        ///
        /// ```
        /// use edgegen_format::arch::{Activation, vae::{Hparams, Likelihood}};
        /// let hp = Hparams::new([1, 28, 28], 20, &[400], 0, Likelihood::Bernoulli, Activation::Relu)
        ///     .unwrap();
        /// assert_eq!((hp.hidden(), hp.decoder_layer(1)), (&[400][..], (400, 784)));
        /// ```
        pub fn new(
            image_shape: [u32; 3],
            latent_dim: u32,
            hidden: &[u32],
            n_classes: u32,
            likelihood: Likelihood,
            activation: Activation,
        ) -> Option<Self> {
            if hidden.is_empty() || hidden.len() > MAX_HIDDEN {
                return None;
            }
            let mut h = [0u32; MAX_HIDDEN];
            h[..hidden.len()].copy_from_slice(hidden);
            Some(Self {
                image_shape,
                latent_dim,
                hidden: h,
                n_hidden: hidden.len(),
                n_classes,
                likelihood,
                activation,
                label_every_layer: false,
            })
        }

        /// `C * H * W`.
        pub const fn input_dim(&self) -> usize {
            self.image_shape[0] as usize
                * self.image_shape[1] as usize
                * self.image_shape[2] as usize
        }

        /// The hidden widths in use.
        pub fn hidden(&self) -> &[u32] {
            &self.hidden[..self.n_hidden]
        }

        /// Encoder hidden layer `i`'s `(in, out)`, for `i` in `0..n_hidden`;
        /// both heads are `(h_{n-1}, Z)`.
        pub fn encoder_layer(&self, i: usize) -> (usize, usize) {
            let h = self.hidden();
            let inp = if i == 0 {
                self.input_dim() + self.n_classes as usize
            } else {
                h[i - 1] as usize
            };
            (inp, h[i] as usize)
        }

        /// Whether decoder layer `i` has a per-class bias ([`DEC_LABEL`]).
        pub const fn decoder_has_label(&self, i: usize) -> bool {
            self.label_every_layer && i > 0
        }

        /// Decoder layer `i`'s `(in, out)`, for `i` in `0..=n_hidden`.
        pub fn decoder_layer(&self, i: usize) -> (usize, usize) {
            let h = self.hidden();
            let n = h.len();
            let width = |j: usize| h[n - 1 - j] as usize;
            let inp = if i == 0 {
                (self.latent_dim + self.n_classes) as usize
            } else {
                width(i - 1)
            };
            let out = if i == n { self.input_dim() } else { width(i) };
            (inp, out)
        }

        /// Reads and range-checks the hyperparameters.
        pub fn read(g: &Gguf<'_>) -> Result<Self, Error> {
            let mut shape = [0u32; 3];
            if g.require_u32_array(IMAGE_SHAPE, &mut shape)? != 3 || shape.contains(&0) {
                return Err(Error::BadValue {
                    key: IMAGE_SHAPE,
                    expected: "[C, H, W], all non-zero",
                });
            }
            if shape.iter().map(|&d| d as u64).product::<u64>() > 1 << 24 {
                return Err(Error::BadValue {
                    key: IMAGE_SHAPE,
                    expected: "at most 2^24 pixels",
                });
            }
            let mut hidden = [0u32; MAX_HIDDEN];
            let n_hidden = g.require_u32_array(HIDDEN_DIMS, &mut hidden)?;
            if n_hidden == 0 || hidden[..n_hidden].contains(&0) {
                return Err(Error::BadValue {
                    key: HIDDEN_DIMS,
                    expected: "1 to 4 non-zero widths",
                });
            }
            let latent_dim = g.require_u32(LATENT_DIM)?;
            if latent_dim == 0 || latent_dim > 1 << 16 {
                return Err(Error::BadValue {
                    key: LATENT_DIM,
                    expected: "1 to 65536",
                });
            }
            let n_classes = g.require_u32(N_CLASSES)?;
            if n_classes > 1 << 16 {
                return Err(Error::BadValue {
                    key: N_CLASSES,
                    expected: "0 to 65536",
                });
            }
            let likelihood =
                Likelihood::from_name(g.require_str(LIKELIHOOD)?).ok_or(Error::BadValue {
                    key: LIKELIHOOD,
                    expected: "bernoulli or gaussian",
                })?;
            let activation =
                Activation::from_name(g.require_str(ACTIVATION)?).ok_or(Error::BadValue {
                    key: ACTIVATION,
                    expected: "relu, leaky_relu, tanh, sigmoid, gelu or softplus",
                })?;
            let label_every_layer = match g.get(LABEL_EVERY_LAYER) {
                None => false,
                Some(crate::Value::Bool(b)) if !b || n_classes > 0 => b,
                Some(_) => {
                    return Err(Error::BadValue {
                        key: LABEL_EVERY_LAYER,
                        expected: "a bool, true only with n_classes > 0",
                    });
                }
            };
            Ok(Self {
                image_shape: shape,
                latent_dim,
                hidden,
                n_hidden,
                n_classes,
                likelihood,
                activation,
                label_every_layer,
            })
        }

        /// Writes the architecture, the shared keys and these hyperparameters.
        #[cfg(feature = "std")]
        pub fn write(&self, w: &mut crate::GgufWriter) -> Result<(), crate::WriteError> {
            use crate::OwnedValue;
            super::write_common(w, super::Family::Vae)?;
            w.add(IMAGE_SHAPE, OwnedValue::u32s(&self.image_shape))?;
            w.add(LATENT_DIM, self.latent_dim)?;
            w.add(HIDDEN_DIMS, OwnedValue::u32s(self.hidden()))?;
            w.add(N_CLASSES, self.n_classes)?;
            w.add(LIKELIHOOD, self.likelihood.name())?;
            w.add(ACTIVATION, self.activation.name())?;
            if self.label_every_layer {
                w.add(LABEL_EVERY_LAYER, true)?;
            }
            Ok(())
        }
    }
}

/// The GAN family: a DCGAN generator. `[z, onehot(label)] -> dense ->
/// (C_0, H / 2^n, W / 2^n)` (ReLU), then `n` transposed convolutions
/// (kernel 4, stride 2, padding 1), each doubling the plane: ReLU after
/// all but the last, tanh after the last. Batch norms are folded into the
/// weights and biases at export, so a device runs dense and transposed
/// convolutions only.
pub mod gan {
    use crate::{Error, Gguf};

    /// `[C, H, W]` (`u32[3]`) of the generated image; H and W are multiples
    /// of `2^n`.
    pub const IMAGE_SHAPE: &str = "edgegen.gan.image_shape";
    /// Noise size `Z` (u32).
    pub const LATENT_DIM: &str = "edgegen.gan.latent_dim";
    /// Classes `K` (u32), 0 if unconditional.
    pub const N_CLASSES: &str = "edgegen.gan.n_classes";
    /// The channels of each plane before each transposed convolution,
    /// `[C_0, .., C_{n-1}]` (`u32[1..=4]`); the last one makes `C`.
    pub const CHANNELS: &str = "edgegen.gan.channels";

    /// The dense layer: GGUF shape `[Z+K, C_0 * h0 * w0]` (a row-major
    /// `(out, in)` matrix, as the VAE's), rows in `(c, y, x)` order.
    pub const FC_WEIGHT: &str = "gen.fc.weight";
    /// Its bias, `[C_0 * h0 * w0]`.
    pub const FC_BIAS: &str = "gen.fc.bias";
    /// Up block `i`'s weight: GGUF shape `[C_i, C_{i+1} * 16]`, a row-major
    /// `(C_{i+1} * 4 * 4, C_i)` matrix, rows in `(oc, ky, kx)` order: row
    /// `(oc, ky, kx)` dotted with input pixel `(y, x)`'s channels adds to
    /// output pixel `(oc, 2y + ky - 1, 2x + kx - 1)`. (PyTorch's weight
    /// `(C_i, C_{i+1}, 4, 4)`, transposed so that a row is contiguous.)
    pub const UP_WEIGHT: &str = "gen.up.{i}.weight";
    /// Up block `i`'s bias, `[C_{i+1}]`.
    pub const UP_BIAS: &str = "gen.up.{i}.bias";

    /// Every up block's kernel size.
    pub const KERNEL: usize = 4;
    /// Every up block's stride.
    pub const STRIDE: usize = 2;
    /// Every up block's padding.
    pub const PAD: usize = 1;
    /// The most up blocks a generator may have.
    pub const MAX_UP: usize = 4;

    /// A generator's hyperparameters.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Hparams {
        /// `[C, H, W]`.
        pub image_shape: [u32; 3],
        /// Noise size.
        pub latent_dim: u32,
        /// Classes, 0 if unconditional.
        pub n_classes: u32,
        /// Plane channels before each up block; only `..n_up` are used.
        pub channels: [u32; MAX_UP],
        /// Up blocks.
        pub n_up: usize,
    }

    impl Hparams {
        /// Hyperparameters with one entry of `channels` per up block; `None`
        /// unless there are 1 to [`MAX_UP`] of them.
        ///
        /// ```
        /// use edgegen_format::arch::gan::Hparams;
        /// let hp = Hparams::new([1, 28, 28], 64, 10, &[128, 64]).unwrap();
        /// assert_eq!((hp.base(), hp.plane(1), hp.plane(2)), ((7, 7), (64, 14, 14), (1, 28, 28)));
        /// ```
        pub fn new(
            image_shape: [u32; 3],
            latent_dim: u32,
            n_classes: u32,
            channels: &[u32],
        ) -> Option<Self> {
            if channels.is_empty() || channels.len() > MAX_UP {
                return None;
            }
            let mut c = [0u32; MAX_UP];
            c[..channels.len()].copy_from_slice(channels);
            Some(Self {
                image_shape,
                latent_dim,
                n_classes,
                channels: c,
                n_up: channels.len(),
            })
        }

        /// The channels in use.
        pub fn channels(&self) -> &[u32] {
            &self.channels[..self.n_up]
        }

        /// `(h0, w0)`: the dense layer's plane.
        pub const fn base(&self) -> (usize, usize) {
            (
                self.image_shape[1] as usize >> self.n_up,
                self.image_shape[2] as usize >> self.n_up,
            )
        }

        /// `(C, H, W)` of plane `i`: 0 is the dense layer's, `n_up` the image.
        pub fn plane(&self, i: usize) -> (usize, usize, usize) {
            let (h0, w0) = self.base();
            let c = if i >= self.n_up {
                self.image_shape[0] as usize
            } else {
                self.channels[i] as usize
            };
            (c, h0 << i, w0 << i)
        }

        /// Values in plane `i`.
        pub fn plane_len(&self, i: usize) -> usize {
            let (c, h, w) = self.plane(i);
            c * h * w
        }

        /// `C * H * W`.
        pub const fn image_len(&self) -> usize {
            self.image_shape[0] as usize
                * self.image_shape[1] as usize
                * self.image_shape[2] as usize
        }

        /// Reads and range-checks the hyperparameters.
        pub fn read(g: &Gguf<'_>) -> Result<Self, Error> {
            let mut shape = [0u32; 3];
            let mut channels = [0u32; MAX_UP];
            let n_up = g.require_u32_array(CHANNELS, &mut channels)?;
            if n_up == 0 || channels[..n_up].iter().any(|&c| c == 0 || c > 4096) {
                return Err(Error::BadValue {
                    key: CHANNELS,
                    expected: "1 to 4 channel counts, each 1 to 4096",
                });
            }
            if g.require_u32_array(IMAGE_SHAPE, &mut shape)? != 3
                || shape[0] == 0
                || shape[0] > 4096
                || shape[1] == 0
                || shape[2] == 0
                || shape[1] % (1 << n_up) != 0
                || shape[2] % (1 << n_up) != 0
            {
                return Err(Error::BadValue {
                    key: IMAGE_SHAPE,
                    expected: "[C, H, W]: C 1 to 4096, H and W non-zero multiples of 2^(up blocks)",
                });
            }
            if shape.iter().map(|&d| d as u64).product::<u64>() > 1 << 24 {
                return Err(Error::BadValue {
                    key: IMAGE_SHAPE,
                    expected: "at most 2^24 values",
                });
            }
            let latent_dim = g.require_u32(LATENT_DIM)?;
            if latent_dim == 0 || latent_dim > 1 << 16 {
                return Err(Error::BadValue {
                    key: LATENT_DIM,
                    expected: "1 to 65536",
                });
            }
            let n_classes = g.require_u32(N_CLASSES)?;
            if n_classes > 1 << 16 {
                return Err(Error::BadValue {
                    key: N_CLASSES,
                    expected: "0 to 65536",
                });
            }
            let hp = Self {
                image_shape: shape,
                latent_dim,
                n_classes,
                channels,
                n_up,
            };
            // Every plane's size must be computable without overflow.
            if (0..=n_up).any(|i| hp.plane_len(i) > 1 << 26) {
                return Err(Error::BadValue {
                    key: CHANNELS,
                    expected: "planes of at most 2^26 values",
                });
            }
            Ok(hp)
        }

        /// Writes the architecture, the shared keys and these hyperparameters.
        #[cfg(feature = "std")]
        pub fn write(&self, w: &mut crate::GgufWriter) -> Result<(), crate::WriteError> {
            use crate::OwnedValue;
            super::write_common(w, super::Family::Gan)?;
            w.add(IMAGE_SHAPE, OwnedValue::u32s(&self.image_shape))?;
            w.add(LATENT_DIM, self.latent_dim)?;
            w.add(N_CLASSES, self.n_classes)?;
            w.add(CHANNELS, OwnedValue::u32s(self.channels()))
        }
    }
}

/// `edgegen.text`: the decoder-only transformer (GPT-2's pre-norm block
/// with LayerNorm and a GELU MLP), under llama.cpp's tensor names so that GGUF tools recognise them. Shapes
/// are GGUF order, `[in, out]`: a weight is a row-major `(out, in)` matrix
/// whose rows a matrix-vector product reads in place, and an embedding
/// `[C, n]` is n rows of C.
pub mod transformer {
    use super::Family;
    use crate::{Error, Gguf};

    /// The hyperparameter keys (`edgegen.text.*`; the audio family
    /// measured this layout and settled on a GRU, [`super::audio`]).
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Keys {
        /// Symbols `V` (u32).
        pub vocab_size: &'static str,
        /// The context `T` (u32): positions the model knows, and the
        /// KV cache's length.
        pub context_length: &'static str,
        /// Width `C` (u32).
        pub embedding_length: &'static str,
        /// Blocks `L` (u32).
        pub block_count: &'static str,
        /// Heads `H` (u32), dividing `C`.
        pub head_count: &'static str,
        /// Key/value heads (u32), dividing `H`; optional, absent = `H`.
        /// Fewer than `H` is grouped-query attention: query head `h` reads
        /// K/V head `h / (H / H_kv)`.
        pub head_count_kv: &'static str,
        /// MLP width `F` (u32).
        pub feed_forward_length: &'static str,
        /// Classes `K` (u32), 0 if unconditional.
        pub n_classes: &'static str,
        /// LayerNorm's epsilon (f32).
        pub layer_norm_epsilon: &'static str,
        /// Bool, optional (absent = false): the output layer is
        /// `token_embd.weight`, and there is no `output.weight`.
        pub tied_output: &'static str,
    }

    /// The text family's keys.
    pub const TEXT: Keys = Keys {
        vocab_size: "edgegen.text.vocab_size",
        context_length: "edgegen.text.context_length",
        embedding_length: "edgegen.text.embedding_length",
        block_count: "edgegen.text.block_count",
        head_count: "edgegen.text.head_count",
        head_count_kv: "edgegen.text.head_count_kv",
        feed_forward_length: "edgegen.text.feed_forward_length",
        n_classes: "edgegen.text.n_classes",
        layer_norm_epsilon: "edgegen.text.layer_norm_epsilon",
        tied_output: "edgegen.text.tied_output",
    };

    /// Text only: `bytes` (symbol `i` is byte `i` of UTF-8; V = 256) or
    /// `chars` (symbol `i` is the i-th character of [`CHARS`]). Optional;
    /// absent means `bytes`.
    pub const VOCAB: &str = "edgegen.text.vocab";
    /// Text only, with `chars`: a string of exactly V characters.
    pub const CHARS: &str = "edgegen.text.chars";
    /// Optional, either family: the class names, an array of K strings.
    pub const CLASS_NAMES_TEXT: &str = "edgegen.text.class_names";

    /// `[C, V]`.
    pub const TOKEN_EMBD: &str = "token_embd.weight";
    /// `[C, T]`.
    pub const POSITION_EMBD: &str = "position_embd.weight";
    /// `[C, K]`, only if `K > 0`: row `k` is added at every position.
    pub const CLASS_EMBD: &str = "class_embd.weight";
    /// `[C]`.
    pub const ATTN_NORM_WEIGHT: &str = "blk.{i}.attn_norm.weight";
    /// `[C]`.
    pub const ATTN_NORM_BIAS: &str = "blk.{i}.attn_norm.bias";
    /// `[C, C + 2 Ckv]` (Ckv = H_kv * C / H): rows `0..C` make the
    /// queries, the next `Ckv` the keys, the last `Ckv` the values; head `h`
    /// owns `C/H` columns of each.
    pub const ATTN_QKV_WEIGHT: &str = "blk.{i}.attn_qkv.weight";
    /// `[C + 2 Ckv]`.
    pub const ATTN_QKV_BIAS: &str = "blk.{i}.attn_qkv.bias";
    /// `[C, C]`.
    pub const ATTN_OUTPUT_WEIGHT: &str = "blk.{i}.attn_output.weight";
    /// `[C]`.
    pub const ATTN_OUTPUT_BIAS: &str = "blk.{i}.attn_output.bias";
    /// `[C]`.
    pub const FFN_NORM_WEIGHT: &str = "blk.{i}.ffn_norm.weight";
    /// `[C]`.
    pub const FFN_NORM_BIAS: &str = "blk.{i}.ffn_norm.bias";
    /// `[C, F]`.
    pub const FFN_UP_WEIGHT: &str = "blk.{i}.ffn_up.weight";
    /// `[F]`.
    pub const FFN_UP_BIAS: &str = "blk.{i}.ffn_up.bias";
    /// `[F, C]`.
    pub const FFN_DOWN_WEIGHT: &str = "blk.{i}.ffn_down.weight";
    /// `[C]`.
    pub const FFN_DOWN_BIAS: &str = "blk.{i}.ffn_down.bias";
    /// `[C]`.
    pub const OUTPUT_NORM_WEIGHT: &str = "output_norm.weight";
    /// `[C]`.
    pub const OUTPUT_NORM_BIAS: &str = "output_norm.bias";
    /// `[C, V]`, absent when tied.
    pub const OUTPUT: &str = "output.weight";

    /// The widest head: attention keeps one head's accumulator on the
    /// stack.
    pub const MAX_HEAD_DIM: usize = 256;

    /// The keys a transformer of `family` uses: the text family's (the
    /// only family with this layout).
    pub const fn keys(family: Family) -> Keys {
        let _ = family;
        TEXT
    }

    /// A transformer's hyperparameters.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Hparams {
        /// `V`.
        pub vocab_size: u32,
        /// `T`.
        pub context_length: u32,
        /// `C`.
        pub embedding_length: u32,
        /// `L`.
        pub block_count: u32,
        /// `H`.
        pub head_count: u32,
        /// `H_kv`.
        pub head_count_kv: u32,
        /// `F`.
        pub feed_forward_length: u32,
        /// `K`.
        pub n_classes: u32,
        /// LayerNorm's epsilon.
        pub layer_norm_epsilon: f32,
        /// Whether the output layer is the token embedding.
        pub tied_output: bool,
    }

    fn range(
        g: &Gguf<'_>,
        key: &'static str,
        lo: u32,
        hi: u32,
        expected: &'static str,
    ) -> Result<u32, Error> {
        let v = g.require_u32(key)?;
        if v < lo || v > hi {
            return Err(Error::BadValue { key, expected });
        }
        Ok(v)
    }

    impl Hparams {
        /// Width of one head, `C / H`.
        ///
        /// ```
        /// use edgegen_format::arch::transformer::Hparams;
        /// let hp = Hparams { vocab_size: 256, context_length: 512, embedding_length: 64,
        ///     block_count: 5, head_count: 8, head_count_kv: 4, feed_forward_length: 256,
        ///     n_classes: 0, layer_norm_epsilon: 1e-5, tied_output: true };
        /// assert_eq!((hp.head_dim(), hp.kv_dim()), (8, 32));
        /// assert_eq!(hp.kv_len(), 2 * 5 * 512 * 32);
        /// ```
        pub const fn head_dim(&self) -> usize {
            self.embedding_length as usize / self.head_count as usize
        }

        /// `Ckv`: the width of the keys (and of the values).
        pub const fn kv_dim(&self) -> usize {
            self.head_count_kv as usize * self.head_dim()
        }

        /// `C + 2 Ckv`: the QKV projection's output.
        pub const fn qkv_dim(&self) -> usize {
            self.embedding_length as usize + 2 * self.kv_dim()
        }

        /// Values of a full KV cache: keys and values of every block at
        /// every position.
        pub const fn kv_len(&self) -> usize {
            2 * self.block_count as usize * self.context_length as usize * self.kv_dim()
        }

        /// Reads and range-checks the hyperparameters of `family`.
        pub fn read(g: &Gguf<'_>, family: Family) -> Result<Self, Error> {
            let k = keys(family);
            let hp = Self {
                vocab_size: range(g, k.vocab_size, 1, 1 << 16, "1 to 65536 symbols")?,
                context_length: range(g, k.context_length, 1, 1 << 14, "1 to 16384")?,
                embedding_length: range(g, k.embedding_length, 1, 1 << 14, "1 to 16384")?,
                block_count: range(g, k.block_count, 1, 256, "1 to 256")?,
                head_count: range(g, k.head_count, 1, 1 << 14, "1 to 16384")?,
                head_count_kv: match g.get(k.head_count_kv) {
                    None => g.require_u32(k.head_count)?,
                    Some(_) => range(g, k.head_count_kv, 1, 1 << 14, "1 to 16384")?,
                },
                feed_forward_length: range(g, k.feed_forward_length, 1, 1 << 16, "1 to 65536")?,
                n_classes: range(g, k.n_classes, 0, 1 << 16, "0 to 65536")?,
                layer_norm_epsilon: g.require_f32(k.layer_norm_epsilon)?,
                tied_output: match g.get(k.tied_output) {
                    None => false,
                    Some(crate::Value::Bool(b)) => b,
                    Some(_) => {
                        return Err(Error::BadValue {
                            key: k.tied_output,
                            expected: "a bool",
                        });
                    }
                },
            };
            let (c, h) = (hp.embedding_length, hp.head_count);
            if c % h != 0 || (c / h) as usize > MAX_HEAD_DIM {
                return Err(Error::BadValue {
                    key: k.head_count,
                    expected: "a divisor of embedding_length, with at most 256 per head",
                });
            }
            if !hp.head_count.is_multiple_of(hp.head_count_kv) {
                return Err(Error::BadValue {
                    key: k.head_count_kv,
                    expected: "a divisor of head_count",
                });
            }
            let eps = hp.layer_norm_epsilon;
            if !(eps > 0.0 && eps < 1.0) {
                return Err(Error::BadValue {
                    key: k.layer_norm_epsilon,
                    expected: "a number between 0 and 1",
                });
            }
            Ok(hp)
        }

        /// Writes the architecture, the shared keys and these
        /// hyperparameters for `family`.
        #[cfg(feature = "std")]
        pub fn write(
            &self,
            w: &mut crate::GgufWriter,
            family: Family,
        ) -> Result<(), crate::WriteError> {
            let k = keys(family);
            super::write_common(w, family)?;
            w.add(k.vocab_size, self.vocab_size)?;
            w.add(k.context_length, self.context_length)?;
            w.add(k.embedding_length, self.embedding_length)?;
            w.add(k.block_count, self.block_count)?;
            w.add(k.head_count, self.head_count)?;
            w.add(k.head_count_kv, self.head_count_kv)?;
            w.add(k.feed_forward_length, self.feed_forward_length)?;
            w.add(k.n_classes, self.n_classes)?;
            w.add(k.layer_norm_epsilon, self.layer_norm_epsilon)?;
            w.add(k.tied_output, self.tied_output)
        }
    }
}

/// Writes `general.architecture`, `edgegen.format_version` and asks for
/// `edgegen.data_crc32`.
#[cfg(feature = "std")]
pub fn write_common(w: &mut crate::GgufWriter, family: Family) -> Result<(), crate::WriteError> {
    w.add(keys::ARCHITECTURE, family.arch())?;
    w.add(keys::FORMAT_VERSION, FORMAT_VERSION)?;
    w.add_data_crc32(keys::DATA_CRC32)
}

/// `edgegen.audio`: a GRU over 8-bit mu-law codes (mu = 255), one step per
/// sample: the code's embedding (plus the class's) into PyTorch's GRU cell,
/// then a linear layer to the next code's logits. Shapes are GGUF order,
/// `[in, out]`, as the transformer's.
pub mod audio {
    use crate::{Error, Gguf};

    /// Codes `V` (u32): 256.
    pub const VOCAB_SIZE: &str = "edgegen.audio.vocab_size";
    /// The embeddings' width `E` (u32).
    pub const EMBEDDING_LENGTH: &str = "edgegen.audio.embedding_length";
    /// The GRU's state `H` (u32).
    pub const STATE_LENGTH: &str = "edgegen.audio.state_length";
    /// Classes `K` (u32), 0 if unconditional.
    pub const N_CLASSES: &str = "edgegen.audio.n_classes";
    /// Hz (u32).
    pub const SAMPLE_RATE: &str = "edgegen.audio.sample_rate";
    /// Optional: the class names, an array of K strings.
    pub const CLASS_NAMES: &str = "edgegen.audio.class_names";

    /// `[E, V]`: row `s` is code `s`'s embedding.
    pub const TOKEN_EMBD: &str = "token_embd.weight";
    /// `[E, K]`, only if `K > 0`.
    pub const CLASS_EMBD: &str = "class_embd.weight";
    /// `[E, 3H]`: PyTorch's `weight_ih_l0`, rows `[r; z; n]`.
    pub const GRU_WEIGHT_IH: &str = "gru.weight_ih";
    /// `[3H]`.
    pub const GRU_BIAS_IH: &str = "gru.bias_ih";
    /// `[H, 3H]`: PyTorch's `weight_hh_l0`.
    pub const GRU_WEIGHT_HH: &str = "gru.weight_hh";
    /// `[3H]`.
    pub const GRU_BIAS_HH: &str = "gru.bias_hh";
    /// `[H, V]`.
    pub const OUTPUT: &str = "output.weight";
    /// `[V]`.
    pub const OUTPUT_BIAS: &str = "output.bias";

    /// Optional, the frame tier (all five present or none): codes per
    /// frame (u32, at least 2).
    pub const FRAME_LENGTH: &str = "edgegen.audio.frame_length";
    /// Bands per frame `C` (u32).
    pub const FEATURE_LENGTH: &str = "edgegen.audio.feature_length";
    /// The order `P` of the linear prediction a frame's bands imply (u32),
    /// 0 for none.
    pub const LPC_ORDER: &str = "edgegen.audio.lpc_order";
    /// The frame tier's input width `Ef` (u32).
    pub const FRAME_EMBEDDING_LENGTH: &str = "edgegen.audio.frame_embedding_length";
    /// The frame tier's GRU state `Hf` (u32).
    pub const FRAME_STATE_LENGTH: &str = "edgegen.audio.frame_state_length";

    /// `[C, E]`: a frame's bands into the sample tier's input.
    pub const FEAT_PROJ: &str = "feat_proj.weight";
    /// `[E]`.
    pub const FEAT_PROJ_BIAS: &str = "feat_proj.bias";
    /// `[E, V]` (only if `P > 0`): row `s` embeds a prediction of code `s`.
    pub const PRED_EMBD: &str = "pred_embd.weight";
    /// `[C, P + 1]` F32 (only if `P > 0`): lag `j`'s autocorrelation per
    /// unit of band `m`'s energy.
    pub const LPC_WEIGHT: &str = "lpc.weight";
    /// `[C, Ef]`: the last frame's bands into the frame tier.
    pub const FRAME_IN: &str = "frame.in.weight";
    /// `[Ef]`.
    pub const FRAME_IN_BIAS: &str = "frame.in.bias";
    /// `[Ef, K]`, only if `K > 0`.
    pub const FRAME_CLASS_EMBD: &str = "frame.class_embd.weight";
    /// `[Ef, 3Hf]`.
    pub const FRAME_GRU_WEIGHT_IH: &str = "frame.gru.weight_ih";
    /// `[3Hf]`.
    pub const FRAME_GRU_BIAS_IH: &str = "frame.gru.bias_ih";
    /// `[Hf, 3Hf]`.
    pub const FRAME_GRU_WEIGHT_HH: &str = "frame.gru.weight_hh";
    /// `[3Hf]`.
    pub const FRAME_GRU_BIAS_HH: &str = "frame.gru.bias_hh";
    /// `[Hf, 2C + 1]`: each band's mean, then its log sigma, then the end
    /// logit.
    pub const FRAME_OUT: &str = "frame.out.weight";
    /// `[2C + 1]`.
    pub const FRAME_OUT_BIAS: &str = "frame.out.bias";

    /// The most bands a frame has.
    pub const MAX_FEATURES: u32 = 256;
    /// The highest order of linear prediction: a device solves it with
    /// fixed arrays of this many coefficients.
    pub const MAX_LPC_ORDER: u32 = 32;
    /// The bounds of a band's log sigma, as training clamps it.
    pub const LOG_SIGMA: (f32, f32) = (-6.0, 3.0);
    /// Added to the zero lag of every autocorrelation that [`LPC_WEIGHT`]
    /// gives: the white-noise floor that keeps a silent frame's prediction
    /// solvable (a power of 1e-12 in each of 256 DFT bins).
    pub const LPC_FLOOR: f64 = 256e-12;

    /// The frame tier's keys, in [`FrameHparams`]' order.
    const KEYS: [&str; 5] = [
        FRAME_LENGTH,
        FEATURE_LENGTH,
        LPC_ORDER,
        FRAME_EMBEDDING_LENGTH,
        FRAME_STATE_LENGTH,
    ];

    /// A two-tier audio model's frame tier: a GRU over frames of `C`
    /// log-mel bands that draws each frame and says when the clip ends,
    /// and what the sample tier reads of each frame.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct FrameHparams {
        /// Codes per frame.
        pub frame_length: u32,
        /// `C`.
        pub feature_length: u32,
        /// `P`, 0 for no prediction.
        pub lpc_order: u32,
        /// `Ef`.
        pub embedding_length: u32,
        /// `Hf`.
        pub state_length: u32,
    }

    impl FrameHparams {
        /// Reads and range-checks the frame tier's keys: `None` if the file
        /// has none of them, an error naming the first missing one if it
        /// has some.
        ///
        /// ```
        /// use edgegen_format::{arch::audio::FrameHparams, Gguf, GgufWriter};
        /// let f = FrameHparams { frame_length: 256, feature_length: 20, lpc_order: 16,
        ///     embedding_length: 32, state_length: 128 };
        /// let mut w = GgufWriter::new();
        /// f.write(&mut w).unwrap();
        /// let bytes = w.to_bytes();
        /// assert_eq!(FrameHparams::read(&Gguf::parse(&bytes).unwrap()).unwrap(), Some(f));
        /// ```
        pub fn read(g: &Gguf<'_>) -> Result<Option<Self>, Error> {
            if !Self::present(g) {
                return Ok(None);
            }
            // One loop over a table, not five inlined checks: a device's
            // code size.
            let bounds: [(u32, u32, &'static str); 5] = [
                (2, 1 << 16, "2 to 65536 codes"),
                (1, MAX_FEATURES, "1 to 256 bands"),
                (0, MAX_LPC_ORDER, "0 to 32"),
                (1, 4096, "1 to 4096"),
                (1, 4096, "1 to 4096"),
            ];
            let mut v = [0u32; 5];
            for ((o, key), (lo, hi, expected)) in v.iter_mut().zip(KEYS).zip(bounds) {
                *o = g.require_u32(key)?;
                if *o < lo || *o > hi {
                    return Err(Error::BadValue { key, expected });
                }
            }
            Ok(Some(Self {
                frame_length: v[0],
                feature_length: v[1],
                lpc_order: v[2],
                embedding_length: v[3],
                state_length: v[4],
            }))
        }

        /// Whether the file has any of the frame tier's keys: a two-tier
        /// model (which [`Self::read`] then checks).
        pub fn present(g: &Gguf<'_>) -> bool {
            KEYS.iter().any(|k| g.get(k).is_some())
        }

        /// Writes these keys.
        #[cfg(feature = "std")]
        pub fn write(&self, w: &mut crate::GgufWriter) -> Result<(), crate::WriteError> {
            w.add(FRAME_LENGTH, self.frame_length)?;
            w.add(FEATURE_LENGTH, self.feature_length)?;
            w.add(LPC_ORDER, self.lpc_order)?;
            w.add(FRAME_EMBEDDING_LENGTH, self.embedding_length)?;
            w.add(FRAME_STATE_LENGTH, self.state_length)
        }

        /// The frame tier's outputs per frame: `2C + 1`.
        pub const fn outputs(&self) -> usize {
            2 * self.feature_length as usize + 1
        }
    }

    /// An audio model's hyperparameters.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Hparams {
        /// `V`.
        pub vocab_size: u32,
        /// `E`.
        pub embedding_length: u32,
        /// `H`.
        pub state_length: u32,
        /// `K`.
        pub n_classes: u32,
        /// Hz.
        pub sample_rate: u32,
    }

    impl Hparams {
        /// Reads and range-checks the hyperparameters.
        ///
        /// ```
        /// use edgegen_format::{arch::audio::Hparams, Gguf, GgufWriter};
        /// let hp = Hparams { vocab_size: 256, embedding_length: 64, state_length: 128, n_classes: 10, sample_rate: 8000 };
        /// let mut w = GgufWriter::new();
        /// hp.write(&mut w).unwrap();
        /// let bytes = w.to_bytes();
        /// assert_eq!(Hparams::read(&Gguf::parse(&bytes).unwrap()).unwrap(), hp);
        /// ```
        pub fn read(g: &Gguf<'_>) -> Result<Self, Error> {
            let range = |key, lo, hi, expected| {
                let v = g.require_u32(key)?;
                if v < lo || v > hi {
                    return Err(Error::BadValue { key, expected });
                }
                Ok(v)
            };
            Ok(Self {
                vocab_size: range(VOCAB_SIZE, 1, 1 << 16, "1 to 65536 codes")?,
                embedding_length: range(EMBEDDING_LENGTH, 1, 4096, "1 to 4096")?,
                state_length: range(STATE_LENGTH, 1, 4096, "1 to 4096")?,
                n_classes: range(N_CLASSES, 0, 1 << 16, "0 to 65536")?,
                sample_rate: range(SAMPLE_RATE, 1, 1 << 20, "1 to 1048576 Hz")?,
            })
        }

        /// Writes the architecture, the shared keys and these
        /// hyperparameters.
        #[cfg(feature = "std")]
        pub fn write(&self, w: &mut crate::GgufWriter) -> Result<(), crate::WriteError> {
            super::write_common(w, super::Family::Audio)?;
            w.add(VOCAB_SIZE, self.vocab_size)?;
            w.add(EMBEDDING_LENGTH, self.embedding_length)?;
            w.add(STATE_LENGTH, self.state_length)?;
            w.add(N_CLASSES, self.n_classes)?;
            w.add(SAMPLE_RATE, self.sample_rate)
        }

        /// Floats of state a sampler keeps: the GRU's `H`.
        pub const fn state_len(&self) -> usize {
            self.state_length as usize
        }
    }

    #[cfg(test)]
    mod tests {
        extern crate std;
        use super::*;
        use crate::GgufWriter;

        #[test]
        fn out_of_range_values_name_their_key() {
            let good = Hparams {
                vocab_size: 256,
                embedding_length: 8,
                state_length: 16,
                n_classes: 0,
                sample_rate: 8000,
            };
            for (key, bad) in [
                (
                    STATE_LENGTH,
                    Hparams {
                        state_length: 0,
                        ..good
                    },
                ),
                (
                    EMBEDDING_LENGTH,
                    Hparams {
                        embedding_length: 5000,
                        ..good
                    },
                ),
                (
                    SAMPLE_RATE,
                    Hparams {
                        sample_rate: 0,
                        ..good
                    },
                ),
            ] {
                let mut w = GgufWriter::new();
                bad.write(&mut w).unwrap();
                let b = w.to_bytes();
                match Hparams::read(&Gguf::parse(&b).unwrap()) {
                    Err(Error::BadValue { key: k, .. }) => assert_eq!(k, key),
                    other => panic!("{key}: {other:?}"),
                }
            }
            let mut w = GgufWriter::new();
            good.write(&mut w).unwrap();
            let b = w.to_bytes();
            assert_eq!(Hparams::read(&Gguf::parse(&b).unwrap()).unwrap(), good);
            // No frame tier: none of its keys.
            assert_eq!(FrameHparams::read(&Gguf::parse(&b).unwrap()).unwrap(), None);
        }

        /// A frame tier's keys: some but not all is an error naming the
        /// first missing one; out of range names its key.
        #[test]
        fn frame_keys_are_all_or_none_and_in_range() {
            let f = FrameHparams {
                frame_length: 256,
                feature_length: 20,
                lpc_order: 16,
                embedding_length: 32,
                state_length: 128,
            };
            let mut w = GgufWriter::new();
            w.add(FRAME_LENGTH, 256u32).unwrap();
            w.add(FEATURE_LENGTH, 20u32).unwrap();
            let b = w.to_bytes();
            match FrameHparams::read(&Gguf::parse(&b).unwrap()) {
                Err(Error::MissingKey { key }) => assert_eq!(key, LPC_ORDER),
                other => panic!("{other:?}"),
            }
            for (key, bad) in [
                (LPC_ORDER, FrameHparams { lpc_order: 33, ..f }),
                (
                    FRAME_LENGTH,
                    FrameHparams {
                        frame_length: 1,
                        ..f
                    },
                ),
                (
                    FEATURE_LENGTH,
                    FrameHparams {
                        feature_length: 0,
                        ..f
                    },
                ),
                (
                    FRAME_STATE_LENGTH,
                    FrameHparams {
                        state_length: 0,
                        ..f
                    },
                ),
            ] {
                let mut w = GgufWriter::new();
                bad.write(&mut w).unwrap();
                let b = w.to_bytes();
                match FrameHparams::read(&Gguf::parse(&b).unwrap()) {
                    Err(Error::BadValue { key: k, .. }) => assert_eq!(k, key),
                    other => panic!("{key}: {other:?}"),
                }
            }
            let mut w = GgufWriter::new();
            f.write(&mut w).unwrap();
            let b = w.to_bytes();
            assert_eq!(
                FrameHparams::read(&Gguf::parse(&b).unwrap()).unwrap(),
                Some(f)
            );
            assert_eq!(f.outputs(), 41);
        }
    }
}
