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
