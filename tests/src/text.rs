//! Text transformer files with pseudo-random weights.

use edgegen_format::arch::Family;
use edgegen_format::arch::transformer::{self as t, Hparams};
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
    let mut w = GgufWriter::new();
    hp.write(&mut w, Family::Text).unwrap();
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
