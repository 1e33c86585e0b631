//! The decoder-only transformer of the text (and audio) family on the
//! device, one symbol at a time with a KV cache in caller memory.
//!
//! The model borrows its weights from the GGUF bytes. The caller owns two
//! buffers: a [`State`] (keys and values of every block at every position,
//! plus the symbols they came from, sized by [`state_len_for`]) and a
//! scratch slice ([`scratch_len_for`]). [`Transformer::step`] feeds one
//! symbol and returns the next symbol's logits; [`Transformer::prefill`]
//! feeds a prompt. The context length is fixed at export: when it is full,
//! the [`ContextPolicy`] either stops or slides the window (keeps the
//! latest symbols and feeds them again from position 0, which is what the
//! host's reference decoder computes).

use super::{check_label, check_scratch};
use crate::kernels::attend::{Head, attend, attend_pair, attend_q8_0, attend_q8_0_pair};
use crate::kernels::{self, Matrix};
use crate::layers::{self, Dense, Vector, load_matrix, load_table, load_vector};
use crate::sample::{Rng, Sampling, sample_logits};
use edgegen_format::arch::transformer::{self as t, Hparams};
use edgegen_format::arch::{Activation, Family};
use edgegen_format::quant::{BlockQ8_0, QK8_0, quantize_q8_0};
use edgegen_format::{Error, Gguf, TensorName};

/// The most blocks the runtime holds (a model's `Transformer` keeps a
/// small handle per block, in place).
pub const MAX_BLOCKS: usize = 16;

/// A block's norm vectors: attention's gain and bias, then the MLP's.
const NORMS: [&str; 4] = [
    t::ATTN_NORM_WEIGHT,
    t::ATTN_NORM_BIAS,
    t::FFN_NORM_WEIGHT,
    t::FFN_NORM_BIAS,
];

/// A block's dense layers (weight, bias): QKV, attention's output, the
/// MLP's up and down projections.
const DENSE: [(&str, &str); 4] = [
    (t::ATTN_QKV_WEIGHT, t::ATTN_QKV_BIAS),
    (t::ATTN_OUTPUT_WEIGHT, t::ATTN_OUTPUT_BIAS),
    (t::FFN_UP_WEIGHT, t::FFN_UP_BIAS),
    (t::FFN_DOWN_WEIGHT, t::FFN_DOWN_BIAS),
];

/// What happens when a symbol arrives and the context is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContextPolicy {
    /// [`Transformer::step`] returns [`Error::ContextFull`].
    Stop,
    /// Keep the latest `keep` symbols (at most context - 1), feed them
    /// again from position 0, then the new one. `keep = context - 1` gives
    /// exactly a sliding window of the full context (what the host
    /// reference computes) at the cost of a prefill per symbol once full;
    /// a smaller `keep` refills less often.
    Slide {
        /// Symbols kept.
        keep: usize,
    },
}

/// A transformer whose weights stay in the GGUF bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct Transformer<'a> {
    /// Hyperparameters.
    pub hp: Hparams,
    /// `edgegen.text` or `edgegen.audio`.
    pub family: Family,
    token_embd: Matrix<'a>,
    position_embd: Vector<'a>,
    class_embd: Option<Vector<'a>>,
    /// Every block's norm vectors, four a block in the order of `NORMS`,
    /// and its dense layers, four a block in the order of `DENSE`: each
    /// handle is pushed where it stays. A block's handles gathered in a
    /// local and pushed as one went through `memcpy` (208 bytes), which
    /// cost a Cortex-M4 firmware 0.9 KB of flash.
    norms: heapless::Vec<Vector<'a>, { 4 * MAX_BLOCKS }>,
    dense: heapless::Vec<Dense<'a>, { 4 * MAX_BLOCKS }>,
    output_norm: (Vector<'a>, Vector<'a>),
    output: Matrix<'a>,
    /// With a `chars` vocabulary: the characters, symbol `i` the i-th.
    pub chars: Option<&'a str>,
}

/// Floats of scratch a step needs: the stream, its normalized copy, Q, K
/// and V, the heads' output, the MLP's width, the attention weights of
/// every position (for two query heads when heads share K/V heads) and
/// the logits.
pub const fn scratch_len_for(hp: &Hparams) -> usize {
    let (c, f, v, t) = (
        hp.embedding_length as usize,
        hp.feed_forward_length as usize,
        hp.vocab_size as usize,
        hp.context_length as usize,
    );
    // Attention weights for one query head, or for two at once when
    // heads share a K/V head (`attend_q8_0_pair`).
    let w = if hp.head_count_kv < hp.head_count {
        2 * t
    } else {
        t
    };
    2 * c + hp.qkv_dim() + c + f + w + v
}

/// Floats of a [`State`]'s f32 cache: keys and values of every block at
/// every position.
pub const fn state_len_for(hp: &Hparams) -> usize {
    hp.kv_len()
}

/// Q8_0 blocks of a [`State::new_q8_0`] cache (34 bytes each, against 128
/// for the same 32 values in f32); the K/V width must be a multiple of 32.
pub const fn state_blocks_for(hp: &Hparams) -> usize {
    hp.kv_len() / QK8_0
}

/// What a [`State`]'s cache holds: `f32` keys and values ([`State::new`])
/// or Q8_0 blocks of them ([`State::new_q8_0`]). A model's steps are
/// generic over it, so a firmware links the attention of its own cache
/// only: a text firmware with an f32 cache is about 4 KB of flash smaller
/// without the Q8_0 cache's kernels. Code that picks the cache at run
/// time calls one generic function from each branch:
///
/// ```
/// use edgegen_runtime::models::transformer::{ContextPolicy, KvElem, State, Transformer};
/// use edgegen_runtime::Error;
///
/// /// The logits after `prompt`, whatever the cache holds.
/// fn last_logits<E: KvElem>(
///     m: &Transformer<'_>,
///     st: &mut State<'_, E>,
///     prompt: &[u32],
///     scratch: &mut [f32],
/// ) -> Result<f32, Error> {
///     let logits = m.prefill(st, prompt, ContextPolicy::Stop, scratch)?;
///     Ok(logits[0])
/// }
/// # let _ = last_logits::<f32>;
/// ```
pub trait KvElem: Sized + sealed::Sealed {
    /// Units of one position's keys (or values) of K/V width `ckv`: `ckv`
    /// floats, or `ckv / 32` blocks (`None` when 32 does not divide it).
    #[doc(hidden)]
    fn row_len(ckv: usize) -> Option<usize>;
    /// Writes one position's keys or values.
    #[doc(hidden)]
    fn store(src: &[f32], dst: &mut [Self]);
    /// Whether [`Self::attend_two`] is worth its code here.
    #[doc(hidden)]
    const PAIRS: bool;
    /// One query head's attention over the cache, into `out`.
    #[doc(hidden)]
    fn attend_one(out: &mut [f32], q: &[f32], k: &[Self], v: &[Self], h: Head, w: &mut [f32]);
    /// Two query heads of one K/V head together (the same bits as one at
    /// a time); `false` when it does not apply.
    #[doc(hidden)]
    fn attend_two(
        out: &mut [f32],
        q: &[f32],
        k: &[Self],
        v: &[Self],
        h: Head,
        w: &mut [f32],
    ) -> bool;

    /// Every query head's attention over the cache, into `att`: two
    /// heads of a group together where that applies.
    #[doc(hidden)]
    fn attend_heads(att: &mut [f32], q: &[f32], k: &[Self], v: &[Self], hs: Heads, w: &mut [f32]) {
        let mut h = 0;
        while h < hs.n {
            let d = h * hs.d;
            if Self::PAIRS
                && hs.group.is_multiple_of(2)
                && Self::attend_two(&mut att[d..], &q[d..], k, v, hs.head(h), w)
            {
                h += 2;
                continue;
            }
            Self::attend_one(&mut att[d..], &q[d..], k, v, hs.head(h), w);
            h += 1;
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for super::BlockQ8_0 {}
}

/// The query heads of one step: `n` of width `d` over `pos + 1` positions,
/// `group` query heads to a K/V head.
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub struct Heads {
    n: usize,
    d: usize,
    group: usize,
    pos: usize,
    ckv: usize,
}

impl Heads {
    /// Query head `h`'s view of its K/V head.
    fn head(&self, h: usize) -> Head {
        Head {
            n: self.pos + 1,
            stride: self.ckv,
            off: (h / self.group) * self.d,
            d: self.d,
        }
    }
}

impl KvElem for f32 {
    fn row_len(ckv: usize) -> Option<usize> {
        Some(ckv)
    }
    fn store(src: &[f32], dst: &mut [f32]) {
        dst.copy_from_slice(src);
    }
    // Pairs on hosts (their sums overlapped); 32-bit Arm keeps one head
    // at a time, the smaller code.
    const PAIRS: bool = !cfg!(target_arch = "arm");
    fn attend_one(out: &mut [f32], q: &[f32], k: &[f32], v: &[f32], h: Head, w: &mut [f32]) {
        attend(out, q, k, v, h, w);
    }
    fn attend_two(
        out: &mut [f32],
        q: &[f32],
        k: &[f32],
        v: &[f32],
        h: Head,
        w: &mut [f32],
    ) -> bool {
        attend_pair(out, q, k, v, h, w)
    }
}

impl KvElem for BlockQ8_0 {
    fn row_len(ckv: usize) -> Option<usize> {
        if ckv.is_multiple_of(QK8_0) {
            Some(ckv / QK8_0)
        } else {
            None
        }
    }
    fn store(src: &[f32], dst: &mut [BlockQ8_0]) {
        quantize_q8_0(src, dst);
    }
    // With the `head8` kernels: fewer widenings of the cache's blocks.
    const PAIRS: bool = cfg!(feature = "head8");
    fn attend_one(
        out: &mut [f32],
        q: &[f32],
        k: &[BlockQ8_0],
        v: &[BlockQ8_0],
        h: Head,
        w: &mut [f32],
    ) {
        attend_q8_0(out, q, k, v, h, w);
    }
    fn attend_two(
        out: &mut [f32],
        q: &[f32],
        k: &[BlockQ8_0],
        v: &[BlockQ8_0],
        h: Head,
        w: &mut [f32],
    ) -> bool {
        attend_q8_0_pair(out, q, k, v, h, w)
    }
}

/// The KV cache and the symbols that filled it, in caller memory: `f32`
/// keys and values ([`State::new`]), or Q8_0 blocks of them
/// ([`State::new_q8_0`]).
#[derive(Debug)]
pub struct State<'s, E: KvElem = f32> {
    kv: &'s mut [E],
    symbols: &'s mut [u32],
    pos: usize,
    label: Option<u32>,
}

impl<'s> State<'s, f32> {
    /// A state over `kv` ([`state_len_for`] floats) and `symbols` (the
    /// context length), empty, for sequences of class `label`.
    pub fn new(kv: &'s mut [f32], symbols: &'s mut [u32], label: Option<u32>) -> Self {
        Self::resume(kv, symbols, 0, label)
    }

    /// A state whose first `len` positions are already in `kv` and
    /// `symbols`: a cache kept from an earlier state (a prompt's, computed
    /// once and stored, even in flash through a copy in RAM), or one
    /// written by another engine in the same layout ([`State::new`]'s: per
    /// block, the keys then the values, each `context x K/V width`, row
    /// by position). Validation feeds every engine one engine's cache this
    /// way, so that a difference at one step does not carry into the next.
    /// A `len` past the context is a full context (the next step applies
    /// its policy).
    ///
    /// ```
    /// use edgegen_runtime::models::transformer::State;
    /// let (mut kv, mut symbols) = ([0f32; 64], [0u32; 4]);
    /// // ... kv and symbols saved after feeding b"Hi" ...
    /// symbols[..2].copy_from_slice(&[b'H' as u32, b'i' as u32]);
    /// let st = State::resume(&mut kv, &mut symbols, 2, None);
    /// assert_eq!(st.symbols(), &[b'H' as u32, b'i' as u32]);
    /// ```
    pub fn resume(
        kv: &'s mut [f32],
        symbols: &'s mut [u32],
        len: usize,
        label: Option<u32>,
    ) -> Self {
        Self {
            kv,
            symbols,
            pos: len,
            label,
        }
    }
}

impl<'s> State<'s, BlockQ8_0> {
    /// A state whose keys and values are stored as Q8_0 blocks along each
    /// position's row ([`state_blocks_for`] of them): about a quarter of
    /// the f32 cache's RAM. Each key and value is rounded to 8 bits with
    /// its block's scale as it is written, so the logits move against an
    /// f32 cache (`edgegen validate` reports by how much, as a non-gating
    /// engine); the weights' precision is independent of it.
    pub fn new_q8_0(kv: &'s mut [BlockQ8_0], symbols: &'s mut [u32], label: Option<u32>) -> Self {
        Self::resume_q8_0(kv, symbols, 0, label)
    }

    /// [`State::resume`] over a cache of Q8_0 blocks ([`State::new_q8_0`]'s
    /// layout).
    pub fn resume_q8_0(
        kv: &'s mut [BlockQ8_0],
        symbols: &'s mut [u32],
        len: usize,
        label: Option<u32>,
    ) -> Self {
        Self {
            kv,
            symbols,
            pos: len,
            label,
        }
    }
}

impl<E: KvElem> State<'_, E> {
    /// Symbols in the cache.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing has been fed yet.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    /// Forgets every symbol (the buffers stay).
    pub fn reset(&mut self) {
        self.pos = 0;
    }

    /// The symbols in the cache, oldest first.
    pub fn symbols(&self) -> &[u32] {
        &self.symbols[..self.pos.min(self.symbols.len())]
    }
}

fn dense<'a>(
    g: &Gguf<'a>,
    (w, b): (&'static str, &'static str),
    i: usize,
    rows: usize,
    cols: usize,
) -> Result<Dense<'a>, Error> {
    Ok(Dense {
        w: load_matrix(g, TensorName::at(w, i), rows, cols)?,
        b: load_vector(g, TensorName::at(b, i), rows)?,
    })
}

impl<'a> Transformer<'a> {
    /// Parses `bytes`, checks the shared keys and the data CRC, and loads
    /// the text model they hold (audio files are refused).
    ///
    /// ```
    /// # fn model_bytes() -> Vec<u8> {
    /// #     use edgegen_format::{arch::{Family, transformer::Hparams}, GgmlType, GgufWriter};
    /// #     let hp = Hparams { vocab_size: 256, context_length: 4, embedding_length: 8,
    /// #         block_count: 1, head_count: 2, head_count_kv: 2, feed_forward_length: 8,
    /// #         n_classes: 0, layer_norm_epsilon: 1e-5, tied_output: true };
    /// #     let mut w = GgufWriter::new();
    /// #     hp.write(&mut w, Family::Text).unwrap();
    /// #     let mut t = |n: &str, s: &[u64], v: f32| {
    /// #         let k: u64 = s.iter().product();
    /// #         let vals: Vec<f32> = (0..k).map(|i| v * ((i % 5) as f32 - 2.0)).collect();
    /// #         w.add_tensor(n, s, GgmlType::F32, &vals).unwrap();
    /// #     };
    /// #     t("token_embd.weight", &[8, 256], 0.1);
    /// #     t("position_embd.weight", &[8, 4], 0.01);
    /// #     for (n, s) in [("attn_norm.weight", 8), ("attn_norm.bias", 8), ("attn_qkv.bias", 24),
    /// #         ("attn_output.bias", 8), ("ffn_norm.weight", 8), ("ffn_norm.bias", 8),
    /// #         ("ffn_up.bias", 8), ("ffn_down.bias", 8)] {
    /// #         t(&format!("blk.0.{n}"), &[s], 0.1);
    /// #     }
    /// #     t("blk.0.attn_qkv.weight", &[8, 24], 0.1);
    /// #     t("blk.0.attn_output.weight", &[8, 8], 0.1);
    /// #     t("blk.0.ffn_up.weight", &[8, 8], 0.1);
    /// #     t("blk.0.ffn_down.weight", &[8, 8], 0.1);
    /// #     t("output_norm.weight", &[8], 1.0);
    /// #     t("output_norm.bias", &[8], 0.0);
    /// #     w.to_bytes()
    /// # }
    /// use edgegen_runtime::models::transformer::{ContextPolicy, State, Transformer};
    /// use edgegen_runtime::sample::{Rng, Sampling};
    /// let bytes = model_bytes(); // on a device: include_bytes!("text-q8_0.gguf")
    /// let m = Transformer::from_bytes(&bytes)?;
    /// let mut kv = [0f32; 64];      // >= m.state_len(): 2 x blocks x context x K/V width
    /// let mut symbols = [0u32; 4];  // the context
    /// let mut scratch = [0f32; 320]; // >= m.scratch_len()
    /// let mut st = State::new(&mut kv, &mut symbols, None);
    /// let s = Sampling { temperature: 0.8, top_k: 40, ..Sampling::default() };
    /// let mut out = [0u32; 8];
    /// let prompt = [b'H' as u32, b'i' as u32]; // a bytes vocabulary
    /// let n = m.generate(&mut st, &prompt, &s, ContextPolicy::Slide { keep: 2 },
    ///     &[], &mut Rng::new(1), &mut scratch, &mut out)?;
    /// assert_eq!(n, 8); // past the context of 4: the window slid
    /// assert!(out.iter().all(|&b| b < 256));
    /// # Ok::<(), edgegen_runtime::Error>(())
    /// ```
    pub fn from_bytes(bytes: &'a [u8]) -> Result<Self, Error> {
        let mut slot = None;
        Ok(Self::from_bytes_in(bytes, &mut slot)?.clone())
    }

    /// [`Self::from_bytes`], built in `slot` (a `static` on a device)
    /// rather than returned: a model is some 3 KB of tensor handles, and a
    /// Cortex-M4 firmware that loads it in place is about 0.6 KB of flash
    /// smaller than one that moves it out of a returned `Result`. On an
    /// error the slot is left `None`.
    ///
    /// ```
    /// # fn model_bytes(missing: &str) -> Vec<u8> {
    /// #     use edgegen_format::{arch::{Family, transformer::Hparams}, GgmlType, GgufWriter};
    /// #     let hp = Hparams { vocab_size: 256, context_length: 4, embedding_length: 8,
    /// #         block_count: 1, head_count: 2, head_count_kv: 2, feed_forward_length: 8,
    /// #         n_classes: 0, layer_norm_epsilon: 1e-5, tied_output: true };
    /// #     let mut w = GgufWriter::new();
    /// #     hp.write(&mut w, Family::Text).unwrap();
    /// #     let mut t = |n: &str, s: &[u64]| {
    /// #         if n == missing { return; }
    /// #         let k: u64 = s.iter().product();
    /// #         w.add_tensor(n, s, GgmlType::F32, &vec![0.1; k as usize]).unwrap();
    /// #     };
    /// #     t("token_embd.weight", &[8, 256]);
    /// #     t("position_embd.weight", &[8, 4]);
    /// #     for (n, s) in [("attn_norm.weight", 8), ("attn_norm.bias", 8), ("attn_qkv.bias", 24),
    /// #         ("attn_output.bias", 8), ("ffn_norm.weight", 8), ("ffn_norm.bias", 8),
    /// #         ("ffn_up.bias", 8), ("ffn_down.bias", 8)] {
    /// #         t(&format!("blk.0.{n}"), &[s]);
    /// #     }
    /// #     t("blk.0.attn_qkv.weight", &[8, 24]);
    /// #     t("blk.0.attn_output.weight", &[8, 8]);
    /// #     t("blk.0.ffn_up.weight", &[8, 8]);
    /// #     t("blk.0.ffn_down.weight", &[8, 8]);
    /// #     t("output_norm.weight", &[8]);
    /// #     t("output_norm.bias", &[8]);
    /// #     w.to_bytes()
    /// # }
    /// use edgegen_runtime::models::transformer::Transformer;
    /// let bytes = model_bytes(""); // on a device: a `static` include_bytes!
    /// let broken = model_bytes("blk.0.ffn_down.weight");
    /// let mut slot = None; // on a device: a `static mut` in .bss
    /// let m = Transformer::from_bytes_in(&bytes, &mut slot)?;
    /// assert_eq!(m.hp.block_count, 1);
    /// // A model that fails to load leaves the slot empty.
    /// assert!(Transformer::from_bytes_in(&broken, &mut slot).is_err());
    /// assert!(slot.is_none());
    /// # Ok::<(), edgegen_runtime::Error>(())
    /// ```
    pub fn from_bytes_in<'s>(
        bytes: &'a [u8],
        slot: &'s mut Option<Self>,
    ) -> Result<&'s Self, Error> {
        *slot = None;
        let g = Gguf::parse(bytes)?;
        if edgegen_format::arch::check(&g)? != Family::Text {
            return Err(Error::BadValue {
                key: edgegen_format::arch::keys::ARCHITECTURE,
                expected: "edgegen.text",
            });
        }
        Self::from_gguf_in(&g, Family::Text, slot)
    }

    /// Reads and checks a text or audio model: its hyperparameters, the
    /// vocabulary keys, and every tensor's shape and type.
    pub fn from_gguf(g: &Gguf<'a>, family: Family) -> Result<Self, Error> {
        let mut slot = None;
        Ok(Self::from_gguf_in(g, family, &mut slot)?.clone())
    }

    /// [`Self::from_gguf`], built in `slot` rather than returned. On an
    /// error the slot is left `None`, never holding a part of a model.
    pub fn from_gguf_in<'s>(
        g: &Gguf<'a>,
        family: Family,
        slot: &'s mut Option<Self>,
    ) -> Result<&'s Self, Error> {
        let load = Self::load_into(g, family, slot);
        super::loaded(slot, load)
    }

    /// Loads the model into `slot`, which holds a part of it if this
    /// fails. Inlined: as a call of its own it cost a Cortex-M4 firmware
    /// with every family 0.1 KB more flash.
    #[inline(always)]
    fn load_into(g: &Gguf<'a>, family: Family, slot: &mut Option<Self>) -> Result<(), Error> {
        let hp = Hparams::read(g, family)?;
        let (v, c, f, tt, k) = (
            hp.vocab_size as usize,
            hp.embedding_length as usize,
            hp.feed_forward_length as usize,
            hp.context_length as usize,
            hp.n_classes as usize,
        );
        if hp.block_count as usize > MAX_BLOCKS {
            return Err(Error::BadValue {
                key: t::keys(family).block_count,
                expected: "at most 16 blocks in this runtime",
            });
        }
        let mut chars = None;
        if family == Family::Text {
            match g.get(t::VOCAB).map(|v| v.as_str()) {
                None | Some(Some("bytes")) => {
                    if v != 256 {
                        return Err(Error::BadValue {
                            key: t::keys(family).vocab_size,
                            expected: "256 for a bytes vocabulary",
                        });
                    }
                }
                Some(Some("chars")) => {
                    let s = g.require_str(t::CHARS)?;
                    // Characters are the bytes that do not continue one
                    // (the string is UTF-8): `chars().count()`'s answer
                    // in 40 bytes of flash, not 350.
                    let n = s.bytes().filter(|&b| b & 0xc0 != 0x80).count();
                    if n != v {
                        return Err(Error::BadValue {
                            key: t::CHARS,
                            expected: "exactly vocab_size characters",
                        });
                    }
                    chars = Some(s);
                }
                _ => {
                    return Err(Error::BadValue {
                        key: t::VOCAB,
                        expected: "the string bytes or chars",
                    });
                }
            }
        }
        let token_embd = load_matrix(g, TensorName::fixed(t::TOKEN_EMBD), v, c)?;
        let position_embd = load_table(g, TensorName::fixed(t::POSITION_EMBD), tt, c)?;
        let class_embd = if k > 0 {
            Some(load_table(g, TensorName::fixed(t::CLASS_EMBD), k, c)?)
        } else {
            None
        };
        let output_norm = (
            load_vector(g, TensorName::fixed(t::OUTPUT_NORM_WEIGHT), c)?,
            load_vector(g, TensorName::fixed(t::OUTPUT_NORM_BIAS), c)?,
        );
        let output = if hp.tied_output {
            token_embd
        } else {
            load_matrix(g, TensorName::fixed(t::OUTPUT), v, c)?
        };
        // The blocks are pushed where the model stays: built in a local
        // and moved, the model's 3 KB of handles were copied twice.
        let m = slot.insert(Self {
            hp,
            family,
            token_embd,
            position_embd,
            class_embd,
            norms: heapless::Vec::new(),
            dense: heapless::Vec::new(),
            output_norm,
            output,
            chars,
        });
        // (rows, columns) of each of DENSE.
        let shapes = [(hp.qkv_dim(), c), (c, c), (f, c), (c, f)];
        // Pushes past the capacity cannot happen: the block count is
        // checked against MAX_BLOCKS above.
        for i in 0..hp.block_count as usize {
            for &name in &NORMS {
                let _ = m.norms.push(load_vector(g, TensorName::at(name, i), c)?);
            }
            for (&names, &(r, k)) in DENSE.iter().zip(&shapes) {
                let _ = m.dense.push(dense(g, names, i, r, k)?);
            }
        }
        Ok(())
    }

    /// Floats of scratch [`Self::step`] needs.
    pub const fn scratch_len(&self) -> usize {
        scratch_len_for(&self.hp)
    }

    /// Floats of KV cache a [`State`] needs.
    pub const fn state_len(&self) -> usize {
        state_len_for(&self.hp)
    }

    /// Q8_0 blocks of KV cache a [`State::new_q8_0`] needs, or `None` when
    /// the K/V width is not a multiple of 32.
    pub const fn state_blocks(&self) -> Option<usize> {
        if self.hp.kv_dim().is_multiple_of(QK8_0) {
            Some(state_blocks_for(&self.hp))
        } else {
            None
        }
    }

    /// Bytes of weights.
    pub fn weight_bytes(&self) -> usize {
        let mut n = self.token_embd.bytes() + self.position_embd.bytes();
        n += self.class_embd.map_or(0, |e| e.bytes());
        n += self.norms.iter().map(|v| v.bytes()).sum::<usize>();
        n += self.dense.iter().map(|d| d.bytes()).sum::<usize>();
        n += self.output_norm.0.bytes() + self.output_norm.1.bytes();
        if !self.hp.tied_output {
            n += self.output.bytes();
        }
        n
    }

    /// Multiply-adds of one step at position `pos` (the output layer
    /// included).
    pub fn macs(&self, pos: usize) -> usize {
        let c = self.hp.embedding_length as usize;
        let per: usize = self.dense.iter().map(|d| d.macs()).sum();
        let blocks = self.dense.len() / 4;
        per + blocks * 2 * c * (pos + 1) + self.output.rows * self.output.cols
    }

    fn check_state<E: KvElem>(&self, st: &State<'_, E>) -> Result<(), Error> {
        let t = self.hp.context_length as usize;
        let Some(row) = E::row_len(self.hp.kv_dim()) else {
            return Err(Error::BadValue {
                key: t::keys(self.family).head_count_kv,
                expected: "a K/V width (head_count_kv * head size) that is a multiple of 32, for a Q8_0 cache",
            });
        };
        let (need, found) = (2 * self.hp.block_count as usize * t * row, st.kv.len());
        if found < need {
            return Err(Error::BufferSize {
                expected: need,
                found,
            });
        }
        if st.symbols.len() < t {
            return Err(Error::BufferSize {
                expected: t,
                found: st.symbols.len(),
            });
        }
        check_label(self.hp.n_classes as usize, st.label)
    }

    /// Feeds `symbol` at the state's next position, and returns the next
    /// symbol's logits (a slice of `scratch`). When the context is full,
    /// `policy` applies.
    pub fn step<'x, E: KvElem>(
        &self,
        st: &mut State<'_, E>,
        symbol: u32,
        policy: ContextPolicy,
        scratch: &'x mut [f32],
    ) -> Result<&'x [f32], Error> {
        self.check_state(st)?;
        check_scratch(self.scratch_len(), scratch.len())?;
        self.check_symbol(symbol)?;
        let t = self.hp.context_length as usize;
        if st.pos >= t {
            match policy {
                ContextPolicy::Stop => return Err(Error::ContextFull { context: t }),
                ContextPolicy::Slide { keep } => {
                    let keep = keep.min(t - 1);
                    st.pos = 0;
                    // Symbol t - keep + i moves to position i as it is fed;
                    // feeding only writes positions up to i, so it is read
                    // before anything overwrites it. (Not `copy_within`:
                    // its memmove would add 1.5 KiB to a firmware's flash.)
                    for i in 0..keep {
                        let s = st.symbols[t - keep + i];
                        self.forward(st, s, scratch, false);
                    }
                }
            }
        }
        Ok(self.forward(st, symbol, scratch, true))
    }

    /// Feeds `prompt` (the logits of the last symbol are returned; an empty
    /// prompt feeds nothing and returns the logits' zeroed slice).
    pub fn prefill<'x, E: KvElem>(
        &self,
        st: &mut State<'_, E>,
        prompt: &[u32],
        policy: ContextPolicy,
        scratch: &'x mut [f32],
    ) -> Result<&'x [f32], Error> {
        self.check_state(st)?;
        check_scratch(self.scratch_len(), scratch.len())?;
        for &s in prompt {
            self.check_symbol(s)?;
        }
        let t = self.hp.context_length as usize;
        let n = prompt.len();
        // Only the last symbol's logits are computed. Once the context is
        // full, symbols go through `step`, which applies the policy.
        for (i, &s) in prompt.iter().enumerate() {
            let last = i + 1 == n;
            if st.pos >= t {
                if last {
                    return self.step(st, s, policy, scratch);
                }
                self.step(st, s, policy, scratch)?;
            } else if last {
                return Ok(self.forward(st, s, scratch, true));
            } else {
                self.forward(st, s, scratch, false);
            }
        }
        let v = self.hp.vocab_size as usize;
        let logits = &mut scratch[..v];
        logits.fill(0.0);
        Ok(logits)
    }

    fn check_symbol(&self, s: u32) -> Result<(), Error> {
        if s >= self.hp.vocab_size {
            return Err(Error::BadValue {
                key: "symbol",
                expected: "a symbol below the model's vocab_size",
            });
        }
        Ok(())
    }

    /// One position (checked by the callers: room in the cache, buffer
    /// sizes, the symbol and the label). Leaves the logits at the start of
    /// `scratch` when `logits` is set.
    fn forward<'x, E: KvElem>(
        &self,
        st: &mut State<'_, E>,
        symbol: u32,
        scratch: &'x mut [f32],
        logits: bool,
    ) -> &'x [f32] {
        let hp = &self.hp;
        let (c, f, tt, v) = (
            hp.embedding_length as usize,
            hp.feed_forward_length as usize,
            hp.context_length as usize,
            hp.vocab_size as usize,
        );
        let (hd, nh, ckv) = (hp.head_dim(), hp.head_count as usize, hp.kv_dim());
        let group = nh / (hp.head_count_kv as usize).max(1);
        let pos = st.pos;
        let eps = hp.layer_norm_epsilon;
        let (out, rest) = scratch.split_at_mut(v);
        let (x, rest) = rest.split_at_mut(c);
        let (xn, rest) = rest.split_at_mut(c);
        let (qkv, rest) = rest.split_at_mut(hp.qkv_dim());
        let (att, rest) = rest.split_at_mut(c);
        let (hid, rest) = rest.split_at_mut(f);
        let w = if group > 1 {
            &mut rest[..2 * tt]
        } else {
            &mut rest[..tt]
        };
        x.fill(0.0);
        self.token_embd.add_row_to(symbol as usize, x);
        self.position_embd.add_range_to(pos * c, x);
        if let (Some(e), Some(l)) = (&self.class_embd, st.label) {
            e.add_range_to(l as usize * c, x);
        }
        let blocks = self.norms.as_chunks::<4>().0.iter();
        for (l, (norms, dense)) in blocks.zip(self.dense.as_chunks::<4>().0).enumerate() {
            let [attn_g, attn_b, ffn_g, ffn_b] = norms;
            let [qkv_layer, attn_out, up, down] = dense;
            layers::layer_norm(xn, x, attn_g, attn_b, eps);
            qkv_layer.forward(qkv, xn);
            let (k_new, v_new) = (&qkv[c..c + ckv], &qkv[c + ckv..c + 2 * ckv]);
            // Checked against the cache's length by `check_state`.
            let row = E::row_len(ckv).unwrap_or(0);
            let layer = &mut st.kv[2 * l * tt * row..2 * (l + 1) * tt * row];
            let (kc, vc) = layer.split_at_mut(tt * row);
            E::store(k_new, &mut kc[pos * row..(pos + 1) * row]);
            E::store(v_new, &mut vc[pos * row..(pos + 1) * row]);
            // Query heads of a group share their K/V head.
            let heads = Heads {
                n: nh,
                d: hd,
                group,
                pos,
                ckv,
            };
            E::attend_heads(att, &qkv[..c], kc, vc, heads, w);
            attn_out.forward(xn, att);
            x.iter_mut().zip(xn.iter()).for_each(|(a, &d)| *a += d);
            layers::layer_norm(xn, x, ffn_g, ffn_b, eps);
            up.forward(hid, xn);
            layers::activate(Activation::Gelu, hid);
            down.forward(xn, hid);
            x.iter_mut().zip(xn.iter()).for_each(|(a, &d)| *a += d);
        }
        st.symbols[pos] = symbol;
        st.pos = pos + 1;
        if logits {
            layers::layer_norm(xn, x, &self.output_norm.0, &self.output_norm.1, eps);
            kernels::matvec(out, &self.output, xn, |_| 0.0);
        }
        out
    }

    /// Samples up to `out.len()` symbols after `prompt` into `out`, and
    /// returns how many: fewer when a stop sequence ends the text (it is
    /// kept) or the context is full and the policy stops.
    #[allow(clippy::too_many_arguments)]
    pub fn generate<E: KvElem>(
        &self,
        st: &mut State<'_, E>,
        prompt: &[u32],
        sampling: &Sampling,
        policy: ContextPolicy,
        stop: &[&[u32]],
        rng: &mut Rng,
        scratch: &mut [f32],
        out: &mut [u32],
    ) -> Result<usize, Error> {
        let mut it = self.stream(st, prompt, sampling, policy, stop, rng, scratch)?;
        let mut n = 0;
        for o in out.iter_mut() {
            match it.next() {
                Some(Ok(s)) => {
                    *o = s;
                    n += 1;
                }
                None => break,
                Some(Err(e)) => return Err(e),
            }
        }
        Ok(n)
    }

    /// A streaming iterator of sampled symbols after `prompt`: each `next`
    /// samples one from the current logits and feeds it. It ends after a
    /// stop sequence (which it yields), or after the symbol that found the
    /// context full when the policy stops ([`Stream::ended_full`]).
    #[allow(clippy::too_many_arguments)]
    pub fn stream<'m, 'b, 'x, E: KvElem>(
        &'m self,
        st: &'b mut State<'x, E>,
        prompt: &[u32],
        sampling: &'b Sampling,
        policy: ContextPolicy,
        stop: &'b [&'b [u32]],
        rng: &'b mut Rng,
        scratch: &'b mut [f32],
    ) -> Result<Stream<'m, 'a, 'b, 'x, E>, Error> {
        if prompt.is_empty() {
            return Err(Error::BadValue {
                key: "prompt",
                expected: "at least one symbol",
            });
        }
        self.prefill(st, prompt, policy, scratch)?;
        Ok(Stream {
            m: self,
            st,
            sampling,
            policy,
            stop,
            rng,
            scratch,
            done: false,
            full: false,
        })
    }
}

/// Recent symbols the repetition penalty looks at.
pub const PENALTY_WINDOW: usize = 64;

/// See [`Transformer::stream`].
pub struct Stream<'m, 'a, 'b, 'x, E: KvElem = f32> {
    m: &'m Transformer<'a>,
    st: &'b mut State<'x, E>,
    sampling: &'b Sampling,
    policy: ContextPolicy,
    stop: &'b [&'b [u32]],
    rng: &'b mut Rng,
    scratch: &'b mut [f32],
    done: bool,
    full: bool,
}

impl<E: KvElem> Stream<'_, '_, '_, '_, E> {
    /// Whether the stream ended because the context was full and the
    /// policy is to stop.
    pub fn ended_full(&self) -> bool {
        self.full
    }
}

impl<E: KvElem> Iterator for Stream<'_, '_, '_, '_, E> {
    type Item = Result<u32, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let v = self.m.hp.vocab_size as usize;
        // The logits of the last symbol fed are at the start of scratch.
        let (logits, _) = self.scratch.split_at_mut(v);
        // The penalty's window: the symbols in the cache, newest last.
        let syms = self.st.symbols();
        let recent = &syms[syms.len() - syms.len().min(PENALTY_WINDOW)..];
        let s = sample_logits(logits, recent, self.sampling, self.rng) as u32;
        // Ends with a stop sequence? The symbols in the cache plus `s`.
        let syms = self.st.symbols();
        let ends = self.stop.iter().any(|q| match q.split_last() {
            Some((&last, head)) if last == s => {
                head.len() <= syms.len() && syms[syms.len() - head.len()..] == *head
            }
            _ => false,
        });
        match self.m.step(self.st, s, self.policy, self.scratch) {
            Ok(_) => {}
            // The symbol stands (it came from a full context's logits);
            // nothing can follow it.
            Err(Error::ContextFull { .. }) => {
                self.done = true;
                self.full = true;
            }
            Err(e) => {
                self.done = true;
                return Some(Err(e));
            }
        }
        if ends {
            self.done = true;
        }
        Some(Ok(s))
    }
}
