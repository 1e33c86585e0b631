//! `edgegen train gan`, `train classifier` and `eval --classifier` end to
//! end, on tiny models and the built-in sample so that they run in seconds.

mod common;

use common::{TINY_GAN, ok, run, s};
use edgegen::train::{checkpoint, gan};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp("gan", name)
}

/// A tiny, fast GAN on 256 images of the built-in sample.
fn train_gan(out: &Path, epochs: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["train", "gan"];
    args.extend(TINY_GAN);
    args.extend(["--epochs", epochs, "-o", s(out)]);
    args.extend(extra);
    serde_json::from_str(&ok(&args)).unwrap()
}

/// A tiny classifier on the built-in sample (6,000 images, one epoch, at
/// a constant rate: the default cosine schedule warms up for 200 steps).
/// Resumes the run in `dir` to `epochs`.
fn resume_to(dir: &Path, epochs: &str) {
    let o = ok(&[
        "train",
        "gan",
        "--resume",
        s(dir),
        "--epochs",
        epochs,
        "--quiet",
    ]);
    assert!(o.contains("run saved"), "{o}");
}

fn train_classifier(out: &Path) {
    ok(&[
        "train",
        "classifier",
        "--epochs",
        "1",
        "--schedule",
        "constant",
        "--widths",
        "8,16",
        "--features",
        "32",
        "--threads",
        "2",
        "--quiet",
        "-o",
        s(out),
    ]);
}

#[test]
fn a_gan_run_records_both_losses_resumes_exactly_and_draws_one_row_per_class() {
    let d = tmp("run");
    let m = train_gan(&d.join("a"), "2", &["--conditional", "--ema", "0.9"]);
    let rows = m.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    for r in rows {
        for k in [
            "d_loss",
            "g_loss",
            "d_real",
            "d_fake",
            "seconds",
            "samples_per_s",
        ] {
            assert!(r[k].as_f64().unwrap().is_finite(), "{k}: {r}");
        }
        // Non-saturating D loss: two softplus terms, at most ~2 log 2 at start.
        assert!(r["d_loss"].as_f64().unwrap() > 0.0);
        let (dr, df) = (r["d_real"].as_f64().unwrap(), r["d_fake"].as_f64().unwrap());
        assert!((0.0..=1.0).contains(&dr) && (0.0..=1.0).contains(&df));
    }
    for f in [
        "samples.png",
        "loss.png",
        "metrics.jsonl",
        "config.json",
        "best.safetensors",
    ] {
        assert!(d.join("a").join(f).exists(), "{f}");
    }
    // One row per class of 28-pixel images (scale 2, 8 columns).
    let img = image::open(d.join("a/samples.png")).unwrap();
    assert_eq!((img.width(), img.height()), (8 * 56 + 9, 10 * 56 + 11));

    // One epoch, then resumed to two: the same state, bit for bit, EMA and
    // running statistics included.
    train_gan(&d.join("b"), "1", &["--conditional", "--ema", "0.9"]);
    resume_to(&d.join("b"), "2");
    let state = |dir: &Path| {
        let ck = checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
        gan::load(&ck, "test").unwrap().1
    };
    let (a, b) = (state(&d.join("a")), state(&d.join("b")));
    assert_eq!(a.groups, b.groups, "G and D with their Adam moments");
    assert_eq!(a.buffers, b.buffers, "running statistics and the EMA");
    assert_eq!((a.step, a.rng, a.epoch), (b.step, b.rng, b.epoch));
    assert_eq!(a.groups[0].name, "gen");
    assert_eq!(a.groups[1].step, a.groups[0].step);
}

/// Spectral norm keeps its power-iteration vectors as buffers: a run
/// resumed from them matches one that never stopped, and D has no batch
/// norm left.
#[test]
fn a_spectral_norm_run_resumes_exactly_with_unit_power_vectors() {
    let d = tmp("sn");
    let flags = ["--spectral-norm", "true", "--loss", "hinge", "--ema", "0"];
    train_gan(&d.join("a"), "2", &flags);
    train_gan(&d.join("b"), "1", &flags);
    resume_to(&d.join("b"), "2");
    let load = |dir: &Path| {
        let ck = checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
        gan::load(&ck, "test").unwrap()
    };
    let ((m, a, _), (_, b, _)) = (load(&d.join("a")), load(&d.join("b")));
    assert_eq!(a.groups, b.groups, "G and D with their Adam moments");
    assert_eq!(a.buffers, b.buffers, "running statistics and u, v, sigma");
    assert!(m.disc.bn.is_none());
    assert!(m.disc.layout.get("disc.bn.1.weight").is_none());
    for name in ["disc.conv.0", "disc.conv.1", "disc.fc"] {
        let u = m.buffers.get(&format!("{name}.sn_u")).unwrap();
        let norm: f32 = a.buffers[u.range()]
            .iter()
            .map(|x| x * x)
            .sum::<f32>()
            .sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{name}: |u| = {norm}");
        let sigma = m.buffers.get(&format!("{name}.sn_sigma")).unwrap();
        assert!(a.buffers[sigma.range()][0] > 0.0, "{name}: sigma");
    }
}

#[test]
fn family_mismatches_and_gan_flags_are_refused_by_name() {
    let d = tmp("mismatch");
    let g = d.join("g");
    train_gan(&g, "1", &[]);
    let err = |args: &[&str]| {
        let o = run(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let e = err(&["latent", s(&g), "map", "-o", s(&d.join("m"))]);
    assert!(e.contains("is a gan run; `latent map` needs a vae"), "{e}");
    let e = err(&[
        "latent",
        s(&g),
        "interpolate",
        "--from-image",
        "0",
        "--to-image",
        "1",
        "-o",
        s(&d.join("x.png")),
    ]);
    assert!(e.contains("has no encoder"), "{e}");
    // Between two seeds, a GAN walks: linear on top, spherical below.
    ok(&[
        "latent",
        s(&g),
        "interpolate",
        "--steps",
        "6",
        "-o",
        s(&d.join("walk.png")),
    ]);
    let walk = image::open(d.join("walk.png")).unwrap();
    assert_eq!((walk.width(), walk.height()), (6 * 56 + 7, 2 * 56 + 3));
    let e = err(&["train", "vae", "--resume", s(&g), "--epochs", "2"]);
    assert!(e.contains("is a gan run; `train vae` needs a vae"), "{e}");
    let e = err(&["eval", s(&g)]);
    assert!(e.contains("give --classifier"), "{e}");
    let e = err(&["train", "gan", "--loss", "wgan", "-o", s(&d.join("y"))]);
    assert!(
        e.contains("--loss: expected ns or hinge, found \"wgan\""),
        "{e}"
    );
    let e = err(&["train", "gan", "--ema", "1", "-o", s(&d.join("y"))]);
    assert!(e.contains("--ema"), "{e}");
    // A GAN upsamples twice by 2: 30 x 30 images are refused, with the fix.
    let e = err(&[
        "train",
        "gan",
        "--image-size",
        "30x30",
        "--max-train",
        "64",
        "-o",
        s(&d.join("y")),
    ]);
    assert!(
        e.contains("multiples of 4") && e.contains("--image-size"),
        "{e}"
    );
    // A VAE table in a GAN's config file says where it belongs.
    let cfg = d.join("c.toml");
    std::fs::write(&cfg, "[vae]\nlatent = 3\n").unwrap();
    let e = err(&["train", "gan", "--config", s(&cfg), "-o", s(&d.join("y"))]);
    assert!(e.contains("[vae] holds the settings of a vae run"), "{e}");
    assert!(!d.join("y").exists(), "refused runs leave no folder");
}

#[test]
fn the_suite_scores_a_vae_and_a_gan_with_one_classifier() {
    let d = tmp("suite");
    let cls = d.join("cls");
    train_classifier(&cls);
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cls.join("test.json")).unwrap()).unwrap();
    let acc = t["test_accuracy"].as_f64().unwrap();
    assert!(acc > 0.8, "one epoch on 6,000 images: {acc}");
    assert_eq!(t["n"], 1000);
    let confusion: u64 = t["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(confusion, 1000);
    assert!(cls.join("confusion.png").exists());
    // The classifier's own eval gives the same accuracy.
    let e: serde_json::Value = serde_json::from_str(&ok(&["eval", s(&cls), "--json"])).unwrap();
    assert_eq!(e["test_accuracy"], t["test_accuracy"]);

    let g = d.join("g");
    train_gan(&g, "1", &["--conditional"]);
    let v = d.join("v");
    ok(&[
        "train",
        "vae",
        "--conditional",
        "--max-train",
        "600",
        "--hidden",
        "32",
        "--latent",
        "4",
        "--epochs",
        "1",
        "--quiet",
        "-o",
        s(&v),
    ]);
    // 300 samples of `run` scored by the classifier, with `extra` flags.
    let scored = |run: &Path, extra: &[&str]| -> serde_json::Value {
        let mut args = vec![
            "eval",
            s(run),
            "--classifier",
            s(&cls),
            "--n",
            "300",
            "--json",
        ];
        args.extend(extra);
        serde_json::from_str(&ok(&args)).unwrap()
    };
    for (run, family) in [(&g, "gan"), (&v, "vae")] {
        let r = scored(run, &[]);
        assert_eq!(r["family"], family);
        assert_eq!(r["n"], 300);
        let score = r["classifier_score"].as_f64().unwrap();
        assert!((1.0..=10.0).contains(&score), "{family}: {score}");
        let real = r["real_test_score"].as_f64().unwrap();
        assert!(
            real > score,
            "{family}: real images {real} vs samples {score}"
        );
        let (fd, base) = (
            r["fd_classifier"].as_f64().unwrap(),
            r["fd_real_baseline"].as_f64().unwrap(),
        );
        assert!(fd > base && base >= 0.0, "{family}: {fd} vs {base}");
        for k in ["precision", "recall", "conditional_accuracy"] {
            let v = r[k].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&v), "{family} {k}: {v}");
        }
        // One share per class, of every sample. Both models are
        // conditional, asked for each class in turn (a tenth each): a
        // sample counts as right only where its class's share allows.
        let shares: Vec<f64> = r["class_shares"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(shares.len(), 10, "{family}");
        assert!(
            (shares.iter().sum::<f64>() - 1.0).abs() < 1e-9,
            "{shares:?}"
        );
        let cap: f64 = shares.iter().map(|&v| v.min(0.1)).sum();
        let acc = r["conditional_accuracy"].as_f64().unwrap();
        assert!(acc <= cap + 1e-9, "{family}: {acc} right, {shares:?}");
        assert_eq!(r["k"], 3);
        if family == "gan" {
            // The runtime's samples from the export at each precision
            // (batch norms folded, weights and, for q8_0a8, activations
            // quantized) score about as the host's f32 ones do.
            for prec in ["q8_0", "q8_0a8"] {
                let q = scored(run, &["--decoder-precision", prec]);
                let qs = q["classifier_score"].as_f64().unwrap();
                println!("classifier score at {prec}: {qs:.4} (f32: {score:.4})");
                assert!(
                    (qs - score).abs() < 0.1,
                    "{prec}: classifier score {qs} against {score} at f32"
                );
            }
        }
    }
    // The VAE keeps its own measures beside the suite's.
    let r: serde_json::Value = serde_json::from_str(&ok(&[
        "eval",
        s(&v),
        "--classifier",
        s(&cls),
        "--n",
        "100",
        "--k",
        "2",
        "--json",
    ]))
    .unwrap();
    assert!(r["test_loss_nats"].as_f64().unwrap() > 0.0);
    // A classifier must be one.
    let o = run(&["eval", s(&g), "--classifier", s(&v)]);
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("is a vae run; --classifier needs a classifier")
    );
}

#[test]
fn generators_export_and_validate_at_every_precision() {
    use edgegen::export::{Precision, gan as export_gan, onnx};
    use edgegen::models::gan::{Gan, GanConfig};
    use edgegen::rng::Rng;
    // Weights well away from DCGAN's N(0, 0.02) start and batch norms away
    // from identity, so that every layer and every fold shows in the pixels.
    let m = Gan::new(GanConfig {
        image_shape: [2, 8, 12],
        latent: 5,
        n_classes: 3,
        g_width: 8,
        d_width: 1,
        spectral_norm: false,
        d_hidden: 0,
    })
    .unwrap();
    let mut r = Rng::new(4);
    let mut gp: Vec<f32> = (0..m.gen_.layout.total())
        .map(|_| 0.3 * r.normal())
        .collect();
    let mut bufs = vec![0f32; m.buffers.total()];
    for bn in [m.gen_.bn0, m.gen_.bn1] {
        for c in 0..bn.c {
            gp[bn.offset + c] = 1.0 + 0.2 * r.normal();
            bufs[bn.buf_offset + c] = 0.1 * r.normal();
            bufs[bn.buf_offset + bn.c + c] = 0.5 + r.uniform();
        }
    }
    for prec in [
        Precision::F32,
        Precision::F16,
        Precision::Q8_0,
        Precision::Q8_0A8,
    ] {
        let gguf = export_gan::to_gguf(&m, &gp, &bufs, prec, "test").unwrap();
        let onnx = onnx::gan_to_onnx(&m, &gp, &bufs, prec, "test").unwrap();
        let rep = edgegen::validate::validate(&onnx, &gguf, 24, 3).unwrap();
        assert!(rep.ok, "{prec:?}: {rep:?}");
        assert_eq!(
            (rep.family.as_str(), rep.part.as_str()),
            ("gan", "generator")
        );
        assert_eq!(rep.engines.len(), 5);
        // Every pair of the four engines, and fast math against ORT.
        assert_eq!(rep.pairs.len(), 7);
    }
    // The folded f32 export computes what the host's eval-mode generator
    // does with the batch norms in place.
    let gguf = export_gan::to_gguf(&m, &gp, &bufs, Precision::F32, "test").unwrap();
    let g = edgegen_format::Gguf::parse(&gguf).unwrap();
    let (hm, hp, hb) = edgegen::validate::gan::host_model(&g).unwrap();
    let z: Vec<f32> = (0..4 * 5).map(|_| r.normal()).collect();
    let labels = [0u32, 1, 2, 1];
    let th = edgegen::nn::gemm::Threads(1);
    let folded = gan::generate(&hm, &hp, &hb, &z, &labels, th);
    let unfolded = gan::generate(&m, &gp, &bufs, &z, &labels, th);
    let err = folded
        .iter()
        .zip(&unfolded)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(err < 1e-5, "folding changed the pixels by {err}");
    let spread = unfolded.iter().fold(0f32, |m, &v| m.max((v - 0.5).abs()));
    assert!(
        spread > 0.1,
        "the test generator's pixels barely move: {spread}"
    );
}
