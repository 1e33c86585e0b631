//! The VAE decoder on the device: `[z, onehot(label)] -> hidden -> pixels`.
//!
//! Z latent size, K classes (0 if unconditional), D pixels.

use crate::layers::{self, Dense};
use edgegen_format::arch::vae::{self, DEC_BIAS, DEC_WEIGHT, Hparams, Likelihood};
use edgegen_format::{Error, Gguf};

/// A VAE decoder whose weights stay in the GGUF bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct VaeDecoder<'a> {
    /// Hyperparameters.
    pub hp: Hparams,
    layers: heapless::Vec<Dense<'a>, { vae::MAX_HIDDEN + 1 }>,
}

/// Floats of scratch a decoder needs: two ping-pong buffers as wide as the
/// widest input or hidden layer. A `const fn`, so firmware can size a
/// static buffer at compile time.
pub const fn scratch_len_for(latent: usize, n_classes: usize, hidden: &[u32]) -> usize {
    let mut w = latent + n_classes;
    let mut i = 0;
    while i < hidden.len() {
        if hidden[i] as usize > w {
            w = hidden[i] as usize;
        }
        i += 1;
    }
    2 * w
}

impl<'a> VaeDecoder<'a> {
    /// Checks every decoder tensor against the hyperparameters and keeps
    /// views of them. Call after [`edgegen_format::arch::check`].
    pub fn from_gguf(g: &Gguf<'a>) -> Result<Self, Error> {
        let hp = Hparams::read(g)?;
        let mut layers = heapless::Vec::new();
        for i in 0..=hp.n_hidden {
            let (inp, out) = hp.decoder_layer(i);
            let w = layers::load_matrix(g, DEC_WEIGHT[i], out, inp)?;
            let b = layers::load_vector(g, DEC_BIAS[i], out)?;
            // Capacity is MAX_HIDDEN + 1 and n_hidden <= MAX_HIDDEN.
            let _ = layers.push(Dense { w, b });
        }
        Ok(Self { hp, layers })
    }

    /// Floats of scratch [`VaeDecoder::decode`] needs.
    pub fn scratch_len(&self) -> usize {
        scratch_len_for(
            self.hp.latent_dim as usize,
            self.hp.n_classes as usize,
            self.hp.hidden(),
        )
    }

    /// Z.
    pub fn latent_dim(&self) -> usize {
        self.hp.latent_dim as usize
    }

    /// D, the values per output image.
    pub fn output_len(&self) -> usize {
        self.hp.input_dim()
    }

    /// The dense layers, first (latent side) to last (pixels), for tools
    /// that time or inspect them one by one.
    pub fn layers(&self) -> &[Dense<'a>] {
        &self.layers
    }

    /// Bytes of weights and biases.
    pub fn weight_bytes(&self) -> usize {
        self.layers
            .iter()
            .map(|l| l.w.bytes() + 4 * l.b.len())
            .sum()
    }

    /// Multiply-adds per decoded image.
    pub fn macs(&self) -> usize {
        self.layers.iter().map(|l| l.w.rows * l.w.cols).sum()
    }

    /// Decodes one latent `z` (Z values) into `out` (D pixels in [0, 1]).
    /// `label` is required by conditional models and refused by others.
    pub fn decode(
        &self,
        z: &[f32],
        label: Option<u32>,
        scratch: &mut [f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        self.decode_with::<crate::math::DefaultMath>(z, label, scratch, out)
    }

    /// [`VaeDecoder::decode`] with the math functions of `M`.
    pub fn decode_with<M: crate::math::Math>(
        &self,
        z: &[f32],
        label: Option<u32>,
        scratch: &mut [f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let (zd, k, d) = (
            self.latent_dim(),
            self.hp.n_classes as usize,
            self.output_len(),
        );
        let need = self.scratch_len();
        if z.len() != zd {
            return Err(Error::BufferSize {
                expected: zd,
                found: z.len(),
            });
        }
        if out.len() != d {
            return Err(Error::BufferSize {
                expected: d,
                found: out.len(),
            });
        }
        if scratch.len() < need {
            return Err(Error::BufferSize {
                expected: need,
                found: scratch.len(),
            });
        }
        match (k, label) {
            (0, None) => {}
            (0, Some(_)) => {
                return Err(Error::BadValue {
                    key: "label",
                    expected: "none: this model is unconditional",
                });
            }
            (_, None) => {
                return Err(Error::BadValue {
                    key: "label",
                    expected: "a class label: this model is conditional",
                });
            }
            (k, Some(l)) if l as usize >= k => {
                return Err(Error::BadValue {
                    key: "label",
                    expected: "a label below edgegen.vae.n_classes",
                });
            }
            _ => {}
        }
        let (mut a, mut b) = scratch[..need].split_at_mut(need / 2);
        a[..zd].copy_from_slice(z);
        a[zd..zd + k].fill(0.0);
        if let Some(l) = label {
            a[zd + l as usize] = 1.0;
        }
        let last = self.layers.len() - 1;
        for (i, l) in self.layers.iter().enumerate() {
            let x = &a[..l.w.cols];
            if i == last {
                l.forward(out, x);
            } else {
                l.forward(&mut b[..l.w.rows], x);
                layers::activate_with::<M>(self.hp.activation, &mut b[..l.w.rows]);
                core::mem::swap(&mut a, &mut b);
            }
        }
        match self.hp.likelihood {
            Likelihood::Bernoulli => M::sigmoid_slice(out),
            Likelihood::Gaussian => out.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0)),
        }
        Ok(())
    }

    /// Draws z ~ N(0, I) from `rng` into the first Z floats of `z_buf` and
    /// decodes it.
    pub fn sample(
        &self,
        rng: &mut crate::sample::Rng,
        label: Option<u32>,
        z_buf: &mut [f32],
        scratch: &mut [f32],
        out: &mut [f32],
    ) -> Result<(), Error> {
        let zd = self.latent_dim();
        let found = z_buf.len();
        let z = z_buf.get_mut(..zd).ok_or(Error::BufferSize {
            expected: zd,
            found,
        })?;
        rng.fill_normal(z);
        self.decode(z, label, scratch, out)
    }
}
