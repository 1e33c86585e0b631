//! The aarch64 Linux sampler (`examples/sampler-aarch64`), cross-built and
//! run under `qemu-aarch64`, where the NEON kernels run: its samples must
//! match the runtime's on this host. `scripts/test.sh` installs the target,
//! `gcc-aarch64-linux-gnu` and `qemu-user`.

use edgegen_format::{GgmlType, GgufWriter, arch};
use edgegen_runtime::models::Model;
use edgegen_runtime::sample::Rng;
use edgegen_tests::{repo_root, scratch_dir};
use std::process::Command;

#[test]
fn aarch64_sampler_matches_the_host() {
    let hp = arch::vae::Hparams {
        image_shape: [3, 4, 4],
        latent_dim: 5,
        hidden: [64, 0, 0, 0],
        n_hidden: 1,
        n_classes: 0,
        likelihood: arch::vae::Likelihood::Bernoulli,
        activation: arch::Activation::Relu,
    };
    let dir = scratch_dir("sampler-aarch64");
    let target = repo_root().join("target/sampler-test");
    let o = Command::new(env!("CARGO"))
        .current_dir(repo_root())
        .args([
            "build",
            "--locked",
            "-q",
            "--release",
            "-p",
            "edgegen-sampler",
            "--target",
            "aarch64-unknown-linux-gnu",
            "--target-dir",
        ])
        .arg(&target)
        .output()
        .expect("run cargo");
    assert!(
        o.status.success(),
        "cross build failed (run scripts/test.sh):\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bin = target.join("aarch64-unknown-linux-gnu/release/edgegen-sampler");
    for ty in [GgmlType::F32, GgmlType::F16, GgmlType::Q8_0] {
        let mut w = GgufWriter::new();
        hp.write(&mut w).unwrap();
        let mut r = Rng::new(5);
        let pad = |n: u64| {
            if ty == GgmlType::Q8_0 {
                n.div_ceil(32) * 32
            } else {
                n
            }
        };
        let w0: Vec<f32> = (0..pad(5) * 64).map(|_| r.normal() * 0.4).collect();
        let w1: Vec<f32> = (0..pad(64) * 48).map(|_| r.normal() * 0.2).collect();
        w.add_tensor("dec.0.weight", &[pad(5), 64], ty, &w0)
            .unwrap();
        w.add_tensor("dec.0.bias", &[64], GgmlType::F32, &[0.0; 64])
            .unwrap();
        w.add_tensor("dec.1.weight", &[pad(64), 48], ty, &w1)
            .unwrap();
        w.add_tensor("dec.1.bias", &[48], GgmlType::F32, &[0.1; 48])
            .unwrap();
        let bytes = w.to_bytes();
        let model = dir.join(format!("{ty:?}.gguf"));
        std::fs::write(&model, &bytes).unwrap();
        let out = Command::new("qemu-aarch64")
            .args(["-L", "/usr/aarch64-linux-gnu"])
            .arg(&bin)
            .arg(&model)
            .args(["--n", "3", "--seed", "9", "--out"])
            .arg(&dir)
            .output()
            .expect("run qemu-aarch64 (scripts/test.sh installs qemu-user)");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "sampler failed: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let Model::VaeDecoder(dec) = Model::from_gguf(&bytes).unwrap() else {
            unreachable!()
        };
        let mut rng = Rng::new(9);
        let (mut z, mut img, mut s) = ([0f32; 5], [0f32; 48], vec![0f32; dec.scratch_len()]);
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("sample ")).collect();
        assert_eq!(lines.len(), 3, "{text}");
        for l in lines {
            dec.sample(&mut rng, None, &mut z, &mut s, &mut img)
                .unwrap();
            let f: Vec<f32> = l
                .split_whitespace()
                .filter_map(|t| t.parse().ok())
                .collect();
            let sum: f32 = img.iter().sum();
            assert!(
                (f[1] - sum).abs() < 1e-4,
                "{ty:?}: aarch64 sum {} vs host {sum}",
                f[1]
            );
        }
        // A colour image came out as PPM of the right size.
        let ppm = std::fs::read(dir.join("sample-0.ppm")).unwrap();
        assert!(ppm.starts_with(b"P6\n4 4\n255\n") && ppm.len() == 11 + 48);
    }
}
