//! The `edgegen` binary, run as a user would run it.
//!
//! Tests on the full datasets read them from `EDGEGEN_DATASETS` (default
//! `../shared/datasets` beside the repo) and fail if they are not there.

mod common;

use common::{ok, run as edgegen};
use std::path::{Path, PathBuf};

fn json(args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&ok(args)).expect("valid JSON")
}

fn datasets() -> PathBuf {
    let p = std::env::var("EDGEGEN_DATASETS")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/datasets"));
    assert!(
        p.is_dir(),
        "{} is missing: set EDGEGEN_DATASETS to the folder holding mnist/, text/ and audio/fsdd/",
        p.display()
    );
    p
}

fn tmp(name: &str) -> PathBuf {
    common::tmp("cli", name)
}

#[test]
fn info_on_the_builtin_sample() {
    let j = json(&["data", "info", "builtin:mnist-sample", "--json"]);
    assert_eq!(j["kind"], "images");
    assert_eq!(j["shape"], serde_json::json!([1, 28, 28]));
    assert_eq!(j["splits"][0]["count"], 6000);
    assert_eq!(j["splits"][1]["count"], 1000);
    assert_eq!(j["classes"].as_array().unwrap().len(), 10);
}

#[test]
fn info_on_full_mnist() {
    let p = datasets().join("mnist");
    let j = json(&["data", "info", p.to_str().unwrap(), "--json"]);
    assert_eq!(j["splits"][0]["name"], "train");
    assert_eq!(j["splits"][0]["count"], 60000);
    assert_eq!(j["splits"][1]["name"], "test");
    assert_eq!(j["splits"][1]["count"], 10000);
    assert_eq!(j["shape"], serde_json::json!([1, 28, 28]));
    let classes = j["classes"].as_array().unwrap();
    assert_eq!(classes.len(), 10);
    let total: u64 = classes.iter().map(|c| c["count"].as_u64().unwrap()).sum();
    assert_eq!(total, 70000);
    let text = ok(&["data", "info", p.to_str().unwrap()]);
    assert!(
        text.contains("train    60000 images") && text.contains("1x28x28"),
        "{text}"
    );
}

#[test]
fn info_on_fsdd() {
    let p = datasets().join("audio/fsdd");
    let j = json(&["data", "info", p.to_str().unwrap(), "--json"]);
    assert_eq!(j["kind"], "audio");
    assert_eq!(j["clips"], 3000);
    assert_eq!(j["sample_rates"], serde_json::json!({"8000": 3000}));
    let names: Vec<&str> = j["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
    assert!(
        j["classes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["count"] == 300)
    );
    assert_eq!(j["speakers"].as_array().unwrap().len(), 6);
    assert_eq!(j["test_clips"], 300);
}

#[test]
fn info_on_tiny_shakespeare() {
    let p = datasets().join("text/tinyshakespeare.txt");
    let j = json(&["data", "info", p.to_str().unwrap(), "--json"]);
    assert_eq!(j["kind"], "text");
    assert_eq!(j["bytes"], 1_115_394);
    assert_eq!(j["lines"], 40_000);
    assert_eq!(j["distinct_bytes"], 65);
}

#[test]
fn previews_are_real_pngs() {
    let d = tmp("preview");
    let grid = d.join("grid.png");
    ok(&[
        "data",
        "preview",
        "builtin:mnist-sample",
        "-o",
        grid.to_str().unwrap(),
        "-n",
        "20",
    ]);
    let img = image::open(&grid).unwrap();
    // Two digits of each of the 10 classes, a row each, drawn at 4x with
    // 1-pixel gaps.
    assert_eq!((img.width(), img.height()), (2 * 113 + 1, 10 * 113 + 1));
    // The first MNIST digit has ink: some bright pixels in the first cell.
    let rgb = img.to_rgb8();
    assert!((1..113).any(|x| (1..113).any(|y| rgb.get_pixel(x, y).0[0] > 200)));

    let wav_dir = d.join("wavs");
    std::fs::create_dir_all(&wav_dir).unwrap();
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    for name in ["3_a_0.wav", "4_a_1.wav"] {
        let mut w = hound::WavWriter::create(wav_dir.join(name), spec).unwrap();
        for i in 0..4000 {
            w.write_sample(((i as f32 * 0.2).sin() * 8000.0) as i16)
                .unwrap();
        }
        w.finalize().unwrap();
    }
    let wave = d.join("wave.png");
    ok(&[
        "data",
        "preview",
        wav_dir.to_str().unwrap(),
        "-o",
        wave.to_str().unwrap(),
    ]);
    let img = image::open(&wave).unwrap();
    assert_eq!((img.width(), img.height()), (900, 360));
}

#[test]
fn bad_files_get_errors_naming_file_and_field() {
    let d = tmp("bad");
    std::fs::write(
        d.join("train-images-idx3-ubyte"),
        [1u8, 0, 8, 1, 0, 0, 0, 0],
    )
    .unwrap();
    let o = edgegen(&["data", "info", d.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("train-images-idx3-ubyte") && err.contains("magic: expected bytes 00 00"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    let t = d.join("latin1.txt");
    std::fs::write(&t, b"caf\xe9\n").unwrap();
    let o = edgegen(&["data", "info", t.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("latin1.txt: byte 3 (line 1, column 4)"),
        "{err}"
    );
}

#[test]
fn training_on_the_wrong_data_or_a_corrupt_checkpoint_says_so() {
    let d = tmp("wrong");
    let t = d.join("t.txt");
    std::fs::write(&t, "hello\n").unwrap();
    let o = edgegen(&[
        "train",
        "vae",
        "--data",
        t.to_str().unwrap(),
        "-o",
        d.join("run").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected images"));
    let run = d.join("bad");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("best.safetensors"), b"\x08\0\0\0\0\0\0\0{}garbage").unwrap();
    let o = edgegen(&["eval", run.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("best.safetensors") && !err.contains("panicked"),
        "{err}"
    );
}

#[test]
fn demo_runs_every_stage() {
    let d = tmp("demo");
    let out = ok(&[
        "demo",
        "-o",
        d.to_str().unwrap(),
        "--epochs",
        "1",
        "--validate-n",
        "20",
        "--gan-epochs",
        "1",
        "--text-iters",
        "20",
        "--audio-iters",
        "20",
    ]);
    assert!(out.contains("train    6000 images"), "{out}");
    assert!(out.contains("all stages ran"), "{out}");
    // Four decoders, generators, text and audio models each (f32, f16,
    // q8_0 and q8_0a8).
    assert_eq!(out.matches("  valid").count(), 16, "{out}");
    assert!(out.contains("ROMEO:"), "the text sample: {out}");
    assert!(out.contains("engines: valid"), "the encoder: {out}");
    for f in [
        "data.png",
        "vae/samples.png",
        "export/decoder-q8_0.gguf",
        "export/decoder-f16.onnx",
        "export/encoder-q8_0.gguf",
        "samples-q8_0.png",
        "gan/samples.png",
        "export/generator-q8_0.gguf",
        "export/generator-f32.onnx",
        "gan-samples-q8_0.png",
        "text/metrics.jsonl",
        "export/text-q8_0.gguf",
        "export/text-f16.onnx",
        "text-sample-q8_0.txt",
        "audio/samples.png",
        "export/audio-q8_0.gguf",
        "export/audio-f16.onnx",
        "audio-seven-q8_0.wav",
        "audio-seven-q8_0.png",
    ] {
        assert!(d.join(f).is_file(), "{f} is missing");
    }
}

#[test]
fn speakers_are_reported_only_for_names_that_follow_fsdd() {
    let d = tmp("wav-names");
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let write = |name: &str| {
        let mut w = hound::WavWriter::create(d.join(name), spec).unwrap();
        (0..800).for_each(|i| w.write_sample((i % 50) as i16 * 100).unwrap());
        w.finalize().unwrap();
    };
    for name in ["3_anna_0.wav", "4_bob_12.wav"] {
        write(name);
    }
    let j = json(&["data", "info", d.to_str().unwrap(), "--json"]);
    assert_eq!(j["speakers"], serde_json::json!(["anna", "bob"]));
    // Names that merely hold underscores are not a speaker convention.
    for name in ["prompt_help.wav", "audio_filename_mode.wav", "p_x_take.wav"] {
        write(name);
    }
    let j = json(&["data", "info", d.to_str().unwrap(), "--json"]);
    assert_eq!(j["speakers"], serde_json::json!([]), "{j}");
    let text = ok(&["data", "info", d.to_str().unwrap()]);
    assert!(!text.contains("speakers"), "{text}");
}

#[test]
fn an_image_folder_with_train_but_no_test_is_split_and_says_so() {
    let d = tmp("trainonly");
    for class in ["cat", "dog"] {
        let c = d.join("train").join(class);
        std::fs::create_dir_all(&c).unwrap();
        for i in 0..10 {
            image::RgbImage::from_pixel(8, 8, image::Rgb([i * 20, 0, 0]))
                .save(c.join(format!("{i}.png")))
                .unwrap();
        }
    }
    // One grey image among the RGB ones is converted, and counted.
    image::GrayImage::new(8, 8)
        .save(d.join("train/cat/grey.png"))
        .unwrap();
    let o = edgegen(&["data", "info", d.to_str().unwrap(), "--json"]);
    assert!(o.status.success(), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("test split is cut from train/"), "{err}");
    assert!(
        err.contains("converted 1 of 21 images to 3 channels"),
        "{err}"
    );
    let run_dir = d.join("run");
    ok(&[
        "train",
        "vae",
        "--data",
        d.to_str().unwrap(),
        "--epochs",
        "1",
        "--hidden",
        "8",
        "--image-size",
        "4x4",
        "-o",
        run_dir.to_str().unwrap(),
    ]);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["model"]["image_shape"], serde_json::json!([3, 4, 4]));
    assert_eq!(cfg["train"]["image_size"], serde_json::json!([4, 4]));
}
