//! The Cortex-M4F firmware (`examples/firmware-m4`), built with a model (a
//! VAE decoder or an audio model: the GGUF picks the family) and run under
//! `qemu-system-arm -M mps2-an386`: its samples must match the runtime's on
//! the host, and each family's flash cost must stay within 16 KiB of
//! `.text` (issue 4's size target, and issue 12's per family).
//!
//! Needs the `thumbv7em-none-eabihf` target and `qemu-system-arm`, which
//! `scripts/test.sh` installs.

use edgegen_format::{GgmlType, arch};
use edgegen_tests::vae::{check_samples_against_host, decoder_gguf};
use edgegen_tests::{cargo_build, repo_root, scratch_dir};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A conditional 6-40-(1x6x6) decoder with fixed pseudo-random weights.
fn model(ty: GgmlType) -> Vec<u8> {
    let hp = arch::vae::Hparams::new(
        [1, 6, 6],
        6,
        &[40],
        3,
        arch::vae::Likelihood::Bernoulli,
        arch::Activation::Tanh,
    )
    .unwrap();
    decoder_gguf(&hp, ty, 11, [0.5, 0.3], [0.05, -0.1])
}

fn build(model: Option<&Path>, features: &str, target_dir: &Path) -> PathBuf {
    let mut args = vec![
        "-p",
        "edgegen-firmware-m4",
        "--target",
        "thumbv7em-none-eabihf",
        "--profile",
        "device",
    ];
    if !features.is_empty() {
        args.extend(["--features", features]);
    }
    cargo_build(&args, target_dir, ("EDGEGEN_FIRMWARE_MODEL", model));
    target_dir.join("thumbv7em-none-eabihf/device/edgegen-firmware-m4")
}

/// The size of an ELF32 section, read from the section headers.
fn section_size(elf: &[u8], name: &str) -> u32 {
    let u16at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let u32at = |o: usize| u32::from_le_bytes([elf[o], elf[o + 1], elf[o + 2], elf[o + 3]]);
    assert_eq!(&elf[..5], b"\x7fELF\x01", "not an ELF32 file");
    let (shoff, shentsize, shnum, shstrndx) =
        (u32at(0x20) as usize, u16at(0x2e), u16at(0x30), u16at(0x32));
    let strtab = u32at(shoff + shstrndx * shentsize + 0x10) as usize;
    (0..shnum)
        .map(|i| shoff + i * shentsize)
        .find(|&h| {
            let n = strtab + u32at(h) as usize;
            elf[n..].split(|&b| b == 0).next() == Some(name.as_bytes())
        })
        .map_or(0, |h| u32at(h + 0x14))
}

/// Runs a firmware image under QEMU; returns what it printed, once it has
/// exited with status 0 after printing "ok".
fn run_qemu(elf: &Path) -> String {
    let out = Command::new("timeout")
        .args([
            "120",
            "qemu-system-arm",
            "-M",
            "mps2-an386",
            "-nographic",
            "-semihosting-config",
            "enable=on,target=native",
            "-kernel",
        ])
        .arg(elf)
        .output()
        .expect("run qemu-system-arm (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "firmware failed under QEMU ({}):\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("\nok"), "{text}");
    text
}

#[test]
fn firmware_samples_match_the_host_and_fit_in_16_kib() {
    let dir = scratch_dir("firmware");
    let target = repo_root().join("target/firmware-test");
    for ty in [GgmlType::Q8_0, GgmlType::F16] {
        let bytes = model(ty);
        let path = dir.join(format!("{ty:?}.gguf"));
        std::fs::write(&path, &bytes).unwrap();
        let elf = build(Some(&path), "", &target);
        let text = run_qemu(&elf);

        // The same samples on the host.
        check_samples_against_host(&text, &bytes, 7, Some(0), 4, &format!("{ty:?} firmware"));
    }

    // Flash: the decoder path alone, minus a firmware that does nothing.
    let probe = std::fs::read(build(None, "size-probe", &target)).unwrap();
    let empty = std::fs::read(build(None, "empty", &target.join("empty"))).unwrap();
    let (p, e) = (section_size(&probe, ".text"), section_size(&empty, ".text"));
    println!(
        "firmware .text: decoder path {p} B, empty {e} B, runtime + format {} B",
        p - e
    );
    assert!(p > e + 4096, "the probe did not link the runtime");
    assert!(
        p - e <= 16 * 1024,
        "runtime + format take {} B of .text, over the 16 KiB budget",
        p - e
    );
}

/// The firmware built with an audio model generates the clip the host's
/// runtime generates from the same bytes and seed: the same codes, and the
/// same final state to float rounding (the M4 sums in another order). The
/// audio path alone fits the same 16 KiB of `.text`.
#[test]
fn audio_firmware_generates_the_hosts_clip_and_fits_in_16_kib() {
    let dir = scratch_dir("firmware-audio");
    // Not the VAE test's directory: the tests run at once, and each build
    // writes the same image path.
    let target = repo_root().join("target/firmware-test-audio");
    let mut probe_path = None;
    for (ty, k) in [(GgmlType::Q8_0, 10), (GgmlType::F16, 0)] {
        let hp = arch::audio::Hparams {
            vocab_size: 256,
            embedding_length: 12,
            state_length: 20,
            n_classes: k,
            sample_rate: 8000,
        };
        let bytes = edgegen_tests::audio::model_gguf(&hp, ty, 4, 0.6);
        let path = dir.join(format!("audio-{ty:?}.gguf"));
        std::fs::write(&path, &bytes).unwrap();
        let text = run_qemu(&build(Some(&path), "", &target));
        let label = (k > 0).then_some(0);
        let who = format!("{ty:?} firmware");
        edgegen_tests::audio::check_clips_against_host(&text, &bytes, 7, label, (1, 400), &who);
        probe_path.get_or_insert(path);
    }
    let probe = build(probe_path.as_deref(), "size-probe", &target.join("probe"));
    let empty = build(None, "empty", &target.join("empty"));
    let (p, e) = (
        section_size(&std::fs::read(probe).unwrap(), ".text"),
        section_size(&std::fs::read(empty).unwrap(), ".text"),
    );
    println!(
        "firmware .text: audio path {p} B, empty {e} B, runtime + format {} B",
        p - e
    );
    assert!(p > e + 4096, "the probe did not link the runtime");
    assert!(
        p - e <= 16 * 1024,
        "the audio path takes {} B of .text, over 16 KiB",
        p - e
    );
}
