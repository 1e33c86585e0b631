//! The audio family on the device: a GRU over 8-bit mu-law codes, one
//! sample per step, its state in caller memory.
//!
//! Each step embeds the last code (plus the clip's class), advances the
//! GRU ([`crate::layers::gru`]) and returns the next code's logits; the
//! cost is the same at every sample of a clip, `3H(E + H) + VH`
//! multiply-adds, where a transformer's step grows with its context. The
//! caller owns two buffers: the [`State`] ([`state_len_for`] floats) and
//! the scratch ([`scratch_len_for`]).
//!
//! A two-tier model ([`FrameHparams`] in the file) adds a frame tier: once
//! per frame of 256 samples a second GRU draws the frame's log-mel bands
//! (or ends the clip), and each sample step also reads its frame's bands
//! (projected once per frame) and the mu-law code of the linear prediction
//! of the next sample that the frame's bands imply ([`crate::layers::lpc`]).
//! That is how a class label is heard in the clip: through the spectral
//! envelope frame by frame, which a model of samples alone barely heeds.

use super::{check_label, check_len, check_scratch};
use crate::kernels::{self, Matrix};
use crate::layers::gru::{self, Gru};
use crate::layers::lpc::{self, BandLpc};
use crate::layers::{Dense, Vector, load_matrix, load_table, load_vector};
use crate::math::{self, DefaultMath};
use crate::sample::{Rng, Sampling, sample_logits};
use edgegen_format::arch::audio::{FrameHparams, Hparams, LOG_SIGMA};
use edgegen_format::arch::{self, Family, audio as a};
use edgegen_format::{Error, Gguf, TensorName};

/// mu of the 8-bit mu-law codes.
pub const MU: f32 = 255.0;

/// The code of silence (mu-law's zero): where a clip starts.
pub const SILENCE: u32 = 128;

/// ln(1 + mu) = ln 256 = 8 ln 2, as the f32 that `logf(256)` gives (a
/// test holds them equal): a constant, so that no logarithm is linked.
const LN_1_PLUS_MU: f32 = 5.545_177_4;

/// The sample at companded value `y` in [-1, 1]: `sign(y) ((1 + mu)^|y| -
/// 1) / mu`, at most 1 in magnitude.
fn expand(y: f32) -> f32 {
    let m = (math::exp(y.abs() * LN_1_PLUS_MU) - 1.0) / MU;
    let m = m.min(1.0);
    if y < 0.0 { -m } else { m }
}

/// The sample in [-1, 1] that code `q` stands for: `y = 2q/255 - 1`, then
/// `sign(y) ((1 + mu)^|y| - 1) / mu`.
///
/// ```
/// use edgegen_runtime::models::audio::mulaw_decode;
/// assert_eq!(mulaw_decode(128).abs() < 0.01, true);
/// assert_eq!((mulaw_decode(0), mulaw_decode(255)), (-1.0, 1.0));
/// ```
pub fn mulaw_decode(q: u8) -> f32 {
    expand(2.0 * q as f32 / MU - 1.0)
}

/// The code of sample `x`: the code whose companded interval holds it,
/// `y = sign(x) ln(1 + mu |x|) / ln(1 + mu)` rounded to the nearest of
/// the 256 levels `2q/255 - 1`. It is found by bisection against the
/// intervals' edges, [`mulaw_decode`]'s expansion of `(2q - 1)/255 - 1`,
/// so that it needs no logarithm (a device's flash) and agrees with the
/// decoder: `mulaw_encode(mulaw_decode(q)) == q` for every code. Below
/// -1 is code 0, above 1 code 255, NaN code 0.
///
/// ```
/// use edgegen_runtime::models::audio::{mulaw_decode, mulaw_encode};
/// assert_eq!((mulaw_encode(-1.0), mulaw_encode(1.0)), (0, 255));
/// assert_eq!(mulaw_encode(mulaw_decode(77)), 77);
/// ```
pub fn mulaw_encode(x: f32) -> u8 {
    // The largest code whose lower edge is at most x (code 0 has none).
    let (mut lo, mut hi) = (0u32, 255u32);
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if x >= expand((2 * mid - 1) as f32 / MU - 1.0) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo as u8
}

/// [`mulaw_decode`] as a 16-bit PCM sample (rounded, as the host's WAV
/// writer does).
pub fn mulaw_to_pcm16(q: u8) -> i16 {
    libm::roundf(mulaw_decode(q) * 32767.0) as i16
}

/// How far a drawn frame's bands stray from their means, in sigmas, unless
/// the clip says otherwise ([`State::set_frame_temperature`]): measured on
/// FSDD, clips drawn at 0.3 are heard as the digit asked for 89% of the
/// time, at 0.5 82%.
pub const FRAME_TEMPERATURE: f32 = 0.3;

/// The band value of silence: what the frame tier reads before a clip's
/// first frame (the host's `logmel::SILENT_FEATURE`).
pub const SILENT_BAND: f32 = -1.5;

/// Floats of state: the GRU's `H`; with a frame tier also its `Hf`, the
/// latest frame's `C` bands, their projection (`E`), and the prediction's
/// `P` coefficients and `P` past samples.
pub const fn state_len_for(hp: &Hparams, frames: Option<&FrameHparams>) -> usize {
    let h = hp.state_length as usize;
    match frames {
        None => h,
        Some(f) => {
            h + f.state_length as usize
                + f.feature_length as usize
                + hp.embedding_length as usize
                + 2 * f.lpc_order as usize
        }
    }
}

/// Floats of scratch a step needs: the input, both gate projections and
/// the logits; with a frame tier, the larger of that and a frame step's.
pub const fn scratch_len_for(hp: &Hparams, frames: Option<&FrameHparams>) -> usize {
    let sample = hp.embedding_length as usize
        + gru::scratch_len(hp.state_length as usize)
        + hp.vocab_size as usize;
    match frames {
        None => sample,
        Some(f) => {
            let frame = f.outputs()
                + f.embedding_length as usize
                + gru::scratch_len(f.state_length as usize);
            if frame > sample { frame } else { sample }
        }
    }
}

/// A two-tier model's frame tier and what its sample tier reads of a
/// frame, in place.
#[cfg_attr(not(feature = "frames"), allow(dead_code))]
#[derive(Debug, Clone, PartialEq)]
struct FrameTier<'a> {
    hp: FrameHparams,
    /// The dense layers, by the indices below, each pushed where it
    /// stays: as an array, the tier was built with five copies of the
    /// first, whose 200 bytes went to their place through `memcpy`, which
    /// a Cortex-M4 firmware linked for this alone (0.9 KB of flash).
    layers: heapless::Vec<Dense<'a>, 5>,
    class_embd: Option<Vector<'a>>,
    pred_embd: Option<Matrix<'a>>,
    lpc: Option<BandLpc<'a>>,
}

/// Indices of [`FrameTier::layers`].
#[cfg_attr(not(feature = "frames"), allow(dead_code))]
mod layer {
    /// The frame's input projection.
    pub const IN: usize = 0;
    /// The GRU's input and state projections.
    pub const GRU_IH: usize = 1;
    pub const GRU_HH: usize = 2;
    /// The head: the bands' means and log sigmas, and the end logit.
    pub const OUT: usize = 3;
    /// The sample tier's projection of a frame's bands.
    pub const FEAT_PROJ: usize = 4;
}

/// The (weight, bias) names of [`FrameTier::layers`], in their order: a
/// table in flash, where a table built in the loader with its shapes took
/// a Cortex-M4 firmware's code two stores a name.
#[cfg_attr(not(feature = "frames"), allow(dead_code))]
const FRAME_DENSE: [(&str, &str); 5] = [
    (a::FRAME_IN, a::FRAME_IN_BIAS),
    (a::FRAME_GRU_WEIGHT_IH, a::FRAME_GRU_BIAS_IH),
    (a::FRAME_GRU_WEIGHT_HH, a::FRAME_GRU_BIAS_HH),
    (a::FRAME_OUT, a::FRAME_OUT_BIAS),
    (a::FEAT_PROJ, a::FEAT_PROJ_BIAS),
];

/// `w` and its bias `b` as a `rows x cols` layer: one function for every
/// layer of both tiers, not a copy inlined per layer (a device's flash).
#[inline(never)]
fn load_dense<'a>(
    g: &Gguf<'a>,
    w: &'static str,
    b: &'static str,
    rows: usize,
    cols: usize,
) -> Result<Dense<'a>, Error> {
    Ok(Dense {
        w: load_matrix(g, TensorName::fixed(w), rows, cols)?,
        b: load_vector(g, TensorName::fixed(b), rows)?,
    })
}

#[cfg_attr(not(feature = "frames"), allow(dead_code))]
impl<'a> FrameTier<'a> {
    /// Reads and checks the frame tier of a model whose hyperparameters
    /// are `hp`, into `out` (which holds a part of it if this fails).
    #[inline(never)]
    fn load(
        g: &Gguf<'a>,
        hp: &Hparams,
        fh: FrameHparams,
        out: &mut Option<Self>,
    ) -> Result<(), Error> {
        let (v, e, k) = (
            hp.vocab_size as usize,
            hp.embedding_length as usize,
            hp.n_classes as usize,
        );
        let (c, p, ef, hf) = (
            fh.feature_length as usize,
            fh.lpc_order as usize,
            fh.embedding_length as usize,
            fh.state_length as usize,
        );
        if p > 0 && v > 256 {
            return Err(Error::BadValue {
                key: a::VOCAB_SIZE,
                expected: "256 codes: a linear prediction is embedded as its mu-law code",
            });
        }
        let f = TensorName::fixed;
        let (pred_embd, lpc) = if p > 0 {
            (
                Some(load_matrix(g, f(a::PRED_EMBD), v, e)?),
                Some(BandLpc {
                    acf: load_table(g, f(a::LPC_WEIGHT), p + 1, c)?,
                    bands: c,
                    order: p,
                }),
            )
        } else {
            (None, None)
        };
        // (rows, columns) of each of `layers`.
        let shapes = [
            (ef, c),
            (3 * hf, ef),
            (3 * hf, hf),
            (fh.outputs(), hf),
            (e, c),
        ];
        let t = out.insert(FrameTier {
            hp: fh,
            layers: heapless::Vec::new(),
            class_embd: None,
            pred_embd,
            lpc,
        });
        if k > 0 {
            t.class_embd = Some(load_table(g, f(a::FRAME_CLASS_EMBD), k, ef)?);
        }
        // Five pushes into a vector of five: none is refused.
        for (&(w, b), &(r, k)) in FRAME_DENSE.iter().zip(&shapes) {
            let _ = t.layers.push(load_dense(g, w, b, r, k)?);
        }
        Ok(())
    }
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
    #[cfg(feature = "frames")]
    frames: Option<FrameTier<'a>>,
}

/// A clip's state in caller memory (the GRU's, and with a frame tier its
/// GRU's, frame and prediction), its class, and where it is.
#[derive(Debug)]
pub struct State<'s> {
    buf: &'s mut [f32],
    label: Option<u32>,
    /// Samples fed since the clip's start.
    pos: u32,
    /// Frames drawn.
    drawn: u32,
    /// The frame the coefficients are for.
    coef_frame: u32,
    /// Whether the frame tier has ended the clip.
    ended: bool,
    frame_temperature: f32,
}

impl<'s> State<'s> {
    /// A clip's start: the state `buf` ([`state_len_for`] floats) zeroed,
    /// for class `label` (`None` for an unconditional model).
    pub fn new(buf: &'s mut [f32], label: Option<u32>) -> Self {
        let mut st = Self {
            buf,
            label,
            pos: 0,
            drawn: 0,
            coef_frame: u32::MAX,
            ended: false,
            frame_temperature: FRAME_TEMPERATURE,
        };
        st.reset(label);
        st
    }

    /// The whole state: the GRU's `H` floats first (all of it for a model
    /// without a frame tier).
    pub fn h(&self) -> &[f32] {
        self.buf
    }

    /// Sets the state (for a validation that feeds the same state to
    /// every engine); `h` must be as long as the state.
    pub fn set_h(&mut self, h: &[f32]) -> Result<(), Error> {
        check_len(self.buf.len(), h.len())?;
        self.buf.copy_from_slice(h);
        Ok(())
    }

    /// Starts a new clip of class `label` (the buffer stays).
    pub fn reset(&mut self, label: Option<u32>) {
        self.buf.fill(0.0);
        self.label = label;
        self.pos = 0;
        self.drawn = 0;
        self.coef_frame = u32::MAX;
        self.ended = false;
    }

    /// How far drawn bands stray from their means, in sigmas (default
    /// [`FRAME_TEMPERATURE`]; negative counts as 0).
    pub fn set_frame_temperature(&mut self, t: f32) {
        self.frame_temperature = t.max(0.0);
    }

    /// Frames the frame tier has drawn for this clip.
    pub fn frames_drawn(&self) -> u32 {
        self.drawn
    }

    /// Whether the frame tier has ended the clip.
    pub fn ended(&self) -> bool {
        self.ended
    }
}

/// A two-tier state's parts, split from its buffer.
#[cfg_attr(not(feature = "frames"), allow(dead_code))]
struct Parts<'b> {
    fh: &'b mut [f32],
    bands: &'b mut [f32],
    fx: &'b mut [f32],
    coef: &'b mut [f32],
    past: &'b mut [f32],
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
        let mut slot = None;
        Ok(Self::from_bytes_in(bytes, &mut slot)?.clone())
    }

    /// [`Self::from_bytes`], built in `slot` (on a device, a `static` in
    /// .bss) rather than returned: a two-tier model's handles are about
    /// 0.5 KB, which a return by value copies (0.4 KB more of a two-tier
    /// Cortex-M4 firmware's flash, and its stack). On an error the slot is
    /// left `None`.
    ///
    /// ```
    /// # fn model_bytes() -> Vec<u8> {
    /// #     use edgegen_format::{arch::audio::Hparams, GgmlType, GgufWriter};
    /// #     let hp = Hparams { vocab_size: 256, embedding_length: 4, state_length: 8,
    /// #         n_classes: 0, sample_rate: 8000 };
    /// #     let mut w = GgufWriter::new();
    /// #     hp.write(&mut w).unwrap();
    /// #     let mut t = |n: &str, s: &[u64]| {
    /// #         let k: u64 = s.iter().product();
    /// #         w.add_tensor(n, s, GgmlType::F32, &vec![0.1; k as usize]).unwrap();
    /// #     };
    /// #     t("token_embd.weight", &[4, 256]);
    /// #     t("gru.weight_ih", &[4, 24]);
    /// #     t("gru.bias_ih", &[24]);
    /// #     t("gru.weight_hh", &[8, 24]);
    /// #     t("gru.bias_hh", &[24]);
    /// #     t("output.weight", &[8, 256]);
    /// #     t("output.bias", &[256]);
    /// #     w.to_bytes()
    /// # }
    /// use edgegen_runtime::models::audio::Audio;
    /// let bytes = model_bytes(); // on a device: a `static` include_bytes!
    /// let mut slot = None;       // on a device: a `static mut` in .bss
    /// let m = Audio::from_bytes_in(&bytes, &mut slot)?;
    /// assert_eq!(m.hp.state_length, 8);
    /// // A model that fails to load leaves the slot empty.
    /// assert!(Audio::from_bytes_in(&bytes[..bytes.len() - 4], &mut slot).is_err());
    /// assert!(slot.is_none());
    /// # Ok::<(), edgegen_runtime::Error>(())
    /// ```
    pub fn from_bytes_in<'s>(
        bytes: &'a [u8],
        slot: &'s mut Option<Self>,
    ) -> Result<&'s Self, Error> {
        *slot = None;
        let g = Gguf::parse(bytes)?;
        if arch::check(&g)? != Family::Audio {
            return Err(Error::BadValue {
                key: arch::keys::ARCHITECTURE,
                expected: "edgegen.audio",
            });
        }
        Self::from_gguf_in(&g, slot)
    }

    /// Reads and checks an audio model: its hyperparameters and every
    /// tensor's shape and type, the frame tier's too if the file has one.
    pub fn from_gguf(g: &Gguf<'a>) -> Result<Self, Error> {
        let mut slot = None;
        Ok(Self::from_gguf_in(g, &mut slot)?.clone())
    }

    /// [`Self::from_gguf`], built in `slot` rather than returned. On an
    /// error the slot is left `None`, never holding a part of a model.
    pub fn from_gguf_in<'s>(g: &Gguf<'a>, slot: &'s mut Option<Self>) -> Result<&'s Self, Error> {
        let load = Self::load_into(g, slot);
        super::loaded(slot, load)
    }

    /// Loads the model into `slot`, which holds a part of it if this
    /// fails.
    #[inline(always)]
    fn load_into(g: &Gguf<'a>, slot: &mut Option<Self>) -> Result<(), Error> {
        // Without the feature, only whether the file has a frame tier: its
        // keys are not read (their code would count against a one-tier
        // firmware's flash).
        #[cfg(not(feature = "frames"))]
        if FrameHparams::present(g) {
            return Err(Error::BadValue {
                key: a::FRAME_LENGTH,
                expected: "a one-tier model: this edgegen-runtime was built without its `frames` feature, which a two-tier model needs",
            });
        }
        let hp = Hparams::read(g)?;
        let (v, e, h, k) = (
            hp.vocab_size as usize,
            hp.embedding_length as usize,
            hp.state_length as usize,
            hp.n_classes as usize,
        );
        let f = TensorName::fixed;
        let dense = |w, b, rows, cols| load_dense(g, w, b, rows, cols);
        #[allow(unused_variables)]
        let m = slot.insert(Self {
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
            #[cfg(feature = "frames")]
            frames: None,
        });
        #[cfg(feature = "frames")]
        if let Some(fh) = FrameHparams::read(g)? {
            FrameTier::load(g, &hp, fh, &mut m.frames)?;
        }
        Ok(())
    }

    /// The frame tier, if the model has one (never without the `frames`
    /// feature: the compiler then drops every two-tier path).
    #[inline]
    fn tier(&self) -> Option<&FrameTier<'a>> {
        #[cfg(feature = "frames")]
        {
            self.frames.as_ref()
        }
        #[cfg(not(feature = "frames"))]
        {
            None
        }
    }

    /// The frame tier's hyperparameters, if the model has one.
    pub fn frame_hparams(&self) -> Option<FrameHparams> {
        self.tier().map(|f| f.hp)
    }

    /// Floats of scratch [`Self::step`] needs.
    pub fn scratch_len(&self) -> usize {
        scratch_len_for(&self.hp, self.frame_hparams().as_ref())
    }

    /// Floats of a [`State`].
    pub fn state_len(&self) -> usize {
        state_len_for(&self.hp, self.frame_hparams().as_ref())
    }

    /// Bytes of weights.
    pub fn weight_bytes(&self) -> usize {
        let frames = self.tier().map_or(0, |t| {
            t.layers.iter().map(|d| d.bytes()).sum::<usize>()
                + t.class_embd.map_or(0, |c| c.bytes())
                + t.pred_embd.map_or(0, |p| p.bytes())
                + t.lpc.map_or(0, |l| l.acf.bytes())
        });
        self.token_embd.bytes()
            + self.class_embd.map_or(0, |c| c.bytes())
            + self.gru.ih.bytes()
            + self.gru.hh.bytes()
            + self.output.bytes()
            + frames
    }

    /// Multiply-adds per generated sample: a GRU step and the head, and
    /// with a frame tier its step and the bands' projection shared by the
    /// frame's samples (rounded up) plus the prediction's `P`.
    pub fn macs(&self) -> usize {
        let per_frame = self.tier().map_or(0, |t| {
            let fl = t.hp.frame_length as usize;
            t.layers
                .iter()
                .map(|d| d.macs())
                .sum::<usize>()
                .div_ceil(fl)
                + t.hp.lpc_order as usize
        });
        self.gru.macs() + self.output.macs() + per_frame
    }

    fn check(&self, st: &State<'_>, scratch: &[f32]) -> Result<(), Error> {
        check_len(self.state_len(), st.buf.len())?;
        check_scratch(self.scratch_len(), scratch.len())?;
        check_label(self.hp.n_classes as usize, st.label)
    }

    /// The checks of a call that brings a frame's `bands` (`C` values):
    /// the state and scratch, and that the model has a frame tier, which
    /// it returns.
    fn check_frame(
        &self,
        st: &State<'_>,
        scratch: &[f32],
        bands: &[f32],
    ) -> Result<&FrameTier<'a>, Error> {
        self.check(st, scratch)?;
        let t = self.tier().ok_or(Error::BadValue {
            key: a::FRAME_LENGTH,
            expected: "a frame tier: this model has none (it steps with step)",
        })?;
        check_len(t.hp.feature_length as usize, bands.len())?;
        Ok(t)
    }

    fn check_code(&self, key: &'static str, code: u32) -> Result<(), Error> {
        if code >= self.hp.vocab_size {
            return Err(Error::BadValue {
                key,
                expected: "a code below the model's vocab_size",
            });
        }
        Ok(())
    }

    /// A two-tier state's parts after the GRU's `H` (the caller checked its
    /// length).
    #[cfg_attr(not(feature = "frames"), allow(dead_code))]
    fn parts<'b>(&self, t: &FrameTier<'_>, buf: &'b mut [f32]) -> Parts<'b> {
        let rest = &mut buf[self.hp.state_length as usize..];
        let (fh, rest) = rest.split_at_mut(t.hp.state_length as usize);
        let (bands, rest) = rest.split_at_mut(t.hp.feature_length as usize);
        let (fx, rest) = rest.split_at_mut(self.hp.embedding_length as usize);
        let (coef, past) = rest.split_at_mut(t.hp.lpc_order as usize);
        Parts {
            fh,
            bands,
            fx,
            coef,
            past,
        }
    }

    /// The coefficients of the linear prediction that a frame's `bands`
    /// (`C` values) imply, into `coef` (`P` values; `x_t ~ sum_i coef[i]
    /// x[t - 1 - i]`): what [`Self::generate`] predicts each sample of the
    /// frame with, for a caller that brings its own frames to
    /// [`Self::step_with_frame`].
    pub fn prediction_coefficients(&self, bands: &[f32], coef: &mut [f32]) -> Result<(), Error> {
        let Some(l) = self.tier().and_then(|t| t.lpc.as_ref()) else {
            return Err(Error::BadValue {
                key: a::LPC_ORDER,
                expected: "a linear prediction: this model has none",
            });
        };
        check_len(l.bands, bands.len())?;
        check_len(l.order, coef.len())?;
        l.coefficients(bands, coef);
        Ok(())
    }

    /// Feeds `code` and returns the next code's logits (a slice of
    /// `scratch`). A two-tier model steps with [`Self::step_with_frame`]
    /// or [`Self::generate`].
    pub fn step<'x>(
        &self,
        st: &mut State<'_>,
        code: u32,
        scratch: &'x mut [f32],
    ) -> Result<&'x [f32], Error> {
        self.check(st, scratch)?;
        self.check_code("code", code)?;
        if self.tier().is_some() {
            return Err(Error::BadValue {
                key: "frames",
                expected: "a frame's bands: this two-tier model steps with step_with_frame or generate",
            });
        }
        let label = st.label;
        Ok(self.forward(st.buf, label, code, None, scratch))
    }

    /// A two-tier model's sample step given its frame: feeds `code` with
    /// the frame's `bands` (`C` values, projected at this step) and the
    /// code `pred` of the linear prediction of the next sample (any code
    /// for a model without one), and returns the next code's logits. For a
    /// caller that brings its own frames (a resynthesis) and for
    /// validation.
    pub fn step_with_frame<'x>(
        &self,
        st: &mut State<'_>,
        code: u32,
        bands: &[f32],
        pred: u32,
        scratch: &'x mut [f32],
    ) -> Result<&'x [f32], Error> {
        let t = self.check_frame(st, scratch, bands)?;
        self.check_code("code", code)?;
        self.check_code("pred", pred)?;
        let label = st.label;
        let p = self.parts(t, st.buf);
        t.layers[layer::FEAT_PROJ].forward(p.fx, bands);
        Ok(self.forward(st.buf, label, code, Some(pred), scratch))
    }

    /// A two-tier model's frame step: feeds the frame before (`prev`, `C`
    /// bands; [`SILENT_BAND`]s before the first) to the frame tier and
    /// returns its outputs for the next frame (a slice of `scratch`): the
    /// `C` bands' means, their log sigmas (unclamped), and the end logit
    /// (positive: the clip has ended).
    pub fn frame_step<'x>(
        &self,
        st: &mut State<'_>,
        prev: &[f32],
        scratch: &'x mut [f32],
    ) -> Result<&'x [f32], Error> {
        let t = self.check_frame(st, scratch, prev)?;
        let label = st.label;
        let p = self.parts(t, st.buf);
        Ok(Self::frame_forward(t, p.fh, label, prev, scratch))
    }

    /// The frame tier's step from `prev` (checked by the caller).
    #[cfg_attr(not(feature = "frames"), allow(dead_code))]
    fn frame_forward<'x>(
        t: &FrameTier<'_>,
        fh: &mut [f32],
        label: Option<u32>,
        prev: &[f32],
        scratch: &'x mut [f32],
    ) -> &'x mut [f32] {
        let ef = t.hp.embedding_length as usize;
        let (out, rest) = scratch.split_at_mut(t.hp.outputs());
        let (x, rest) = rest.split_at_mut(ef);
        t.layers[layer::IN].forward(x, prev);
        if let (Some(c), Some(l)) = (&t.class_embd, label) {
            c.add_range_to(l as usize * ef, x);
        }
        let (ih, hh) = (t.layers[layer::GRU_IH], t.layers[layer::GRU_HH]);
        Gru { ih, hh }.step_with::<DefaultMath>(x, fh, rest);
        t.layers[layer::OUT].forward(out, fh);
        out
    }

    /// One sample step, checked by the caller: `buf` is the state (its
    /// first `H` floats the GRU's; with `pred`, a two-tier state whose
    /// projected bands are current).
    fn forward<'x>(
        &self,
        buf: &mut [f32],
        label: Option<u32>,
        code: u32,
        pred: Option<u32>,
        scratch: &'x mut [f32],
    ) -> &'x mut [f32] {
        let (v, e, hn) = (
            self.hp.vocab_size as usize,
            self.hp.embedding_length as usize,
            self.hp.state_length as usize,
        );
        let (logits, rest) = scratch.split_at_mut(v);
        let (x, rest) = rest.split_at_mut(e);
        x.fill(0.0);
        self.token_embd.add_row_to(code as usize, x);
        if let (Some(c), Some(l)) = (&self.class_embd, label) {
            c.add_range_to(l as usize * e, x);
        }
        if let (Some(t), Some(pred)) = (self.tier(), pred) {
            let p = self.parts(t, buf);
            if let Some(pe) = &t.pred_embd {
                pe.add_row_to(pred as usize, x);
            }
            for (xi, &f) in x.iter_mut().zip(p.fx.iter()) {
                *xi += f;
            }
        }
        let h = &mut buf[..hn];
        self.gru.step_with::<DefaultMath>(x, h, rest);
        kernels::matvec(logits, &self.output.w, h, |_| 0.0);
        self.output.b.add_to(logits);
        logits
    }

    /// Draws the next frame into the state: the frame tier's step from the
    /// latest frame, then each band `mu + T sigma z`; `false` when its end
    /// logit ends the clip instead.
    #[cfg_attr(not(feature = "frames"), allow(dead_code))]
    fn draw_frame(
        &self,
        t: &FrameTier<'_>,
        st: &mut State<'_>,
        rng: &mut Rng,
        scratch: &mut [f32],
    ) -> bool {
        let c = t.hp.feature_length as usize;
        let (label, temp, first) = (st.label, st.frame_temperature, st.drawn == 0);
        let p = self.parts(t, st.buf);
        if first {
            p.bands.fill(SILENT_BAND);
        }
        let out = Self::frame_forward(t, p.fh, label, p.bands, scratch);
        if out[2 * c] > 0.0 {
            return false;
        }
        for (i, b) in p.bands.iter_mut().enumerate() {
            let ls = out[c + i].clamp(LOG_SIGMA.0, LOG_SIGMA.1);
            *b = out[i] + temp * math::exp(ls) * rng.normal();
        }
        true
    }

    /// Feeds `first` (usually [`SILENCE`] at a clip's start), then samples
    /// up to `out.len()` codes, each fed back, and returns how many: a clip
    /// of that many samples. A model without a frame tier always fills
    /// `out`; a two-tier one draws a frame each 256 samples (from the
    /// state's frame temperature) and stops where its frame tier ends the
    /// clip. Called again on the same state, a clip goes on where it
    /// stopped (feed its last code as `first`).
    pub fn generate(
        &self,
        st: &mut State<'_>,
        first: u32,
        sampling: &Sampling,
        rng: &mut Rng,
        scratch: &mut [f32],
        out: &mut [u8],
    ) -> Result<usize, Error> {
        self.check(st, scratch)?;
        if self.hp.vocab_size > 256 {
            return Err(Error::BadValue {
                key: a::VOCAB_SIZE,
                expected: "at most 256 codes, to generate 8-bit samples",
            });
        }
        self.check_code("first", first)?;
        let mut code = first;
        let Some(t) = self.tier() else {
            for o in out.iter_mut() {
                let label = st.label;
                let logits = self.forward(st.buf, label, code, None, scratch);
                // Sampled codes are below vocab_size <= 256.
                code = sample_logits(logits, &[], sampling, rng) as u32;
                *o = code as u8;
            }
            return Ok(out.len());
        };
        let fl = t.hp.frame_length;
        if st.pos == 0 {
            // The clip's first sample is the one fed: the prediction's past.
            let p = self.parts(t, st.buf);
            if let Some(x) = p.past.first_mut() {
                *x = mulaw_decode(first as u8);
            }
        }
        for (n, o) in out.iter_mut().enumerate() {
            let i = st.pos;
            // The frame that holds sample i + 1, whose prediction this step
            // makes, is drawn one step before its first sample.
            let next = (i + 1) / fl;
            if !st.ended && st.drawn <= next {
                if self.draw_frame(t, st, rng, scratch) {
                    st.drawn += 1;
                } else {
                    st.ended = true;
                }
            }
            if st.ended {
                return Ok(n);
            }
            let p = self.parts(t, st.buf);
            // The bands of frame i / fl are the latest until frame i / fl + 1
            // is drawn, one step before it starts.
            if i.is_multiple_of(fl) {
                t.layers[layer::FEAT_PROJ].forward(p.fx, p.bands);
            }
            let mut pred = SILENCE;
            if let Some(l) = &t.lpc {
                if st.coef_frame != next {
                    l.coefficients(p.bands, p.coef);
                    st.coef_frame = next;
                }
                let latest = i as usize % p.past.len().max(1);
                pred = mulaw_encode(lpc::predict(p.coef, p.past, latest)) as u32;
            }
            let label = st.label;
            let logits = self.forward(st.buf, label, code, Some(pred), scratch);
            code = sample_logits(logits, &[], sampling, rng) as u32;
            *o = code as u8;
            st.pos = i.saturating_add(1);
            let p = self.parts(t, st.buf);
            // Sample i + 1 into the ring.
            let at = st.pos as usize % p.past.len().max(1);
            if let Some(x) = p.past.get_mut(at) {
                *x = mulaw_decode(code as u8);
            }
        }
        Ok(out.len())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use edgegen_format::{GgmlType, GgufWriter};
    use std::vec::Vec;

    /// A one-tier model's file, with a frame tier's keys if `frames`.
    fn model(frames: Option<FrameHparams>) -> Vec<u8> {
        let hp = Hparams {
            vocab_size: 256,
            embedding_length: 4,
            state_length: 8,
            n_classes: 0,
            sample_rate: 8000,
        };
        let mut w = GgufWriter::new();
        hp.write(&mut w).unwrap();
        if let Some(f) = frames {
            f.write(&mut w).unwrap();
        }
        let mut t = |n: &str, s: &[u64]| {
            let k: u64 = s.iter().product();
            w.add_tensor(n, s, GgmlType::F32, &std::vec![0.1; k as usize])
                .unwrap();
        };
        t(a::TOKEN_EMBD, &[4, 256]);
        t(a::GRU_WEIGHT_IH, &[4, 24]);
        t(a::GRU_BIAS_IH, &[24]);
        t(a::GRU_WEIGHT_HH, &[8, 24]);
        t(a::GRU_BIAS_HH, &[24]);
        t(a::OUTPUT, &[8, 256]);
        t(a::OUTPUT_BIAS, &[256]);
        w.to_bytes()
    }

    /// The encoder is the decoder's inverse on every code, agrees with
    /// the logarithm's rounding (`floor((y + 1) / 2 * 255 + 0.5)`) away
    /// from the intervals' edges, and saturates; the constant is libm's
    /// `logf(256)`.
    #[test]
    fn mulaw_encode_inverts_decode_and_rounds_like_the_logarithm() {
        assert_eq!(LN_1_PLUS_MU, libm::logf(1.0 + MU));
        for q in 0..=255u8 {
            assert_eq!(mulaw_encode(mulaw_decode(q)), q);
        }
        // (fast-math's exp is too coarse for edges 1e-3 wide.)
        #[cfg(not(feature = "fast-math"))]
        let (mut checked, mut edges) = (0, 0);
        #[cfg(not(feature = "fast-math"))]
        for i in -100_000..=100_000 {
            let x = i as f32 / 100_000.0;
            let y = libm::logf(1.0 + MU * x.abs()) / LN_1_PLUS_MU;
            let t = (x.signum() * y + 1.0) * 0.5 * MU + 0.5;
            if (t - libm::roundf(t)).abs() < 1e-3 {
                edges += 1;
                continue;
            }
            assert_eq!(mulaw_encode(x) as f32, libm::floorf(t), "x = {x}");
            checked += 1;
        }
        #[cfg(not(feature = "fast-math"))]
        assert!(checked > 199_000 && edges < 1_000, "{checked} {edges}");
        assert_eq!((mulaw_encode(-3.0), mulaw_encode(3.0)), (0, 255));
        assert_eq!(mulaw_encode(f32::NAN), 0);
        assert_eq!(mulaw_encode(f32::INFINITY), 255);
    }

    /// A file with a frame tier's keys is never run as a one-tier model:
    /// without the `frames` feature it fails naming the feature; with it,
    /// on the frame tier's first missing tensor.
    #[test]
    fn a_two_tier_file_is_not_run_as_one_tier() {
        assert!(Audio::from_bytes(&model(None)).is_ok());
        let f = FrameHparams {
            frame_length: 256,
            feature_length: 4,
            lpc_order: 2,
            embedding_length: 4,
            state_length: 4,
        };
        let bytes = model(Some(f));
        let got = Audio::from_bytes(&bytes);
        #[cfg(not(feature = "frames"))]
        match got {
            Err(Error::BadValue { key, expected }) => {
                assert_eq!(key, a::FRAME_LENGTH);
                assert!(expected.contains("`frames` feature"), "{expected}");
            }
            other => panic!("{other:?}"),
        }
        #[cfg(feature = "frames")]
        assert!(matches!(got, Err(Error::MissingTensor { .. })), "{got:?}");
    }
}
