//! Issue 4's speed benchmark: one 784-400-20 VAE decoder, batch 1, one
//! thread, through edgegen-runtime, ONNX Runtime (the `ort` crate, 1 intra
//! thread) and tract, side by side in one run, per weight precision; and
//! the runtime against the time it takes just to read its weights from
//! cache (L2 here), measured in the same rounds.
//!
//!   cargo bench -p edgegen --bench runtime
//!
//! The engines take turns within each round (this machine's speed drifts by
//! tens of percent over seconds), so every ratio is the median over rounds
//! of a ratio measured under the same conditions; times are the median of
//! 15 rounds of the mean time per call.

use edgegen::bench::{ReadFloor, interleaved};
use edgegen::export::{self, Part, Precision};
use edgegen::models::vae::{Vae, VaeConfig};
use edgegen::rng::Rng;
use edgegen::validate::{ort::OrtModel, tract::TractModel};
use edgegen_runtime::models::Model;
use std::hint::black_box;

fn main() {
    let cfg = VaeConfig {
        image_shape: [1, 28, 28],
        hidden: vec![400],
        latent: 20,
        n_classes: 0,
        likelihood: "bernoulli".into(),
        activation: "relu".into(),
        label_every_layer: false,
    };
    let m = Vae::new(cfg).unwrap();
    let mut p = vec![0f32; m.n_params()];
    m.init(&mut p, &mut Rng::new(1));
    let mut rng = Rng::new(2);
    let z: Vec<f32> = (0..20).map(|_| rng.normal()).collect();
    println!(
        "VAE decoder 20-400-784, batch 1, 1 thread; microseconds per call, engines in turn, medians of 15 rounds"
    );
    println!(
        "{:<6} {:>9} {:>9} {:>9} {:>9} {:>10} {:>10} {:>9} {:>10}",
        "", "weights", "runtime", "ORT", "tract", "rt/ORT", "rt/tract", "read", "rt/read"
    );
    for prec in [Precision::F32, Precision::F16, Precision::Q8_0] {
        let gguf = export::gguf::vae_to_gguf(&m, &p, Part::Decoder, prec, "bench").unwrap();
        let onnx = export::onnx::vae_to_onnx(&m, &p, Part::Decoder, prec, "bench").unwrap();
        let Model::VaeDecoder(dec) = Model::from_gguf(&gguf).unwrap() else {
            unreachable!()
        };
        let mut scratch = vec![0f32; dec.scratch_len()];
        let mut out = vec![0f32; 784];
        let mut ort = OrtModel::new(&onnx).expect("ONNX Runtime (pip install onnxruntime)");
        let inputs = edgegen::validate::vae::inputs("z", z.clone(), 20, &[]);
        let tract = TractModel::new(&onnx, &inputs).unwrap();
        let floor = ReadFloor::new(dec.weight_bytes());
        let r = interleaved(
            &mut [
                &mut || {
                    dec.decode(black_box(&z), None, &mut scratch, &mut out)
                        .unwrap()
                },
                &mut || drop(black_box(ort.run(&inputs, &["x"]).unwrap())),
                &mut || drop(black_box(tract.run(&inputs).unwrap())),
                &mut || floor.read(),
            ],
            1000,
            15,
        );
        let (rt, ort_us, tr_us) = (r[0].us, r[1].us, r[2].us);
        let wbytes = dec.weight_bytes();
        let bound = r[3].us;
        println!(
            "{:<6} {:>8}K {:>9.2} {:>9.2} {:>9.2} {:>9.2}x {:>9.2}x {:>9.2} {:>9.2}x",
            format!("{prec:?}").to_lowercase(),
            wbytes / 1024,
            rt,
            ort_us,
            tr_us,
            r[1].first_over_this,
            r[2].first_over_this,
            bound,
            r[3].first_over_this
        );
    }
}
