//! The audio family on the device: a GRU over 8-bit mu-law codes, one
//! sample per step, its state in caller memory.
//!
//! Each step embeds the last code (plus the clip's class), advances the
//! GRU ([`crate::layers::gru`]) and returns the next code's logits; the
//! cost is the same at every sample of a clip, `3H(E + H) + VH`
//! multiply-adds, where a transformer's step grows with its context. The
//! caller owns two buffers: the [`State`] (`H` floats, [`state_len_for`])
//! and the scratch ([`scratch_len_for`]).

use super::{check_label, check_len, check_scratch};
use crate::kernels::{self, Matrix};
use crate::layers::gru::{self, Gru};
use crate::layers::{Dense, Vector, load_matrix, load_table, load_vector};
use crate::math::{self, DefaultMath};
use crate::sample::{Rng, Sampling, sample_logits};
use edgegen_format::arch::{self, Family, audio as a, audio::Hparams};
use edgegen_format::{Error, Gguf, TensorName};

/// mu of the 8-bit mu-law codes.
pub const MU: f32 = 255.0;

/// The code of silence (mu-law's zero): where a clip starts.
pub const SILENCE: u32 = 128;

/// The sample in [-1, 1] that code `q` stands for: `y = 2q/255 - 1`, then
/// `sign(y) ((1 + mu)^|y| - 1) / mu`.
///
/// ```
/// use edgegen_runtime::models::audio::mulaw_decode;
/// assert_eq!(mulaw_decode(128).abs() < 0.01, true);
/// assert_eq!((mulaw_decode(0), mulaw_decode(255)), (-1.0, 1.0));
/// ```
pub fn mulaw_decode(q: u8) -> f32 {
    let y = 2.0 * q as f32 / MU - 1.0;
    let m = (math::exp(y.abs() * libm::logf(1.0 + MU)) - 1.0) / MU;
    let m = m.min(1.0);
    if y < 0.0 { -m } else { m }
}

/// [`mulaw_decode`] as a 16-bit PCM sample (rounded, as the host's WAV
/// writer does).
pub fn mulaw_to_pcm16(q: u8) -> i16 {
    libm::roundf(mulaw_decode(q) * 32767.0) as i16
}

/// Floats of state: the GRU's `H`.
pub const fn state_len_for(hp: &Hparams) -> usize {
    hp.state_length as usize
}

/// Floats of scratch a step needs: the input, both gate projections and
/// the logits.
pub const fn scratch_len_for(hp: &Hparams) -> usize {
    hp.embedding_length as usize
        + gru::scratch_len(hp.state_length as usize)
        + hp.vocab_size as usize
}

/// An audio model whose weights stay in the GGUF bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio<'a> {
    /// Hyperparameters.
    pub hp: Hparams,
    token_embd: Matrix<'a>,
    class_embd: Option<Vector<'a>>,
    gru: Gru<'a>,
    output: Dense<'a>,
}

/// The GRU's state and the clip's class, in caller memory.
#[derive(Debug)]
pub struct State<'s> {
    h: &'s mut [f32],
    label: Option<u32>,
}

impl<'s> State<'s> {
    /// A clip's start: the state `h` ([`state_len_for`] floats) zeroed, for
    /// class `label` (`None` for an unconditional model).
    pub fn new(h: &'s mut [f32], label: Option<u32>) -> Self {
        h.fill(0.0);
        Self { h, label }
    }

    /// The state, `H` floats.
    pub fn h(&self) -> &[f32] {
        self.h
    }

    /// Sets the state (for a validation that feeds the same state to
    /// every engine); `h` must be as long as the state.
    pub fn set_h(&mut self, h: &[f32]) -> Result<(), Error> {
        check_len(self.h.len(), h.len())?;
        self.h.copy_from_slice(h);
        Ok(())
    }

    /// Starts a new clip of class `label` (the buffer stays).
    pub fn reset(&mut self, label: Option<u32>) {
        self.h.fill(0.0);
        self.label = label;
    }
}

impl<'a> Audio<'a> {
    /// Parses `bytes`, checks the shared keys and the data CRC, and loads
    /// the audio model they hold.
    ///
    /// ```
    /// # fn model_bytes() -> Vec<u8> {
    /// #     use edgegen_format::{arch::audio::Hparams, GgmlType, GgufWriter};
    /// #     let hp = Hparams { vocab_size: 256, embedding_length: 4, state_length: 8,
    /// #         n_classes: 10, sample_rate: 8000 };
    /// #     let mut w = GgufWriter::new();
    /// #     hp.write(&mut w).unwrap();
    /// #     let mut t = |n: &str, s: &[u64]| {
    /// #         let k: u64 = s.iter().product();
    /// #         let vals: Vec<f32> = (0..k).map(|i| 0.1 * ((i % 7) as f32 - 3.0)).collect();
    /// #         w.add_tensor(n, s, GgmlType::F32, &vals).unwrap();
    /// #     };
    /// #     t("token_embd.weight", &[4, 256]);
    /// #     t("class_embd.weight", &[4, 10]);
    /// #     t("gru.weight_ih", &[4, 24]);
    /// #     t("gru.bias_ih", &[24]);
    /// #     t("gru.weight_hh", &[8, 24]);
    /// #     t("gru.bias_hh", &[24]);
    /// #     t("output.weight", &[8, 256]);
    /// #     t("output.bias", &[256]);
    /// #     w.to_bytes()
    /// # }
    /// use edgegen_runtime::models::audio::{Audio, State, SILENCE, mulaw_to_pcm16};
    /// use edgegen_runtime::sample::{Rng, Sampling};
    /// let bytes = model_bytes(); // on a device: include_bytes!("audio-q8_0.gguf")
    /// let m = Audio::from_bytes(&bytes)?;
    /// let mut h = [0f32; 8];          // m.state_len()
    /// let mut scratch = [0f32; 308];  // >= m.scratch_len()
    /// let mut st = State::new(&mut h, Some(7)); // the digit 7
    /// let mut codes = [0u8; 400];     // 50 ms at 8 kHz
    /// let s = Sampling { temperature: 0.9, ..Sampling::default() };
    /// m.generate(&mut st, SILENCE, &s, &mut Rng::new(1), &mut scratch, &mut codes)?;
    /// let pcm: Vec<i16> = codes.iter().map(|&q| mulaw_to_pcm16(q)).collect();
    /// assert_eq!(pcm.len(), 400);
    /// # Ok::<(), edgegen_runtime::Error>(())
    /// ```
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let g = Gguf::parse(bytes)?;
        if arch::check(&g)? != Family::Audio {
            return Err(Error::BadValue {
                key: arch::keys::ARCHITECTURE,
                expected: "edgegen.audio",
            });
        }
        Self::from_gguf(&g)
    }

    /// Reads and checks an audio model: its hyperparameters and every
    /// tensor's shape and type.
    pub fn from_gguf(g: &Gguf<'a>) -> Result<Self, Error> {
        let hp = Hparams::read(g)?;
        let (v, e, h, k) = (
            hp.vocab_size as usize,
            hp.embedding_length as usize,
            hp.state_length as usize,
            hp.n_classes as usize,
        );
        let f = TensorName::fixed;
        let dense = |w, b, rows, cols| -> Result<Dense<'a>, Error> {
            Ok(Dense {
                w: load_matrix(g, f(w), rows, cols)?,
                b: load_vector(g, f(b), rows)?,
            })
        };
        Ok(Self {
            hp,
            token_embd: load_matrix(g, f(a::TOKEN_EMBD), v, e)?,
            class_embd: if k > 0 {
                Some(load_table(g, f(a::CLASS_EMBD), k, e)?)
            } else {
                None
            },
            gru: Gru {
                ih: dense(a::GRU_WEIGHT_IH, a::GRU_BIAS_IH, 3 * h, e)?,
                hh: dense(a::GRU_WEIGHT_HH, a::GRU_BIAS_HH, 3 * h, h)?,
            },
            output: dense(a::OUTPUT, a::OUTPUT_BIAS, v, h)?,
        })
    }

    /// Floats of scratch [`Self::step`] needs.
    pub const fn scratch_len(&self) -> usize {
        scratch_len_for(&self.hp)
    }

    /// Floats of a [`State`].
    pub const fn state_len(&self) -> usize {
        state_len_for(&self.hp)
    }

    /// Bytes of weights.
    pub fn weight_bytes(&self) -> usize {
        self.token_embd.bytes()
            + self.class_embd.map_or(0, |c| c.bytes())
            + self.gru.ih.bytes()
            + self.gru.hh.bytes()
            + self.output.bytes()
    }

    /// Multiply-adds per generated sample.
    pub fn macs(&self) -> usize {
        self.gru.macs() + self.output.macs()
    }

    fn check(&self, st: &State<'_>, scratch: &[f32]) -> Result<(), Error> {
        check_len(self.state_len(), st.h.len())?;
        check_scratch(self.scratch_len(), scratch.len())?;
        check_label(self.hp.n_classes as usize, st.label)
    }

    /// Feeds `code` and returns the next code's logits (a slice of
    /// `scratch`).
    pub fn step<'x>(
        &self,
        st: &mut State<'_>,
        code: u32,
        scratch: &'x mut [f32],
    ) -> Result<&'x [f32], Error> {
        self.check(st, scratch)?;
        if code >= self.hp.vocab_size {
            return Err(Error::BadValue {
                key: "code",
                expected: "a code below the model's vocab_size",
            });
        }
        Ok(self.forward(st, code, scratch))
    }

    /// One step, checked by the caller.
    fn forward<'x>(&self, st: &mut State<'_>, code: u32, scratch: &'x mut [f32]) -> &'x mut [f32] {
        let (v, e) = (
            self.hp.vocab_size as usize,
            self.hp.embedding_length as usize,
        );
        let (logits, rest) = scratch.split_at_mut(v);
        let (x, rest) = rest.split_at_mut(e);
        x.fill(0.0);
        self.token_embd.add_row_to(code as usize, x);
        if let (Some(c), Some(l)) = (&self.class_embd, st.label) {
            c.add_range_to(l as usize * e, x);
        }
        self.gru.step_with::<DefaultMath>(x, st.h, rest);
        kernels::matvec(logits, &self.output.w, st.h, |_| 0.0);
        self.output.b.add_to(logits);
        logits
    }

    /// Feeds `first` (usually [`SILENCE`] at a clip's start), then samples
    /// `out.len()` codes, each fed back: a clip of `out.len()` samples.
    pub fn generate(
        &self,
        st: &mut State<'_>,
        first: u32,
        sampling: &Sampling,
        rng: &mut Rng,
        scratch: &mut [f32],
        out: &mut [u8],
    ) -> Result<(), Error> {
        self.check(st, scratch)?;
        if self.hp.vocab_size > 256 {
            return Err(Error::BadValue {
                key: a::VOCAB_SIZE,
                expected: "at most 256 codes, to generate 8-bit samples",
            });
        }
        if first >= self.hp.vocab_size {
            return Err(Error::BadValue {
                key: "first",
                expected: "a code below the model's vocab_size",
            });
        }
        let mut code = first;
        for o in out.iter_mut() {
            let logits = self.forward(st, code, scratch);
            // Sampled codes are below vocab_size <= 256.
            code = sample_logits(logits, &[], sampling, rng) as u32;
            *o = code as u8;
        }
        Ok(())
    }
}
