//! Puts a model into the firmware and its sizes into constants.
//!
//! The model is the GGUF file named by `EDGEGEN_FIRMWARE_MODEL`, or else a
//! small VAE decoder with fixed pseudo-random weights made here, so that the
//! firmware always builds. Its hyperparameters become `const`s, so that the
//! scratch buffer is sized at compile time by the runtime's `const fn`.

use edgegen_format::{GgmlType, Gguf, GgufWriter, arch};
use std::path::PathBuf;

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
    let mut s = 1u32;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        s as f32 / u32::MAX as f32 - 0.5
    };
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
    println!("cargo:rerun-if-changed=memory.x");
    let bytes = match std::env::var("EDGEGEN_FIRMWARE_MODEL") {
        Ok(p) if !p.is_empty() => {
            println!("cargo:rerun-if-changed={p}");
            std::fs::read(&p).unwrap_or_else(|e| panic!("EDGEGEN_FIRMWARE_MODEL={p}: {e}"))
        }
        _ => default_model(),
    };
    let g = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("the firmware model is not GGUF: {e}"));
    let hp = arch::vae::Hparams::read(&g)
        .unwrap_or_else(|e| panic!("the firmware model is not a VAE: {e}"));
    std::fs::write(out.join("model.gguf"), &bytes).unwrap();
    std::fs::write(
        out.join("model_consts.rs"),
        format!(
            "pub const LATENT: usize = {};\npub const N_CLASSES: usize = {};\npub const HIDDEN: &[u32] = &{:?};\npub const OUT_LEN: usize = {};\n",
            hp.latent_dim,
            hp.n_classes,
            hp.hidden(),
            hp.input_dim()
        ),
    )
    .unwrap();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        std::fs::copy("memory.x", out.join("memory.x")).unwrap();
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg=-Tlink.x");
    }
}
