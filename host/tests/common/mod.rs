//! Helpers the `edgegen` end-to-end tests share.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs the binary (with `EDGEGEN_DATA` unset, so defaults are the built-in data).
pub fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edgegen"))
        .args(args)
        .env_remove("EDGEGEN_DATA")
        .output()
        .expect("run edgegen")
}

/// Runs the binary, requires success, and returns its stdout.
pub fn ok(args: &[&str]) -> String {
    let o = run(args);
    assert!(
        o.status.success(),
        "edgegen {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A fresh, empty folder for one test, `edgegen-{group}-{pid}-{name}`
/// under the temp dir. It stays after the test, to look at after a
/// failure; the folders of earlier runs of the same test (another process
/// id, no longer running: Linux's `/proc` tells) are removed here, so
/// that the temp dir holds one run's worth rather than growing by some
/// sixty folders a run.
pub fn tmp(group: &str, name: &str) -> PathBuf {
    let root = std::env::temp_dir();
    let (prefix, me) = (format!("edgegen-{group}-"), std::process::id());
    let suffix = format!("-{name}");
    for e in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        let file = e.file_name();
        let pid = file
            .to_str()
            .and_then(|f| f.strip_prefix(&prefix)?.strip_suffix(&suffix))
            .and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != me
            && std::path::Path::new("/proc/self").exists()
            && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let d = root.join(format!("{prefix}{me}{suffix}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `p` as the `&str` a command line takes (the tests' paths are UTF-8).
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Exports `run` at `precision` (with `extra` flags, such as `--last`) to
/// `{stem}.gguf` and `{stem}.onnx` in `dir`, validates the pair on `n`
/// inputs, and returns the GGUF's path and the validation's JSON report,
/// whose `ok` it has asserted.
pub fn export_and_validate(
    run: &Path,
    dir: &Path,
    stem: &str,
    precision: &str,
    extra: &[&str],
    n: usize,
) -> (PathBuf, serde_json::Value) {
    let (gguf, onnx) = (
        dir.join(format!("{stem}.gguf")),
        dir.join(format!("{stem}.onnx")),
    );
    let (g, o, n) = (s(&gguf), s(&onnx), n.to_string());
    let mut args = vec![
        "export",
        s(run),
        "--precision",
        precision,
        "--gguf",
        g,
        "--onnx",
        o,
    ];
    args.extend(extra);
    ok(&args);
    let report = ok(&["validate", o, g, "--n", &n, "--json"]);
    let v: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert_eq!(v["ok"], true, "{stem} at {precision}: {v}");
    (gguf, v)
}

/// A tiny GAN on the built-in sample, for tests that need a GAN run
/// quickly (add `--epochs`, `-o` and any more flags).
#[allow(dead_code)]
pub const TINY_GAN: [&str; 14] = [
    "--max-train",
    "256",
    "--latent",
    "8",
    "--g-width",
    "8",
    "--d-width",
    "4",
    "--batch",
    "64",
    "--threads",
    "2",
    "--quiet",
    "--json",
];

/// A tiny VAE trained into `dir/run` (500 images, one epoch, batch 50, two
/// threads) with `extra` flags; returns the run folder.
pub fn train_vae(dir: &Path, extra: &[&str]) -> PathBuf {
    let run_dir = dir.join("run");
    let out = run_dir.to_str().expect("a UTF-8 temp path");
    let mut args = vec![
        "train",
        "vae",
        "--max-train",
        "500",
        "--epochs",
        "1",
        "--batch",
        "50",
        "--threads",
        "2",
        "--quiet",
        "-o",
        out,
    ];
    args.extend(extra);
    ok(&args);
    run_dir
}

/// The flags of a tiny text model: one block of width 16, a context of 16.
pub const TINY_TEXT: [&str; 16] = [
    "--layers",
    "1",
    "--dim",
    "16",
    "--heads",
    "2",
    "--context",
    "16",
    "--batch",
    "4",
    "--threads",
    "2",
    "--sample-tokens",
    "12",
    "--eval-interval",
    "3",
];

/// A tiny audio model's flags, at a constant rate, so that a run resumed
/// with more --iters takes the same steps (a cosine schedule stretches to
/// the new length).
pub const TINY_AUDIO: [&str; 22] = [
    "--lr",
    "1e-2",
    "--schedule",
    "constant",
    "--warmup-steps",
    "0",
    "--embed",
    "8",
    "--hidden",
    "16",
    "--window",
    "32",
    "--batch",
    "4",
    "--threads",
    "2",
    "--eval-interval",
    "5",
    "--sample-seconds",
    "0.1",
    "--seed",
    "3",
];
