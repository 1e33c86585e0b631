//! Weights out of a run and back (`export --safetensors`, `import`), the
//! way the PyTorch twin exchanges them: for every family the round trip
//! gives the same weights bit for bit, and the imported run exports,
//! validates and samples like any other; a file that does not match its
//! config is refused with every difference listed.

mod common;

use common::{TINY_GAN, ok, run, s};
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp("twin", name)
}

/// `(name, shape, bytes)` of every tensor in a safetensors file, sorted.
fn tensors(path: &Path) -> Vec<(String, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut v: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec(), t.data().to_vec()))
        .collect();
    v.sort();
    v
}

/// One tiny run of each family (a VAE, a conditional GAN with batch norms
/// and a moving average, a text model, a conditional audio model).
fn runs(d: &Path) -> Vec<(&'static str, PathBuf)> {
    let vae = common::train_vae(&d.join("vae"), &["--conditional"]);
    let gan = d.join("gan");
    let mut args = vec!["train", "gan"];
    args.extend(TINY_GAN);
    args.extend([
        "--epochs",
        "1",
        "--conditional",
        "--ema",
        "0.99",
        // The discriminator's hidden layer is part of the twin's layout.
        "--d-hidden",
        "6",
        "-o",
        s(&gan),
    ]);
    ok(&args);
    let text = d.join("text");
    let mut args = vec!["train", "text"];
    args.extend(common::TINY_TEXT);
    args.extend(["--iters", "3", "--quiet", "-o", s(&text)]);
    ok(&args);
    let audio = d.join("audio");
    let mut args = vec!["train", "audio", "--conditional"];
    args.extend(common::TINY_AUDIO);
    args.extend(["--iters", "3", "--quiet", "-o", s(&audio)]);
    ok(&args);
    vec![("vae", vae), ("gan", gan), ("text", text), ("audio", audio)]
}

/// Exports `run` at `precision` as `dir/{family}-{precision}.gguf` and
/// `.onnx`, holds them to each other with `edgegen validate`, and returns
/// the GGUF's path.
fn exports_and_validates(dir: &Path, family: &str, run: &Path, precision: &str) -> PathBuf {
    let stem = format!("{family}-{precision}");
    common::export_and_validate(run, dir, &stem, precision, &[], 8).0
}

#[test]
fn every_family_round_trips_through_safetensors_bit_for_bit() {
    let d = tmp("round-trip");
    for (family, run_dir) in runs(&d) {
        let out = d.join(format!("{family}.safetensors"));
        ok(&["export", s(&run_dir), "--safetensors", s(&out)]);
        let imported = d.join(format!("{family}-imported"));
        let r: serde_json::Value = serde_json::from_str(&ok(&[
            "import",
            s(&out),
            "--config",
            s(&run_dir.join("config.json")),
            "-o",
            s(&imported),
            "--json",
        ]))
        .unwrap();
        assert_eq!(r["family"], family);
        let again = d.join(format!("{family}-again.safetensors"));
        ok(&["export", s(&imported), "--safetensors", s(&again)]);
        let (a, b) = (tensors(&out), tensors(&again));
        assert!(!a.is_empty() && a.iter().all(|t| !t.0.starts_with("adam.")));
        assert_eq!(a, b, "{family}: the weights changed on the way");
        assert_eq!(r["tensors"], a.len(), "{family}");
        // The imported run is a run: it exports a GGUF that validates
        // against ONNX Runtime and tract, and samples (the GAN and the
        // audio model by class).
        let gguf = exports_and_validates(&d, family, &imported, "q8_0");
        let ext = match family {
            "text" => "txt",
            "audio" => "wav",
            _ => "png",
        };
        let sample = d.join(format!("{family}-sample.{ext}"));
        let mut args = vec!["sample", s(&gguf), "-o", s(&sample)];
        match family {
            "text" => args.extend(["--prompt", "ab", "--max-tokens", "8"]),
            "audio" => args.extend(["--label", "1", "--seconds", "0.05"]),
            _ => args.extend(["--n", "4"]),
        }
        ok(&args);
        assert!(sample.exists(), "{family}: no sample");
        // It trains on: `--resume` starts from the imported weights with a
        // fresh optimizer at step 0 (the twin's Adam moments are not in
        // the file), for the rounds its config names.
        let resumed = d.join(format!("{family}-resumed.safetensors"));
        ok(&["train", family, "--resume", s(&imported), "--quiet"]);
        ok(&["export", s(&imported), "--safetensors", s(&resumed)]);
        // From the trained weights, not from a fresh start: the first
        // round's training loss is below the original run's first round's.
        let first = |dir: &Path, key: &str| -> f64 {
            let m = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
            let row: serde_json::Value = serde_json::from_str(m.lines().next().unwrap()).unwrap();
            row[key].as_f64().unwrap()
        };
        if let Some(key) = match family {
            "vae" | "text" => Some("train_loss"),
            "audio" => Some("train_bits"),
            _ => None,
        } {
            let (before, after) = (first(&run_dir, key), first(&imported, key));
            assert!(
                after < before,
                "{family}: {key} {after} after import, {before} at the start"
            );
        }
        let after = tensors(&resumed);
        let names = |v: &[(String, Vec<usize>, Vec<u8>)]| -> Vec<(String, Vec<usize>)> {
            v.iter().map(|t| (t.0.clone(), t.1.clone())).collect()
        };
        assert_eq!(names(&after), names(&a), "{family}");
        assert!(after != a, "{family}: resuming trained nothing");
    }
}

/// `edgegen curves` draws an edgegen run and a twin run (its
/// `metrics.jsonl` rows as `edgegen_twin.train_text` writes them, under
/// edgegen's names) on one chart, by the family's default curves; a
/// metric no row has is refused with the metrics there are.
#[test]
fn curves_draw_an_edgegen_run_beside_the_twins() {
    let d = tmp("curves");
    let run_dir = d.join("text");
    let mut args = vec!["train", "text"];
    args.extend(common::TINY_TEXT);
    args.extend([
        "--iters",
        "4",
        "--eval-interval",
        "2",
        "--quiet",
        "-o",
        s(&run_dir),
    ]);
    ok(&args);
    let twin = d.join("text-twin");
    std::fs::create_dir_all(&twin).unwrap();
    std::fs::copy(run_dir.join("config.json"), twin.join("config.json")).unwrap();
    std::fs::write(
        twin.join("metrics.jsonl"),
        "{\"iter\": 2, \"train_loss\": 5.5, \"val_loss_nats\": 5.4, \"bits_per_byte\": 7.8, \"seconds\": 0.5, \"world_size\": 2}\n\
         {\"iter\": 4, \"train_loss\": 5.25, \"val_loss_nats\": 5.1, \"bits_per_byte\": 7.4, \"seconds\": 1.0, \"world_size\": 2}\n",
    )
    .unwrap();
    let png = d.join("both.png");
    let v: serde_json::Value = serde_json::from_str(&ok(&[
        "curves",
        s(&run_dir),
        s(&twin),
        "-o",
        s(&png),
        "--json",
    ]))
    .unwrap();
    assert_eq!(v["x"], "iter");
    let labels: Vec<&str> = v["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        [
            "text: train_loss",
            "text: val_loss_nats",
            "text-twin: train_loss",
            "text-twin: val_loss_nats"
        ]
    );
    assert_eq!(
        v["series"][3]["points"],
        serde_json::json!([[2.0, 5.4], [4.0, 5.1]])
    );
    assert_eq!(v["series"][0]["points"].as_array().unwrap().len(), 2);
    assert!(image::open(&png).is_ok());
    let e = run(&["curves", s(&twin), "--y", "nats", "-o", s(&png)]);
    assert!(!e.status.success());
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(
        msg.contains("metrics.jsonl: no row has both iter (--x) and any of nats (--y)")
            && msg.contains("bits_per_byte, iter, seconds, train_loss, val_loss_nats, world_size"),
        "{msg}"
    );
}

/// Runs the PyTorch twin's `edgegen_twin.io` (numpy and safetensors only,
/// no torch) with `args`; the tests need the Python packages that
/// `scripts/test.sh` installs.
fn twin_io(args: &[&str]) {
    let python = std::env::var("EDGEGEN_PYTHON").unwrap_or_else(|_| "python3".into());
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = std::process::Command::new(&python)
        .args(["-m", "edgegen_twin.io"])
        .args(args)
        .env("PYTHONPATH", root.join("twin/pytorch"))
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run {python}: {e}; scripts/test.sh installs what the tests need")
        });
    assert!(
        out.status.success(),
        "edgegen_twin.io {args:?} failed:\n{}\n{}\n(a missing module: scripts/test.sh installs tests/python/requirements.txt)",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The twin's naming contract (`twin/pytorch/edgegen_twin/layout.py`):
/// weights it writes with numpy for each family's config import without a
/// difference, and the run exports a GGUF that validates.
#[test]
fn weights_the_twin_writes_with_numpy_import_export_and_validate() {
    let d = tmp("from-python");
    for (family, run_dir) in runs(&d) {
        let w = d.join(format!("{family}-twin.safetensors"));
        let config = run_dir.join("config.json");
        twin_io(&["random", s(&config), s(&w), "3"]);
        let imported = d.join(format!("{family}-imported"));
        ok(&["import", s(&w), "--config", s(&config), "-o", s(&imported)]);
        exports_and_validates(&d, family, &imported, "f32");
    }
}

#[test]
fn weights_that_do_not_match_their_config_are_refused_with_every_difference() {
    let d = tmp("mismatch");
    let vae = common::train_vae(&d.join("vae"), &[]);
    let good = d.join("vae.safetensors");
    ok(&["export", s(&vae), "--safetensors", s(&good)]);
    // Drop the first tensor, reshape the second, add one.
    let bytes = std::fs::read(&good).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = st.names().into_iter().map(|n| n.to_string()).collect();
    names.sort();
    let (dropped, reshaped) = (names[0].clone(), names[1].clone());
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
    for n in &names[1..] {
        let t = st.tensor(n).unwrap();
        let mut shape = t.shape().to_vec();
        if *n == reshaped {
            shape = vec![shape.iter().product()];
        }
        owned.push((n.clone(), shape, t.data().to_vec()));
    }
    owned.push(("dec.extra.weight".into(), vec![2], vec![0; 8]));
    let views: Vec<(String, safetensors::tensor::TensorView)> = owned
        .iter()
        .map(|(n, s, b)| {
            let v = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b);
            (n.clone(), v.unwrap())
        })
        .collect();
    let bad = d.join("bad.safetensors");
    std::fs::write(&bad, safetensors::serialize(views, None).unwrap()).unwrap();
    let config = vae.join("config.json");
    let o = run(&[
        "import",
        s(&bad),
        "--config",
        s(&config),
        "-o",
        s(&d.join("x")),
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(e.contains("3 differences"), "{e}");
    assert!(e.contains(&format!("missing: {dropped}")), "{e}");
    assert!(e.contains(&format!("{reshaped}: F32 [")), "{e}");
    assert!(e.contains("unexpected: dec.extra.weight"), "{e}");
    assert!(!d.join("x").join("checkpoint.safetensors").exists());
    // A GAN's weights against a VAE's config: the family is named.
    let gan = d.join("gan");
    let mut args = vec!["train", "gan"];
    args.extend(TINY_GAN);
    args.extend(["--epochs", "1", "-o", s(&gan)]);
    ok(&args);
    let g = d.join("gan.safetensors");
    ok(&["export", s(&gan), "--safetensors", s(&g)]);
    let o = run(&[
        "import",
        s(&g),
        "--config",
        s(&config),
        "-o",
        s(&d.join("y")),
    ]);
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("a gan model's weights") && e.contains("describes a vae"),
        "{e}"
    );
    // An existing run is not overwritten without --force.
    let o = run(&["import", s(&good), "--config", s(&config), "-o", s(&vae)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already holds a run"));
}
