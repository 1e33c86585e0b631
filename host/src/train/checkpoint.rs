//! Checkpoints: safetensors files holding the parameters, the Adam moments
//! and, in the metadata, everything else needed to resume exactly (model
//! config, training config, epoch, step, RNG state, best validation loss).
//! Written atomically, so a crash never destroys the previous checkpoint.

use crate::models::vae::{Vae, VaeConfig};
use anyhow::{Context, Result, bail};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The checkpoint format version, stored under `edgegen.checkpoint`.
pub const VERSION: &str = "1";

/// Training state besides the model's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainState {
    /// Parameters, in the model's layout.
    pub params: Vec<f32>,
    /// Adam first moments.
    pub m: Vec<f32>,
    /// Adam second moments.
    pub v: Vec<f32>,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps taken.
    pub step: u64,
    /// RNG state after the last completed epoch.
    pub rng: [u64; 4],
    /// Best validation loss so far.
    pub best_val: f64,
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Writes a checkpoint atomically. `train_json` is the training config.
pub fn save(path: &Path, model: &Vae, s: &TrainState, train_json: &str) -> Result<()> {
    crate::fsx::write_atomic(path, &encode(model, s, train_json)?)
}

/// A checkpoint's bytes, for a caller that also needs their hash (the
/// provenance of the pictures drawn from it) before writing them.
pub fn encode(model: &Vae, s: &TrainState, train_json: &str) -> Result<Vec<u8>> {
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
    for e in &model.layout.entries {
        let r = e.range();
        owned.push((e.name.clone(), e.shape.clone(), bytes(&s.params[r.clone()])));
        owned.push((
            format!("adam.m.{}", e.name),
            e.shape.clone(),
            bytes(&s.m[r.clone()]),
        ));
        owned.push((
            format!("adam.v.{}", e.name),
            e.shape.clone(),
            bytes(&s.v[r]),
        ));
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, shape, b)| Ok((n.clone(), TensorView::new(Dtype::F32, shape.clone(), b)?)))
        .collect::<Result<_>>()?;
    let meta = HashMap::from([
        ("edgegen.checkpoint".to_string(), VERSION.to_string()),
        ("family".to_string(), "vae".to_string()),
        ("model".to_string(), serde_json::to_string(&model.cfg)?),
        ("train".to_string(), train_json.to_string()),
        ("epoch".to_string(), s.epoch.to_string()),
        ("step".to_string(), s.step.to_string()),
        ("rng".to_string(), s.rng.map(|x| x.to_string()).join(",")),
        ("best_val".to_string(), format!("{:?}", s.best_val)),
    ]);
    Ok(safetensors::serialize(views, Some(meta))?)
}

/// What a checkpoint's metadata says about its run, read without its
/// tensors.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Epochs completed.
    pub epoch: usize,
    /// The training configuration, as JSON.
    pub train_json: String,
}

/// Reads a checkpoint's metadata only: what a command needs to decide
/// before it loads (or refuses) a run.
pub fn read_meta(path: &Path) -> Result<Meta> {
    let mut f = std::fs::File::open(path)
        .with_context(|| format!("{}: cannot read checkpoint", path.display()))?;
    // safetensors: an 8-byte little-endian header length, then the header.
    let mut len = [0u8; 8];
    std::io::Read::read_exact(&mut f, &mut len).with_context(|| {
        format!(
            "{}: not a safetensors file (shorter than 8 bytes)",
            path.display()
        )
    })?;
    let n = u64::from_le_bytes(len);
    const MAX_HEADER: u64 = 100 << 20;
    if n > MAX_HEADER {
        bail!(
            "{}: not a safetensors file (header of {n} bytes, expected at most {MAX_HEADER})",
            path.display()
        );
    }
    let mut head = vec![0u8; n as usize];
    std::io::Read::read_exact(&mut f, &mut head).with_context(|| {
        format!(
            "{}: not a safetensors file (header cut short)",
            path.display()
        )
    })?;
    // The header is JSON; its `__metadata__` holds edgegen's strings.
    #[derive(serde::Deserialize)]
    struct Header {
        #[serde(rename = "__metadata__")]
        metadata: Option<HashMap<String, String>>,
    }
    let h: Header = serde_json::from_slice(&head).with_context(|| {
        format!(
            "{}: not a safetensors file (its header is not JSON)",
            path.display()
        )
    })?;
    let m = h
        .metadata
        .with_context(|| format!("{}: no edgegen metadata", path.display()))?;
    let epoch = meta(&m, "epoch", path)?.parse().with_context(|| {
        format!(
            "{}: metadata field \"epoch\" is not a number",
            path.display()
        )
    })?;
    Ok(Meta {
        epoch,
        train_json: meta(&m, "train", path)?.to_string(),
    })
}

/// A checkpoint's metadata and tensors, read back.
pub struct Checkpoint {
    /// The model configuration it was saved with.
    pub model: VaeConfig,
    /// The training configuration, as JSON.
    pub train_json: String,
    /// The state.
    pub state: TrainState,
}

fn meta<'a>(m: &'a HashMap<String, String>, key: &str, path: &Path) -> Result<&'a str> {
    m.get(key)
        .map(String::as_str)
        .with_context(|| format!("{}: metadata field {key:?} is missing", path.display()))
}

/// Reads a checkpoint, checking every tensor's name, type and shape
/// against the model its metadata describes.
pub fn load(path: &Path) -> Result<(Vae, Checkpoint)> {
    let data = std::fs::read(path)
        .with_context(|| format!("{}: cannot read checkpoint", path.display()))?;
    parse(path, &data)
}

/// [`load`] with the file's provenance (its name and sha256), for the
/// commands that generate pictures from it.
pub fn load_with_source(path: &Path) -> Result<(Vae, Checkpoint, crate::provenance::Source)> {
    let data = std::fs::read(path)
        .with_context(|| format!("{}: cannot read checkpoint", path.display()))?;
    let (m, ck) = parse(path, &data)?;
    Ok((m, ck, crate::provenance::Source::file(path, &data)))
}

/// A checkpoint read from `data`, the bytes of `path` (named in errors).
pub fn parse(path: &Path, data: &[u8]) -> Result<(Vae, Checkpoint)> {
    let (_, md) = SafeTensors::read_metadata(data)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let m = md
        .metadata()
        .clone()
        .with_context(|| format!("{}: no edgegen metadata", path.display()))?;
    let version = meta(&m, "edgegen.checkpoint", path)?;
    if version != VERSION {
        bail!(
            "{}: edgegen.checkpoint is {version:?}, expected {VERSION:?}",
            path.display()
        );
    }
    let cfg: VaeConfig = serde_json::from_str(meta(&m, "model", path)?).with_context(|| {
        format!(
            "{}: metadata field \"model\" is not a VAE config",
            path.display()
        )
    })?;
    let model =
        Vae::new(cfg.clone()).with_context(|| format!("{}: model config", path.display()))?;
    let st = SafeTensors::deserialize(data)
        .with_context(|| format!("{}: corrupt tensors", path.display()))?;
    let n = model.n_params();
    let (mut params, mut mm, mut vv) = (vec![0f32; n], vec![0f32; n], vec![0f32; n]);
    for e in &model.layout.entries {
        for (prefix, buf) in [
            ("", &mut params),
            ("adam.m.", &mut mm),
            ("adam.v.", &mut vv),
        ] {
            let name = format!("{prefix}{}", e.name);
            let t = st
                .tensor(&name)
                .with_context(|| format!("{}: tensor {name} is missing", path.display()))?;
            if t.dtype() != Dtype::F32 || t.shape() != e.shape.as_slice() {
                bail!(
                    "{}: tensor {name} is {:?} {:?}, expected F32 {:?}",
                    path.display(),
                    t.dtype(),
                    t.shape(),
                    e.shape
                );
            }
            for (o, b) in buf[e.range()].iter_mut().zip(t.data().chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
    }
    let parse = |k: &str| -> Result<u64> {
        meta(&m, k, path)?
            .parse()
            .with_context(|| format!("{}: metadata field {k:?} is not a number", path.display()))
    };
    let rng: Vec<u64> = meta(&m, "rng", path)?
        .split(',')
        .map(|s| s.parse::<u64>())
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "{}: metadata field \"rng\" is not 4 numbers",
                path.display()
            )
        })?;
    let rng: [u64; 4] = rng.try_into().map_err(|_| {
        anyhow::anyhow!(
            "{}: metadata field \"rng\" is not 4 numbers",
            path.display()
        )
    })?;
    let state = TrainState {
        params,
        m: mm,
        v: vv,
        epoch: parse("epoch")? as usize,
        step: parse("step")?,
        rng,
        best_val: meta(&m, "best_val", path)?.parse().unwrap_or(f64::INFINITY),
    };
    Ok((
        model,
        Checkpoint {
            model: cfg,
            train_json: meta(&m, "train", path)?.to_string(),
            state,
        },
    ))
}
