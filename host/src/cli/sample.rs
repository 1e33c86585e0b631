//! `edgegen sample` (the device runtime, run on the host), `edgegen
//! inspect` and `edgegen provenance`.

use crate::plot;
use crate::provenance::{Provenance, Source};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use edgegen_format::{Gguf, Value, arch, arch::Family};
use edgegen_runtime::models::Model;
use edgegen_runtime::sample::Rng;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// A GGUF model file.
    model: PathBuf,
    #[command(flatten)]
    text: TextSampleArgs,
    /// How many samples: images in the grid (rounded up to whole rows
    /// when a conditional model draws one row per class) [default: 64], or
    /// audio clips [default: 1].
    #[arg(long)]
    n: Option<usize>,
    /// Audio models: seconds per clip (at most, for a two-tier model,
    /// whose frame tier ends each clip).
    #[arg(long, default_value_t = 1.0)]
    seconds: f32,
    /// Two-tier audio models: how far drawn frames stray from their means,
    /// in sigmas [default: 0.3].
    #[arg(long)]
    frame_temperature: Option<f32>,
    /// Seed of the latent noise (the runtime's documented generator).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Class label, for a conditional model: a number, or for a text or
    /// audio model the class's name; without it, an image grid has one row
    /// per class (text and audio models need it).
    #[arg(long)]
    label: Option<String>,
    /// The PNG grid to write (images), the text with a provenance header
    /// (text, which also streams to stdout), or the WAV file (audio: with
    /// --n above 1, NAME-0.wav, NAME-1.wav...), a spectrogram PNG beside
    /// each.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Sum in the runtime's canonical order: the same bits as the
    /// firmware built with its `deterministic` feature, or any other
    /// target in that mode, draws from this model and seed (slower: see
    /// `cargo bench -p edgegen --bench determinism`).
    #[arg(long)]
    deterministic: bool,
}

/// The flags of a text model's sampling.
#[derive(Debug, Args)]
pub struct TextSampleArgs {
    /// Text models: what to continue.
    #[arg(long, default_value = "\n")]
    prompt: String,
    /// Text models: symbols to generate.
    #[arg(long, default_value_t = 200)]
    max_tokens: usize,
    /// Text and audio models: softmax temperature (0 = greedy) [default:
    /// 0.8 for text, 1 for audio, whose model was trained to be sampled
    /// as it is].
    #[arg(long, allow_negative_numbers = true)]
    temperature: Option<f32>,
    /// Text models: keep the k most likely symbols (0 = all).
    #[arg(long, default_value_t = 40)]
    top_k: usize,
    /// Text models: keep the most likely symbols up to this much probability (1 = all).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    top_p: f32,
    /// Text models: CTRL's repetition penalty over the last 64 symbols (1 = off).
    #[arg(long, default_value_t = 1.0, allow_negative_numbers = true)]
    repetition_penalty: f32,
    /// Text models: end after this text (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Text models, when the context is full: slide (keep the latest half
    /// and go on) or stop.
    #[arg(long, default_value = "slide")]
    context_policy: String,
    /// Text models: the KV cache's storage, f32 or q8_0 (a quarter of the
    /// RAM; keys and values rounded to 8 bits).
    #[arg(long, default_value = "f32")]
    kv_cache: String,
}

/// The largest grid `sample` draws: beyond it the PNG is too large to view.
const MAX_SAMPLES: usize = 10_000;

/// `sample MODEL --prompt PROMPT --max-tokens N --seed SEED -o OUT` with
/// the default sampling (the demo's).
pub fn text_args(
    model: &std::path::Path,
    prompt: &str,
    max_tokens: usize,
    seed: u64,
    out: &std::path::Path,
) -> SampleArgs {
    SampleArgs {
        model: model.to_path_buf(),
        text: TextSampleArgs {
            prompt: prompt.into(),
            max_tokens,
            temperature: None,
            top_k: 40,
            top_p: 1.0,
            repetition_penalty: 1.0,
            stop: vec![],
            context_policy: "slide".into(),
            kv_cache: "f32".into(),
        },
        n: None,
        seconds: 1.0,
        frame_temperature: None,
        seed,
        label: None,
        output: Some(out.to_path_buf()),
        deterministic: false,
    }
}

pub fn sample(a: SampleArgs) -> Result<()> {
    edgegen_runtime::kernels::set_deterministic(a.deterministic);
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("{}: cannot read", a.model.display()))?;
    match Model::from_gguf(&bytes) {
        Ok(Model::Text(t)) => {
            let label = match &a.label {
                Some(l) => Some(class_label(&bytes, l, &a.model, Family::Text)?),
                None => None,
            };
            return sample_text(&a, &t, &bytes, label);
        }
        Ok(Model::Audio(m)) => {
            let label = match &a.label {
                Some(l) => Some(class_label(&bytes, l, &a.model, Family::Audio)?),
                None => None,
            };
            let Some(out) = &a.output else {
                bail!("-o FILE.wav is required for an audio model");
            };
            let paths = super::sample_audio::sample_audio(
                &m,
                &bytes,
                &super::sample_audio::AudioSample {
                    model: &a.model,
                    n: a.n.unwrap_or(1),
                    seconds: a.seconds,
                    frame_temperature: a.frame_temperature,
                    temperature: a.text.temperature.unwrap_or(1.0),
                    seed: a.seed,
                    label,
                    output: out,
                },
            )?;
            for (i, (p, n)) in paths.iter().enumerate() {
                println!(
                    "wrote {} and its spectrogram {} ({} s at {} Hz, seed {})",
                    p.display(),
                    p.with_extension("png").display(),
                    *n as f32 / m.hp.sample_rate as f32,
                    m.hp.sample_rate,
                    a.seed.wrapping_add(i as u64)
                );
            }
            return Ok(());
        }
        _ => {}
    }
    let Some(out) = &a.output else {
        bail!("-o FILE.png is required for an image model");
    };
    let label = match &a.label {
        Some(l) => Some(
            l.parse::<u32>()
                .map_err(|_| anyhow!("--label: expected a class number, found {l:?}"))?,
        ),
        None => None,
    };
    sample_to(&a.model, a.n.unwrap_or(64), a.seed, label, out)
}

/// `--label` against a sequence model of `k` classes (0: unconditional),
/// which needs one label exactly when it is conditional.
pub(super) fn check_label_flag(
    k: u32,
    label: Option<u32>,
    what: &impl std::fmt::Display,
) -> Result<()> {
    match (k, label) {
        (0, Some(_)) => bail!("--label: {what} is an unconditional model"),
        (k, None) if k > 0 => bail!(
            "--label: {what} is conditional; give a class from 0 to {}",
            k - 1
        ),
        (k, Some(l)) if l >= k => bail!("--label: expected 0 to {}, found {l}", k - 1),
        _ => Ok(()),
    }
}

/// A text or audio model's class from `--label`: a number, or a name the
/// GGUF's class names hold.
fn class_label(bytes: &[u8], s: &str, path: &std::path::Path, family: Family) -> Result<u32> {
    if let Ok(n) = s.parse::<u32>() {
        return Ok(n);
    }
    let g = Gguf::parse(bytes).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let key = match family {
        Family::Audio => arch::audio::CLASS_NAMES,
        _ => arch::transformer::CLASS_NAMES_TEXT,
    };
    let names: Vec<String> = match g.get(key) {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    match names.iter().position(|n| n == s) {
        Some(i) => Ok(i as u32),
        None if names.is_empty() => bail!(
            "--label {s:?}: {} names no classes; give a class number",
            path.display()
        ),
        None => bail!(
            "--label {s:?}: expected a class number or one of {}",
            names
                .iter()
                .enumerate()
                .map(|(i, n)| format!("{i} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Streams a text model's continuation of `--prompt` to stdout (whole
/// UTF-8 characters only), and with `-o` writes it to a file under a
/// provenance header.
fn sample_text(
    a: &SampleArgs,
    m: &edgegen_runtime::models::transformer::Transformer<'_>,
    bytes: &[u8],
    label: Option<u32>,
) -> Result<()> {
    use crate::data::text::{Utf8Stream, Vocab};
    use edgegen_runtime::models::transformer::{ContextPolicy, State};
    use edgegen_runtime::sample::Sampling;
    use std::io::Write;
    let ta = &a.text;
    let what = a.model.display();
    let vocab = match m.chars {
        Some(c) => Vocab::Chars(c.chars().collect()),
        None => Vocab::Bytes,
    };
    if ta.prompt.is_empty() {
        bail!("--prompt: expected at least one character to continue");
    }
    let prompt = vocab.encode(&ta.prompt, "--prompt")?;
    let stops: Vec<Vec<u32>> = ta
        .stop
        .iter()
        .map(|s| vocab.encode(s, "--stop"))
        .collect::<Result<_>>()?;
    let stop_refs: Vec<&[u32]> = stops
        .iter()
        .map(Vec::as_slice)
        .filter(|s| !s.is_empty())
        .collect();
    let temperature = ta.temperature.unwrap_or(0.8);
    if !(temperature >= 0.0 && temperature.is_finite()) {
        bail!("--temperature: expected 0 (greedy) or a positive number, found {temperature}");
    }
    if !(ta.top_p > 0.0 && ta.top_p <= 1.0) {
        bail!("--top-p: expected 0 < p <= 1, found {}", ta.top_p);
    }
    if !(ta.repetition_penalty > 0.0 && ta.repetition_penalty.is_finite()) {
        bail!(
            "--repetition-penalty: expected a positive number, found {}",
            ta.repetition_penalty
        );
    }
    let t = m.hp.context_length as usize;
    let policy = match ta.context_policy.as_str() {
        "stop" => ContextPolicy::Stop,
        "slide" => ContextPolicy::Slide { keep: t / 2 },
        other => bail!("--context-policy: expected slide or stop, found {other:?}"),
    };
    check_label_flag(m.hp.n_classes, label, &what)?;
    let sampling = Sampling {
        temperature,
        top_k: ta.top_k,
        top_p: ta.top_p,
        repetition_penalty: ta.repetition_penalty,
    };
    let mut syms = vec![0u32; t];
    let q8 = match ta.kv_cache.as_str() {
        "f32" => false,
        "q8_0" => true,
        other => bail!("--kv-cache: expected f32 or q8_0, found {other:?}"),
    };
    let blank = edgegen_format::quant::BlockQ8_0 {
        d: [0; 2],
        qs: [0; 32],
    };
    let mut kv = vec![0f32; if q8 { 0 } else { m.state_len() }];
    let mut kv8 = match (q8, m.state_blocks()) {
        (false, _) => vec![],
        (true, Some(n)) => vec![blank; n],
        (true, None) => {
            bail!("--kv-cache q8_0: {what}'s K/V width is not a multiple of 32; use f32")
        }
    };
    let mut rng = Rng::new(a.seed);
    let mut scratch = vec![0f32; m.scratch_len()];
    let mut text = Utf8Stream::default();
    let run = TextRun {
        m,
        prompt: &prompt,
        sampling: &sampling,
        policy,
        stop: &stop_refs,
        max_tokens: ta.max_tokens,
        vocab: &vocab,
        shown: &ta.prompt,
    };
    let (n, mut out, full) = if q8 {
        let mut st = State::new_q8_0(&mut kv8, &mut syms, label);
        run.print(&mut st, &mut rng, &mut scratch, &mut text)
    } else {
        let mut st = State::new(&mut kv, &mut syms, label);
        run.print(&mut st, &mut rng, &mut scratch, &mut text)
    }
    .map_err(|e| anyhow!("{what}: {e}"))?;
    let mut stdout = std::io::stdout().lock();
    let tail = text.finish();
    writeln!(stdout, "{tail}")?;
    out += &tail;
    if full {
        eprintln!("note: the context of {t} symbols is full (--context-policy stop)");
    }
    if let Some(path) = &a.output {
        let source = Source::file(&a.model, bytes);
        let mut tag = Provenance::samples(&source, a.seed, n).with_label(label);
        tag.prompt = Some(ta.prompt.clone());
        // Through text, so that 0.8 reads 0.8 and not 0.800000011920929.
        let f = |x: f32| x.to_string().parse::<f64>().unwrap_or(x as f64);
        tag.sampling = Some(serde_json::json!({
            "temperature": f(temperature), "top_k": ta.top_k, "top_p": f(ta.top_p),
            "repetition_penalty": f(ta.repetition_penalty), "max_tokens": ta.max_tokens,
            "stop": ta.stop, "context_policy": ta.context_policy, "kv_cache": ta.kv_cache,
        }));
        let file = format!("{}{}{out}", tag.text_header()?, ta.prompt);
        crate::fsx::write_atomic(path, file.as_bytes())?;
        eprintln!(
            "wrote {} ({n} symbols, seed {}, model sha256 {})",
            path.display(),
            a.seed,
            &source.sha256[..16]
        );
    }
    Ok(())
}

/// What a text model continues, and how: `sample_text`'s settings, for
/// either kind of KV cache.
struct TextRun<'r, 'a> {
    m: &'r edgegen_runtime::models::transformer::Transformer<'a>,
    prompt: &'r [u32],
    sampling: &'r edgegen_runtime::sample::Sampling,
    policy: edgegen_runtime::models::transformer::ContextPolicy,
    stop: &'r [&'r [u32]],
    max_tokens: usize,
    vocab: &'r crate::data::text::Vocab,
    /// The prompt as typed, printed before its continuation.
    shown: &'r str,
}

impl TextRun<'_, '_> {
    /// Streams the continuation to stdout, whole characters only, as it
    /// is sampled; returns the symbols sampled, the text printed (without
    /// `text`'s unfinished tail) and whether the context filled.
    fn print<E: edgegen_runtime::models::transformer::KvElem>(
        &self,
        st: &mut edgegen_runtime::models::transformer::State<'_, E>,
        rng: &mut Rng,
        scratch: &mut [f32],
        text: &mut crate::data::text::Utf8Stream,
    ) -> Result<(usize, String, bool)> {
        use std::io::Write;
        let mut stream = self.m.stream(
            st,
            self.prompt,
            self.sampling,
            self.policy,
            self.stop,
            rng,
            scratch,
        )?;
        let (mut stdout, mut out, mut buf) = (std::io::stdout().lock(), String::new(), vec![]);
        write!(stdout, "{}", self.shown)?;
        let mut n = 0;
        while n < self.max_tokens {
            let Some(s) = stream.next() else { break };
            buf.clear();
            self.vocab.bytes_of(s?, &mut buf);
            let piece = text.push(&buf);
            write!(stdout, "{piece}")?;
            stdout.flush()?;
            out += &piece;
            n += 1;
        }
        Ok((n, out, stream.ended_full()))
    }
}

/// What `sample` draws from: a VAE decoder or a GAN generator, both noise
/// (and a label) to pixels in [0, 1].
enum Sampler<'a> {
    Decoder(edgegen_runtime::models::vae::VaeDecoder<'a>),
    Generator(edgegen_runtime::models::gan::Generator<'a>),
}

impl Sampler<'_> {
    fn n_classes(&self) -> u32 {
        match self {
            Sampler::Decoder(d) => d.hp.n_classes,
            Sampler::Generator(g) => g.hp.n_classes,
        }
    }
    fn image_shape(&self) -> [usize; 3] {
        match self {
            Sampler::Decoder(d) => d.hp.image_shape,
            Sampler::Generator(g) => g.hp.image_shape,
        }
        .map(|v| v as usize)
    }
    fn output_len(&self) -> usize {
        match self {
            Sampler::Decoder(d) => d.output_len(),
            Sampler::Generator(g) => g.output_len(),
        }
    }
    fn latent_dim(&self) -> usize {
        match self {
            Sampler::Decoder(d) => d.latent_dim(),
            Sampler::Generator(g) => g.latent_dim(),
        }
    }
    fn scratch_len(&self) -> usize {
        match self {
            Sampler::Decoder(d) => d.scratch_len(),
            Sampler::Generator(g) => g.scratch_len_fast(),
        }
    }
    fn sample(
        &self,
        rng: &mut Rng,
        label: Option<u32>,
        z: &mut [f32],
        scratch: &mut [f32],
        out: &mut [f32],
    ) -> Result<(), edgegen_runtime::Error> {
        match self {
            Sampler::Decoder(d) => d.sample(rng, label, z, scratch, out),
            Sampler::Generator(g) => g.sample(rng, label, z, scratch, out),
        }
    }
}

/// Samples `n` images from a GGUF model with the device runtime and writes
/// a tagged PNG grid.
pub fn sample_to(
    model_path: &std::path::Path,
    n: usize,
    seed: u64,
    label: Option<u32>,
    output: &std::path::Path,
) -> Result<()> {
    let output = output.to_path_buf();
    let bytes = std::fs::read(model_path)
        .with_context(|| format!("{}: cannot read", model_path.display()))?;
    let model = Model::from_gguf(&bytes).map_err(|e| anyhow!("{}: {e}", model_path.display()))?;
    let dec = match model {
        Model::VaeDecoder(d) => Sampler::Decoder(d),
        Model::Generator(g) => Sampler::Generator(g),
        Model::VaeEncoder(_) => bail!(
            "{}: holds a VAE encoder; sample needs the decoder (edgegen export --part decoder)",
            model_path.display()
        ),
        _ => bail!(
            "{}: sample knows VAE decoders, GAN generators and text models",
            model_path.display()
        ),
    };
    let k = dec.n_classes();
    if n == 0 {
        bail!("--n: expected at least 1 sample");
    }
    if n > MAX_SAMPLES {
        bail!(
            "--n: expected at most {MAX_SAMPLES} samples in one grid, found {}",
            n
        );
    }
    // A conditional model without --label draws one row per class, as a
    // run's samples.png does; rows of n/k samples, rounded up.
    let (labels, cols): (Vec<Option<u32>>, usize) = match (k, label) {
        (0, Some(_)) => bail!("--label: this model is unconditional"),
        (0, None) => (vec![None; n], (n as f64).sqrt().ceil() as usize),
        (_, Some(l)) if l >= k => bail!("--label: expected 0 to {}, found {l}", k - 1),
        (_, Some(l)) => (vec![Some(l); n], (n as f64).sqrt().ceil() as usize),
        (_, None) => {
            let per = n.div_ceil(k as usize);
            (
                (0..k)
                    .flat_map(|c| std::iter::repeat_n(Some(c), per))
                    .collect(),
                per,
            )
        }
    };
    let d = dec.output_len();
    let mut scratch = vec![0f32; dec.scratch_len()];
    let mut z = vec![0f32; dec.latent_dim()];
    let mut px = vec![0f32; d];
    let mut rng = Rng::new(seed);
    let mut imgs = Vec::with_capacity(labels.len());
    for &label in &labels {
        dec.sample(&mut rng, label, &mut z, &mut scratch, &mut px)
            .map_err(|e| anyhow!("runtime: {e}"))?;
        imgs.push(
            px.iter()
                .map(|&v| (v * 255.0).round() as u8)
                .collect::<Vec<u8>>(),
        );
    }
    let shape = dec.image_shape();
    let refs: Vec<&[u8]> = imgs.iter().map(|v| v.as_slice()).collect();
    let grid = plot::grid::image_grid(&refs, shape, cols, (56 / shape[1].max(1)).clamp(1, 4));
    let source = Source::file(model_path, &bytes);
    let mut tag = Provenance::samples(&source, seed, imgs.len());
    tag = match (k, label) {
        (0, _) => tag,
        (_, Some(l)) => tag.with_label(Some(l)),
        (_, None) => tag.with_row_labels((0..k).collect()),
    };
    plot::save_png(&grid, &output, &tag)?;
    println!(
        "wrote {} ({} samples{}, seed {}, model sha256 {})",
        output.display(),
        imgs.len(),
        if k > 0 && label.is_none() {
            format!(", one row of {cols} per class")
        } else {
            String::new()
        },
        seed,
        &source.sha256[..16]
    );
    Ok(())
}

#[derive(Debug, Args)]
pub struct ProvenanceArgs {
    /// A file edgegen generated.
    file: PathBuf,
}

pub fn provenance(a: ProvenanceArgs) -> Result<()> {
    let p = Provenance::read(&a.file)?;
    println!("{}", serde_json::to_string_pretty(&p)?);
    Ok(())
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A GGUF model file.
    model: PathBuf,
    /// Also what the model costs on a device: `thumbv7em` (Cortex-M4F,
    /// edgegen-firmware-m4) adds the family's code to the flash and its
    /// buffers and measured stack to the RAM.
    #[arg(long)]
    target: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Per family, the firmware's code and its stack's high-water mark, as
/// measured under QEMU by `scripts/footprint.sh` (a test checks the file
/// against a fresh measurement).
const THUMBV7EM: &str = include_str!("thumbv7em.json");

/// A model's cost on a Cortex-M4F with edgegen-firmware-m4.
#[derive(Debug, Serialize)]
struct Device {
    target: &'static str,
    /// The model file, in flash as it is.
    model_bytes: usize,
    /// The family's firmware code (`.text`), measured.
    code_bytes: u64,
    flash_bytes: u64,
    /// Scratch, state (a text model's KV cache: the smaller of f32 and
    /// Q8_0) and the firmware's inputs and outputs, all statics.
    statics_bytes: usize,
    /// The stack's high-water mark, measured.
    stack_bytes: u64,
    ram_bytes: u64,
    /// Whether it fits 1 MiB of flash and 192 KiB of RAM (an
    /// STM32F405-class part).
    fits_1mib_192kib: bool,
}

/// [`Device`] for `model` on `target`.
fn device(target: &str, model: &Model<'_>, model_bytes: usize) -> Result<Device> {
    if target != "thumbv7em" {
        bail!("--target: expected thumbv7em (the Cortex-M4F firmware), found {target:?}");
    }
    let (family, statics) = match model {
        Model::VaeDecoder(d) => (
            "vae",
            4 * (d.scratch_len() + d.latent_dim() + d.output_len()),
        ),
        Model::Generator(g) => (
            "gan",
            4 * (g.scratch_len() + g.latent_dim() + g.output_len()),
        ),
        Model::Text(t) => {
            let ctx = t.hp.context_length as usize;
            let kv = t.state_blocks().map_or(4 * t.state_len(), |b| 34 * b);
            // Symbols of the context, and up to 48 generated.
            ("text", 4 * t.scratch_len() + kv + 4 * (ctx + 48.min(ctx)))
        }
        // 400 codes generated.
        Model::Audio(m) => ("audio", 4 * (m.scratch_len() + m.state_len()) + 400),
        _ => bail!(
            "--target: the firmware samples; this model (a VAE encoder?) has no firmware build"
        ),
    };
    let table: serde_json::Value = serde_json::from_str(THUMBV7EM)?;
    let measured = |k: &str| {
        table[family][k]
            .as_u64()
            .ok_or_else(|| anyhow!("thumbv7em.json: no {k} for {family}"))
    };
    let (code, stack) = (measured("code_bytes")?, measured("stack_bytes")?);
    let flash = model_bytes as u64 + code;
    let ram = statics as u64 + stack;
    Ok(Device {
        target: "thumbv7em",
        model_bytes,
        code_bytes: code,
        flash_bytes: flash,
        statics_bytes: statics,
        stack_bytes: stack,
        ram_bytes: ram,
        fits_1mib_192kib: flash <= 1 << 20 && ram <= 192 * 1024,
    })
}

#[derive(Debug, Serialize)]
struct TensorRow {
    name: String,
    r#type: String,
    shape: Vec<u64>,
    bytes: usize,
}

#[derive(Debug, Serialize)]
struct Inspect {
    file: String,
    architecture: String,
    metadata: serde_json::Map<String, serde_json::Value>,
    tensors: Vec<TensorRow>,
    flash_bytes: usize,
    scratch_bytes: Option<usize>,
    flops_per_sample: Option<usize>,
    crc_ok: bool,
    /// A text model's RAM beyond the scratch: its KV cache either way,
    /// and the symbols in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    text_ram: Option<TextRam>,
    /// An audio model's state (the GRU's), which a sampler keeps beside
    /// the scratch.
    #[serde(skip_serializing_if = "Option::is_none")]
    state_bytes: Option<usize>,
    /// With `--target`: the cost on that device.
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<Device>,
}

#[derive(Debug, Serialize)]
struct TextRam {
    context: usize,
    kv_cache_bytes_f32: usize,
    /// `None` when the K/V width is not a multiple of 32.
    kv_cache_bytes_q8_0: Option<usize>,
    symbol_bytes: usize,
    /// Scratch, the smallest cache and the symbols.
    ram_bytes: usize,
}

fn to_json(v: &Value<'_>) -> serde_json::Value {
    match v {
        Value::String(s) => (*s).into(),
        Value::Bool(b) => (*b).into(),
        Value::F32(x) => (*x as f64).into(),
        Value::F64(x) => (*x).into(),
        Value::Array(a) => serde_json::Value::Array(a.iter().map(|x| to_json(&x)).collect()),
        other => other
            .as_u64()
            .map(Into::into)
            .unwrap_or_else(|| match other {
                Value::I8(x) => (*x as i64).into(),
                Value::I16(x) => (*x as i64).into(),
                Value::I32(x) => (*x as i64).into(),
                Value::I64(x) => (*x).into(),
                _ => serde_json::Value::Null,
            }),
    }
}

pub fn inspect(a: InspectArgs) -> Result<()> {
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("{}: cannot read", a.model.display()))?;
    let g = Gguf::parse(&bytes).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    let crc = arch::check(&g);
    let crc_ok = crc.is_ok();
    // A CRC that does not match means damaged data; a GGUF that is not
    // edgegen's (no CRC key) is shown as it is.
    let crc = match crc {
        Err(e @ edgegen_format::Error::CrcMismatch { .. }) => Err(e),
        _ => Ok(()),
    };
    let metadata = g
        .metadata()
        .map(|(k, v)| (k.to_string(), to_json(&v)))
        .collect();
    let tensors = g
        .tensors()
        .map(|t| TensorRow {
            name: t.name().into(),
            r#type: format!("{:?}", t.ggml_type()),
            shape: t.shape().to_vec(),
            bytes: t.bytes().len(),
        })
        .collect();
    let model = Model::from_gguf(&bytes);
    let (scratch, flops) = match &model {
        Ok(Model::VaeDecoder(d)) => (Some(4 * d.scratch_len()), Some(2 * d.macs())),
        Ok(Model::VaeEncoder(e)) => (Some(4 * e.scratch_len()), Some(2 * e.macs())),
        Ok(Model::Generator(g)) => (Some(4 * g.scratch_len()), Some(2 * g.macs())),
        // Flops of the step at the last position.
        Ok(Model::Text(t)) => (
            Some(4 * t.scratch_len()),
            Some(2 * t.macs(t.hp.context_length as usize - 1)),
        ),
        Ok(Model::Audio(m)) => (Some(4 * m.scratch_len()), Some(2 * m.macs())),
        _ => (None, None),
    };
    let text_ram = match &model {
        Ok(Model::Text(t)) => {
            let f32b = 4 * t.state_len();
            let q8 = t.state_blocks().map(|b| 34 * b);
            let syms = 4 * t.hp.context_length as usize;
            Some(TextRam {
                context: t.hp.context_length as usize,
                kv_cache_bytes_f32: f32b,
                kv_cache_bytes_q8_0: q8,
                symbol_bytes: syms,
                ram_bytes: 4 * t.scratch_len() + q8.unwrap_or(f32b).min(f32b) + syms,
            })
        }
        _ => None,
    };
    let state_bytes = match &model {
        Ok(Model::Audio(m)) => Some(4 * m.state_len()),
        _ => None,
    };
    let device = match (&a.target, &model) {
        (None, _) => None,
        (Some(t), Ok(m)) => Some(device(t, m, bytes.len())?),
        (Some(_), Err(e)) => bail!(
            "{}: --target needs a model the runtime loads: {e}",
            a.model.display()
        ),
    };
    let r = Inspect {
        device,
        text_ram,
        state_bytes,
        file: a.model.display().to_string(),
        architecture: g
            .get(arch::keys::ARCHITECTURE)
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        metadata,
        tensors,
        flash_bytes: bytes.len(),
        scratch_bytes: scratch,
        flops_per_sample: flops,
        crc_ok,
    };
    // What can be read is shown either way; a damaged file still fails.
    let damaged = |e: edgegen_format::Error| {
        anyhow!(
            "{}: the file is damaged: {e}; re-export it, or copy it again",
            a.model.display()
        )
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
        return crc.map_err(damaged);
    }
    println!("{}  {}", r.file, r.architecture);
    for (k, v) in &r.metadata {
        println!("  {k} = {v}");
    }
    println!(
        "  {:<22} {:<6} {:<14} {:>10}",
        "tensor", "type", "shape", "bytes"
    );
    for t in &r.tensors {
        println!(
            "  {:<22} {:<6} {:<14} {:>10}",
            t.name,
            t.r#type,
            format!("{:?}", t.shape),
            t.bytes
        );
    }
    println!("flash bytes    {}", r.flash_bytes);
    if let Some(t) = &r.text_ram {
        println!(
            "kv cache bytes {} (f32), {} (Q8_0) for a context of {}; symbols {}",
            t.kv_cache_bytes_f32,
            t.kv_cache_bytes_q8_0
                .map_or("n/a: K/V width not a multiple of 32".into(), |b| b
                    .to_string()),
            t.context,
            t.symbol_bytes
        );
        println!(
            "ram bytes      {} (scratch + the smaller cache + symbols)",
            t.ram_bytes
        );
    }
    if let (Some(s), Some(scratch)) = (r.state_bytes, r.scratch_bytes) {
        println!("state bytes    {s} (ram: {} with the scratch)", s + scratch);
    }
    match (r.scratch_bytes, r.flops_per_sample) {
        (Some(s), Some(f)) => println!("scratch bytes  {s}\nflops/sample   {f}"),
        _ => match &model {
            Err(e) => println!("runtime        cannot load it: {e}"),
            Ok(_) => println!("runtime        no costs for this kind of model yet"),
        },
    }
    if let Some(d) = &r.device {
        println!(
            "{} flash   {} = model {} + code {} (measured on edgegen-firmware-m4)",
            d.target, d.flash_bytes, d.model_bytes, d.code_bytes
        );
        println!(
            "{} ram     {} = statics {} (scratch, state, inputs and outputs) + stack {} (measured high-water)",
            d.target, d.ram_bytes, d.statics_bytes, d.stack_bytes
        );
        println!(
            "{} fits    {} (1 MiB of flash, 192 KiB of RAM: an STM32F405-class part)",
            d.target,
            if d.fits_1mib_192kib { "yes" } else { "no" }
        );
    }
    println!(
        "data crc32     {}",
        if r.crc_ok {
            "ok"
        } else {
            "MISMATCH or missing"
        }
    );
    crc.map_err(damaged)
}
