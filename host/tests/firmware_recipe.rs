//! The README's flashing recipe, from a run dir to a firmware image:
//! `edgegen export RUN --gguf model.gguf --precision q8_0`, then the
//! firmware's `cargo build` with `EDGEGEN_FIRMWARE_MODEL=model.gguf` and
//! the board's memory (`EDGEGEN_FIRMWARE_MEMORY=1024,192`), checked at
//! build time; the image samples under `qemu-system-arm`. A model too big
//! for the board's flash fails the build with a message naming the budget.
//!
//! Needs the `thumbv7em-none-eabihf` target and `qemu-system-arm`, which
//! `scripts/test.sh` installs.

mod common;
use common::{ok, s, tmp};
use std::path::Path;
use std::process::Command;

/// `cargo build` of the firmware with `model` and `memory`, in its own
/// target folder (never waiting on the outer build's lock).
fn build_firmware(model: &Path, memory: &str, target: &Path) -> std::process::Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["build", "--locked", "-q", "-p", "edgegen-firmware-m4"])
        .args(["--target", "thumbv7em-none-eabihf", "--profile", "device"])
        .arg("--target-dir")
        .arg(target)
        .env("EDGEGEN_FIRMWARE_MODEL", model)
        .env("EDGEGEN_FIRMWARE_MEMORY", memory)
        .output()
        .expect("run cargo")
}

#[test]
fn a_run_dir_becomes_a_firmware_image_that_samples_under_qemu() {
    let d = tmp("recipe", "firmware");
    let run_dir = common::train_vae(&d, &["--hidden", "40", "--latent", "3", "--conditional"]);
    let model = d.join("model.gguf");
    ok(&[
        "export",
        s(&run_dir),
        "--gguf",
        s(&model),
        "--precision",
        "q8_0",
    ]);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = root.join("target/firmware-test-recipe");
    let o = build_firmware(&model, "1024,192", &target);
    assert!(
        o.status.success(),
        "the firmware build failed (scripts/test.sh installs the target):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let elf = target.join("thumbv7em-none-eabihf/device/edgegen-firmware-m4");
    let out = Command::new("timeout")
        .args(["120", "qemu-system-arm", "-M", "mps2-an386", "-nographic"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(&elf)
        .output()
        .expect("run qemu-system-arm (scripts/test.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("\nok"), "{text}");
    // Four samples of a 28 x 28 image, the first also as 28 rows of art.
    assert_eq!(text.matches("\nsample ").count(), 4, "{text}");
    assert_eq!(text.matches("\n|").count(), 28, "{text}");

    // The host draws in the same mode on request (the firmware's
    // `deterministic` feature): a grid either way.
    for extra in [&[][..], &["--deterministic"][..]] {
        let png = d.join(format!("grid{}.png", extra.len()));
        let mut args = vec!["sample", s(&model), "--n", "4", "-o", s(&png)];
        args.extend(extra);
        ok(&args);
        assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    }

    // The same model against 16 KiB of flash: refused at build time.
    let o = build_firmware(&model, "16,192", &target.join("small"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "a model over the flash budget built");
    assert!(
        err.contains("EDGEGEN_FIRMWARE_MEMORY") && err.contains("16 KiB of flash"),
        "{err}"
    );
}
