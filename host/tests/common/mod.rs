//! Helpers the `edgegen` end-to-end tests share.
#![allow(dead_code)]

use std::path::PathBuf;
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

/// A fresh, empty folder for one test.
pub fn tmp(group: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("edgegen-{group}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
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
