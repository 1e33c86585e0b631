//! ONNX Runtime through the `ort` crate, loaded at run time from the
//! Python `onnxruntime` package (or `ORT_DYLIB_PATH`): nothing is downloaded.

use super::io::{Data, Input, Outputs};
use anyhow::{Context, Result, anyhow, bail};
use ort::session::Session;
use ort::value::Tensor;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// How to get ONNX Runtime, for error messages.
pub const INSTALL_HINT: &str = "install it with `python3 -m pip install onnxruntime==1.32.0`, \
     or set ORT_DYLIB_PATH to a libonnxruntime.so";

/// Finds libonnxruntime: `ORT_DYLIB_PATH`, else the `onnxruntime` Python
/// package's `capi/libonnxruntime.so*`.
pub fn find_library() -> Result<PathBuf> {
    if let Ok(p) = std::env::var("ORT_DYLIB_PATH") {
        let p = PathBuf::from(p);
        if !p.is_file() {
            bail!(
                "ORT_DYLIB_PATH={} is not a file; {INSTALL_HINT}",
                p.display()
            );
        }
        return Ok(p);
    }
    let python = std::env::var("EDGEGEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args([
            "-c",
            // Locate the package without importing it: the import loads
            // numpy, whose BLAS threads spin for a while after exit and
            // disturb timings taken in the same process.
            "import importlib.util as u; \
             print(u.find_spec('onnxruntime').submodule_search_locations[0])",
        ])
        .output()
        .map_err(|e| {
            anyhow!("ONNX Runtime not found: cannot run {python} ({e}); {INSTALL_HINT}")
        })?;
    if !out.status.success() {
        bail!(
            "ONNX Runtime not found: the Python package onnxruntime is not installed; {INSTALL_HINT}"
        );
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("capi");
    let mut libs: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("{}: cannot list", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so"))
        })
        .collect();
    libs.sort();
    libs.pop().ok_or_else(|| {
        anyhow!(
            "{}: no libonnxruntime.so* in the onnxruntime package; {INSTALL_HINT}",
            dir.display()
        )
    })
}

/// ONNX Runtime's own log lines (coloured, in its words) stay off the
/// terminal: edgegen reports every failure itself. `ORT_LOG=warning` (or
/// `error`, `info`, `verbose`) shows them on stderr for debugging.
fn log(level: ort::logging::LogLevel, _: &str, _: &str, _: &str, message: &str) {
    use ort::logging::LogLevel::*;
    let min = match std::env::var("ORT_LOG").as_deref() {
        Ok("verbose") => Verbose,
        Ok("info") => Info,
        Ok("warning") => Warning,
        Ok("error") => Error,
        Ok("fatal") => Fatal,
        _ => return,
    };
    if level >= min {
        eprintln!("onnxruntime {level:?}: {message}");
    }
}

fn environment() -> Result<&'static ort::environment::Environment> {
    static ENV: OnceLock<std::result::Result<ort::environment::Environment, String>> =
        OnceLock::new();
    ENV.get_or_init(|| {
        let lib = find_library().map_err(|e| format!("{e:#}"))?;
        ort::init_from(&lib)
            .map_err(|e| format!("{}: cannot load ONNX Runtime: {e}", lib.display()))?
            .with_name("edgegen")
            .with_logger(std::sync::Arc::new(log))
            .build()
            .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
    })
    .as_ref()
    .map_err(|e| anyhow!("{e}"))
}

/// A loaded ONNX model, run on one thread.
pub struct OrtModel {
    session: Session,
}

impl OrtModel {
    /// Loads ONNX bytes.
    pub fn new(onnx: &[u8]) -> Result<Self> {
        let env = environment()?;
        let session = Session::builder(env)
            .map_err(|e| anyhow!("ONNX Runtime session: {e}"))?
            .with_intra_threads(1)
            .map_err(|e| anyhow!("ONNX Runtime session options: {e}"))?
            .commit_from_memory(onnx)
            .map_err(|e| anyhow!("ONNX Runtime refused the model: {e}"))?;
        Ok(Self { session })
    }

    /// Runs the graph on named, typed `inputs`, and returns the `outputs`
    /// asked for, by name.
    pub fn run(&mut self, inputs: &[Input], outputs: &[&str]) -> Result<Outputs> {
        let mut feed: Vec<(String, ort::value::DynValue)> = Vec::with_capacity(inputs.len());
        for i in inputs {
            let v = match &i.data {
                Data::F32(d) => {
                    Tensor::from_array((i.shape.clone(), d.clone())).map(|t| t.into_dyn())
                }
                Data::I64(d) => {
                    Tensor::from_array((i.shape.clone(), d.clone())).map(|t| t.into_dyn())
                }
            }
            .map_err(|e| anyhow!("{} tensor: {e}", i.name))?;
            feed.push((i.name.clone(), v));
        }
        let res = self
            .session
            .run(feed)
            .map_err(|e| anyhow!("ONNX Runtime run: {e}"))?;
        let mut out = Vec::new();
        for name in outputs {
            let v = res
                .get(*name)
                .ok_or_else(|| anyhow!("ONNX Runtime: the model has no output {name}"))?;
            let (_, x) = v
                .try_extract_tensor::<f32>()
                .map_err(|e| anyhow!("ONNX Runtime output {name}: {e}"))?;
            out.push((name.to_string(), x.to_vec()));
        }
        Ok(out)
    }
}
