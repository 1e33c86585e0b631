//! `edgegen train vae`, `eval` and `latent` end to end, on small models and
//! the built-in sample so that they run in seconds.

mod common;

use common::ok as edgegen;
use edgegen::train::{checkpoint, vae};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp("train", name)
}

/// A small, fast VAE run on the built-in sample.
const SMALL: [&str; 11] = [
    "--max-train",
    "600",
    "--hidden",
    "32",
    "--batch",
    "64",
    "--threads",
    "2",
    "--quiet",
    "--seed",
    "3",
];

/// Trains the small VAE; `extra` may set `--latent` (default 4).
fn train(out: &Path, epochs: &str, extra: &[&str]) {
    let mut args = vec!["train", "vae"];
    args.extend(SMALL);
    args.extend(["--epochs", epochs, "-o", out.to_str().unwrap()]);
    if !extra.contains(&"--latent") {
        args.extend(["--latent", "4"]);
    }
    args.extend(extra);
    edgegen(&args);
}

fn params(run: &Path, file: &str) -> Vec<f32> {
    let ck = checkpoint::load(&run.join(file)).unwrap();
    vae::load(&ck, "test").unwrap().1.groups[0].params.clone()
}

#[test]
fn a_run_folder_holds_everything_the_issue_lists() {
    let run = tmp("files");
    train(&run, "2", &[]);
    for f in [
        "checkpoint.safetensors",
        "best.safetensors",
        "config.json",
        "metrics.jsonl",
        "loss.png",
        "samples.png",
        "recon.png",
    ] {
        assert!(run.join(f).is_file(), "{f} is missing");
    }
    let metrics = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    for (i, m) in lines.iter().enumerate() {
        assert_eq!(m["epoch"], i + 1);
        for k in ["train_loss", "val_loss", "seconds", "samples_per_s"] {
            assert!(
                m[k].as_f64().unwrap().is_finite() && m[k].as_f64().unwrap() > 0.0,
                "{k}"
            );
        }
    }
    // Training makes progress: the second epoch's loss is below the first's.
    assert!(lines[1]["train_loss"].as_f64() < lines[0]["train_loss"].as_f64());
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model"]["latent"], 4);
    assert_eq!(cfg["model"]["image_shape"], serde_json::json!([1, 28, 28]));
    // 8 x 8 samples of 28 px at scale 2 with 1 px gaps.
    let s = image::open(run.join("samples.png")).unwrap();
    assert_eq!((s.width(), s.height()), (8 * 57 + 1, 8 * 57 + 1));

    let ev: serde_json::Value = serde_json::from_str(&edgegen(&[
        "eval",
        run.to_str().unwrap(),
        "--json",
        "--k",
        "8",
    ]))
    .unwrap();
    assert_eq!(ev["n"], 1000);
    let loss = ev["test_loss_nats"].as_f64().unwrap();
    let iwae = ev["iwae_nll_nats"].as_f64().unwrap();
    // The importance-weighted bound is tighter than the ELBO (up to noise).
    assert!(loss > 50.0 && iwae < loss + 1.0, "{loss} {iwae}");
    let mse = ev["recon_mse"].as_f64().unwrap();
    assert!(mse > 0.0 && mse < 0.3, "{mse}");
}

#[test]
fn the_same_seed_gives_the_same_model_and_resume_continues_exactly() {
    let (a, b, c) = (tmp("det-a"), tmp("det-b"), tmp("det-c"));
    train(&a, "2", &[]);
    train(&b, "2", &[]);
    assert_eq!(
        params(&a, "checkpoint.safetensors"),
        params(&b, "checkpoint.safetensors")
    );
    // One epoch, stop, resume for the second: bit for bit the same as two.
    train(&c, "1", &[]);
    edgegen(&[
        "train",
        "vae",
        "--resume",
        c.to_str().unwrap(),
        "--epochs",
        "2",
        "--threads",
        "2",
        "--quiet",
    ]);
    assert_eq!(
        params(&a, "checkpoint.safetensors"),
        params(&c, "checkpoint.safetensors")
    );
    let lines = std::fs::read_to_string(c.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 2);
}

#[test]
fn init_from_fine_tunes_and_config_files_work() {
    let (base, tuned, fresh) = (tmp("base"), tmp("tuned"), tmp("fresh"));
    train(&base, "3", &[]);
    let first = |run: &Path| -> f64 {
        let l = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
        let v: serde_json::Value = serde_json::from_str(l.lines().next().unwrap()).unwrap();
        v["train_loss"].as_f64().unwrap()
    };
    train(&tuned, "1", &["--init-from", base.to_str().unwrap()]);
    train(&fresh, "1", &[]);
    assert!(
        first(&tuned) < first(&fresh) - 5.0,
        "{} vs {}",
        first(&tuned),
        first(&fresh)
    );

    // The same settings from a TOML file; a flag still overrides the file.
    let cfgfile = tmp("cfg").with_extension("toml");
    std::fs::write(&cfgfile, "max_train = 600\nbatch = 64\nthreads = 2\nseed = 3\nepochs = 5\n[vae]\nhidden = [32]\nlatent = 4\n").unwrap();
    let from_file = tmp("from-file");
    edgegen(&[
        "train",
        "vae",
        "--config",
        cfgfile.to_str().unwrap(),
        "--epochs",
        "1",
        "--quiet",
        "-o",
        from_file.to_str().unwrap(),
    ]);
    assert_eq!(
        params(&fresh, "checkpoint.safetensors"),
        params(&from_file, "checkpoint.safetensors")
    );
}

#[test]
fn conditional_runs_sample_one_row_per_class_and_latent_tools_draw() {
    let run = tmp("cond");
    train(&run, "1", &["--conditional", "--latent", "2"]);
    let s = image::open(run.join("samples.png")).unwrap();
    assert_eq!(s.height(), 10 * 57 + 1, "one row per class");
    let strip = run.join("strip.png");
    edgegen(&[
        "latent",
        run.to_str().unwrap(),
        "interpolate",
        "--from-image",
        "0",
        "--to-image",
        "3",
        "--steps",
        "6",
        "-o",
        strip.to_str().unwrap(),
    ]);
    let im = image::open(&strip).unwrap();
    assert_eq!((im.width(), im.height()), (6 * 57 + 1, 2 * 57 + 1));
    let maps = run.join("maps");
    edgegen(&[
        "latent",
        run.to_str().unwrap(),
        "map",
        "--grid",
        "5",
        "-o",
        maps.to_str().unwrap(),
    ]);
    assert!(image::open(maps.join("latent_grid.png")).is_ok());
    assert!(image::open(maps.join("latent_scatter.png")).is_ok());

    // Every picture carries its provenance: the checkpoint it was drawn
    // from (by sha256), the seed and labels for generated pixels, the
    // command for plots.
    let sha = |f: &str| -> String {
        use sha2::Digest;
        sha2::Sha256::digest(std::fs::read(run.join(f)).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    let tag = |p: &Path| -> serde_json::Value {
        serde_json::from_str(&edgegen(&["provenance", p.to_str().unwrap()])).unwrap()
    };
    let t = tag(&run.join("samples.png"));
    assert_eq!(t["kind"], "samples");
    assert_eq!(t["model_sha256"], sha("checkpoint.safetensors"));
    assert_eq!(t["model_file"], "checkpoint.safetensors (epoch 1)");
    assert!(t["seed"].is_u64());
    assert_eq!(
        t["row_labels"],
        serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    );
    let t = tag(&run.join("recon.png"));
    assert_eq!(
        (t["kind"].as_str(), t["model_sha256"].as_str()),
        (
            Some("reconstructions"),
            Some(sha("checkpoint.safetensors").as_str())
        )
    );
    let t = tag(&run.join("loss.png"));
    assert_eq!(t["kind"], "plot");
    assert!(
        t["command"]
            .as_str()
            .unwrap()
            .starts_with("edgegen train vae"),
        "{t}"
    );
    let t = tag(&strip);
    assert_eq!(t["model_sha256"], sha("best.safetensors"));
    assert_eq!(
        t["label"], 7,
        "the start image's class (test image 0 is a 7)"
    );
    assert!(t["seed"].is_null(), "from test images, no noise: {t}");
    let t = tag(&maps.join("latent_grid.png"));
    assert_eq!(
        (t["kind"].as_str(), t["label"].as_u64()),
        (Some("samples"), Some(0))
    );
    let t = tag(&maps.join("latent_scatter.png"));
    assert_eq!(t["kind"], "plot");
    assert_eq!(t["model_sha256"], sha("best.safetensors"));
    assert!(
        t["command"].as_str().unwrap().contains("map --grid 5"),
        "{t}"
    );
    let preview = run.join("preview.png");
    edgegen(&[
        "data",
        "preview",
        "builtin:mnist-sample",
        "-o",
        preview.to_str().unwrap(),
    ]);
    let t = tag(&preview);
    assert_eq!(
        (t["kind"].as_str(), t["n"].as_u64()),
        (Some("preview"), Some(60))
    );
    // A file without a tag says so plainly.
    let o = common::run(&["provenance", run.join("config.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("carries no edgegen provenance tag"));
}

#[test]
fn every_option_trains_gaussian_deep_cosine_clipped_adamw() {
    let run = tmp("options");
    train(
        &run,
        "2",
        &[
            "--likelihood",
            "gaussian",
            "--activation",
            "gelu",
            "--hidden",
            "64,32",
            "--schedule",
            "cosine",
            "--warmup-steps",
            "5",
            "--clip",
            "50",
            "--weight-decay",
            "0.01",
            "--parallel",
            "batch",
        ],
    );
    let l = std::fs::read_to_string(run.join("metrics.jsonl")).unwrap();
    let v: Vec<serde_json::Value> = l
        .lines()
        .map(|x| serde_json::from_str(x).unwrap())
        .collect();
    assert!(v[1]["train_loss"].as_f64() < v[0]["train_loss"].as_f64());
    // Cosine: the last step's rate is below the peak.
    assert!(v[1]["lr"].as_f64().unwrap() < 1e-3);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(cfg["model"]["hidden"], serde_json::json!([64, 32]));
    assert_eq!(cfg["model"]["likelihood"], "gaussian");
}
