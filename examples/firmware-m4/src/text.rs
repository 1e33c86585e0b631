//! The text model: a continuation of the prompt `build.rs` encoded, with
//! the KV cache in a `static`, as f32 or (with `EDGEGEN_FIRMWARE_KV=q8_0`)
//! as Q8_0 blocks, about a quarter of the RAM.

use crate::meter;
use crate::model::{HP, KV_Q8_0, PROMPT};
use core::fmt::Write;
use cortex_m_semihosting::hprintln;
use edgegen_runtime::Error;
use edgegen_runtime::format::quant::BlockQ8_0;
use edgegen_runtime::models::transformer::{
    ContextPolicy, KvElem, State, Transformer, scratch_len_for, state_blocks_for, state_len_for,
};
use edgegen_runtime::sample::{Rng, Sampling, fnv1a_words};

const SCRATCH: usize = scratch_len_for(&HP);
/// Floats of an f32 KV cache: every block's keys and values at every
/// position (0 with a Q8_0 cache).
const STATE: usize = if KV_Q8_0 { 0 } else { state_len_for(&HP) };
/// Q8_0 blocks of a Q8_0 KV cache (0 with an f32 cache).
const STATE_BLOCKS: usize = if KV_Q8_0 { state_blocks_for(&HP) } else { 0 };
const BLANK: BlockQ8_0 = BlockQ8_0 {
    d: [0; 2],
    qs: [0; 32],
};
const CONTEXT: usize = HP.context_length as usize;
/// Symbols generated: 48, or what the context leaves after the prompt.
const TOKENS: usize = {
    let room = CONTEXT - PROMPT.len();
    if room < 48 { room } else { 48 }
};
const LABEL: Option<u32> = if HP.n_classes != 0 { Some(0) } else { None };

/// `text N hash 0xH first s0 s1 s2 s3` (H: the FNV-1a of the generated
/// symbols), then the prompt and its continuation, escaped.
pub fn run(model: &'static [u8]) -> Result<(), Error> {
    // Loaded in place (see `Transformer::from_bytes_in`).
    let slot = static_slot!(Option<Transformer<'static>> = None);
    let m = Transformer::from_bytes_in(model, slot)?;
    hprintln!(
        "edgegen firmware: text model {} bytes, KV cache {} bytes ({}), scratch {} floats, {} MACs per symbol at the last position",
        model.len(),
        STATE * 4 + STATE_BLOCKS * 34,
        if KV_Q8_0 { "Q8_0" } else { "f32" },
        SCRATCH,
        m.macs(CONTEXT - 1)
    );
    let symbols = static_buf!([u32; CONTEXT] = [0; CONTEXT]);
    let scratch = static_buf!([f32; SCRATCH] = [0.0; SCRATCH]);
    let out = static_buf!([u32; TOKENS] = [0; TOKENS]);
    let t0 = meter::ticks();
    let n = if KV_Q8_0 {
        let kv = static_buf!([BlockQ8_0; STATE_BLOCKS] = [BLANK; STATE_BLOCKS]);
        continue_prompt(m, &mut State::new_q8_0(kv, symbols, LABEL), scratch, out)
    } else {
        let kv = static_buf!([f32; STATE] = [0.0; STATE]);
        continue_prompt(m, &mut State::new(kv, symbols, LABEL), scratch, out)
    }?;
    let ticks = meter::ticks() - t0;
    let out = &out[..n];
    let s = |i: usize| out.get(i).copied().unwrap_or(0);
    hprintln!(
        "text {} hash 0x{:08x} first {} {} {} {}",
        n,
        fnv1a_words(out.iter().copied()),
        s(0),
        s(1),
        s(2),
        s(3)
    );
    let mut line = Line::default();
    let _ = line.write_str("> ");
    for &sym in PROMPT.iter().chain(out) {
        escape(m, sym, &mut line);
    }
    hprintln!("{}", line.as_str());
    // Every prompt symbol and every sampled one but the last went through
    // the model once.
    let fed = PROMPT.len() + n.saturating_sub(1);
    hprintln!(
        "cost {} instructions per symbol ({} symbols fed, positions 0 to {})",
        meter::per(ticks, fed),
        fed,
        fed.saturating_sub(1)
    );
    Ok(())
}

/// Writes symbol `s` as its character, escaped as Rust's `{:?}` would
/// (a byte above 0x7f as `\xNN`).
fn escape(m: &Transformer<'_>, s: u32, out: &mut Line) {
    match m.chars {
        Some(chars) => {
            if let Some(c) = chars.chars().nth(s as usize) {
                let _ = write!(out, "{}", c.escape_debug());
            }
        }
        None => {
            let _ = write!(out, "{}", core::ascii::escape_default(s as u8));
        }
    }
}

/// A line of text in a fixed buffer; from the first piece that does not
/// fit on, everything is dropped.
struct Line {
    buf: [u8; 512],
    len: usize,
    full: bool,
}

impl Default for Line {
    fn default() -> Self {
        Self {
            buf: [0; 512],
            len: 0,
            full: false,
        }
    }
}

impl Line {
    fn as_str(&self) -> &str {
        // Only whole `str`s are ever copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.full |= self.len + s.len() > self.buf.len();
        if self.full {
            return Err(core::fmt::Error);
        }
        self.buf[self.len..self.len + s.len()].copy_from_slice(s.as_bytes());
        self.len += s.len();
        Ok(())
    }
}

/// Samples `out.len()` symbols (or fewer, when the context fills) after
/// the prompt, with the seed and settings the host's check uses.
fn continue_prompt<E: KvElem>(
    m: &Transformer<'_>,
    st: &mut State<'_, E>,
    scratch: &mut [f32],
    out: &mut [u32],
) -> Result<usize, Error> {
    m.generate(
        st,
        PROMPT,
        &Sampling::default(),
        ContextPolicy::Stop,
        &[],
        &mut Rng::new(7),
        scratch,
        out,
    )
}

/// Load, generate a few symbols, sink them.
#[cfg(feature = "size-probe")]
pub fn probe(model: &'static [u8]) -> bool {
    let symbols = static_buf!([u32; CONTEXT] = [0; CONTEXT]);
    let scratch = static_buf!([f32; SCRATCH] = [0.0; SCRATCH]);
    let out = static_buf!([u32; 4] = [0; 4]);
    let slot = static_slot!(Option<Transformer<'static>> = None);
    let ok = match Transformer::from_bytes_in(model, slot) {
        Ok(m) if KV_Q8_0 => {
            let kv = static_buf!([BlockQ8_0; STATE_BLOCKS] = [BLANK; STATE_BLOCKS]);
            let mut st = State::new_q8_0(kv, symbols, LABEL);
            continue_prompt(m, &mut st, scratch, out).is_ok()
        }
        Ok(m) => {
            let kv = static_buf!([f32; STATE] = [0.0; STATE]);
            let mut st = State::new(kv, symbols, LABEL);
            continue_prompt(m, &mut st, scratch, out).is_ok()
        }
        _ => false,
    };
    // SAFETY: a volatile read of a valid, initialized local keeps the
    // computation from being optimized away.
    unsafe { core::ptr::read_volatile(&out[0]) };
    ok
}
