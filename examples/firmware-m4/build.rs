//! Puts a model into the firmware and its sizes into constants.
//!
//! The model is the GGUF file named by `EDGEGEN_FIRMWARE_MODEL`, or else a
//! small model with fixed pseudo-random weights made here, of the family
//! `EDGEGEN_FIRMWARE_DEFAULT` names (`vae`, the default, `gan`, `text` or
//! `audio`), so that the firmware always builds. Its family becomes
//! `cfg(family = "...")`, so that the image links that family's code only,
//! and its hyperparameters become `const`s, so that scratch and state are
//! sized at compile time by the runtime's `const fn`s. A text model's
//! prompt (`EDGEGEN_FIRMWARE_PROMPT`, default `ROMEO:`) is encoded here
//! with the model's vocabulary, so the firmware carries no tokenizer, and
//! its KV cache is f32 or, with `EDGEGEN_FIRMWARE_KV=q8_0`, Q8_0.
//!
//! The memory budget is checked at link time: `memory.x` is written here
//! with `EDGEGEN_FIRMWARE_MEMORY=FLASH_KIB,RAM_KIB` (default `4096,4096`,
//! QEMU's mps2-an386; `1024,192` is an STM32F405-class part, kept at
//! mps2-an386's addresses so that the image still runs under QEMU) and a
//! stack reserve of `EDGEGEN_FIRMWARE_STACK_KIB` (default 16): code and
//! model must fit the flash, and the statics (scratch, state, outputs)
//! must leave the reserve free in RAM, or the link fails saying so.

use edgegen_format::{GgmlType, Gguf, GgufWriter, TensorName, arch};
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

/// Adds tensors of pseudo-random values; shapes are GGUF's (columns
/// first).
fn random_tensors(w: &mut GgufWriter, tensors: &[(String, Vec<u64>, GgmlType)]) {
    let mut next = xorshift(1);
    for (name, shape, ty) in tensors {
        let v: Vec<f32> = (0..shape.iter().product::<u64>()).map(|_| next()).collect();
        w.add_tensor(name, shape, *ty, &v).unwrap();
    }
}

/// A 4-wide-embedding, 8-state audio GRU over 256 codes and 10 classes, in
/// F16 (Q8_0 would need rows padded to 32).
fn default_audio() -> Vec<u8> {
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
    let (f16, f32) = (GgmlType::F16, GgmlType::F32);
    let t = |n: &str, s: &[u64], ty| (n.to_string(), s.to_vec(), ty);
    random_tensors(
        &mut w,
        &[
            t(a::TOKEN_EMBD, &[4, 256], f16),
            t(a::CLASS_EMBD, &[4, 10], f32),
            t(a::GRU_WEIGHT_IH, &[4, 24], f16),
            t(a::GRU_BIAS_IH, &[24], f32),
            t(a::GRU_WEIGHT_HH, &[8, 24], f16),
            t(a::GRU_BIAS_HH, &[24], f32),
            t(a::OUTPUT, &[8, 256], f16),
            t(a::OUTPUT_BIAS, &[256], f32),
        ],
    );
    w.to_bytes()
}

/// A 32-48-64 decoder of 8 x 8 images, in Q8_0.
fn default_vae() -> Vec<u8> {
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
    let (q8, f32) = (GgmlType::Q8_0, GgmlType::F32);
    let t = |n: &str, s: &[u64], ty| (n.to_string(), s.to_vec(), ty);
    random_tensors(
        &mut w,
        &[
            t("dec.0.weight", &[32, 48], q8),
            t("dec.0.bias", &[48], f32),
            t("dec.1.weight", &[64, 64], q8),
            t("dec.1.bias", &[64], f32),
        ],
    );
    w.to_bytes()
}

/// A generator of 8 x 8 images from 4 noise values: a 4 x 4 x 4 plane and
/// one up block, in F16.
fn default_gan() -> Vec<u8> {
    use arch::gan as g;
    let hp = g::Hparams::new([1, 8, 8], 4, 0, &[4]).unwrap();
    let mut w = GgufWriter::new();
    hp.write(&mut w).unwrap();
    let (f16, f32) = (GgmlType::F16, GgmlType::F32);
    let up = |p| TensorName::at(p, 0).to_string();
    random_tensors(
        &mut w,
        &[
            (g::FC_WEIGHT.into(), vec![4, 64], f16),
            (g::FC_BIAS.into(), vec![64], f32),
            (up(g::UP_WEIGHT), vec![4, 16], f16),
            (up(g::UP_BIAS), vec![1], f32),
        ],
    );
    w.to_bytes()
}

/// A one-block, 8-wide byte-level transformer with a context of 16, its
/// output tied to the token embedding, in F16.
fn default_text() -> Vec<u8> {
    use arch::transformer as t;
    let hp = t::Hparams {
        vocab_size: 256,
        context_length: 16,
        embedding_length: 8,
        block_count: 1,
        head_count: 2,
        head_count_kv: 2,
        feed_forward_length: 16,
        n_classes: 0,
        layer_norm_epsilon: 1e-5,
        tied_output: true,
    };
    let mut w = GgufWriter::new();
    hp.write(&mut w, arch::Family::Text).unwrap();
    w.add(t::VOCAB, "bytes").unwrap();
    let (f16, f32) = (GgmlType::F16, GgmlType::F32);
    let b = |p| TensorName::at(p, 0).to_string();
    let v = |n: String, s: &[u64], ty| (n, s.to_vec(), ty);
    random_tensors(
        &mut w,
        &[
            v(t::TOKEN_EMBD.into(), &[8, 256], f16),
            v(t::POSITION_EMBD.into(), &[8, 16], f32),
            v(b(t::ATTN_NORM_WEIGHT), &[8], f32),
            v(b(t::ATTN_NORM_BIAS), &[8], f32),
            v(b(t::ATTN_QKV_WEIGHT), &[8, 24], f16),
            v(b(t::ATTN_QKV_BIAS), &[24], f32),
            v(b(t::ATTN_OUTPUT_WEIGHT), &[8, 8], f16),
            v(b(t::ATTN_OUTPUT_BIAS), &[8], f32),
            v(b(t::FFN_NORM_WEIGHT), &[8], f32),
            v(b(t::FFN_NORM_BIAS), &[8], f32),
            v(b(t::FFN_UP_WEIGHT), &[8, 16], f16),
            v(b(t::FFN_UP_BIAS), &[16], f32),
            v(b(t::FFN_DOWN_WEIGHT), &[16, 8], f16),
            v(b(t::FFN_DOWN_BIAS), &[8], f32),
            v(t::OUTPUT_NORM_WEIGHT.into(), &[8], f32),
            v(t::OUTPUT_NORM_BIAS.into(), &[8], f32),
        ],
    );
    w.to_bytes()
}

/// The prompt as the model's symbols: bytes, or indices into its
/// character vocabulary. It must leave room in the context.
fn encode_prompt(g: &Gguf<'_>, hp: &arch::transformer::Hparams, prompt: &str) -> Vec<u32> {
    use arch::transformer::{CHARS, VOCAB};
    let vocab = g.get(VOCAB).and_then(|v| v.as_str());
    let syms: Vec<u32> = match vocab
        .filter(|&v| v == "chars")
        .map(|_| g.require_str(CHARS))
    {
        Some(Err(e)) => panic!("the firmware model's character vocabulary: {e}"),
        Some(Ok(chars)) => {
            let chars: Vec<char> = chars.chars().collect();
            prompt
                .chars()
                .map(|c| {
                    chars.iter().position(|&v| v == c).unwrap_or_else(|| {
                        panic!(
                            "EDGEGEN_FIRMWARE_PROMPT: the character {c:?} is not in the model's vocabulary of {} characters",
                            chars.len()
                        )
                    }) as u32
                })
                .collect()
        }
        None => prompt.bytes().map(u32::from).collect(),
    };
    let t = hp.context_length as usize;
    assert!(
        !syms.is_empty() && syms.len() < t,
        "EDGEGEN_FIRMWARE_PROMPT: expected 1 to {} symbols (the context is {t}), found {}",
        t - 1,
        syms.len()
    );
    syms
}

/// The board's flash and RAM and the stack reserve, in KiB.
fn memory() -> (usize, usize, usize) {
    let kib = |what: &str, v: &str| -> usize {
        v.trim()
            .parse()
            .ok()
            .filter(|&k| k > 0 && k <= 1 << 20)
            .unwrap_or_else(|| panic!("{what}: expected a size in KiB (1 to 1048576), found {v:?}"))
    };
    let (flash, ram) = match std::env::var("EDGEGEN_FIRMWARE_MEMORY") {
        Ok(v) if !v.is_empty() => match v.split_once(',') {
            Some((f, r)) => (
                kib("EDGEGEN_FIRMWARE_MEMORY's flash", f),
                kib("EDGEGEN_FIRMWARE_MEMORY's RAM", r),
            ),
            None => panic!(
                "EDGEGEN_FIRMWARE_MEMORY: expected FLASH_KIB,RAM_KIB (such as 1024,192), found {v:?}"
            ),
        },
        _ => (4096, 4096),
    };
    let stack = match std::env::var("EDGEGEN_FIRMWARE_STACK_KIB") {
        Ok(v) if !v.is_empty() => kib("EDGEGEN_FIRMWARE_STACK_KIB", &v),
        _ => 16,
    };
    (flash, ram, stack)
}

/// The linker's memory map: mps2-an386's addresses with the budget's
/// sizes, and the check that the statics leave the stack its reserve.
fn memory_x(flash: usize, ram: usize, stack: usize) -> String {
    format!(
        "/* Written by build.rs: mps2-an386's addresses (flash at 0, RAM at
   0x20000000), the sizes of EDGEGEN_FIRMWARE_MEMORY. */
MEMORY
{{
  FLASH : ORIGIN = 0x00000000, LENGTH = {flash}K
  RAM   : ORIGIN = 0x20000000, LENGTH = {ram}K
}}

/* cortex-m-rt puts the stack at the top of RAM, growing down to the end
   of the statics (_stack_end). */
ASSERT(_stack_start - _stack_end >= {stack} * 1024, \"
edgegen: the statics (the model's scratch, state and outputs) leave less
than EDGEGEN_FIRMWARE_STACK_KIB = {stack} KiB of the {ram} KiB of RAM for
the stack.\");
"
    )
}

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for v in [
        "EDGEGEN_FIRMWARE_MODEL",
        "EDGEGEN_FIRMWARE_DEFAULT",
        "EDGEGEN_FIRMWARE_PROMPT",
        "EDGEGEN_FIRMWARE_KV",
        "EDGEGEN_FIRMWARE_MEMORY",
        "EDGEGEN_FIRMWARE_STACK_KIB",
    ] {
        println!("cargo:rerun-if-env-changed={v}");
    }
    let bytes = match std::env::var("EDGEGEN_FIRMWARE_MODEL") {
        Ok(p) if !p.is_empty() => {
            println!("cargo:rerun-if-changed={p}");
            std::fs::read(&p).unwrap_or_else(|e| panic!("EDGEGEN_FIRMWARE_MODEL={p}: {e}"))
        }
        // Without a file, a built-in model of the family asked for.
        _ => match std::env::var("EDGEGEN_FIRMWARE_DEFAULT").as_deref() {
            Ok("audio") => default_audio(),
            Ok("gan") => default_gan(),
            Ok("text") => default_text(),
            Ok("vae") | Ok("") | Err(_) => default_vae(),
            Ok(other) => {
                panic!("EDGEGEN_FIRMWARE_DEFAULT={other}: expected vae, gan, text or audio")
            }
        },
    };
    let g = Gguf::parse(&bytes).unwrap_or_else(|e| panic!("the firmware model is not GGUF: {e}"));
    let family = arch::check(&g).unwrap_or_else(|e| panic!("the firmware model: {e}"));
    let act = arch::ActQuant::read(&g).unwrap_or_else(|e| panic!("the firmware model: {e}"));
    if act == arch::ActQuant::Int8 && std::env::var_os("CARGO_FEATURE_INT8").is_none() {
        panic!(
            "the firmware model multiplies int8 activations (edgegen.activations = \"int8\", the q8_0a8 precision): build with `--features int8`"
        );
    }
    println!("cargo::rustc-check-cfg=cfg(family, values(\"vae\", \"gan\", \"text\", \"audio\"))");
    // Debug formatting of an `Hparams` struct is its Rust literal.
    let path = |m: &str| format!("edgegen_runtime::format::arch::{m}");
    let (cfg, consts) = match family {
        arch::Family::Vae => {
            let hp = arch::vae::Hparams::read(&g)
                .unwrap_or_else(|e| panic!("the firmware model is not a VAE decoder: {e}"));
            (
                "vae",
                format!(
                    "pub const LATENT: usize = {};\npub const N_CLASSES: usize = {};\npub const HIDDEN: &[u32] = &{:?};\npub const OUT_LEN: usize = {};\npub const IMAGE: [usize; 3] = {:?};\n",
                    hp.latent_dim,
                    hp.n_classes,
                    hp.hidden(),
                    hp.input_dim(),
                    hp.image_shape.map(|v| v as usize)
                ),
            )
        }
        arch::Family::Gan => {
            let hp = arch::gan::Hparams::read(&g)
                .unwrap_or_else(|e| panic!("the firmware model's GAN hyperparameters: {e}"));
            let p = path("gan");
            (
                "gan",
                format!("pub const HP: {p}::Hparams = {p}::{hp:?};\n"),
            )
        }
        arch::Family::Text => {
            let hp = arch::transformer::Hparams::read(&g, arch::Family::Text)
                .unwrap_or_else(|e| panic!("the firmware model's text hyperparameters: {e}"));
            let prompt = std::env::var("EDGEGEN_FIRMWARE_PROMPT").unwrap_or("ROMEO:".into());
            let syms = encode_prompt(&g, &hp, &prompt);
            let q8 = match std::env::var("EDGEGEN_FIRMWARE_KV").as_deref() {
                Err(_) | Ok("") | Ok("f32") => false,
                Ok("q8_0") if hp.kv_dim().is_multiple_of(32) => true,
                Ok("q8_0") => panic!(
                    "EDGEGEN_FIRMWARE_KV=q8_0: the model's K/V width is {}, not a multiple of 32; use f32",
                    hp.kv_dim()
                ),
                Ok(other) => panic!("EDGEGEN_FIRMWARE_KV={other}: expected f32 or q8_0"),
            };
            let p = path("transformer");
            (
                "text",
                format!(
                    "pub const HP: {p}::Hparams = {p}::{hp:?};\n/// {prompt:?}\npub const PROMPT: &[u32] = &{syms:?};\npub const KV_Q8_0: bool = {q8};\n"
                ),
            )
        }
        arch::Family::Audio => {
            let hp = arch::audio::Hparams::read(&g)
                .unwrap_or_else(|e| panic!("the firmware model's audio hyperparameters: {e}"));
            let frames = arch::audio::FrameHparams::read(&g)
                .unwrap_or_else(|e| panic!("the firmware model's frame tier: {e}"));
            if frames.is_some() && std::env::var_os("CARGO_FEATURE_FRAMES").is_none() {
                panic!(
                    "the firmware model is a two-tier audio model (edgegen.audio.frame_length is set): build with `--features frames`"
                );
            }
            let p = path("audio");
            let frames = match frames {
                Some(f) => format!("Some({p}::{f:?})"),
                None => "None".into(),
            };
            (
                "audio",
                format!(
                    "pub const HP: {p}::Hparams = {p}::{hp:?};\npub const FRAMES: Option<{p}::FrameHparams> = {frames};\n"
                ),
            )
        }
    };
    println!("cargo::rustc-cfg=family=\"{cfg}\"");
    std::fs::write(out.join("model.gguf"), &bytes).unwrap();
    std::fs::write(out.join("model_consts.rs"), consts).unwrap();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let (flash, ram, stack) = memory();
        if bytes.len() > flash * 1024 {
            panic!(
                "the model is {} bytes, more than the {flash} KiB of flash EDGEGEN_FIRMWARE_MEMORY allows (before any code)",
                bytes.len()
            );
        }
        std::fs::write(out.join("memory.x"), memory_x(flash, ram, stack)).unwrap();
        println!("cargo:rustc-link-search={}", out.display());
        println!("cargo:rustc-link-arg=-Tlink.x");
    }
}
