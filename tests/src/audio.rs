//! Audio GRU files with pseudo-random weights.

use edgegen_format::arch::audio::{self as a, Hparams};
use edgegen_format::{GgmlType, GgufWriter, OwnedValue};

/// An audio model as GGUF with weights N(0, 1) times `scale` and biases
/// 0.1, matrices stored as `ty` (Q8_0 rows zero-padded to whole blocks, as
/// the exporter does), the class table in F32.
pub fn model_gguf(hp: &Hparams, ty: GgmlType, seed: u64, scale: f32) -> Vec<u8> {
    let mut w = GgufWriter::new();
    hp.write(&mut w).unwrap();
    if hp.n_classes > 0 {
        let names: Vec<String> = (0..hp.n_classes).map(|i| format!("d{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        w.add(a::CLASS_NAMES, OwnedValue::strs(&refs)).unwrap();
    }
    let mut r = edgegen_runtime::sample::Rng::new(seed);
    let (v, e, h, k) = (
        hp.vocab_size as usize,
        hp.embedding_length as usize,
        hp.state_length as usize,
        hp.n_classes as usize,
    );
    let mut matrix = |w: &mut GgufWriter, name: &str, rows: usize, inp: usize| {
        crate::add_random_matrix(w, name, rows, inp, ty, scale, &mut r)
    };
    let bias = |w: &mut GgufWriter, name: &str, n: usize| {
        w.add_tensor(name, &[n as u64], GgmlType::F32, &vec![0.1; n])
            .unwrap();
    };
    matrix(&mut w, a::TOKEN_EMBD, v, e);
    if k > 0 {
        let cls: Vec<f32> = (0..k * e).map(|i| ((i % 5) as f32 - 2.0) * 0.1).collect();
        w.add_tensor(a::CLASS_EMBD, &[e as u64, k as u64], GgmlType::F32, &cls)
            .unwrap();
    }
    matrix(&mut w, a::GRU_WEIGHT_IH, 3 * h, e);
    bias(&mut w, a::GRU_BIAS_IH, 3 * h);
    matrix(&mut w, a::GRU_WEIGHT_HH, 3 * h, h);
    bias(&mut w, a::GRU_BIAS_HH, 3 * h);
    matrix(&mut w, a::OUTPUT, v, h);
    bias(&mut w, a::OUTPUT_BIAS, v);
    w.to_bytes()
}
