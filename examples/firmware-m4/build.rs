//! Puts a model into the firmware and its sizes into constants.
//!
//! The model is the GGUF file named by `EDGEGEN_FIRMWARE_MODEL`, or else a
//! small model with fixed pseudo-random weights made here (a VAE decoder,
//! or an audio GRU with `EDGEGEN_FIRMWARE_DEFAULT=audio`), so that the
//! firmware always builds. Its family becomes `cfg(family = "...")`, so
//! that the image links that family's code only, and its hyperparameters
//! become `const`s, so that scratch and state are sized at compile time by
//! the runtime's `const fn`s.

use edgegen_format::{GgmlType, Gguf, GgufWriter, arch};
use std::path::PathBuf;

/// Uniform in [-0.5, 0.5), from a fixed xorshift: the built-in models'
/// weights.
fn xorshift(mut s: u32) -> impl FnMut() -> f32 {
    move || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s as f32 / u32::MAX as f32 - 0.5
    }
}

/// A 4-wide-embedding, 8-state audio GRU over 256 codes and 10 classes, in
/// F16 (Q8_0 would need rows padded to 32).
fn default_audio_model() -> Vec<u8> {
    use arch::audio as a;
    let hp = a::Hparams {
        vocab_size: 256,
        embedding_length: 4,
        state_length: 8,
        n_classes: 10,
        sample_rate: 8000,
    };
    let mut w = GgufWriter::new();
    hp.write(&mut w).unwrap();
    let mut next = xorshift(1);
    let mut t = |name: &str, shape: &[u64], ty: GgmlType| {
        let v: Vec<f32> = (0..shape.iter().product::<u64>()).map(|_| next()).collect();
        w.add_tensor(name, shape, ty, &v).unwrap();
    };
    t(a::TOKEN_EMBD, &[4, 256], GgmlType::F16);
    t(a::CLASS_EMBD, &[4, 10], GgmlType::F32);
    t(a::GRU_WEIGHT_IH, &[4, 24], GgmlType::F16);
    t(a::GRU_BIAS_IH, &[24], GgmlType::F32);
    t(a::GRU_WEIGHT_HH, &[8, 24], GgmlType::F16);
    t(a::GRU_BIAS_HH, &[24], GgmlType::F32);
    t(a::OUTPUT, &[8, 256], GgmlType::F16);
    t(a::OUTPUT_BIAS, &[256], GgmlType::F32);
    w.to_bytes()
}

fn default_model() -> Vec<u8> {
    let hp = arch::vae::Hparams::new(
        [1, 8, 8],
        4,
        &[48],
        0,
        arch::vae::Likelihood::Bernoulli,
        arch::Activation::Relu,
    )
    .unwrap();
    let mut w = GgufWriter::new();
    hp.write(&mut w).unwrap();
    let mut next = xorshift(1);
    let w0: Vec<f32> = (0..32 * 48).map(|_| next()).collect();
    let w1: Vec<f32> = (0..64 * 64).map(|_| next()).collect();
    w.add_tensor("dec.0.weight", &[32, 48], GgmlType::Q8_0, &w0)
        .unwrap();
    w.add_tensor("dec.0.bias", &[48], GgmlType::F32, &[0.05; 48])
        .unwrap();
    w.add_tensor("dec.1.weight", &[64, 64], GgmlType::Q8_0, &w1[..64 * 64])
        .unwrap();
    w.add_tensor("dec.1.bias", &[64], GgmlType::F32, &[-0.1; 64])
        .unwrap();
    w.to_bytes()
}

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=EDGEGEN_FIRMWARE_MODEL");
    println!("cargo:rerun-if-env-changed=EDGEGEN_FIRMWARE_DEFAULT");
    println!("cargo:rerun-if-changed=memory.x");
    let bytes = match std::env::var("EDGEGEN_FIRMWARE_MODEL") {
        Ok(p) if !p.is_empty() => {
            println!("cargo:rerun-if-changed={p}");
            std::fs::read(&p).unwrap_or_else(|e| panic!("EDGEGEN_FIRMWARE_MODEL={p}: {e}"))
        }
        // Without a file, a built-in model of the family asked for.
        _ => match std::env::var("EDGEGEN_FIRMWARE_DEFAULT").as_deref() {
            Ok("audio") => default_audio_model(),
            Ok("vae") | Ok("") | Err(_) => default_model(),
            Ok(other) => panic!("EDGEGEN_FIRMWARE_DEFAULT={other}: expected vae or audio"),
        },
    };
    let g = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("the firmware model is not GGUF: {e}"));
    let family = arch::check(&g).unwrap_or_else(|e| panic!("the firmware model: {e}"));
    println!("cargo::rustc-check-cfg=cfg(family, values(\"vae\", \"audio\"))");
    let consts = match family {
        arch::Family::Vae => {
            let hp = arch::vae::Hparams::read(&g)
                .unwrap_or_else(|e| panic!("the firmware model is not a VAE decoder: {e}"));
            println!("cargo::rustc-cfg=family=\"vae\"");
            format!(
                "pub const LATENT: usize = {};\npub const N_CLASSES: usize = {};\npub const HIDDEN: &[u32] = &{:?};\npub const OUT_LEN: usize = {};\n",
                hp.latent_dim,
                hp.n_classes,
                hp.hidden(),
                hp.input_dim()
            )
        }
        arch::Family::Audio => {
            let hp = arch::audio::Hparams::read(&g)
                .unwrap_or_else(|e| panic!("the firmware model's audio hyperparameters: {e}"));
            println!("cargo::rustc-cfg=family=\"audio\"");
            // Debug formatting of the struct is its Rust literal.
            format!(
                "pub const HP: edgegen_runtime::format::arch::audio::Hparams = edgegen_runtime::format::arch::audio::{hp:?};\n"
            )
        }
        f => panic!("the firmware runs VAE decoders and audio models, not a {f:?} model (yet)"),
    };
    std::fs::write(out.join("model.gguf"), &bytes).unwrap();
    std::fs::write(out.join("model_consts.rs"), consts).unwrap();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        std::fs::copy("memory.x", out.join("memory.x")).unwrap();
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg=-Tlink.x");
    }
}
