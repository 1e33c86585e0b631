//! `edgegen train text`, `eval`, `export`, `sample` and `provenance` for
//! the text family end to end, on tiny models and the built-in sample so
//! that they run in seconds.

mod common;

use common::{ok, run, s};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp("text", name)
}

fn train(out: &Path, iters: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["train", "text"];
    args.extend(common::TINY_TEXT);
    args.extend(["--iters", iters, "--json", "-o", s(out)]);
    args.extend(extra);
    serde_json::from_str(&ok(&args)).unwrap()
}

fn params(dir: &Path) -> Vec<f32> {
    let ck = edgegen::train::checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
    let (_, _, st) = edgegen::train::text::load(&ck, "test").unwrap();
    st.groups[0].params.clone()
}

#[test]
fn a_text_run_validates_in_rounds_keeps_samples_and_resumes_exactly() {
    let d = tmp("run");
    let m = train(&d.join("a"), "6", &[]);
    let rows = m.as_array().unwrap();
    assert_eq!(rows.len(), 2, "6 steps in rounds of 3");
    for (r, iter) in rows.iter().zip([3.0, 6.0]) {
        assert_eq!(r["iter"].as_f64(), Some(iter));
        let (loss, bpb) = (
            r["val_loss_nats"].as_f64().unwrap(),
            r["bits_per_byte"].as_f64().unwrap(),
        );
        // Bytes: bits per byte is the loss in bits.
        assert!((bpb - loss / std::f64::consts::LN_2).abs() < 1e-9, "{r}");
        // At the start, about ln 256 = 5.55 nats.
        assert!(loss > 4.0 && loss < 6.5, "{r}");
        let sample = r["sample"].as_str().unwrap();
        assert!(sample.starts_with('\n') && !sample.is_empty(), "{r}");
    }
    // Three steps, then three more on resume: the same parameters as six.
    train(&d.join("b"), "3", &[]);
    let o = ok(&[
        "train",
        "text",
        "--resume",
        s(&d.join("b")),
        "--iters",
        "6",
        "--quiet",
    ]);
    assert!(o.contains("run saved"), "{o}");
    assert_eq!(params(&d.join("a")), params(&d.join("b")));
    // eval agrees with the run's last validation.
    let e: serde_json::Value =
        serde_json::from_str(&ok(&["eval", s(&d.join("a")), "--last", "--json"])).unwrap();
    let last = rows[1]["val_loss_nats"].as_f64().unwrap();
    assert!(
        (e["val_loss_nats"].as_f64().unwrap() - last).abs() < 1e-6,
        "{e}"
    );
    assert_eq!(e["family"], "text");
    // Export, sample with a provenance header, read it back.
    let g = d.join("a.gguf");
    ok(&[
        "export",
        s(&d.join("a")),
        "--gguf",
        s(&g),
        "--precision",
        "q8_0",
    ]);
    let out = d.join("s.txt");
    let text = ok(&[
        "sample",
        s(&g),
        "--prompt",
        "ROMEO:",
        "--max-tokens",
        "30",
        "--seed",
        "3",
        "-o",
        s(&out),
    ]);
    assert!(text.starts_with("ROMEO:"), "{text}");
    let file = std::fs::read_to_string(&out).unwrap();
    let body = file.split_once('\n').unwrap().1;
    assert_eq!(body.trim_end(), text.trim_end());
    let p: serde_json::Value = serde_json::from_str(&ok(&["provenance", s(&out)])).unwrap();
    assert_eq!(
        (p["prompt"].as_str(), p["seed"].as_u64()),
        (Some("ROMEO:"), Some(3))
    );
    // The same seed, the same text.
    let again = ok(&[
        "sample",
        s(&g),
        "--prompt",
        "ROMEO:",
        "--max-tokens",
        "30",
        "--seed",
        "3",
    ]);
    assert_eq!(again, text);
}

#[test]
fn a_folder_of_texts_trains_a_conditional_model() {
    let d = tmp("classes");
    let data = d.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("a.txt"), "abcabcabc ".repeat(40)).unwrap();
    std::fs::write(data.join("b.txt"), "xyz xyz! ".repeat(40)).unwrap();
    let m = train(
        &d.join("run"),
        "3",
        &[
            "--data",
            s(&data),
            "--vocab",
            "chars",
            "--sample-prompt",
            "a",
        ],
    );
    assert_eq!(
        (m[0]["sample_class"].as_str(), m.as_array().unwrap().len()),
        (Some("a"), 1)
    );
    let g = d.join("m.gguf");
    ok(&["export", s(&d.join("run")), "--gguf", s(&g)]);
    // A conditional model needs its label; a character outside the
    // vocabulary is named.
    let e = run(&["sample", s(&g), "--prompt", "a"]);
    assert!(
        String::from_utf8_lossy(&e.stderr).contains("--label"),
        "{e:?}"
    );
    let e = run(&["sample", s(&g), "--prompt", "aq", "--label", "0"]);
    assert!(String::from_utf8_lossy(&e.stderr).contains("'q'"), "{e:?}");
    let t = ok(&[
        "sample",
        s(&g),
        "--prompt",
        "a",
        "--label",
        "1",
        "--max-tokens",
        "5",
    ]);
    assert!(t.starts_with('a'), "{t}");
}

#[test]
fn flags_and_data_a_text_run_cannot_use_are_refused() {
    let d = tmp("bad");
    let err = |extra: &[&str]| {
        let mut args = vec!["train", "text", "-o"];
        let o = d.join("x");
        args.push(s(&o));
        args.extend(extra);
        let r = run(&args);
        assert!(!r.status.success());
        String::from_utf8_lossy(&r.stderr).into_owned()
    };
    assert!(err(&["--epochs", "3"]).contains("--epochs: a text run does not take it"));
    assert!(err(&["--data", "builtin:mnist-sample"]).contains("this is not text"));
    assert!(err(&["--vocab", "words"]).contains("--vocab: expected bytes or chars"));
    assert!(err(&["--dim", "30", "--heads", "4"]).contains("--heads 4"));
    assert!(err(&["--val-frac", "0"]).contains("--val-frac"));
    assert!(err(&["--context", "200000"]).contains("--context"));
}
