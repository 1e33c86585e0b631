//! Checkpoints: safetensors files holding a model's parameter groups, each
//! with its own Adam moments and step count, its non-trainable buffers
//! (BatchNorm running statistics), and in the metadata everything else
//! needed to resume exactly: the family, the model config, the training
//! config, the epoch, the step, the RNG state and the best validation score.
//! Written atomically, so a crash never destroys the previous checkpoint.
//!
//! Tensor names are the model's own (`enc.0.weight`), unique across groups;
//! a group's moments are `adam.m.<name>` and `adam.v.<name>`. The metadata
//! field `groups` lists each group's name and step in order.

use super::config::TrainConfig;
use crate::models::{Family, parse_family};
use crate::nn::params::Layout;
use crate::provenance::Source;
use anyhow::{Context, Result, bail};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The checkpoint format version, stored under `edgegen.checkpoint`.
/// Version 1 (one VAE parameter set, no groups) is still read.
pub const VERSION: &str = "2";

/// One parameter group's training state: its parameters and the Adam
/// moments that follow them, in the group's layout.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupState {
    /// The group's name (`vae`, `gen`, `disc`).
    pub name: String,
    /// Parameters.
    pub params: Vec<f32>,
    /// Adam first moments.
    pub m: Vec<f32>,
    /// Adam second moments.
    pub v: Vec<f32>,
    /// Optimizer steps this group has taken.
    pub step: u64,
}

impl GroupState {
    /// A group of `n` parameters with a zeroed optimizer.
    pub fn zeros(name: &str, n: usize) -> Self {
        Self {
            name: name.into(),
            params: vec![0.0; n],
            m: vec![0.0; n],
            v: vec![0.0; n],
            step: 0,
        }
    }
}

/// Everything a run carries from one epoch to the next.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainState {
    /// The parameter groups, in the model's order.
    pub groups: Vec<GroupState>,
    /// Non-trainable buffers, in the model's buffer layout.
    pub buffers: Vec<f32>,
    /// Epochs completed.
    pub epoch: usize,
    /// Training steps (batches) taken.
    pub step: u64,
    /// RNG state after the last completed epoch.
    pub rng: [u64; 4],
    /// Best validation score so far (lower is better).
    pub best_val: f64,
}

impl TrainState {
    /// The group named `name`.
    pub fn group(&self, name: &str) -> Option<&GroupState> {
        self.groups.iter().find(|g| g.name == name)
    }
}

/// What a model stores: its family and config, and the layouts of its
/// parameter groups and buffers.
pub struct Spec<'a> {
    /// The family.
    pub family: Family,
    /// The model config, as the family serializes it.
    pub model: serde_json::Value,
    /// `(name, layout)` of each parameter group.
    pub groups: Vec<(&'a str, &'a Layout)>,
    /// The buffers' layout (empty for a model without any).
    pub buffers: &'a Layout,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct GroupMeta {
    name: String,
    step: u64,
}

fn bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A checkpoint's bytes, for a caller that also needs their hash (the
/// provenance of the pictures drawn from it) before writing them.
pub fn encode(spec: &Spec, s: &TrainState, train_json: &str) -> Result<Vec<u8>> {
    if spec.groups.len() != s.groups.len() {
        bail!(
            "the model has {} parameter groups, the state {}",
            spec.groups.len(),
            s.groups.len()
        );
    }
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
    for ((_, layout), g) in spec.groups.iter().zip(&s.groups) {
        for e in &layout.entries {
            let r = e.range();
            owned.push((e.name.clone(), e.shape.clone(), bytes(&g.params[r.clone()])));
            owned.push((
                format!("adam.m.{}", e.name),
                e.shape.clone(),
                bytes(&g.m[r.clone()]),
            ));
            owned.push((
                format!("adam.v.{}", e.name),
                e.shape.clone(),
                bytes(&g.v[r]),
            ));
        }
    }
    for e in &spec.buffers.entries {
        owned.push((
            e.name.clone(),
            e.shape.clone(),
            bytes(&s.buffers[e.range()]),
        ));
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, shape, b)| Ok((n.clone(), TensorView::new(Dtype::F32, shape.clone(), b)?)))
        .collect::<Result<_>>()?;
    let groups: Vec<GroupMeta> = s
        .groups
        .iter()
        .map(|g| GroupMeta {
            name: g.name.clone(),
            step: g.step,
        })
        .collect();
    let meta = HashMap::from([
        ("edgegen.checkpoint".to_string(), VERSION.to_string()),
        ("family".to_string(), spec.family.name().to_string()),
        ("model".to_string(), serde_json::to_string(&spec.model)?),
        ("train".to_string(), train_json.to_string()),
        ("groups".to_string(), serde_json::to_string(&groups)?),
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
    /// The family.
    pub family: Family,
    /// Epochs completed.
    pub epoch: usize,
    /// The training configuration, as stored.
    pub train: TrainConfig,
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
    let family = parse_family(meta(&m, "family", path)?, path.display())?;
    Ok(Meta {
        family,
        epoch: number(&m, "epoch", path)? as usize,
        train: train_config(&m, family, path)?,
    })
}

fn meta<'a>(m: &'a HashMap<String, String>, key: &str, path: &Path) -> Result<&'a str> {
    m.get(key)
        .map(String::as_str)
        .with_context(|| format!("{}: metadata field {key:?} is missing", path.display()))
}

fn number(m: &HashMap<String, String>, key: &str, path: &Path) -> Result<u64> {
    meta(m, key, path)?
        .parse()
        .with_context(|| format!("{}: metadata field {key:?} is not a number", path.display()))
}

fn train_config(m: &HashMap<String, String>, family: Family, path: &Path) -> Result<TrainConfig> {
    let v: serde_json::Value =
        serde_json::from_str(meta(m, "train", path)?).with_context(|| {
            format!(
                "{}: metadata field \"train\" is not a training config",
                path.display()
            )
        })?;
    TrainConfig::from_stored(
        v,
        family,
        format_args!("{}: metadata field \"train\"", path.display()),
    )
}

/// A checkpoint read from disk: its metadata, parsed, and its tensors, to
/// be taken by the family that knows their layout ([`Checkpoint::state`]).
pub struct Checkpoint {
    /// The file.
    pub path: PathBuf,
    /// The family.
    pub family: Family,
    /// The model config, as the family stored it.
    pub model: serde_json::Value,
    /// The training configuration.
    pub train: TrainConfig,
    /// Epochs completed.
    pub epoch: usize,
    /// Steps taken.
    pub step: u64,
    rng: [u64; 4],
    best_val: f64,
    groups: Vec<GroupMeta>,
    bytes: Vec<u8>,
}

/// Reads a checkpoint's metadata; the tensors are checked when a family
/// takes them.
pub fn load(path: &Path) -> Result<Checkpoint> {
    let data = std::fs::read(path)
        .with_context(|| format!("{}: cannot read checkpoint", path.display()))?;
    parse(path, data)
}

/// A checkpoint read from `data`, the bytes of `path` (named in errors).
pub fn parse(path: &Path, data: Vec<u8>) -> Result<Checkpoint> {
    let (_, md) = SafeTensors::read_metadata(&data)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let m = md
        .metadata()
        .clone()
        .with_context(|| format!("{}: no edgegen metadata", path.display()))?;
    let version = meta(&m, "edgegen.checkpoint", path)?;
    if version != VERSION && version != "1" {
        bail!(
            "{}: edgegen.checkpoint is {version:?}, expected {VERSION:?} (or \"1\")",
            path.display()
        );
    }
    let family = parse_family(meta(&m, "family", path)?, path.display())?;
    let model = serde_json::from_str(meta(&m, "model", path)?)
        .with_context(|| format!("{}: metadata field \"model\" is not JSON", path.display()))?;
    let step = number(&m, "step", path)?;
    let groups = if version == "1" {
        // Version 1 held one VAE parameter set, stepped every batch.
        vec![GroupMeta {
            name: "vae".into(),
            step,
        }]
    } else {
        serde_json::from_str(meta(&m, "groups", path)?).with_context(|| {
            format!(
                "{}: metadata field \"groups\" is not a list of groups",
                path.display()
            )
        })?
    };
    let rng: Vec<u64> = meta(&m, "rng", path)?
        .split(',')
        .map(|s| s.parse::<u64>())
        .collect::<Result<_, _>>()
        .ok()
        .filter(|r: &Vec<u64>| r.len() == 4)
        .with_context(|| {
            format!(
                "{}: metadata field \"rng\" is not 4 numbers",
                path.display()
            )
        })?;
    Ok(Checkpoint {
        path: path.to_path_buf(),
        family,
        model,
        train: train_config(&m, family, path)?,
        epoch: number(&m, "epoch", path)? as usize,
        step,
        rng: [rng[0], rng[1], rng[2], rng[3]],
        best_val: meta(&m, "best_val", path)?.parse().unwrap_or(f64::INFINITY),
        groups,
        bytes: data,
    })
}

impl Checkpoint {
    /// Refuses a run of another family than `wanted`, for `by` (a command
    /// or flag): "runs/x/best.safetensors is a vae run; `--classifier`
    /// needs a classifier".
    pub fn expect(&self, wanted: &[Family], by: &str) -> Result<()> {
        self.family.expect(self.path.display(), wanted, by)
    }

    /// The model config as the family's type.
    pub fn model_config<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.model.clone()).with_context(|| {
            format!(
                "{}: metadata field \"model\" is not {} {} config",
                self.path.display(),
                self.family.article(),
                self.family
            )
        })
    }

    /// The provenance of pictures drawn from this file.
    pub fn source(&self) -> Source {
        Source::file(&self.path, &self.bytes)
    }

    /// The training state, checking every tensor's name, type and shape
    /// against the model `spec` describes.
    pub fn state(&self, spec: &Spec) -> Result<TrainState> {
        self.state_from(spec, None)
    }

    /// [`Checkpoint::state`], where a file that has not started training
    /// (epoch and step 0: an imported run) may leave out buffers that only
    /// training writes, such as the audio family's streams; those take
    /// their values from `starts` (a fresh state's buffers).
    pub fn state_from(&self, spec: &Spec, starts: Option<&[f32]>) -> Result<TrainState> {
        let path = &self.path;
        let starts = starts.filter(|_| self.epoch == 0 && self.step == 0);
        if spec.family != self.family {
            return Err(self.family.refuse(path.display(), &[spec.family], "this"));
        }
        let names: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
        let want: Vec<&str> = spec.groups.iter().map(|g| g.0).collect();
        if names != want {
            bail!(
                "{}: parameter groups are {names:?}, expected {want:?}",
                path.display()
            );
        }
        let st = SafeTensors::deserialize(&self.bytes)
            .with_context(|| format!("{}: corrupt tensors", path.display()))?;
        let read = |name: &str, shape: &[usize], out: &mut [f32]| -> Result<()> {
            let t = st
                .tensor(name)
                .with_context(|| format!("{}: tensor {name} is missing", path.display()))?;
            if t.dtype() != Dtype::F32 || t.shape() != shape {
                bail!(
                    "{}: tensor {name} is {:?} {:?}, expected F32 {:?}",
                    path.display(),
                    t.dtype(),
                    t.shape(),
                    shape
                );
            }
            for (o, b) in out.iter_mut().zip(t.data().chunks_exact(4)) {
                *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
            Ok(())
        };
        let mut groups = vec![];
        for ((name, layout), meta) in spec.groups.iter().zip(&self.groups) {
            let mut g = GroupState::zeros(name, layout.total());
            g.step = meta.step;
            for e in &layout.entries {
                read(&e.name, &e.shape, &mut g.params[e.range()])?;
                read(&format!("adam.m.{}", e.name), &e.shape, &mut g.m[e.range()])?;
                read(&format!("adam.v.{}", e.name), &e.shape, &mut g.v[e.range()])?;
            }
            groups.push(g);
        }
        let mut buffers = vec![0f32; spec.buffers.total()];
        for e in &spec.buffers.entries {
            match starts {
                Some(v) if st.tensor(&e.name).is_err() && v.len() == buffers.len() => {
                    buffers[e.range()].copy_from_slice(&v[e.range()]);
                }
                _ => read(&e.name, &e.shape, &mut buffers[e.range()])?,
            }
        }
        Ok(TrainState {
            groups,
            buffers,
            epoch: self.epoch,
            step: self.step,
            rng: self.rng,
            best_val: self.best_val,
        })
    }
}
