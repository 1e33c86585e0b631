//! Export, validation, sampling, inspection and provenance, end to end.
//! Validation needs ONNX Runtime: `scripts/test.sh` installs the Python
//! `onnxruntime` package, which edgegen finds by itself.

mod common;

use common::{ok, run, s};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp("export", name)
}

fn train(dir: &Path, extra: &[&str]) -> PathBuf {
    common::train_vae(dir, extra)
}

/// Every precision of two different decoders passes validation against
/// ONNX Runtime, tract, the runtime and the host.
#[test]
fn exports_validate_at_every_precision() {
    for (name, extra) in [
        ("plain", vec!["--hidden", "40", "--latent", "3"]),
        (
            "cond-gelu-gauss",
            vec![
                "--hidden",
                "48,24",
                "--latent",
                "5",
                "--conditional",
                "--activation",
                "gelu",
                "--likelihood",
                "gaussian",
            ],
        ),
    ] {
        let d = tmp(name);
        let run_dir = train(&d, &extra);
        for (prec, part) in ["f32", "f16", "q8_0", "q8_0a8"]
            .into_iter()
            .flat_map(|p| [(p, "decoder"), (p, "encoder")])
        {
            let (g, o) = (
                d.join(format!("{part}-{prec}.gguf")),
                d.join(format!("{part}-{prec}.onnx")),
            );
            ok(&[
                "export",
                s(&run_dir),
                "--part",
                part,
                "--gguf",
                s(&g),
                "--onnx",
                s(&o),
                "--precision",
                prec,
            ]);
            if name != "plain" && part == "decoder" {
                // The label enters both later decoder layers: what the
                // validation below then checks on every engine.
                let bytes = std::fs::read(&g).unwrap();
                let f = edgegen_format::Gguf::parse(&bytes).unwrap();
                assert!(f.tensor("dec.0.label.weight").is_none());
                for i in 1..=2 {
                    let t = f.tensor(&format!("dec.{i}.label.weight")).unwrap();
                    assert_eq!(t.shape()[1], 10, "K rows");
                }
            }
            let out = ok(&["validate", s(&o), s(&g), "--n", "64", "--json"]);
            let r: serde_json::Value = serde_json::from_str(&out).unwrap();
            assert_eq!(r["ok"], true, "{name} {part} {prec}: {out}");
            assert_eq!(r["part"], part);
            // Four engines decide, the fast-math runtime is reported.
            assert_eq!(r["engines"].as_array().unwrap().len(), 5);
            // Per output: six pairs of the four, plus fast-math vs ORT.
            let outputs = if part == "decoder" { 1 } else { 2 };
            assert_eq!(r["outputs"].as_array().unwrap().len(), outputs);
            assert_eq!(r["pairs"].as_array().unwrap().len(), 7 * outputs);
            for p in r["pairs"].as_array().unwrap() {
                if p["gating"] == true {
                    assert!(p["max_abs"].as_f64().unwrap() <= p["tolerance"].as_f64().unwrap());
                } else if name != "plain" || part == "decoder" {
                    // micromath's exp shows where a sigmoid, GELU or tanh
                    // runs: not in the plain (ReLU) encoder.
                    assert!(
                        p["max_abs"].as_f64().unwrap() > 0.0,
                        "fast math differs from libm: {name} {part}"
                    );
                }
            }
        }
    }
}

/// The int8 activation quantizer of the ONNX exports rounds exactly as the
/// runtime does in ONNX Runtime and tract alike: ties to even, reciprocal
/// products, tiny and zero blocks, partial blocks.
#[test]
fn onnx_engines_quantize_activations_as_the_runtime_does() {
    use edgegen::validate::{io::Input, ort::OrtModel, tract};
    let n = 75;
    let mut rows: Vec<Vec<f32>> = vec![];
    // max|x| = 127 * 2^k makes d = 2^k: every (j + 0.5) * 2^k is a tie.
    for k in [0i32, -7, 3] {
        let s = 2f32.powi(k);
        let tie = |i: usize| {
            if i.is_multiple_of(32) {
                127.0
            } else {
                (i % 32) as f32 - 16.5
            }
        };
        rows.push((0..n).map(|i| tie(i) * s).collect());
    }
    rows.push(vec![0.0; n]);
    rows.push((0..n).map(|i| i as f32 * 1e-40).collect());
    let mut s = 3u32;
    for _ in 0..200 {
        rows.push(
            (0..n)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 17;
                    s ^= s << 5;
                    (s as f32 / u32::MAX as f32 - 0.5) * 6.0
                })
                .collect(),
        );
    }
    let x: Vec<f32> = rows.concat();
    let mut want = x.clone();
    for r in want.chunks_mut(n) {
        edgegen_format::quant::fake_quant_a8(r);
    }
    let ties: usize = rows
        .iter()
        .map(|r| edgegen_format::quant::a8_ties(r)[1])
        .sum();
    assert!(ties > 200, "only {ties} ties");
    let onnx = edgegen::export::onnx::a8_quantizer_onnx(n);
    let inputs = vec![Input::f32("x", &[rows.len(), n], x)];
    let ort = OrtModel::new(&onnx).unwrap().run(&inputs, &["y"]).unwrap();
    let tr = tract::run(&onnx, &inputs).unwrap();
    for (engine, got) in [("onnxruntime", &ort[0].1), ("tract", &tr[0].1)] {
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            // Equal values (a tie at -0.5 rounds to -0 in ONNX, to the
            // code 0 on the runtime).
            assert!(g == w, "{engine}: row {} col {}: {g} vs {w}", i / n, i % n);
        }
    }
}

#[test]
fn validation_fails_loudly_when_the_files_disagree() {
    let d = tmp("mismatch");
    let a = train(
        &d.join("a"),
        &["--hidden", "40", "--latent", "3", "--seed", "1"],
    );
    let b = train(
        &d.join("b"),
        &["--hidden", "40", "--latent", "3", "--seed", "2"],
    );
    ok(&["export", s(&a), "--gguf", s(&d.join("a.gguf"))]);
    ok(&["export", s(&b), "--onnx", s(&d.join("b.onnx"))]);
    let o = run(&[
        "validate",
        s(&d.join("b.onnx")),
        s(&d.join("a.gguf")),
        "--n",
        "16",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("FAIL"), "{out}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("exceeds its tolerance"));
}

#[test]
fn samples_carry_provenance_and_repeat_by_seed() {
    let d = tmp("sample");
    let run_dir = train(&d, &["--hidden", "40", "--latent", "3", "--conditional"]);
    let g = d.join("m.gguf");
    ok(&[
        "export",
        s(&run_dir),
        "--gguf",
        s(&g),
        "--precision",
        "q8_0",
    ]);
    let (p1, p2, p3) = (d.join("1.png"), d.join("2.png"), d.join("3.png"));
    ok(&[
        "sample",
        s(&g),
        "--n",
        "9",
        "--seed",
        "7",
        "--label",
        "3",
        "-o",
        s(&p1),
    ]);
    ok(&[
        "sample",
        s(&g),
        "--n",
        "9",
        "--seed",
        "7",
        "--label",
        "3",
        "-o",
        s(&p2),
    ]);
    ok(&[
        "sample",
        s(&g),
        "--n",
        "9",
        "--seed",
        "8",
        "--label",
        "3",
        "-o",
        s(&p3),
    ]);
    // The same seed draws the same pixels (the tags differ: each names its
    // own command line).
    let px = |p: &Path| image::open(p).unwrap().to_rgb8().into_raw();
    assert_eq!(px(&p1), px(&p2));
    assert_ne!(px(&p1), px(&p3));
    let img = image::open(&p1).unwrap();
    assert_eq!((img.width(), img.height()), (3 * 57 + 1, 3 * 57 + 1));
    let tag: serde_json::Value = serde_json::from_str(&ok(&["provenance", s(&p1)])).unwrap();
    use sha2::Digest;
    let sha: String = sha2::Sha256::digest(std::fs::read(&g).unwrap())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(tag["model_sha256"], sha);
    assert_eq!(
        (
            tag["seed"].as_u64(),
            tag["label"].as_u64(),
            tag["generator"].as_str()
        ),
        (Some(7), Some(3), Some("edgegen"))
    );
    assert!(
        tag["command"]
            .as_str()
            .unwrap()
            .contains("--seed 7 --label 3"),
        "{tag}"
    );
    // Without --label, a conditional model draws one row per class, and
    // the tag says which row is which.
    let rows = d.join("rows.png");
    ok(&["sample", s(&g), "--n", "20", "-o", s(&rows)]);
    let img = image::open(&rows).unwrap();
    assert_eq!((img.width(), img.height()), (2 * 57 + 1, 10 * 57 + 1));
    let tag: serde_json::Value = serde_json::from_str(&ok(&["provenance", s(&rows)])).unwrap();
    assert_eq!(
        tag["row_labels"],
        serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    );
    assert!(tag.get("label").is_none(), "{tag}");
    // A label outside the classes is refused with the valid range.
    let o = run(&["sample", s(&g), "--label", "10", "-o", s(&d.join("x.png"))]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected 0 to 9"));
    // A PNG edgegen did not make has no tag.
    image::RgbImage::new(2, 2)
        .save(d.join("plain.png"))
        .unwrap();
    assert_eq!(
        run(&["provenance", s(&d.join("plain.png"))]).status.code(),
        Some(1)
    );
}

#[test]
fn inspect_reports_costs_and_corruption_is_caught() {
    let d = tmp("inspect");
    let run_dir = train(&d, &["--hidden", "40", "--latent", "3"]);
    let g = d.join("m.gguf");
    ok(&[
        "export",
        s(&run_dir),
        "--gguf",
        s(&g),
        "--precision",
        "q8_0",
    ]);
    let j: serde_json::Value = serde_json::from_str(&ok(&["inspect", s(&g), "--json"])).unwrap();
    assert_eq!(j["architecture"], "edgegen.vae");
    assert_eq!(j["crc_ok"], true);
    assert_eq!(
        j["flash_bytes"].as_u64().unwrap(),
        std::fs::metadata(&g).unwrap().len()
    );
    // Scratch: two buffers of max(3, 40) floats; FLOPs: 2 (3*40 + 40*784).
    assert_eq!(j["scratch_bytes"], 4 * 2 * 40);
    assert_eq!(j["flops_per_sample"], 2 * (3 * 40 + 40 * 784));
    let t = &j["tensors"].as_array().unwrap()[2];
    assert_eq!(
        (t["name"].as_str(), t["type"].as_str()),
        (Some("dec.1.weight"), Some("Q8_0"))
    );
    assert_eq!(
        t["shape"],
        serde_json::json!([64, 784]),
        "rows padded to whole blocks"
    );
    // On the Cortex-M4F: the model plus the VAE firmware's measured code;
    // scratch, latent and image plus its measured stack.
    let table: serde_json::Value =
        serde_json::from_str(include_str!("../src/cli/thumbv7em.json")).unwrap();
    let j: serde_json::Value =
        serde_json::from_str(&ok(&["inspect", s(&g), "--target", "thumbv7em", "--json"])).unwrap();
    let (dev, vae) = (&j["device"], &table["vae"]);
    let model = std::fs::metadata(&g).unwrap().len();
    assert_eq!(
        dev["flash_bytes"].as_u64().unwrap(),
        model + vae["code_bytes"].as_u64().unwrap()
    );
    let statics = 4 * (2 * 40 + 3 + 784);
    assert_eq!(dev["statics_bytes"], statics);
    assert_eq!(
        dev["ram_bytes"].as_u64().unwrap(),
        statics + vae["stack_bytes"].as_u64().unwrap()
    );
    assert_eq!(dev["fits_1mib_192kib"], true);
    let err =
        String::from_utf8_lossy(&run(&["inspect", s(&g), "--target", "esp32"]).stderr).into_owned();
    assert!(
        err.contains("--target") && err.contains("thumbv7em"),
        "{err}"
    );

    let mut bytes = std::fs::read(&g).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0x40;
    let bad = d.join("bad.gguf");
    std::fs::write(&bad, &bytes).unwrap();
    let o = run(&["sample", s(&bad), "-o", s(&d.join("x.png"))]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(err.contains("bad.gguf") && err.contains("CRC-32"), "{err}");
    std::fs::write(&bad, &bytes[..n / 2]).unwrap();
    let err = String::from_utf8_lossy(&run(&["inspect", s(&bad)]).stderr).into_owned();
    assert!(
        err.contains("bad.gguf") && err.contains("past the end"),
        "{err}"
    );
}

/// `edgegen bench` times the runtime beside ONNX Runtime and tract on a
/// conditional decoder (label input) and reports what it measured; bad
/// arguments are refused by name. No time is asserted: speed is for the
/// benchmarks.
#[test]
fn bench_reports_every_engine_and_refuses_bad_input() {
    let d = tmp("bench");
    let run_dir = train(&d, &["--hidden", "40", "--latent", "3", "--conditional"]);
    let (g, o) = (d.join("m.gguf"), d.join("m.onnx"));
    ok(&[
        "export",
        s(&run_dir),
        "--gguf",
        s(&g),
        "--onnx",
        s(&o),
        "--precision",
        "f16",
    ]);
    let out = ok(&[
        "bench",
        s(&g),
        "--onnx",
        s(&o),
        "--calls",
        "20",
        "--rounds",
        "3",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let engines: Vec<&str> = v["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["engine"].as_str().unwrap())
        .collect();
    assert_eq!(engines, ["edgegen-runtime", "onnxruntime", "tract"]);
    for e in v["engines"].as_array().unwrap() {
        assert!(e["us"].as_f64().unwrap() > 0.0, "{e}");
        assert!(e["runtime_over_engine"].as_f64().unwrap() > 0.0, "{e}");
    }
    assert_eq!(v["engines"][0]["runtime_over_engine"].as_f64(), Some(1.0));
    assert_eq!(
        (v["calls"].as_u64(), v["rounds"].as_u64()),
        (Some(20), Some(3))
    );
    assert!(v["read_floor_us"].as_f64().unwrap() > 0.0);
    // The ratio is the runtime's time over the floor's, not the inverse:
    // a median of ratios, so only roughly the ratio of the medians.
    let ratio_of_medians =
        v["engines"][0]["us"].as_f64().unwrap() / v["read_floor_us"].as_f64().unwrap();
    let r = v["runtime_over_floor"].as_f64().unwrap() / ratio_of_medians;
    assert!((1.0 / 3.0..3.0).contains(&r), "{out}");
    let text = ok(&["bench", s(&g), "--calls", "5", "--rounds", "1"]);
    assert!(
        text.contains("edgegen-runtime") && text.contains("read floor"),
        "{text}"
    );

    // An encoder too; and an ONNX file of the other network is refused.
    let (eg, eo) = (d.join("e.gguf"), d.join("e.onnx"));
    ok(&[
        "export",
        s(&run_dir),
        "--part",
        "encoder",
        "--gguf",
        s(&eg),
        "--onnx",
        s(&eo),
    ]);
    let out = ok(&[
        "bench",
        s(&eg),
        "--onnx",
        s(&eo),
        "--calls",
        "5",
        "--rounds",
        "2",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["engines"].as_array().unwrap().len(), 3, "{out}");
    let err = |args: &[&str]| String::from_utf8(run(args).stderr).unwrap();
    let e = err(&["bench", s(&eg), "--onnx", s(&o), "--calls", "1"]);
    assert!(
        e.contains("m.onnx") && e.contains("not the same network"),
        "{e}"
    );
    assert!(err(&["bench", s(&g), "--calls", "0"]).contains("--calls"));
    // The kernels of one ISA on request, and a clear refusal of one the
    // CPU lacks.
    let scalar = ok(&[
        "bench",
        s(&g),
        "--calls",
        "2",
        "--rounds",
        "1",
        "--isa",
        "scalar",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&scalar).unwrap();
    assert_eq!(v["isa"], "Scalar", "{scalar}");
    let e = err(&["bench", s(&g), "--isa", "sse9"]);
    assert!(
        e.contains("--isa sse9: expected one this CPU has: scalar"),
        "{e}"
    );
    let png = d.join("x.png");
    assert!(err(&["sample", s(&eg), "-o", s(&png)]).contains("holds a VAE encoder"));
    let missing = d.join("nope.gguf");
    assert!(err(&["bench", s(&missing)]).contains("nope.gguf"));
    assert!(
        err(&["bench", s(&o)]).contains("m.onnx"),
        "ONNX given as the GGUF"
    );
}
