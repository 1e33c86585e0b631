//! Issue 9's training-speed benchmark: the DCGAN at the reference shapes
//! (z 64; G 64 -> 128x7x7 -> 64x14x14 -> 1x28x28; D 1 -> 64 -> 128 (BN)
//! -> 1; non-saturating loss, Adam 2e-4 (0.5, 0.999), batch 128) trained
//! by edgegen and by the PyTorch twin (`bench/pytorch_gan.py`), in turn,
//! in one run, on the same threads and images.
//!
//!   cargo bench -p edgegen --bench gan
//!
//! Environment: `EDGEGEN_DATASETS` (default `../shared/datasets`),
//! `EDGEGEN_BENCH_IMAGES` (default 60000: whole epochs; on one day 100-step
//! epochs scaled up gave edgegen / PyTorch 1.46-1.50 against 1.19 for
//! whole ones, the same afternoon; why short epochs favour PyTorch is
//! not known),
//! `EDGEGEN_BENCH_ROUNDS` (default 3: each round is one
//! epoch of each engine, so that both see the same machine state),
//! `EDGEGEN_BENCH_THREADS` (default 2). Reports median seconds per epoch,
//! scaled to the 60,000 MNIST training images, and their ratio.

use edgegen::bench::{env_or, median};
use edgegen::train::config::TrainConfig;
use edgegen::train::gan::{GanSettings, GanTrainer};
use edgegen::train::run::{RunOptions, run};
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
    let images: usize = env_or("EDGEGEN_BENCH_IMAGES", 60000);
    let rounds: usize = env_or("EDGEGEN_BENCH_ROUNDS", 3);
    let threads: usize = env_or("EDGEGEN_BENCH_THREADS", 2);
    let scale = 60000.0 / images as f64;
    let (mut ours, mut theirs) = (vec![], vec![]);
    let mut torch_version = String::from("not run");
    for round in 0..rounds {
        let cfg = TrainConfig {
            data: Some(mnist.to_string_lossy().into_owned()),
            epochs: 1,
            threads,
            max_train: Some(images),
            seed: round as u64 + 1,
            // The twin keeps no moving average: neither does this side.
            gan: Some(GanSettings {
                ema: 0.0,
                // The reference discriminator ends in one dense layer.
                d_hidden: 0,
                ..GanSettings::default()
            }),
            ..TrainConfig::for_family(edgegen::models::Family::Gan)
        };
        let g = cfg.gan.as_ref().unwrap();
        assert_eq!(
            (
                g.latent,
                g.g_width,
                g.d_width,
                g.d_hidden,
                g.loss.as_str(),
                cfg.batch
            ),
            (64, 128, 64, 0, "ns", 128),
            "the reference shapes"
        );
        let out = std::env::temp_dir().join(format!("edgegen-bench-gan-{}", std::process::id()));
        let m = run::<GanTrainer>(
            cfg,
            &RunOptions {
                out: out.clone(),
                quiet: true,
                force: true,
                ..Default::default()
            },
        )
        .expect("training");
        ours.push(m[0].seconds * scale);
        let _ = std::fs::remove_dir_all(&out);
        let py = Command::new(std::env::var("EDGEGEN_PYTHON").unwrap_or("python3".into()))
            .arg(root.join("bench/pytorch_gan.py"))
            .args([
                "--data",
                mnist.to_str().unwrap(),
                "--epochs",
                "1",
                "--threads",
                &threads.to_string(),
                "--max-train",
                &images.to_string(),
                "--json",
            ])
            .output();
        match py {
            Ok(o) if o.status.success() => {
                let j: serde_json::Value =
                    serde_json::from_slice(&o.stdout).expect("the PyTorch twin prints JSON");
                torch_version = j["torch"].to_string();
                theirs.push(j["median_full_epoch_seconds"].as_f64().unwrap());
            }
            Ok(o) => println!(
                "PyTorch twin failed (pip install torch to compare): {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => println!("PyTorch twin not run: {e}"),
        }
        println!(
            "round {}: edgegen {:.1} s, pytorch {:?} s per 60,000 images",
            round + 1,
            ours[round],
            theirs.get(round)
        );
    }
    let isa = edgegen_runtime::kernels::isa();
    println!(
        "\nDCGAN (reference shapes), batch 128, {threads} threads, {images} MNIST images per epoch, {rounds} rounds, kernels {isa:?}"
    );
    println!("{:<28} {:>16}", "engine", "s per 60k images");
    let o = median(ours);
    println!("{:<28} {o:>16.1}", "edgegen");
    if !theirs.is_empty() {
        let t = median(theirs);
        println!("{:<28} {t:>16.1}", format!("pytorch {torch_version}"));
        println!("edgegen / pytorch: {:.2} (target <= 0.8)", o / t);
    }
}
