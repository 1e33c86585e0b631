//! GFLOP/s of the GEMM shapes one VAE 784-400-20 training step runs,
//! sequential and on 2 threads; `-- gan` the DCGAN's, `-- text` the baby
//! transformer's. `cargo bench -p edgegen --bench gemm_shapes`
use edgegen::nn::gemm::{Threads, gemm};
use std::time::Instant;

fn main() {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build_global();
    // (name, m, n, k, ta, tb)
    let shapes = [
        ("enc fwd  x W^T", 128, 400, 784, false, true),
        ("dec fwd  h W^T", 128, 784, 400, false, true),
        ("dec dX   g W", 128, 400, 784, false, false),
        ("dec dW   g^T h", 784, 400, 128, true, false),
        ("enc dW   g^T x", 400, 784, 128, true, false),
        ("half enc fwd", 64, 400, 784, false, true),
        ("half dec fwd", 64, 784, 400, false, true),
        ("half dec dX", 64, 400, 784, false, false),
        ("half dec dW", 784, 400, 64, true, false),
        ("half enc dW", 400, 784, 64, true, false),
        // The DCGAN step's (batch 128): conv.1 of D and up.0 of G.
        ("D conv fwd W cols", 128, 6272, 1024, false, false),
        ("D conv dW dy cols^T", 128, 1024, 6272, false, true),
        ("D conv dcols W^T dy", 1024, 6272, 128, true, false),
        ("G up fwd W^T x", 1024, 6272, 128, true, false),
        ("G up dW x dcols^T", 128, 1024, 6272, false, true),
        ("G up dx W dcols", 128, 6272, 1024, false, false),
        ("D conv fwd 1 image", 128, 49, 1024, false, false),
        ("D conv fwd 16 images", 128, 784, 1024, false, false),
        ("D conv dW 1 image", 128, 1024, 49, false, true),
        ("D conv dcols 1 image", 1024, 49, 128, true, false),
        ("D conv dW 4 images", 128, 1024, 196, false, true),
        ("G up fwd 1 image", 1024, 49, 128, true, false),
        ("G up dW 1 image", 128, 1024, 49, false, true),
        ("G up dx 1 image", 128, 49, 1024, false, false),
        ("D fwd 1 image P-major", 49, 128, 1024, true, true),
        ("D fwd 2 images P-major", 98, 128, 1024, true, true),
        ("D fwd 8 images P-major", 392, 128, 1024, false, true),
        ("D fwd 8 images C-major", 128, 392, 1024, false, false),
        ("D fwd 1 image C-major N=64", 128, 64, 1024, false, false),
        ("D fwd 1 image P-major M=64", 64, 128, 1024, true, true),
        // The baby transformer's (B 12 x T 64 = 768 rows, C 128, F 512).
        ("T qkv fwd x W^T", 768, 384, 128, false, true),
        ("T up fwd x W^T", 768, 512, 128, false, true),
        ("T down fwd h W^T", 768, 128, 512, false, true),
        ("T logits fwd x E^T", 768, 256, 128, false, true),
        ("T qkv dX g W", 768, 128, 384, false, false),
        ("T down dX g W", 768, 512, 128, false, false),
        ("T qkv dW g^T x", 384, 128, 768, true, false),
        ("T down dW g^T h", 128, 512, 768, true, false),
    ];
    let only = |tag: &str| std::env::args().any(|a| a == tag);
    for (name, m, n, k, ta, tb) in shapes {
        if only("gan") && !name.starts_with('D') && !name.starts_with('G') {
            continue;
        }
        if only("text") && !name.starts_with("T ") {
            continue;
        }
        let a = vec![0.5f32; m * k];
        let b = vec![0.25f32; k * n];
        let mut c = vec![0f32; m * n];
        for th in [1, 2] {
            let reps = (400_000_000 / (m * n * k)).clamp(3, 400);
            let mut times = vec![];
            for _ in 0..5 {
                let t = Instant::now();
                for _ in 0..reps {
                    gemm(&mut c, &a, ta, &b, tb, (m, n, k), 1.0, true, Threads(th));
                }
                times.push(t.elapsed().as_secs_f64() / reps as f64);
            }
            times.sort_by(|x, y| x.partial_cmp(y).unwrap());
            let med = times[2];
            println!(
                "{name:<16} {th} thr: {:7.1} us  {:6.1} GFLOP/s",
                med * 1e6,
                2.0 * (m * n * k) as f64 / med / 1e9
            );
        }
    }
}
