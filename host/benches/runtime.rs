//! Issue 4's speed benchmark: one 784-400-20 VAE decoder, batch 1, one
//! thread, through edgegen-runtime, ONNX Runtime (the `ort` crate, 1 intra
//! thread) and tract, side by side in one run, per weight precision; and
//! the runtime against the time it takes just to read its weights from L2.
//!
//!   cargo bench -p edgegen --bench runtime
//!
//! Reports the median of 9 rounds of the mean time per call.

use edgegen::export::{self, Part, Precision};
use edgegen::models::vae::{Vae, VaeConfig};
use edgegen::rng::Rng;
use edgegen::validate::{ort::OrtModel, tract::TractModel};
use edgegen_runtime::models::Model;
use std::hint::black_box;
use std::time::Instant;

fn median_us(mut f: impl FnMut(), calls: usize) -> f64 {
    for _ in 0..calls / 4 {
        f();
    }
    let mut r: Vec<f64> = (0..9)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..calls {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / calls as f64
        })
        .collect();
    r.sort_by(|a, b| a.partial_cmp(b).unwrap());
    r[4]
}

/// Read bandwidth from a buffer of `bytes` that stays in L2: the floor for
/// a batch-1 matrix-vector product, which touches every weight once.
fn l2_read_gbs(bytes: usize) -> f64 {
    let buf = vec![1u8; bytes];
    // A 4 KiB x that stays in L1, against 16 KiB slices of the buffer: the
    // only traffic from L2 is the buffer itself, read once.
    let x = vec![1f32; 1024];
    let us = median_us(
        || {
            for c in buf.chunks_exact(4096) {
                black_box(edgegen_runtime::kernels::dot_f32(
                    black_box(c),
                    black_box(&x),
                ));
            }
        },
        200,
    );
    (bytes / 4096 * 4096) as f64 / (us * 1e-6) / 1e9
}

fn main() {
    let cfg = VaeConfig {
        image_shape: [1, 28, 28],
        hidden: vec![400],
        latent: 20,
        n_classes: 0,
        likelihood: "bernoulli".into(),
        activation: "relu".into(),
    };
    let m = Vae::new(cfg).unwrap();
    let mut p = vec![0f32; m.n_params()];
    m.init(&mut p, &mut Rng::new(1));
    let mut rng = Rng::new(2);
    let z: Vec<f32> = (0..20).map(|_| rng.normal()).collect();
    println!(
        "VAE decoder 20-400-784, batch 1, 1 thread; median of 9 rounds, microseconds per call"
    );
    println!(
        "{:<6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9} {:>10}",
        "", "weights", "runtime", "ORT", "tract", "rt/ORT", "rt/tract", "L2 bound", "rt/bound"
    );
    for prec in [Precision::F32, Precision::F16, Precision::Q8_0] {
        let gguf = export::gguf::vae_to_gguf(&m, &p, Part::Decoder, prec, "bench").unwrap();
        let onnx = export::onnx::vae_to_onnx(&m, &p, Part::Decoder, prec, "bench").unwrap();
        let Model::VaeDecoder(dec) = Model::from_gguf(&gguf).unwrap() else {
            unreachable!()
        };
        let mut scratch = vec![0f32; dec.scratch_len()];
        let mut out = vec![0f32; 784];
        let rt = median_us(
            || {
                dec.decode(black_box(&z), None, &mut scratch, &mut out)
                    .unwrap()
            },
            2000,
        );
        let mut ort = OrtModel::new(&onnx).expect("ONNX Runtime (pip install onnxruntime)");
        let ort_us = median_us(|| drop(black_box(ort.decode(&z, 20, &[]).unwrap())), 2000);
        let tract = TractModel::new(&onnx, 1, 20, false).unwrap();
        let tr_us = median_us(|| drop(black_box(tract.decode(&z, &[]).unwrap())), 2000);
        let wbytes = dec.weight_bytes();
        let bound = wbytes as f64 / (l2_read_gbs(wbytes.next_multiple_of(128)) * 1e9) * 1e6;
        println!(
            "{:<6} {:>8}K {:>9.2} {:>9.2} {:>9.2} {:>9.2}x {:>9.2}x {:>9.2} {:>9.2}x",
            format!("{prec:?}").to_lowercase(),
            wbytes / 1024,
            rt,
            ort_us,
            tr_us,
            rt / ort_us,
            rt / tr_us,
            bound,
            rt / bound
        );
    }
}
