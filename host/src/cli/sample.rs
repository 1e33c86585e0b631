//! `edgegen sample` (the device runtime, run on the host), `edgegen
//! inspect` and `edgegen provenance`.

use crate::plot;
use crate::provenance::{Provenance, Source};
use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use edgegen_format::{Gguf, Value, arch};
use edgegen_runtime::models::Model;
use edgegen_runtime::sample::Rng;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// A GGUF model file.
    model: PathBuf,
    /// How many samples (rounded up to whole rows when a conditional
    /// model draws one row per class).
    #[arg(long, default_value_t = 64)]
    n: usize,
    /// Seed of the latent noise (the runtime's documented generator).
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Class label, for a conditional model; without it, the grid has one
    /// row per class.
    #[arg(long)]
    label: Option<u32>,
    /// The PNG grid to write.
    #[arg(short, long)]
    output: PathBuf,
}

/// The largest grid `sample` draws: beyond it the PNG is too large to view.
const MAX_SAMPLES: usize = 10_000;

pub fn sample(a: SampleArgs) -> Result<()> {
    sample_to(&a.model, a.n, a.seed, a.label, &a.output)
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
    let a = SampleArgs {
        model: model_path.to_path_buf(),
        n,
        seed,
        label,
        output: output.to_path_buf(),
    };
    let bytes =
        std::fs::read(&a.model).with_context(|| format!("{}: cannot read", a.model.display()))?;
    let model = Model::from_gguf(&bytes).map_err(|e| anyhow!("{}: {e}", a.model.display()))?;
    let dec = match model {
        Model::VaeDecoder(d) => Sampler::Decoder(d),
        Model::Generator(g) => Sampler::Generator(g),
        Model::VaeEncoder(_) => bail!(
            "{}: holds a VAE encoder; sample needs the decoder (edgegen export --part decoder)",
            a.model.display()
        ),
        _ => bail!(
            "{}: sample knows VAE decoders and GAN generators so far",
            a.model.display()
        ),
    };
    let k = dec.n_classes();
    if a.n == 0 {
        bail!("--n: expected at least 1 sample");
    }
    if a.n > MAX_SAMPLES {
        bail!(
            "--n: expected at most {MAX_SAMPLES} samples in one grid, found {}",
            a.n
        );
    }
    // A conditional model without --label draws one row per class, as a
    // run's samples.png does; rows of n/k samples, rounded up.
    let (labels, cols): (Vec<Option<u32>>, usize) = match (k, a.label) {
        (0, Some(_)) => bail!("--label: this model is unconditional"),
        (0, None) => (vec![None; a.n], (a.n as f64).sqrt().ceil() as usize),
        (_, Some(l)) if l >= k => bail!("--label: expected 0 to {}, found {l}", k - 1),
        (_, Some(l)) => (vec![Some(l); a.n], (a.n as f64).sqrt().ceil() as usize),
        (_, None) => {
            let per = a.n.div_ceil(k as usize);
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
    let mut rng = Rng::new(a.seed);
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
    let source = Source::file(&a.model, &bytes);
    let mut tag = Provenance::samples(&source, a.seed, imgs.len());
    tag = match (k, a.label) {
        (0, _) => tag,
        (_, Some(l)) => tag.with_label(Some(l)),
        (_, None) => tag.with_row_labels((0..k).collect()),
    };
    plot::save_png(&grid, &a.output, &tag)?;
    println!(
        "wrote {} ({} samples{}, seed {}, model sha256 {})",
        a.output.display(),
        imgs.len(),
        if k > 0 && a.label.is_none() {
            format!(", one row of {cols} per class")
        } else {
            String::new()
        },
        a.seed,
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
    /// Print JSON.
    #[arg(long)]
    json: bool,
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
        _ => (None, None),
    };
    let r = Inspect {
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
    match (r.scratch_bytes, r.flops_per_sample) {
        (Some(s), Some(f)) => println!("scratch bytes  {s}\nflops/sample   {f}"),
        _ => match &model {
            Err(e) => println!("runtime        cannot load it: {e}"),
            Ok(_) => println!("runtime        no costs for this kind of model yet"),
        },
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
