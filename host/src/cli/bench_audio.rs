//! `edgegen bench` for an audio model: microseconds per generated sample
//! and the real-time factor (samples per second over the sample rate), on
//! one core at batch 1.
//!
//! Engines, interleaved in the same rounds: the runtime generating (a step
//! and the draw from the softmax, what a device does per sample), the
//! runtime's step alone, and, given the ONNX export, ONNX Runtime and
//! tract running the step with the state carried from each call's output
//! to the next call's input.

use super::bench::BenchArgs;
use crate::bench::{ReadFloor, interleaved_with};
use crate::validate::io::Input;
use crate::validate::tract::TractModel;
use anyhow::{Result, anyhow};
use edgegen_runtime::kernels;
use edgegen_runtime::models::audio::{Audio, SILENCE, SILENT_BAND, State};
use edgegen_runtime::sample::{Rng, Sampling, sample_logits};
use std::hint::black_box;

/// Runs the bench and prints or returns its report.
pub fn bench_audio(a: &BenchArgs, m: &Audio<'_>, bytes: &[u8]) -> Result<()> {
    let hp = m.hp;
    let (v, h_len) = (hp.vocab_size as usize, hp.state_length as usize);
    let label = (hp.n_classes > 0).then_some(0u32);
    let sampling = Sampling::default();
    // The runtime generating: each call draws the next code and feeds it.
    let mut h = vec![0f32; m.state_len()];
    let mut scratch = vec![0f32; m.scratch_len()];
    let mut rng = Rng::new(1);
    let mut st = State::new(&mut h, label);
    let mut code = SILENCE;
    // A two-tier model generates through `generate` a sample at a time
    // (its frame tier drawing a frame each 256 samples), a clip that ends
    // starting the next; its step alone reads a fixed frame.
    let fh = m.frame_hparams();
    let c_len = fh.map_or(0, |f| f.feature_length as usize);
    let mut one = [0u8; 1];
    let mut generate = || {
        if fh.is_some() {
            let n = m
                .generate(&mut st, code, &sampling, &mut rng, &mut scratch, &mut one)
                .expect("sizes checked");
            if n == 0 {
                st.reset(label);
                code = SILENCE;
            } else {
                code = one[0] as u32;
            }
            return;
        }
        let logits = m
            .step(&mut st, black_box(code), &mut scratch)
            .expect("sizes checked");
        let n = logits.len().min(v);
        code = sample_logits(&mut scratch[..n], &[], &sampling, &mut rng) as u32;
    };
    // The step alone, over a fixed sequence of codes.
    let mut h2 = vec![0f32; m.state_len()];
    let mut scratch2 = vec![0f32; m.scratch_len()];
    let mut st2 = State::new(&mut h2, label);
    let bands = vec![SILENT_BAND; c_len];
    let mut i = 0u32;
    let mut step = || {
        i = i.wrapping_add(1);
        let c = i.wrapping_mul(97) % hp.vocab_size;
        let out = if fh.is_some() {
            m.step_with_frame(&mut st2, black_box(c), &bands, c, &mut scratch2)
        } else {
            m.step(&mut st2, black_box(c), &mut scratch2)
        };
        black_box(out.expect("sizes checked"));
    };
    let weight_bytes = m.weight_bytes();
    let floor = ReadFloor::new(weight_bytes);
    let mut names = vec!["runtime generate".to_string(), "runtime step".to_string()];
    let mut skipped: Vec<String> = vec![];
    // The ONNX step of a two-tier model has both tiers' steps; fed here
    // every call (a frame's worth of frame steps where a caller runs one),
    // so its rows are an upper bound, named so.
    let hf_len = fh.map_or(0, |f| f.state_length as usize);
    let feed = |c: u32, h: Vec<f32>| {
        let mut ins = vec![Input::i64("code", &[1], vec![c as i64])];
        if let Some(l) = label {
            ins.push(Input::i64("label", &[1], vec![l as i64]));
        }
        let (h, fhs) = h.split_at(h_len);
        ins.push(Input::f32("h", &[1, h_len], h.to_vec()));
        if let Some(f) = fh {
            ins.push(Input::f32("bands", &[1, c_len], vec![SILENT_BAND; c_len]));
            if f.lpc_order > 0 {
                ins.push(Input::i64("pred", &[1], vec![c as i64]));
            }
            ins.push(Input::f32(
                "frame_in",
                &[1, c_len],
                vec![SILENT_BAND; c_len],
            ));
            ins.push(Input::f32("frame_h", &[1, hf_len], fhs.to_vec()));
        }
        ins
    };
    // The carried state: `h_out`, then a two-tier model's `frame_h_out`.
    let take_h = |o: &mut crate::validate::io::Outputs| {
        let mut h = vec![];
        for name in ["h_out", "frame_h_out"] {
            if let Some(x) = o.iter_mut().find(|x| x.0 == name) {
                h.extend(std::mem::take(&mut x.1));
            }
        }
        h
    };
    let mut progress = |_: usize| {};
    let mut timings = match &a.onnx {
        None => interleaved_with(
            &mut [&mut generate, &mut step, &mut || floor.read()],
            a.calls,
            a.rounds,
            &mut progress,
        ),
        Some(p) => {
            let (onnx, mut ort) = super::bench::open_onnx(a, p, bytes, &mut skipped)?;
            let zeros = vec![0f32; h_len + hf_len];
            let tract = TractModel::new(&onnx, &feed(SILENCE, zeros.clone()))
                .map_err(|e| anyhow!("{}: {e:#}", p.display()))?;
            let outs: &[&str] = if fh.is_some() {
                &["logits", "h_out", "frame_out", "frame_h_out"]
            } else {
                &["logits", "h_out"]
            };
            let have_ort = ort.is_some();
            let (mut ort_h, mut ort_i) = (zeros.clone(), 0u32);
            let mut ort_engine = || {
                if let Some(o) = ort.as_mut() {
                    ort_i = ort_i.wrapping_add(1);
                    let c = ort_i.wrapping_mul(97) % hp.vocab_size;
                    let h = std::mem::take(&mut ort_h);
                    let mut out = o.run(&feed(c, h), outs).expect("ran before");
                    ort_h = take_h(&mut out);
                    black_box(&out);
                }
            };
            let (mut tract_h, mut tract_i) = (zeros.clone(), 0u32);
            let mut tract_engine = || {
                tract_i = tract_i.wrapping_add(1);
                let c = tract_i.wrapping_mul(97) % hp.vocab_size;
                let h = std::mem::take(&mut tract_h);
                let mut out = tract.run(&feed(c, h)).expect("planned");
                tract_h = take_h(&mut out);
                black_box(&out);
            };
            let mut floor_engine = || floor.read();
            let mut engines: Vec<&mut dyn FnMut()> = vec![&mut generate, &mut step];
            let both = if fh.is_some() { " (+frame)" } else { "" };
            if have_ort {
                names.push(format!("onnxruntime{both}"));
                engines.push(&mut ort_engine);
            }
            names.push(format!("tract{both}"));
            engines.push(&mut tract_engine);
            engines.push(&mut floor_engine);
            interleaved_with(&mut engines, a.calls, a.rounds, &mut progress)
        }
    };
    let floor = timings.pop().expect("the floor ran last");
    let rate = hp.sample_rate as f64;
    let flops = 2 * m.macs();
    let rows: Vec<serde_json::Value> = names
        .iter()
        .zip(&timings)
        .map(|(n, tm)| {
            serde_json::json!({
                "engine": n,
                "us_per_sample": tm.us,
                "samples_per_s": 1e6 / tm.us,
                "real_time_factor": 1e6 / tm.us / rate,
                "generate_over_engine": tm.first_over_this,
                "gflops": flops as f64 / tm.us / 1e3,
            })
        })
        .collect();
    let report = serde_json::json!({
        "model": a.model.display().to_string(),
        "weight_bytes": weight_bytes,
        "isa": format!("{:?}", kernels::isa()),
        "sample_rate": hp.sample_rate,
        "batch": 1,
        "threads": 1,
        "samples_per_round": a.calls,
        "rounds": a.rounds,
        "engines": rows,
        "read_floor_us": floor.us,
        "flops_per_sample": flops,
        "skipped": skipped,
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(());
    }
    println!(
        "{}: {} bytes of weights; batch 1, 1 thread, kernels {:?}; medians of {} rounds of {} samples at {} Hz",
        a.model.display(),
        weight_bytes,
        kernels::isa(),
        a.rounds,
        a.calls,
        hp.sample_rate
    );
    println!(
        "{:<21} {:>11} {:>10} {:>11} {:>18} {:>8}",
        "engine", "µs/sample", "samples/s", "real time", "generate/engine", "GFLOP/s"
    );
    for r in report["engines"].as_array().into_iter().flatten() {
        let f = |k: &str| r[k].as_f64().unwrap_or(0.0);
        println!(
            "{:<21} {:>11.2} {:>10.0} {:>10.1}x {:>17.2}x {:>8.2}",
            r["engine"].as_str().unwrap_or_default(),
            f("us_per_sample"),
            f("samples_per_s"),
            f("real_time_factor"),
            f("generate_over_engine"),
            f("gflops")
        );
    }
    println!(
        "{:<21} {:>11.2}   (reading the weights once, from cache)",
        "read floor", floor.us
    );
    for s in &skipped {
        println!("skipped: {s}");
    }
    Ok(())
}
