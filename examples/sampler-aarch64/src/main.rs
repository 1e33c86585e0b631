//! `edgegen-sampler MODEL.gguf [--n N] [--seed S] [--label L] [--out DIR]`
//!
//! Samples a VAE decoder with edgegen-runtime on an aarch64 Linux board (or
//! under `qemu-aarch64`), where the NEON kernels run. For each sample it
//! prints one line, `sample i sum S first a b c`, and writes `DIR/sample-i.pgm`
//! (or `.ppm` for colour) when `--out` is given. It uses no crates but the
//! runtime, so the binary stays small for the board.

use edgegen_runtime::models::Model;
use edgegen_runtime::sample::Rng;
use std::io::Write;
use std::process::ExitCode;

struct Args {
    model: String,
    n: usize,
    seed: u64,
    label: Option<u32>,
    out: Option<String>,
}

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        model: String::new(),
        n: 4,
        seed: 7,
        label: None,
        out: None,
    };
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().ok_or(format!("{name}: expected a value"));
        match arg.as_str() {
            "--n" => a.n = val("--n")?.parse().map_err(|e| format!("--n: {e}"))?,
            "--seed" => a.seed = val("--seed")?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--label" => {
                a.label = Some(
                    val("--label")?
                        .parse()
                        .map_err(|e| format!("--label: {e}"))?,
                )
            }
            "--out" => a.out = Some(val("--out")?),
            "-h" | "--help" => {
                return Err(
                    "usage: edgegen-sampler MODEL.gguf [--n N] [--seed S] [--label L] [--out DIR]"
                        .into(),
                );
            }
            m if a.model.is_empty() && !m.starts_with('-') => a.model = m.to_string(),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if a.model.is_empty() {
        return Err(
            "usage: edgegen-sampler MODEL.gguf [--n N] [--seed S] [--label L] [--out DIR]".into(),
        );
    }
    Ok(a)
}

fn run() -> Result<(), String> {
    let a = parse()?;
    let bytes = std::fs::read(&a.model).map_err(|e| format!("{}: {e}", a.model))?;
    let Model::VaeDecoder(dec) =
        Model::from_gguf(&bytes).map_err(|e| format!("{}: {e}", a.model))?
    else {
        return Err(format!("{}: not a VAE decoder", a.model));
    };
    let label = match (dec.hp.n_classes, a.label) {
        (0, _) => None,
        (_, l) => Some(l.unwrap_or(0)),
    };
    let [c, h, w] = dec.hp.image_shape.map(|v| v as usize);
    let mut scratch = vec![0f32; dec.scratch_len()];
    let mut z = vec![0f32; dec.latent_dim()];
    let mut img = vec![0f32; dec.output_len()];
    let mut rng = Rng::new(a.seed);
    let stdout = std::io::stdout();
    let mut o = stdout.lock();
    for i in 0..a.n {
        dec.sample(&mut rng, label, &mut z, &mut scratch, &mut img)
            .map_err(|e| format!("sample {i}: {e}"))?;
        let sum: f32 = img.iter().sum();
        let _ = writeln!(
            o,
            "sample {i} sum {sum:.6} first {:.6} {:.6} {:.6}",
            img[0],
            img[1.min(img.len() - 1)],
            img[2.min(img.len() - 1)]
        );
        if let Some(dir) = &a.out {
            // Netpbm: grey (P5) for one channel, else the first three as RGB (P6).
            let (magic, ch) = if c == 1 { ("P5", 1) } else { ("P6", 3) };
            let mut file = format!("{magic}\n{w} {h}\n255\n").into_bytes();
            for y in 0..h * w {
                for k in 0..ch {
                    file.push((img[k.min(c - 1) * h * w + y] * 255.0).round() as u8);
                }
            }
            let ext = if c == 1 { "pgm" } else { "ppm" };
            let path = format!("{dir}/sample-{i}.{ext}");
            std::fs::write(&path, file).map_err(|e| format!("{path}: {e}"))?;
        }
    }
    let _ = writeln!(o, "ok");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
