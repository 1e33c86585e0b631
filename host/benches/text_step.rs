//! Where a training iteration of the byte-level transformer at nanoGPT's
//! "baby" config (4 layers, 4 heads, dim 128, context 64, batch 12, 256
//! symbols, tied output) spends its time, as medians over iterations, with
//! the PyTorch twin's whole iteration beside it when torch is installed.
//!
//!   cargo bench -p edgegen --bench text_step -- [threads] [iters]
use edgegen::bench::median;
use edgegen::models::transformer::{Acts, Transformer, TransformerConfig};
use edgegen::nn::gemm::Threads;
use edgegen::nn::loss::softmax_cross_entropy_in_place;
use edgegen::nn::optim::{AdamConfig, adam_step_layout, clip_grad_norm};
use edgegen::rng::Rng;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn main() {
    let arg = |i: usize, d: usize| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let threads = arg(1, 2);
    let th = Threads(edgegen::train::run::init_threads(threads));
    let iters = arg(2, 100);
    let m = Transformer::new(TransformerConfig {
        vocab: 256,
        context: 64,
        dim: 128,
        layers: 4,
        heads: 4,
        kv_heads: 4,
        ffn: 512,
        n_classes: 0,
        tied: true,
    })
    .unwrap();
    let mut rng = Rng::new(1);
    let mut p = vec![0f32; m.layout.total()];
    m.init(&mut p, &mut rng);
    let (b, t, v) = (12, 64, 256);
    let n = b * t;
    let mut a = Acts::new(&m, b);
    let mut g = vec![0f32; p.len()];
    let (mut mo, mut vo) = (vec![0f32; p.len()], vec![0f32; p.len()]);
    let cfg = AdamConfig {
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
        weight_decay: 0.1,
    };
    let mut loss = vec![0f32; n];
    let mut targets = vec![0u32; n];
    let names = ["forward", "loss", "backward", "clip + AdamW", "iteration"];
    let mut rows: Vec<Vec<f64>> = vec![vec![]; names.len()];
    for it in 0..iters {
        for (x, y) in a.tokens[..n].iter_mut().zip(targets.iter_mut()) {
            *x = rng.below(v) as u32;
            *y = rng.below(v) as u32;
        }
        let t0 = Instant::now();
        m.forward(&p, &mut a, b, t, th);
        let t1 = Instant::now();
        softmax_cross_entropy_in_place(
            &mut loss,
            &mut a.logits[..n * v],
            &targets,
            v,
            1.0 / n as f32,
        );
        let t2 = Instant::now();
        m.backward(&p, &mut g, &mut a, b, t, th);
        let t3 = Instant::now();
        clip_grad_norm(&mut g, 1.0);
        adam_step_layout(
            &cfg,
            &m.layout,
            &mut p,
            &mut g,
            &mut mo,
            &mut vo,
            it as u64 + 1,
            1e-3,
        );
        let t4 = Instant::now();
        for (r, (x, y)) in rows
            .iter_mut()
            .zip([(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t0, t4)])
        {
            r.push((y - x).as_secs_f64() * 1e3);
        }
    }
    println!(
        "baby transformer iteration (B 12, T 64, C 128, L 4), {threads} threads, median ms of {iters}"
    );
    for (name, r) in names.iter().zip(rows) {
        println!("{name:<16} {:>8.2}", median(r));
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let data = std::env::var("EDGEGEN_DATASETS")
        .map(PathBuf::from)
        .unwrap_or(root.join("../shared/datasets"))
        .join("text/tinyshakespeare.txt");
    let py = Command::new(std::env::var("EDGEGEN_PYTHON").unwrap_or("python3".into()))
        .arg(root.join("bench/pytorch_text.py"))
        .args([
            "--data",
            &data.to_string_lossy(),
            "--threads",
            &threads.to_string(),
        ])
        .args([
            "--iters",
            &iters.max(20).to_string(),
            "--eval-batches",
            "1",
            "--json",
        ])
        .output();
    match py {
        Ok(o) if o.status.success() => {
            let j: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
            println!(
                "pytorch {} iteration {:>8.2} (mean over {iters})",
                j["torch"], j["ms_per_iter"]
            );
        }
        Ok(o) => println!(
            "PyTorch twin failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => println!("PyTorch twin not run: {e}"),
    }
}
