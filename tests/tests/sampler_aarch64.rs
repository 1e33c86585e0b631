//! The aarch64 Linux sampler (`examples/sampler-aarch64`), cross-built and
//! run under `qemu-aarch64`, where the NEON kernels run: what it samples
//! (VAE and GAN images, text, audio clips) must match the runtime's on
//! this host. `scripts/test.sh` installs the target,
//! `gcc-aarch64-linux-gnu` and `qemu-user`.

use edgegen_format::{GgmlType, arch};
use edgegen_tests::image::check_samples_against_host;
use edgegen_tests::vae::decoder_gguf;
use edgegen_tests::{cargo_build, repo_root, scratch_dir};
use std::path::Path;
use std::process::Command;

/// Runs the sampler under QEMU with `args`, in the deterministic mode (as
/// the host checks run); returns what it printed.
fn sampler(bin: &Path, model: &Path, args: &[&str]) -> String {
    edgegen_runtime::kernels::set_deterministic(true);
    let out = Command::new("qemu-aarch64")
        .args(["-L", "/usr/aarch64-linux-gnu"])
        .arg(bin)
        .arg(model)
        .args(args)
        .arg("--deterministic")
        .output()
        .expect("run qemu-aarch64 (scripts/test.sh installs qemu-user)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sampler failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.ends_with("ok\n"), "{text}");
    text
}

#[test]
fn aarch64_sampler_matches_the_host() {
    let hp = arch::vae::Hparams::new(
        [3, 4, 4],
        5,
        &[64],
        0,
        arch::vae::Likelihood::Bernoulli,
        arch::Activation::Relu,
    )
    .unwrap();
    let dir = scratch_dir("sampler-aarch64");
    let target = repo_root().join("target/sampler-test");
    cargo_build(
        &[
            "--release",
            "-p",
            "edgegen-sampler",
            "--target",
            "aarch64-unknown-linux-gnu",
        ],
        &target,
        &[("EDGEGEN_FIRMWARE_MODEL", None)],
    );
    let bin = target.join("aarch64-unknown-linux-gnu/release/edgegen-sampler");
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        let bytes = decoder_gguf(&hp, ty, 5, [0.4, 0.2], [0.0, 0.1]);
        let model = dir.join(format!("{ty:?}.gguf"));
        std::fs::write(&model, &bytes).unwrap();
        let d = dir.to_str().unwrap();
        let text = sampler(&bin, &model, &["--n", "3", "--seed", "9", "--out", d]);
        check_samples_against_host(&text, &bytes, 9, None, 3, &format!("{ty:?} aarch64"));
        // A colour image came out as PPM of the right size.
        let ppm = std::fs::read(dir.join("sample-0.ppm")).unwrap();
        assert!(ppm.starts_with(b"P6\n4 4\n255\n") && ppm.len() == 11 + 48);
    }
    // Audio: two clips of 300 codes from one generator, the same codes as
    // the host's, at every precision, conditional and not, and a two-tier
    // model (its frame tier drawing frames at codes 0 and 255, each
    // frame's linear prediction solved).
    let frames = edgegen_tests::audio::DEVICE_FRAMES;
    for (ty, k, two) in [
        (GgmlType::F32, 0, false),
        (GgmlType::F16, 10, false),
        (GgmlType::Q8_0, 10, false),
        (GgmlType::Q8_0, 10, true),
        (GgmlType::F32, 0, true),
    ] {
        let hp = arch::audio::Hparams {
            vocab_size: 256,
            embedding_length: 12,
            state_length: 20,
            n_classes: k,
            sample_rate: 8000,
        };
        let act = (ty, arch::ActQuant::F32);
        let bytes = edgegen_tests::audio::two_tier_gguf(&hp, two.then_some(&frames), act, 6, 0.6);
        let model = dir.join(format!("audio-{ty:?}.gguf"));
        std::fs::write(&model, &bytes).unwrap();
        let d = dir.to_str().unwrap();
        let mut args = vec!["--n", "2", "--seed", "9", "--codes", "300", "--out", d];
        if k > 0 {
            args.extend(["--label", "4"]);
        }
        let text = sampler(&bin, &model, &args);
        let label = (k > 0).then_some(4);
        let who = format!("{ty:?} audio (two-tier {two}), aarch64");
        edgegen_tests::audio::check_clips_against_host(&text, &bytes, 9, label, (2, 300), &who);
        let wav = std::fs::read(dir.join("clip-1.wav")).unwrap();
        assert!(wav.starts_with(b"RIFF") && &wav[8..16] == b"WAVEfmt " && wav.len() == 44 + 600);
    }
    // GAN: conditional 12 -> 8 x 4 x 4 -> 4 x 8 x 8 -> 3 x 16 x 16, label 2.
    let hp = arch::gan::Hparams::new([3, 16, 16], 12, 5, &[8, 4]).unwrap();
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        let bytes = edgegen_tests::gan::generator_gguf(&hp, ty, 8, 0.4, 0.05);
        let model = dir.join(format!("gan-{ty:?}.gguf"));
        std::fs::write(&model, &bytes).unwrap();
        let d = dir.to_str().unwrap();
        let args = ["--n", "3", "--seed", "9", "--label", "2", "--out", d];
        let text = sampler(&bin, &model, &args);
        check_samples_against_host(&text, &bytes, 9, Some(2), 3, &format!("{ty:?} GAN aarch64"));
        let ppm = std::fs::read(dir.join("sample-2.ppm")).unwrap();
        assert!(ppm.starts_with(b"P6\n16 16\n255\n") && ppm.len() == 13 + 768);
    }
    // Text: two continuations each, bytes (F32, Q8_0) and a conditional
    // character vocabulary (F16), with grouped-query attention.
    let chars = edgegen_tests::text::DEVICE_CHARS;
    for (ty, vocab) in [
        (GgmlType::F32, None),
        (GgmlType::Q8_0, None),
        (GgmlType::F16, Some(chars)),
    ] {
        let hp = edgegen_tests::text::device_hparams(vocab, 48);
        let bytes = edgegen_tests::text::model_gguf(&hp, ty, 3, 0.5, vocab);
        let model = dir.join(format!("text-{ty:?}.gguf"));
        std::fs::write(&model, &bytes).unwrap();
        let mut args = vec!["--n", "2", "--seed", "9", "--prompt", "ROMEO: a"];
        args.extend(["--tokens", "30"]);
        if vocab.is_some() {
            args.extend(["--label", "1"]);
        }
        let text = sampler(&bin, &model, &args);
        let prompt = edgegen_tests::text::encode("ROMEO: a", vocab);
        let label = vocab.map(|_| 1);
        let who = format!("{ty:?} text, aarch64");
        edgegen_tests::text::check_text_against_host(
            &text,
            &bytes,
            (9, label, false),
            &prompt,
            (2, 30),
            &who,
        );
        assert_eq!(text.matches("\n> ROMEO: a").count(), 2, "{who}: {text}");
    }
}
