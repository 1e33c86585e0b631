//! Text transformer files with pseudo-random weights, and the check of a
//! continuation a device generated.

use edgegen_format::arch::transformer::{self as t, Hparams};
use edgegen_format::arch::{ActQuant, Family};
use edgegen_format::{GgmlType, GgufWriter, OwnedValue};

/// A text model as GGUF with weights N(0, 1) times `scale`, norms 1 and
/// biases 0, matrices stored as `ty` (Q8_0 rows zero-padded to whole
/// blocks, as the exporter does). `chars`, when given, is a character
/// vocabulary of `hp.vocab_size` characters.
pub fn model_gguf(
    hp: &Hparams,
    ty: GgmlType,
    seed: u64,
    scale: f32,
    chars: Option<&str>,
) -> Vec<u8> {
    model_gguf_with(hp, (ty, ActQuant::F32), seed, scale, chars)
}

/// [`model_gguf`] whose Q8_0 matrices multiply activations as `act` says
/// (int8 for the `q8_0a8` precision).
pub fn model_gguf_with(
    hp: &Hparams,
    (ty, act): (GgmlType, ActQuant),
    seed: u64,
    scale: f32,
    chars: Option<&str>,
) -> Vec<u8> {
    let mut w = GgufWriter::new();
    hp.write(&mut w, Family::Text).unwrap();
    act.write(&mut w).unwrap();
    match chars {
        Some(c) => {
            w.add(t::VOCAB, "chars").unwrap();
            w.add(t::CHARS, c).unwrap();
        }
        None => w.add(t::VOCAB, "bytes").unwrap(),
    }
    if hp.n_classes > 0 {
        let names: Vec<String> = (0..hp.n_classes).map(|i| format!("class{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        w.add(t::CLASS_NAMES_TEXT, OwnedValue::strs(&refs)).unwrap();
    }
    let mut r = edgegen_runtime::sample::Rng::new(seed);
    let (v, c, f, tt, k) = (
        hp.vocab_size as usize,
        hp.embedding_length as usize,
        hp.feed_forward_length as usize,
        hp.context_length as usize,
        hp.n_classes as usize,
    );
    let mut matrix = |w: &mut GgufWriter, name: &str, rows: usize, inp: usize| {
        crate::add_random_matrix(w, name, rows, inp, ty, scale, &mut r)
    };
    let f32s = |w: &mut GgufWriter, name: &str, shape: &[u64], x: f32| {
        let n: u64 = shape.iter().product();
        w.add_tensor(name, shape, GgmlType::F32, &vec![x; n as usize])
            .unwrap();
    };
    matrix(&mut w, t::TOKEN_EMBD, v, c);
    let pos: Vec<f32> = (0..tt * c).map(|i| ((i % 7) as f32 - 3.0) * 0.1).collect();
    w.add_tensor(
        t::POSITION_EMBD,
        &[c as u64, tt as u64],
        GgmlType::F32,
        &pos,
    )
    .unwrap();
    if k > 0 {
        let cls: Vec<f32> = (0..k * c).map(|i| ((i % 5) as f32 - 2.0) * 0.1).collect();
        w.add_tensor(t::CLASS_EMBD, &[c as u64, k as u64], GgmlType::F32, &cls)
            .unwrap();
    }
    let d = c as u64;
    for i in 0..hp.block_count as usize {
        let n = |p: &str| p.replace("{i}", &i.to_string());
        f32s(&mut w, &n(t::ATTN_NORM_WEIGHT), &[d], 1.0);
        f32s(&mut w, &n(t::ATTN_NORM_BIAS), &[d], 0.0);
        matrix(&mut w, &n(t::ATTN_QKV_WEIGHT), hp.qkv_dim(), c);
        f32s(&mut w, &n(t::ATTN_QKV_BIAS), &[hp.qkv_dim() as u64], 0.0);
        matrix(&mut w, &n(t::ATTN_OUTPUT_WEIGHT), c, c);
        f32s(&mut w, &n(t::ATTN_OUTPUT_BIAS), &[d], 0.0);
        f32s(&mut w, &n(t::FFN_NORM_WEIGHT), &[d], 1.0);
        f32s(&mut w, &n(t::FFN_NORM_BIAS), &[d], 0.0);
        matrix(&mut w, &n(t::FFN_UP_WEIGHT), f, c);
        f32s(&mut w, &n(t::FFN_UP_BIAS), &[f as u64], 0.0);
        matrix(&mut w, &n(t::FFN_DOWN_WEIGHT), c, f);
        f32s(&mut w, &n(t::FFN_DOWN_BIAS), &[d], 0.0);
    }
    f32s(&mut w, t::OUTPUT_NORM_WEIGHT, &[d], 1.0);
    f32s(&mut w, t::OUTPUT_NORM_BIAS, &[d], 0.0);
    if !hp.tied_output {
        matrix(&mut w, t::OUTPUT, v, c);
    }
    w.to_bytes()
}

/// Checks a device's `text N hash 0xH first s0 s1 s2 s3` lines (H: the
/// [`fnv1a_words`] of the `N` generated symbols), `count` continuations of
/// `prompt` drawn one after another with one generator from `seed` (each
/// from an empty cache, class `label`), against the host runtime's from
/// the same GGUF bytes: default sampling, a KV cache of f32 (or Q8_0
/// blocks with `kv_q8_0`), stopping at a full context, up to `max` symbols
/// each. The symbols must be equal.
///
/// [`fnv1a_words`]: edgegen_runtime::sample::fnv1a_words
pub fn check_text_against_host(
    text: &str,
    gguf: &[u8],
    (seed, label, kv_q8_0): (u64, Option<u32>, bool),
    prompt: &[u32],
    (count, max): (usize, usize),
    who: &str,
) {
    use edgegen_format::quant::BlockQ8_0;
    use edgegen_runtime::models::transformer::{State, Transformer};
    use edgegen_runtime::sample::{Rng, fnv1a_words};
    let m = Transformer::from_bytes(gguf).expect("a valid text model");
    let blank = BlockQ8_0 {
        d: [0; 2],
        qs: [0; 32],
    };
    let mut kv = vec![0f32; if kv_q8_0 { 0 } else { m.state_len() }];
    let blocks = if kv_q8_0 {
        m.state_blocks().expect("K/V width a multiple of 32")
    } else {
        0
    };
    let mut kv8 = vec![blank; blocks];
    let mut syms = vec![0u32; m.hp.context_length as usize];
    let mut scratch = vec![0f32; m.scratch_len()];
    let mut rng = Rng::new(seed);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("text ")).collect();
    assert_eq!(lines.len(), count, "{who}: {text}");
    for line in lines {
        let mut out = vec![0u32; max];
        let (r, sc, o) = (&mut rng, &mut scratch[..], &mut out[..]);
        let n = if kv_q8_0 {
            let mut st = State::new_q8_0(&mut kv8, &mut syms, label);
            continue_prompt(&m, &mut st, prompt, r, sc, o)
        } else {
            let mut st = State::new(&mut kv, &mut syms, label);
            continue_prompt(&m, &mut st, prompt, r, sc, o)
        };
        out.truncate(n);
        let s = |i: usize| out.get(i).copied().unwrap_or(0);
        let want = format!(
            "text {n} hash 0x{:08x} first {} {} {} {}",
            fnv1a_words(out.iter().copied()),
            s(0),
            s(1),
            s(2),
            s(3)
        );
        assert_eq!(line, want, "{who}: the device's text, then the host's");
        assert!(
            n > 4 && out.iter().any(|&c| c != out[0]),
            "{who}: too short, or one symbol throughout: {out:?}"
        );
    }
}

/// What the firmware samples after `prompt`: its seed stream, settings
/// and policy, over either kind of cache.
fn continue_prompt<E: edgegen_runtime::models::transformer::KvElem>(
    m: &edgegen_runtime::models::transformer::Transformer<'_>,
    st: &mut edgegen_runtime::models::transformer::State<'_, E>,
    prompt: &[u32],
    rng: &mut edgegen_runtime::sample::Rng,
    scratch: &mut [f32],
    out: &mut [u32],
) -> usize {
    use edgegen_runtime::models::transformer::ContextPolicy;
    use edgegen_runtime::sample::Sampling;
    m.generate(
        st,
        prompt,
        &Sampling::default(),
        ContextPolicy::Stop,
        &[],
        rng,
        scratch,
        out,
    )
    .unwrap()
}

/// `prompt` as symbols: its bytes, or with a character vocabulary
/// `chars`, each character's index in it (panics on a stranger).
pub fn encode(prompt: &str, chars: Option<&str>) -> Vec<u32> {
    match chars {
        Some(c) => {
            let c: Vec<char> = c.chars().collect();
            let at = |ch| c.iter().position(|&v| v == ch).expect("in the vocabulary") as u32;
            prompt.chars().map(at).collect()
        }
        None => prompt.bytes().map(u32::from).collect(),
    }
}

/// The character vocabulary of the device tests: enough for `ROMEO: a`.
pub const DEVICE_CHARS: &str = " :ABEMORabcdehilnorst";

/// The device tests' text model: two 32-wide blocks of 4 query heads
/// sharing 2 K/V heads, a context of `context`; bytes with a tied output,
/// or with `chars` a conditional (3 classes) character model with its own
/// output.
pub fn device_hparams(chars: Option<&str>, context: u32) -> Hparams {
    Hparams {
        vocab_size: chars.map_or(256, |c| c.chars().count() as u32),
        context_length: context,
        embedding_length: 32,
        block_count: 2,
        head_count: 4,
        head_count_kv: 2,
        feed_forward_length: 64,
        n_classes: if chars.is_some() { 3 } else { 0 },
        layer_norm_epsilon: 1e-5,
        tied_output: chars.is_none(),
    }
}
