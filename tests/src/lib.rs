//! Helpers shared by the end-to-end tests in `tests/tests/`: running
//! tools, per family (`vae`, `gan`, `text`, `audio`) the builders of model
//! files and the checks of what a device printed, and the check shared by
//! the image families (`image`).

pub mod audio;
pub mod gan;
pub mod image;
pub mod text;
pub mod vae;

use edgegen_format::{GgmlType, GgufWriter};
use edgegen_runtime::sample::Rng;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

/// Adds `name` as a `rows x inp` weight of N(0, 1) times `scale`, stored as
/// `ty` (Q8_0 rows zero-padded to whole blocks of 32, as the exporter
/// does): every family's model builder writes its matrices this way.
pub fn add_random_matrix(
    w: &mut GgufWriter,
    name: &str,
    rows: usize,
    inp: usize,
    ty: GgmlType,
    scale: f32,
    r: &mut Rng,
) {
    let stride = if ty == GgmlType::Q8_0 {
        inp.div_ceil(32) * 32
    } else {
        inp
    };
    let vals: Vec<f32> = (0..rows * stride)
        .map(|j| {
            if j % stride < inp {
                r.normal() * scale
            } else {
                0.0
            }
        })
        .collect();
    w.add_tensor(name, &[stride as u64, rows as u64], ty, &vals)
        .unwrap();
}
use std::process::Command;

/// A fresh, empty folder under the system temp dir, unique to this test.
pub fn scratch_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("edgegen-test-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temp dir");
    dir
}

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs a Python script from `tests/python/` and panics with its output if
/// it fails. The tests need the packages that `scripts/test.sh` installs.
pub fn run_python(script: &str, args: &[&str]) -> String {
    let python = std::env::var("EDGEGEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let path = repo_root().join("tests/python").join(script);
    let out = Command::new(&python)
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {python}: {e}; run scripts/test.sh, which installs what the tests need"
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{script} {args:?} failed ({}):\n{stdout}\n{stderr}\n(if a module is missing, run scripts/test.sh, which installs the Python packages the tests need)",
        out.status
    );
    stdout
}

/// Runs `cargo build --locked -q` with `args` into its own target folder
/// (so that it never waits on the outer build's lock), setting (`Some`) or
/// removing (`None`) environment variables; panics with cargo's message on
/// failure.
pub fn cargo_build(args: &[&str], target_dir: &Path, env: &[(&str, Option<&OsStr>)]) {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(repo_root())
        .args(["build", "--locked", "-q"])
        .args(args)
        .arg("--target-dir")
        .arg(target_dir);
    for &(k, v) in env {
        match v {
            Some(v) => c.env(k, v),
            None => c.env_remove(k),
        };
    }
    let o = c.output().expect("run cargo");
    assert!(
        o.status.success(),
        "cargo build {args:?} failed (scripts/test.sh installs the targets and linkers):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The documented two-tier audio model's frame tier: the configuration
/// measured on FSDD (89-90% of its digits heard as asked).
pub const AUDIO_FRAMES: edgegen_format::arch::audio::FrameHparams =
    edgegen_format::arch::audio::FrameHparams {
        frame_length: 256,
        feature_length: 20,
        lpc_order: 16,
        embedding_length: 32,
        state_length: 128,
    };

/// Each family's documented configuration (the README's footprint table:
/// what fits a 1 MiB / 192 KiB part at Q8_0) with pseudo-random weights
/// stored as `ty`: `(family, description, GGUF bytes)`; `vae-a8` and
/// `text-a8` are the VAE's and the text model's with int8 activations,
/// which only Q8_0 weights use.
pub fn documented_models(ty: GgmlType) -> Vec<(&'static str, &'static str, Vec<u8>)> {
    use edgegen_format::arch;
    let vae = arch::vae::Hparams::new(
        [1, 28, 28],
        20,
        &[400],
        10,
        arch::vae::Likelihood::Bernoulli,
        arch::Activation::Relu,
    )
    .expect("valid");
    let gan = arch::gan::Hparams::new([1, 28, 28], 64, 10, &[128, 64]).expect("valid");
    // stories260K's size (dim 64, 5 layers, 8 heads), 4 K/V heads so the
    // cache can be Q8_0, and a context of 256.
    let text = arch::transformer::Hparams {
        vocab_size: 256,
        context_length: 256,
        embedding_length: 64,
        block_count: 5,
        head_count: 8,
        head_count_kv: 4,
        feed_forward_length: 256,
        n_classes: 0,
        layer_norm_epsilon: 1e-5,
        tied_output: true,
    };
    let audio = arch::audio::Hparams {
        vocab_size: 256,
        embedding_length: 64,
        state_length: 128,
        n_classes: 10,
        sample_rate: 8000,
    };
    vec![
        (
            "vae",
            "decoder 20-400-784 (28 x 28), 10 classes",
            vae::decoder_gguf(&vae, ty, 1, [0.2, 0.1], [0.0, 0.0]),
        ),
        (
            "vae-a8",
            "the same decoder, int8 activations (q8_0a8)",
            vae::decoder_gguf_with(
                &vae,
                ty,
                edgegen_format::arch::ActQuant::Int8,
                1,
                [0.2, 0.1],
                [0.0, 0.0],
            ),
        ),
        (
            "gan",
            "generator 64 -> 128 x 7 x 7 -> 64 x 14 x 14 -> 1 x 28 x 28, 10 classes",
            gan::generator_gguf(&gan, ty, 2, 0.1, 0.0),
        ),
        (
            "text",
            "bytes; dim 64, 5 blocks, 8 heads (4 K/V), MLP 256, context 256; Q8_0 KV cache",
            text::model_gguf(&text, ty, 3, 0.3, None),
        ),
        (
            "text-a8",
            "the same model, int8 activations (q8_0a8); the head8 attention kernels",
            text::model_gguf_with(
                &text,
                (ty, edgegen_format::arch::ActQuant::Int8),
                3,
                0.3,
                None,
            ),
        ),
        (
            "audio",
            "GRU: embedding 64, state 128, 10 classes",
            audio::model_gguf(&audio, ty, 4, 0.2),
        ),
        (
            "audio-2t",
            "the same GRU, two-tier: frames of 20 bands by a GRU of state 128 (input 32), order-16 prediction",
            audio::two_tier_gguf(
                &audio,
                Some(&AUDIO_FRAMES),
                (ty, edgegen_format::arch::ActQuant::F32),
                4,
                0.2,
            ),
        ),
    ]
}
