//! Issue 10's training-speed benchmark: nanoGPT's CPU "baby" config (4
//! blocks, 4 heads, dim 128, context 64, batch 12, bytes, tied; AdamW
//! (0.9, 0.99), decay 0.1, 100 warm-up steps then cosine, clip 1) on Tiny
//! Shakespeare, trained by edgegen and by the PyTorch twin
//! (`bench/pytorch_text.py`), in turn, in one run, on the same threads.
//!
//!   cargo bench -p edgegen --bench text
//!
//! Environment: `EDGEGEN_DATASETS` (default `../shared/datasets`),
//! `EDGEGEN_BENCH_ITERS` (default 2000, the run), `EDGEGEN_BENCH_ROUNDS`
//! (default 3: each round is one whole run of each engine),
//! `EDGEGEN_BENCH_THREADS` (default 2). Reports the median training seconds
//! (the steps alone: validation excluded on both sides) and their ratio,
//! and each side's final validation loss.

use edgegen::bench::{env_or, median};
use edgegen::train::config::TrainConfig;
use edgegen::train::run::{RunOptions, run};
use edgegen::train::text::{TextSettings, TextTrainer};
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let datasets = std::env::var("EDGEGEN_DATASETS")
        .map(PathBuf::from)
        .unwrap_or(root.join("../shared/datasets"));
    let text = datasets.join("text/tinyshakespeare.txt");
    assert!(
        text.is_file(),
        "{} is missing: set EDGEGEN_DATASETS",
        text.display()
    );
    let iters: u64 = env_or("EDGEGEN_BENCH_ITERS", 2000);
    let rounds: usize = env_or("EDGEGEN_BENCH_ROUNDS", 3);
    let threads: usize = env_or("EDGEGEN_BENCH_THREADS", 2);
    let (mut ours, mut theirs) = (vec![], vec![]);
    let (mut our_loss, mut their_loss) = (vec![], vec![]);
    let mut torch_version = String::from("not run");
    for round in 0..rounds {
        let cfg = TrainConfig {
            data: Some(text.to_string_lossy().into_owned()),
            threads,
            seed: round as u64 + 1,
            text: Some(TextSettings {
                iters,
                // One validation, at the end: the twin validates once.
                eval_interval: iters,
                sample_tokens: 0,
                ..TextSettings::default()
            }),
            ..TrainConfig::for_family(edgegen::models::Family::Text)
        };
        let out = std::env::temp_dir().join(format!("edgegen-bench-text-{}", std::process::id()));
        let m = run::<TextTrainer>(
            cfg,
            &RunOptions {
                out: out.clone(),
                quiet: true,
                force: true,
                ..Default::default()
            },
        )
        .expect("training");
        ours.push(m.iter().map(|r| r.seconds).sum::<f64>());
        our_loss.push(m.last().map_or(f64::NAN, |r| r.get("val_loss_nats")));
        let _ = std::fs::remove_dir_all(&out);
        let py = Command::new(std::env::var("EDGEGEN_PYTHON").unwrap_or("python3".into()))
            .arg(root.join("bench/pytorch_text.py"))
            .args([
                "--data",
                text.to_str().unwrap(),
                "--threads",
                &threads.to_string(),
                "--iters",
                &iters.to_string(),
                "--seed",
                &(1337 + round).to_string(),
                "--json",
            ])
            .output();
        match py {
            Ok(o) if o.status.success() => {
                let j: serde_json::Value =
                    serde_json::from_slice(&o.stdout).expect("the PyTorch twin prints JSON");
                torch_version = j["torch"].to_string();
                theirs.push(j["train_seconds"].as_f64().unwrap());
                their_loss.push(j["val_loss_nats"].as_f64().unwrap());
            }
            Ok(o) => println!(
                "PyTorch twin failed (pip install torch to compare): {}",
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => println!("PyTorch twin not run: {e}"),
        }
        println!(
            "round {}: edgegen {:.1} s (val loss {:.6}), pytorch {:?} s (val loss {:?})",
            round + 1,
            ours[round],
            our_loss[round],
            theirs.get(round),
            their_loss.get(round)
        );
    }
    let isa = edgegen_runtime::kernels::isa();
    println!(
        "\nnanoGPT baby config, {iters} steps, batch 12 x 64, {threads} threads, {rounds} rounds, kernels {isa:?}"
    );
    println!(
        "{:<28} {:>14} {:>12} {:>14}",
        "engine", "train s", "ms/step", "val loss"
    );
    let o = median(ours);
    println!(
        "{:<28} {o:>14.1} {:>12.1} {:>14.4}",
        "edgegen",
        1e3 * o / iters as f64,
        median(our_loss)
    );
    if !theirs.is_empty() {
        let t = median(theirs);
        println!(
            "{:<28} {t:>14.1} {:>12.1} {:>14.4}",
            format!("pytorch {torch_version}"),
            1e3 * t / iters as f64,
            median(their_loss)
        );
        println!("edgegen / pytorch: {:.2} (target <= 0.8)", o / t);
        println!(
            "(validation: edgegen over all of the held-out text in windows; the twin over 200 random batches of it)"
        );
    }
}
