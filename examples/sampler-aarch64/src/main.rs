//! `edgegen-sampler MODEL.gguf [--n N] [--seed S] [--label L] [--codes C]
//! [--prompt P] [--tokens T] [--deterministic] [--out DIR]`
//!
//! Samples a model of any family with edgegen-runtime on an aarch64 Linux
//! board (or under `qemu-aarch64`), where the NEON kernels run. All
//! samples come from one generator seeded with `--seed`; hashes are the
//! FNV-1a of the codes, symbols or pixels' f32 bits, the same lines the
//! Cortex-M4F firmware prints.
//!
//! - A VAE decoder or GAN generator: one line per sample, `sample i sum S
//!   first a b c hash 0xH`, and `DIR/sample-i.pgm` (or `.ppm` for colour)
//!   with `--out`.
//! - A text model: per continuation of `P` (default `ROMEO:`, up to `T`
//!   symbols, default 48, from an empty cache), `text N hash 0xH first s0
//!   s1 s2 s3` and the text, escaped, after `> `.
//! - An audio model: per clip of `C` codes (default 8000), from a zero
//!   state and silence, `clip C hash H first c0 .. c7` (H: FNV-1a of the
//!   codes) and `state sum S first h0 h1 h2 hash 0xH`, and `DIR/clip-i.wav` (16-bit
//!   PCM) with `--out`.
//!
//! It uses no crates but the runtime, so the binary stays small for the
//! board.

use edgegen_runtime::models::Model;
use edgegen_runtime::models::transformer::Transformer;
use edgegen_runtime::sample::{Rng, Sampling, fnv1a_words};
use std::io::Write;
use std::process::ExitCode;

struct Args {
    model: String,
    n: usize,
    seed: u64,
    label: Option<u32>,
    codes: usize,
    prompt: String,
    tokens: usize,
    deterministic: bool,
    out: Option<String>,
}

const USAGE: &str = "usage: edgegen-sampler MODEL.gguf [--n N] [--seed S] [--label L] [--codes C] [--prompt P] [--tokens T] [--deterministic] [--out DIR]";

fn parse() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut a = Args {
        model: String::new(),
        n: 4,
        seed: 7,
        label: None,
        codes: 8000,
        prompt: "ROMEO:".into(),
        tokens: 48,
        deterministic: false,
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
            "--codes" => {
                a.codes = val("--codes")?
                    .parse()
                    .map_err(|e| format!("--codes: {e}"))?;
                if !(8..=1 << 24).contains(&a.codes) {
                    return Err(format!(
                        "--codes: expected 8 to 16777216, found {}",
                        a.codes
                    ));
                }
            }
            "--prompt" => a.prompt = val("--prompt")?,
            "--tokens" => {
                a.tokens = val("--tokens")?
                    .parse()
                    .map_err(|e| format!("--tokens: {e}"))?
            }
            "--out" => a.out = Some(val("--out")?),
            "--deterministic" => a.deterministic = true,
            "-h" | "--help" => return Err(USAGE.into()),
            m if a.model.is_empty() && !m.starts_with('-') => a.model = m.to_string(),
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    if a.model.is_empty() {
        return Err(USAGE.into());
    }
    Ok(a)
}

fn run() -> Result<(), String> {
    let a = parse()?;
    edgegen_runtime::kernels::set_deterministic(a.deterministic);
    let bytes = std::fs::read(&a.model).map_err(|e| format!("{}: {e}", a.model))?;
    match Model::from_gguf(&bytes).map_err(|e| format!("{}: {e}", a.model))? {
        Model::VaeDecoder(d) => {
            let sizes = (d.latent_dim(), d.scratch_len(), d.output_len());
            images(
                &a,
                (d.hp.n_classes, d.hp.image_shape),
                sizes,
                |r, l, z, s, o| d.sample(r, l, z, s, o),
            )
        }
        Model::Generator(g) => {
            let sizes = (g.latent_dim(), g.scratch_len(), g.output_len());
            images(
                &a,
                (g.hp.n_classes, g.hp.image_shape),
                sizes,
                |r, l, z, s, o| g.sample(r, l, z, s, o),
            )
        }
        Model::Text(m) => text(&a, &m),
        Model::Audio(m) => audio(&a, &m),
        _ => Err(format!(
            "{}: not a model that samples (an encoder?)",
            a.model
        )),
    }
}

/// The label to sample with: `--label` (default 0) for a conditional
/// model, none otherwise.
fn label(a: &Args, n_classes: u32) -> Option<u32> {
    (n_classes > 0).then_some(a.label.unwrap_or(0))
}

/// Images from a VAE decoder or GAN generator (both `sample(rng, label,
/// z, scratch, image)`, with buffers of the sizes `(latent, scratch,
/// image)`): lines, and Netpbm files.
fn images(
    a: &Args,
    (n_classes, shape): (u32, [u32; 3]),
    (zl, sl, ol): (usize, usize, usize),
    mut sample: impl FnMut(
        &mut Rng,
        Option<u32>,
        &mut [f32],
        &mut [f32],
        &mut [f32],
    ) -> Result<(), edgegen_runtime::Error>,
) -> Result<(), String> {
    let label = label(a, n_classes);
    let [c, h, w] = shape.map(|v| v as usize);
    let (mut z, mut scratch, mut img) = (vec![0f32; zl], vec![0f32; sl], vec![0f32; ol]);
    let mut rng = Rng::new(a.seed);
    let stdout = std::io::stdout();
    let mut o = stdout.lock();
    for i in 0..a.n {
        sample(&mut rng, label, &mut z, &mut scratch, &mut img)
            .map_err(|e| format!("sample {i}: {e}"))?;
        let sum: f32 = img.iter().sum();
        let _ = writeln!(
            o,
            "sample {i} sum {sum:.6} first {:.6} {:.6} {:.6} hash 0x{:08x}",
            img[0],
            img[1.min(img.len() - 1)],
            img[2.min(img.len() - 1)],
            fnv1a_words(img.iter().map(|p| p.to_bits()))
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

/// Continuations of the prompt from a text model.
fn text(a: &Args, m: &Transformer<'_>) -> Result<(), String> {
    use edgegen_runtime::models::transformer::{ContextPolicy, State};
    let prompt: Vec<u32> = match m.chars {
        Some(chars) => {
            let chars: Vec<char> = chars.chars().collect();
            a.prompt
                .chars()
                .map(|c| {
                    chars.iter().position(|&v| v == c).map(|i| i as u32).ok_or(format!(
                        "--prompt: the character {c:?} is not in the model's vocabulary of {} characters",
                        chars.len()
                    ))
                })
                .collect::<Result<_, _>>()?
        }
        None => a.prompt.bytes().map(u32::from).collect(),
    };
    let label = label(a, m.hp.n_classes);
    let mut kv = vec![0f32; m.state_len()];
    let mut syms = vec![0u32; m.hp.context_length as usize];
    let mut scratch = vec![0f32; m.scratch_len()];
    let mut out = vec![0u32; a.tokens];
    let mut rng = Rng::new(a.seed);
    let stdout = std::io::stdout();
    let mut o = stdout.lock();
    for i in 0..a.n {
        let n = m
            .generate(
                &mut State::new(&mut kv, &mut syms, label),
                &prompt,
                &Sampling::default(),
                ContextPolicy::Stop,
                &[],
                &mut rng,
                &mut scratch,
                &mut out,
            )
            .map_err(|e| format!("text {i}: {e}"))?;
        let cont = &out[..n];
        let s = |i: usize| cont.get(i).copied().unwrap_or(0);
        let _ = writeln!(
            o,
            "text {n} hash 0x{:08x} first {} {} {} {}",
            fnv1a_words(cont.iter().copied()),
            s(0),
            s(1),
            s(2),
            s(3)
        );
        let shown: String = prompt
            .iter()
            .chain(cont)
            .map(|&s| match m.chars {
                Some(c) => c
                    .chars()
                    .nth(s as usize)
                    .map_or(String::new(), |c| c.escape_debug().to_string()),
                None => std::ascii::escape_default(s as u8).to_string(),
            })
            .collect();
        let _ = writeln!(o, "> {shown}");
    }
    let _ = writeln!(o, "ok");
    Ok(())
}

/// The audio model's clips: codes, fingerprints, final states and WAVs.
fn audio(a: &Args, m: &edgegen_runtime::models::audio::Audio<'_>) -> Result<(), String> {
    use edgegen_runtime::models::audio::{SILENCE, State, mulaw_to_pcm16};
    use edgegen_runtime::sample::fnv1a;
    let label = label(a, m.hp.n_classes);
    let mut h = vec![0f32; m.state_len()];
    let mut scratch = vec![0f32; m.scratch_len()];
    let mut codes = vec![0u8; a.codes];
    let mut rng = Rng::new(a.seed);
    let stdout = std::io::stdout();
    let mut o = stdout.lock();
    for i in 0..a.n {
        let mut st = State::new(&mut h, label);
        // A two-tier model's frame tier may end the clip early.
        let n = m
            .generate(
                &mut st,
                SILENCE,
                &Sampling::default(),
                &mut rng,
                &mut scratch,
                &mut codes,
            )
            .map_err(|e| format!("clip {i}: {e}"))?;
        let first: Vec<String> = codes[..8].iter().map(u8::to_string).collect();
        let _ = writeln!(
            o,
            "clip {n} hash {:08x} first {}",
            fnv1a(&codes[..n]),
            first.join(" ")
        );
        let s = st.h();
        let sum: f32 = s.iter().sum();
        let _ = writeln!(
            o,
            "state sum {sum:.6} first {:.6} {:.6} {:.6} hash 0x{:08x}",
            s[0],
            s[1.min(s.len() - 1)],
            s[2.min(s.len() - 1)],
            fnv1a_words(s.iter().map(|v| v.to_bits()))
        );
        if let Some(dir) = &a.out {
            let path = format!("{dir}/clip-{i}.wav");
            let pcm: Vec<i16> = codes[..n].iter().map(|&q| mulaw_to_pcm16(q)).collect();
            std::fs::write(&path, wav(m.hp.sample_rate, &pcm))
                .map_err(|e| format!("{path}: {e}"))?;
        }
    }
    let _ = writeln!(o, "ok");
    Ok(())
}

/// A mono 16-bit PCM WAV file: the 44-byte RIFF header, then the samples.
fn wav(rate: u32, pcm: &[i16]) -> Vec<u8> {
    let data = (pcm.len() * 2) as u32;
    let mut f = Vec::with_capacity(44 + data as usize);
    f.extend_from_slice(b"RIFF");
    f.extend_from_slice(&(36 + data).to_le_bytes());
    f.extend_from_slice(b"WAVEfmt ");
    f.extend_from_slice(&16u32.to_le_bytes());
    f.extend_from_slice(&1u16.to_le_bytes()); // PCM
    f.extend_from_slice(&1u16.to_le_bytes()); // mono
    f.extend_from_slice(&rate.to_le_bytes());
    f.extend_from_slice(&(rate * 2).to_le_bytes()); // bytes per second
    f.extend_from_slice(&2u16.to_le_bytes()); // bytes per frame
    f.extend_from_slice(&16u16.to_le_bytes()); // bits per sample
    f.extend_from_slice(b"data");
    f.extend_from_slice(&data.to_le_bytes());
    for s in pcm {
        f.extend_from_slice(&s.to_le_bytes());
    }
    f
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
