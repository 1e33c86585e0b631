//! Where a VAE 784-400-20 training step spends its time, phase by phase.
//! `cargo bench -p edgegen --bench vae_step -- [threads]`
use edgegen::models::vae::{Vae, VaeActs, VaeConfig};
use edgegen::nn::gemm::Threads;
use edgegen::nn::optim::{AdamConfig, adam_step};
use edgegen::rng::Rng;
use std::time::Instant;

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let th = Threads(edgegen::train::run::init_threads(threads));
    let m = Vae::new(VaeConfig {
        image_shape: [1, 28, 28],
        hidden: vec![400],
        latent: 20,
        n_classes: 0,
        likelihood: "bernoulli".into(),
        activation: "relu".into(),
        label_every_layer: false,
    })
    .unwrap();
    let mut rng = Rng::new(1);
    let n = 128;
    let mut p = vec![0.0; m.n_params()];
    m.init(&mut p, &mut rng);
    let mut g = vec![0.0; p.len()];
    let (mut mm, mut vv) = (vec![0.0; p.len()], vec![0.0; p.len()]);
    let mut a = VaeActs::new(&m, n);
    for x in a.x.iter_mut() {
        *x = if rng.uniform() < 0.2 {
            rng.uniform()
        } else {
            0.0
        };
    }
    let steps = 300;
    let mut t = [0f64; 5];
    for s in 0..steps {
        let t0 = Instant::now();
        a.draw_eps(&mut rng, n, 20);
        let t1 = Instant::now();
        m.forward(&p, &mut a, n, true, th);
        let t2 = Instant::now();
        m.backward(&p, &mut g, &mut a, n, th);
        let t3 = Instant::now();
        adam_step(
            &AdamConfig::default(),
            &mut p,
            &mut g,
            &mut mm,
            &mut vv,
            s as u64 + 1,
            1e-3,
        );
        let t4 = Instant::now();
        if s >= 20 {
            t[0] += (t1 - t0).as_secs_f64();
            t[1] += (t2 - t1).as_secs_f64();
            t[2] += (t3 - t2).as_secs_f64();
            t[3] += (t4 - t3).as_secs_f64();
        }
    }
    let k = 1e3 / (steps - 20) as f64;
    println!(
        "threads {}: per step  setup {:.3} ms  forward {:.3} ms  backward {:.3} ms  adam {:.3} ms  total {:.3} ms -> {:.2} s per 469-step epoch",
        th.0,
        t[0] * k,
        t[1] * k,
        t[2] * k,
        t[3] * k,
        t.iter().sum::<f64>() * k,
        t.iter().sum::<f64>() * k * 469.0 / 1e3
    );
}
