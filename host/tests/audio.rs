//! `edgegen train audio` and `eval` end to end, on a tiny GRU and
//! synthetic clips named as FSDD's (`{digit}_{speaker}_{take}.wav`), so
//! that the split by take, conditioning, resume and the baselines are all
//! exercised in seconds.

mod common;

use common::{ok, run, s};
use std::path::{Path, PathBuf};

fn tmp(name: &str) -> PathBuf {
    common::tmp("audio", name)
}

/// Three "digits", each a tone of its own pitch with a little noise, by
/// two speakers, takes 0 to 7: takes 0 to 4 are the test set.
fn clips(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let mut seed = 5u32;
    for digit in 0..3 {
        for (speaker, gain) in [("ann", 0.5f32), ("bo", 0.3)] {
            for take in 0..8 {
                let x: Vec<f32> = (0..1600)
                    .map(|i| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                        let f = 300.0 + 250.0 * digit as f32;
                        gain * (std::f32::consts::TAU * f * i as f32 / 8000.0).sin() + 0.01 * noise
                    })
                    .collect();
                let b = edgegen::data::audio::wav_bytes(8000, &x, &[]);
                std::fs::write(dir.join(format!("{digit}_{speaker}_{take}.wav")), b).unwrap();
            }
        }
    }
}

fn train(data: &Path, out: &Path, iters: &str) -> serde_json::Value {
    let mut args = vec!["train", "audio", "--data", s(data), "--conditional"];
    args.extend(common::TINY_AUDIO);
    args.extend(["--iters", iters, "--json", "-o", s(out)]);
    serde_json::from_str(&ok(&args)).unwrap()
}

fn params(dir: &Path) -> Vec<f32> {
    let ck = edgegen::train::checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
    let (_, _, st) = edgegen::train::audio::load(&ck, "test").unwrap();
    st.groups[0].params.clone()
}

#[test]
fn an_audio_run_learns_resumes_exactly_and_is_scored_beside_the_baselines() {
    let d = tmp("run");
    let data = d.join("clips");
    clips(&data);
    let m = train(&data, &d.join("a"), "30");
    let rows = m.as_array().unwrap();
    assert_eq!(rows.len(), 6, "30 steps in rounds of 5");
    let first = rows[0]["val_bits_per_sample"].as_f64().unwrap();
    let last = rows[5]["val_bits_per_sample"].as_f64().unwrap();
    // From about 8 bits (uniform) down: tones are predictable.
    assert!(first > 6.0 && first < 8.5, "{m}");
    assert!(last < first - 0.5, "{first} -> {last}");
    // 15 steps, then 15 more on resume: the same parameters as 30.
    train(&data, &d.join("b"), "15");
    let o = ok(&[
        "train",
        "audio",
        "--resume",
        s(&d.join("b")),
        "--iters",
        "30",
        "--quiet",
    ]);
    assert!(o.contains("run saved"), "{o}");
    assert!(
        params(&d.join("a")) == params(&d.join("b")),
        "the resumed run differs"
    );
    // eval scores the test takes (0 to 4: 3 digits x 2 speakers x 5).
    let e: serde_json::Value =
        serde_json::from_str(&ok(&["eval", s(&d.join("a")), "--last", "--json"])).unwrap();
    assert_eq!(
        (e["family"].as_str(), e["split"].as_str()),
        (Some("audio"), Some("test"))
    );
    assert_eq!(e["clips"].as_u64(), Some(30));
    assert_eq!(e["samples"].as_u64(), Some(30 * 1599));
    let nll = e["nll_bits_per_sample"].as_f64().unwrap();
    assert!(nll < first, "{e}");
    assert_eq!(e["baseline_uniform_bits"].as_f64(), Some(8.0));
    let (uni, lpc) = (
        e["baseline_unigram_bits"].as_f64().unwrap(),
        e["baseline_lpc_bits"].as_f64().unwrap(),
    );
    // Pure tones: a linear predictor does far better than the unigram.
    assert!(lpc < uni - 2.0 && uni < 8.0, "{e}");
    // The spectrograms carry provenance.
    let p: serde_json::Value =
        serde_json::from_str(&ok(&["provenance", s(&d.join("a").join("samples.png"))])).unwrap();
    assert_eq!(p["kind"], "samples");
    exports_validate_and_sample(&d.join("a"), nll);
    heard_by_the_audio_classifier(&data, &d);
}

/// The audio classifier of `data`'s tones, in `cls`.
fn train_classifier(data: &Path, cls: &Path) -> PathBuf {
    ok(&[
        "train",
        "classifier",
        "--data",
        s(data),
        "--epochs",
        "12",
        "--batch",
        "8",
        "--quiet",
        "-o",
        s(cls),
    ]);
    cls.to_path_buf()
}

/// `eval RUN --last --classifier CLS --n 6 --json` and `more` flags.
fn heard(run: &Path, cls: &Path, more: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "eval",
        s(run),
        "--last",
        "--classifier",
        s(cls),
        "--n",
        "6",
        "--json",
    ];
    args.extend(more);
    serde_json::from_str(&ok(&args)).unwrap()
}

/// `train classifier` on clips trains the image CNN on their log-mel
/// images (tones of three pitches: told apart), and `eval --classifier`
/// uses it to hear an audio model's generated clips.
fn heard_by_the_audio_classifier(data: &Path, d: &Path) {
    let cls = train_classifier(data, &d.join("cls"));
    let t: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cls.join("test.json")).unwrap()).unwrap();
    assert_eq!(t["n"].as_u64(), Some(30), "{t}");
    assert!(t["test_accuracy"].as_f64().unwrap() > 0.9, "{t}");
    let e: serde_json::Value = serde_json::from_str(&ok(&["eval", s(&cls), "--json"])).unwrap();
    assert_eq!(e["test_accuracy"], t["test_accuracy"]);
    let e = heard(&d.join("a"), &cls, &["--seconds", "0.2"]);
    assert_eq!(e["generated_clips"].as_u64(), Some(6), "{e}");
    let acc = e["conditional_accuracy"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc), "{e}");
    let confusion: u64 = e["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(confusion, 6);
}

/// Every precision exports, validates across the four engines, and
/// samples WAV files that carry their provenance; the device's weights
/// score about as the host's do.
fn exports_validate_and_sample(run_dir: &Path, nll: f64) {
    let run_s = s(run_dir);
    for p in ["f32", "f16", "q8_0", "q8_0a8"] {
        let v = export_and_validate(run_dir, p);
        assert_eq!(v["outputs"], serde_json::json!(["logits", "h"]));
        // With int8 activations, every engine steps from the host's state.
        let part = if p == "q8_0a8" {
            "GRU steps from the host's state"
        } else {
            "GRU steps"
        };
        assert_eq!(v["part"], part, "{v}");
        let e: serde_json::Value =
            serde_json::from_str(&ok(&["eval", run_s, "--last", "--precision", p, "--json"]))
                .unwrap();
        let q = e["nll_bits_per_sample"].as_f64().unwrap();
        assert!((q - nll).abs() < 0.05, "{p}: {q} vs {nll}");
    }
    let g = run_dir.join("m-q8_0.gguf");
    let i: serde_json::Value = serde_json::from_str(&ok(&["inspect", s(&g), "--json"])).unwrap();
    assert_eq!(i["state_bytes"].as_u64(), Some(4 * 16));
    assert_eq!(
        i["flops_per_sample"].as_u64(),
        Some(2 * (48 * (8 + 16) + 256 * 16))
    );
    let wav = run_dir.join("two.wav");
    let o = ok(&[
        "sample",
        s(&g),
        "--label",
        "2",
        "--n",
        "2",
        "--seconds",
        "0.05",
        "-o",
        s(&wav),
    ]);
    assert!(o.contains("two-1.wav"), "{o}");
    for i in 0..2 {
        let w = run_dir.join(format!("two-{i}.wav"));
        let (spec, x) = edgegen::data::audio::read_wav(&w).unwrap();
        assert_eq!((spec.sample_rate, x.len()), (8000, 400));
        assert!(run_dir.join(format!("two-{i}.png")).exists());
        let p: serde_json::Value = serde_json::from_str(&ok(&["provenance", s(&w)])).unwrap();
        assert_eq!(
            (p["label"].as_u64(), p["seed"].as_u64()),
            (Some(2), Some(7 + i))
        );
    }
    // The seed fixes the clip: clip 0 of two is the clip of one.
    let one = run_dir.join("one.wav");
    ok(&[
        "sample",
        s(&g),
        "--label",
        "2",
        "--seconds",
        "0.05",
        "-o",
        s(&one),
    ]);
    let pcm = |p: &Path| edgegen::data::audio::read_wav(p).unwrap().1;
    assert_eq!(pcm(&one), pcm(&run_dir.join("two-0.wav")));
    assert_ne!(pcm(&one), pcm(&run_dir.join("two-1.wav")));
    // Bad requests name the flag.
    for (args, want) in [
        (vec!["--label", "3"], "--label: expected 0 to 2"),
        (vec![], "is conditional"),
        (vec!["--label", "1", "--seconds", "0"], "--seconds"),
        (vec!["--label", "1", "--temperature", "-1"], "--temperature"),
    ] {
        let mut a = vec!["sample", s(&g), "-o", s(&one)];
        a.extend(args);
        let r = run(&a);
        let e = String::from_utf8_lossy(&r.stderr);
        assert!(!r.status.success() && e.contains(want), "{a:?}: {e}");
    }
    let r = run(&[
        "sample",
        s(&g),
        "--label",
        "1",
        "-o",
        s(&run_dir.join("x.png")),
    ]);
    assert!(String::from_utf8_lossy(&r.stderr).contains(".wav"));
}

/// Exports `run_dir`'s last checkpoint at precision `p` as
/// `run_dir/m-{p}.gguf` and `.onnx`, validates them over 40 steps on the
/// four engines (checked to pass) and returns the report.
fn export_and_validate(run_dir: &Path, p: &str) -> serde_json::Value {
    let stem = format!("m-{p}");
    let (_, v) = common::export_and_validate(run_dir, run_dir, &stem, p, &["--last"], 40);
    assert_eq!(v["engines"].as_array().unwrap().len(), 4, "{v}");
    v
}

/// A two-tier model (`--feat-dim`): the frame tier learns the tones'
/// frames and resumes bit for bit with the model of samples; eval hears
/// its clips (frames drawn) and the test clips resynthesized from their
/// own frames; it exports, validates and samples on the device runtime.
/// (How drawn and given frames end clips: `models::rnn`'s unit tests, and
/// on the device `export::audio`'s.)
#[test]
fn a_two_tier_audio_run_trains_resumes_and_is_heard() {
    let d = tmp("tiers");
    let data = d.join("clips");
    clips(&data);
    let train = |out: &Path, iters: &str| -> serde_json::Value {
        let mut args = vec!["train", "audio", "--data", s(&data), "--conditional"];
        args.extend(common::TINY_AUDIO);
        args.extend([
            "--feat-dim",
            "8",
            "--lpc-order",
            "4",
            "--frame-hidden",
            "12",
            "--frame-embed",
            "6",
            "--max-frames",
            "10",
            "--iters",
            iters,
            "--json",
            "-o",
            s(out),
        ]);
        serde_json::from_str(&ok(&args)).unwrap()
    };
    let m = train(&d.join("a"), "150");
    let rows = m.as_array().unwrap();
    let nats = |r: &serde_json::Value| r["val_frame_nats"].as_f64().unwrap();
    assert!(nats(&rows[29]) < nats(&rows[0]) - 1.0, "{m}");
    assert!(rows[29]["train_frame_nats"].is_f64(), "{m}");
    train(&d.join("b"), "75");
    ok(&[
        "train",
        "audio",
        "--resume",
        s(&d.join("b")),
        "--iters",
        "150",
        "--quiet",
    ]);
    let groups = |dir: &Path| {
        let ck = edgegen::train::checkpoint::load(&dir.join("checkpoint.safetensors")).unwrap();
        let (_, mc, st) = edgegen::train::audio::load(&ck, "test").unwrap();
        assert_eq!(mc.frames.as_ref().map(|f| f.bands), Some(8));
        st.groups
    };
    let (ga, gb) = (groups(&d.join("a")), groups(&d.join("b")));
    assert_eq!(ga.len(), 2);
    assert!(ga == gb, "the resumed run differs");
    let cls = train_classifier(&data, &d.join("cls"));
    let e = heard(
        &d.join("a"),
        &cls,
        &["--seconds", "2", "--frame-temperature", "0.3"],
    );
    assert_eq!(e["frame_temperature"].as_f64(), Some(0.3), "{e}");
    assert!(e["frame_nats_per_frame"].is_f64(), "{e}");
    let secs = e["mean_seconds"].as_f64().unwrap();
    assert!(secs > 0.0 && secs <= 2.0, "{e}");
    for k in ["conditional_accuracy", "resynthesis_accuracy"] {
        let v = e[k].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&v), "{k}: {e}");
    }
    // The file's model: exported, validated over both tiers' steps on
    // every engine, scored at its precision as the host's, and sampled on
    // the device runtime (clips the frame tier ends).
    let run_a = d.join("a");
    let f32_nll = heard(&run_a, &cls, &[])["nll_bits_per_sample"]
        .as_f64()
        .unwrap();
    for p in ["f32", "q8_0", "q8_0a8"] {
        let v = export_and_validate(&run_a, p);
        assert_eq!(
            v["outputs"],
            serde_json::json!(["logits", "h", "frame_out", "frame_h"]),
            "{v}"
        );
        assert!(
            v["part"]
                .as_str()
                .unwrap()
                .starts_with("two-tier GRU steps"),
            "{v}"
        );
        let e = heard(&run_a, &cls, &["--precision", p]);
        let q = e["nll_bits_per_sample"].as_f64().unwrap();
        assert!((q - f32_nll).abs() < 0.05, "{p}: {q} vs {f32_nll}");
        assert!(e["frame_nats_per_frame"].is_f64(), "{e}");
    }
    // The device runtime's own clips, heard by the classifier.
    let e = heard(&run_a, &cls, &["--runtime", "--precision", "q8_0"]);
    assert_eq!(e["generated_by"], "runtime", "{e}");
    let acc = e["conditional_accuracy"].as_f64().unwrap();
    assert!(
        (0.0..=1.0).contains(&acc) && e["mean_seconds"].as_f64().unwrap() > 0.0,
        "{e}"
    );
    let r = run(&["eval", s(&run_a), "--runtime"]);
    let msg = String::from_utf8_lossy(&r.stderr);
    assert!(!r.status.success() && msg.contains("--classifier"), "{msg}");
    let g = run_a.join("m-q8_0.gguf");
    let wav = d.join("tone.wav");
    let o = ok(&[
        "sample",
        s(&g),
        "--label",
        "1",
        "--n",
        "3",
        "--seconds",
        "2",
        "--frame-temperature",
        "0.2",
        "-o",
        s(&wav),
    ]);
    assert!(o.contains("tone-2.wav"), "{o}");
    for i in 0..3 {
        let w = d.join(format!("tone-{i}.wav"));
        let (_, x) = edgegen::data::audio::read_wav(&w).unwrap();
        // At most the 2 s asked for. (This tiny frame tier has not learnt
        // to end a clip in 150 steps, on the host either; the device's
        // ending of clips: `export::audio`'s unit tests.)
        assert!(
            !x.is_empty() && x.len() <= 16000,
            "clip {i}: {} samples",
            x.len()
        );
        let p: serde_json::Value = serde_json::from_str(&ok(&["provenance", s(&w)])).unwrap();
        assert_eq!(
            p["sampling"]["frame_temperature"].as_f64(),
            Some(0.2),
            "{p}"
        );
        assert_eq!(
            p["sampling"]["samples"].as_u64(),
            Some(x.len() as u64),
            "{p}"
        );
    }
    let r = run(&[
        "sample",
        s(&g),
        "--label",
        "1",
        "--frame-temperature=-1",
        "-o",
        s(&wav),
    ]);
    let e = String::from_utf8_lossy(&r.stderr);
    assert!(
        !r.status.success() && e.contains("--frame-temperature"),
        "{e}"
    );
}

#[test]
fn audio_runs_refuse_what_they_cannot_do() {
    let d = tmp("refuse");
    let data = d.join("clips");
    clips(&data);
    let err = |args: &[&str]| {
        let o = run(args);
        assert!(!o.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&o.stderr).into_owned()
    };
    let out = d.join("x");
    let e = err(&[
        "train",
        "audio",
        "--data",
        s(&data),
        "--epochs",
        "3",
        "-o",
        s(&out),
    ]);
    assert!(e.contains("--epochs") && e.contains("--iters"), "{e}");
    let e = err(&[
        "train",
        "audio",
        "--data",
        s(&data),
        "--window",
        "0",
        "-o",
        s(&out),
    ]);
    assert!(e.contains("--window") && e.contains("found 0"), "{e}");
    let e = err(&[
        "train",
        "audio",
        "--data",
        s(&data),
        "--lpc-order",
        "8",
        "-o",
        s(&out),
    ]);
    assert!(
        e.contains("--lpc-order 8") && e.contains("--feat-dim"),
        "{e}"
    );
    // Windows longer than every clip (1,600 codes).
    let e = err(&[
        "train",
        "audio",
        "--data",
        s(&data),
        "--window",
        "5000",
        "-o",
        s(&out),
    ]);
    assert!(
        e.contains("longer than a window") && e.contains("--window 5000"),
        "{e}"
    );
    // Unlabeled clips cannot be conditioned on.
    let flat = d.join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for i in 0..4 {
        std::fs::copy(
            data.join(format!("0_ann_{i}.wav")),
            flat.join(format!("clip{i}.wav")),
        )
        .unwrap();
    }
    let e = err(&[
        "train",
        "audio",
        "--data",
        s(&flat),
        "--conditional",
        "-o",
        s(&out),
    ]);
    assert!(e.contains("--conditional") && e.contains("labeled"), "{e}");
    // Images are not audio.
    let e = err(&[
        "train",
        "audio",
        "--data",
        "builtin:mnist-sample",
        "-o",
        s(&out),
    ]);
    assert!(e.contains("not audio"), "{e}");
}
