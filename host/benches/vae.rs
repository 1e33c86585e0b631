//! Issue 3's benchmark: the MLP VAE 784-400-20 (ReLU, Bernoulli, batch 128,
//! Adam 1e-3) on the full MNIST training set, trained by edgegen in both
//! parallel modes and by the PyTorch twin (`bench/pytorch_vae.py`), one
//! after the other in one run, on the same threads.
//!
//!   cargo bench -p edgegen --bench vae
//!
//! Environment: `EDGEGEN_DATASETS` (default `../shared/datasets`),
//! `EDGEGEN_BENCH_EPOCHS` (default 10), `EDGEGEN_BENCH_THREADS` (default 2).
//! Reports the median seconds per training epoch (without the test pass)
//! and the test loss after the last epoch (BCE summed over pixels plus KL,
//! z sampled once, mean over the 10,000 test images: PyTorch's definition).

use edgegen::bench::{env_or, median};
use edgegen::train::EpochMetrics;
use edgegen::train::config::TrainConfig;
use edgegen::train::run::{RunOptions, run};
use edgegen::train::vae::{Parallel, VaeSettings, VaeTrainer};
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let datasets = std::env::var("EDGEGEN_DATASETS")
        .map(PathBuf::from)
        .unwrap_or(root.join("../shared/datasets"));
    let mnist = datasets.join("mnist");
    assert!(
        mnist.is_dir(),
        "{} is missing: set EDGEGEN_DATASETS",
        mnist.display()
    );
    let epochs: usize = env_or("EDGEGEN_BENCH_EPOCHS", 10);
    let threads: usize = env_or("EDGEGEN_BENCH_THREADS", 2);
    let mut rows: Vec<(String, f64, f64)> = vec![];
    for mode in [Parallel::Batch, Parallel::Gemm] {
        let cfg = TrainConfig {
            data: Some(mnist.to_string_lossy().into_owned()),
            epochs,
            threads,
            val_frac: 0.0,
            seed: 1,
            vae: Some(VaeSettings {
                parallel: mode,
                ..Default::default()
            }),
            ..TrainConfig::default()
        };
        let out =
            std::env::temp_dir().join(format!("edgegen-bench-vae-{mode:?}-{}", std::process::id()));
        let m: Vec<EpochMetrics> = run::<VaeTrainer>(
            cfg,
            &RunOptions {
                out: out.clone(),
                quiet: true,
                ..Default::default()
            },
        )
        .expect("training");
        let med = median(m.iter().map(|e| e.seconds).collect());
        let test = m.last().unwrap().get("val_loss");
        println!(
            "edgegen ({mode:?}): epochs {:?}",
            m.iter()
                .map(|e| (e.seconds * 100.0).round() / 100.0)
                .collect::<Vec<_>>()
        );
        rows.push((
            format!("edgegen, parallel={mode:?}").to_lowercase(),
            med,
            test,
        ));
        let _ = std::fs::remove_dir_all(out);
    }
    let py = Command::new(std::env::var("EDGEGEN_PYTHON").unwrap_or("python3".into()))
        .arg(root.join("bench/pytorch_vae.py"))
        .args([
            "--data",
            mnist.to_str().unwrap(),
            "--epochs",
            &epochs.to_string(),
            "--threads",
            &threads.to_string(),
            "--json",
        ])
        .output();
    let torch = match py {
        Ok(o) if o.status.success() => {
            let j: serde_json::Value =
                serde_json::from_slice(&o.stdout).expect("PyTorch twin prints JSON");
            println!("pytorch {}: epochs {}", j["torch"], j["epoch_seconds"]);
            Some((
                j["median_epoch_seconds"].as_f64().unwrap(),
                j["test_loss_nats"].as_f64().unwrap(),
            ))
        }
        Ok(o) => {
            println!(
                "PyTorch twin failed (pip install torch to compare): {}",
                String::from_utf8_lossy(&o.stderr)
            );
            None
        }
        Err(e) => {
            println!("PyTorch twin not run: {e}");
            None
        }
    };
    if let Some((s, l)) = torch {
        rows.push(("pytorch (bench/pytorch_vae.py)".into(), s, l));
    }
    println!("\nVAE 784-400-20, {epochs} epochs, batch 128, {threads} threads, full MNIST");
    println!(
        "{:<34} {:>12} {:>12} {:>16}",
        "engine", "s/epoch", "vs pytorch", "test loss nats"
    );
    for (name, s, l) in &rows {
        let ratio = torch.map_or("-".to_string(), |(t, _)| format!("{:.2}x", s / t));
        println!("{name:<34} {s:>12.3} {ratio:>12} {l:>16.2}");
    }
}
