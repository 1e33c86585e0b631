//! Weights in and out of a run folder as a plain safetensors file, for the
//! PyTorch twin (`twin/pytorch/`, issue 14): a model's parameters and
//! buffers under edgegen's own tensor names and shapes (`enc.0.weight`,
//! `[out, in]`), f32, without the optimizer's moments. The twin trains the
//! same architecture with the same names, so a file moves between the two
//! without renaming; `config.json` (the run folder's) says which family
//! and which shapes.
//!
//! [`export`] writes what a checkpoint's family stores; [`import`] checks a
//! file against the model its config describes, listing every missing,
//! misshapen and unexpected tensor at once, and writes a run folder whose
//! checkpoint holds those weights with a fresh optimizer, which `eval`,
//! `export`, `validate`, `sample` and `inspect` take as any other.

use super::checkpoint::{self, Checkpoint, GroupState, Spec, TrainState};
use super::config::TrainConfig;
use super::run::files;
use super::rundir::Target;
use crate::models::{Family, parse_family};
use crate::nn::params::Layout;
use anyhow::{Context, Result, bail};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// The metadata key naming this file's form, and its value.
pub const FORMAT_KEY: &str = "edgegen.weights";
/// The version of the form.
pub const FORMAT: &str = "1";

/// What a model of a family stores: its parameter groups (name and
/// layout) and its buffers, as the family's `load` reads them.
pub struct Stored {
    /// The family.
    pub family: Family,
    /// The model config, as stored.
    pub model: serde_json::Value,
    /// `(name, layout)` of each parameter group.
    pub groups: Vec<(String, Layout)>,
    /// The buffers' layout.
    pub buffers: Layout,
}

impl Stored {
    /// The layouts of a model of `family` with config `model`, trained with
    /// `train` (a GAN's moving average, kept or not, is a training
    /// setting). `what` names the config in errors.
    pub fn of(
        family: Family,
        model: &serde_json::Value,
        train: &TrainConfig,
        what: &str,
    ) -> Result<Self> {
        fn typed<T: serde::de::DeserializeOwned>(
            v: &serde_json::Value,
            family: Family,
            what: &str,
        ) -> Result<T> {
            serde_json::from_value(v.clone()).with_context(|| {
                format!(
                    "{what}: \"model\" is not {} {family} config",
                    family.article()
                )
            })
        }
        let bad = |e: anyhow::Error| anyhow::anyhow!("{what}: model config: {e:#}");
        let model = model.clone();
        // Each family's own checkpoint `spec`, so that what a run stores
        // and what it exchanges are one list of names.
        let none = Layout::default();
        let (groups, buffers) = match family {
            Family::Vae => {
                let m = crate::models::vae::Vae::new(typed(&model, family, what)?).map_err(bad)?;
                owned(&super::vae::spec(&m))
            }
            Family::Gan => {
                let m = crate::models::gan::Gan::new(typed(&model, family, what)?).map_err(bad)?;
                let ema = train.gan_settings()?.ema > 0.0;
                owned(&super::gan::spec(&m, &super::gan::stored_buffers(&m, ema)))
            }
            Family::Text => {
                let mc: super::text::TextModelConfig = typed(&model, family, what)?;
                let m = crate::models::transformer::Transformer::new(mc.transformer.clone())
                    .map_err(bad)?;
                owned(&super::text::spec(&m, &mc, &none))
            }
            // The training streams are the run's state, not the model's.
            Family::Audio => {
                let mc: super::audio::AudioModelConfig = typed(&model, family, what)?;
                if mc.frames.is_some() {
                    bail!("{what}: the twin has no frame tier (an audio model with --feat-dim)");
                }
                let m = crate::models::rnn::Rnn::new(mc.rnn.clone()).map_err(bad)?;
                owned(&super::audio::spec(&m, None, &mc, &none))
            }
            Family::Classifier => {
                let m = crate::models::classifier::Classifier::new(typed(&model, family, what)?)
                    .map_err(bad)?;
                owned(&super::classifier::spec(&m))
            }
        };
        Ok(Self {
            family,
            model,
            groups,
            buffers,
        })
    }

    /// As a checkpoint [`Spec`].
    pub fn spec(&self) -> Spec<'_> {
        Spec {
            family: self.family,
            model: self.model.clone(),
            groups: self.groups.iter().map(|(n, l)| (n.as_str(), l)).collect(),
            buffers: &self.buffers,
        }
    }

    /// Every tensor, `(name, shape)`, parameters then buffers.
    fn tensors(&self) -> impl Iterator<Item = &crate::nn::params::Entry> {
        self.groups
            .iter()
            .flat_map(|(_, l)| l.entries.iter())
            .chain(self.buffers.entries.iter())
    }
}

/// A [`Spec`]'s groups and buffers, owned.
fn owned(s: &Spec<'_>) -> (Vec<(String, Layout)>, Layout) {
    let groups = s.groups.iter().map(|(n, l)| (n.to_string(), (*l).clone()));
    (groups.collect(), s.buffers.clone())
}

fn le_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The weights of the run `ck` is from: every parameter and buffer its
/// family stores, under its names and shapes, with the family and model
/// config in the metadata.
pub fn export(ck: &Checkpoint) -> Result<Vec<u8>> {
    let stored = Stored::of(
        ck.family,
        &ck.model,
        &ck.train,
        &ck.path.display().to_string(),
    )?;
    let st = ck.state(&stored.spec())?;
    let mut owned: Vec<(String, Vec<usize>, Vec<u8>)> = vec![];
    for ((_, layout), g) in stored.groups.iter().zip(&st.groups) {
        for e in &layout.entries {
            owned.push((
                e.name.clone(),
                e.shape.clone(),
                le_bytes(&g.params[e.range()]),
            ));
        }
    }
    for e in &stored.buffers.entries {
        owned.push((
            e.name.clone(),
            e.shape.clone(),
            le_bytes(&st.buffers[e.range()]),
        ));
    }
    let views: Vec<(String, TensorView)> = owned
        .iter()
        .map(|(n, s, b)| Ok((n.clone(), TensorView::new(Dtype::F32, s.clone(), b)?)))
        .collect::<Result<_>>()?;
    let meta = HashMap::from([
        (FORMAT_KEY.to_string(), FORMAT.to_string()),
        ("family".to_string(), ck.family.name().to_string()),
        ("model".to_string(), serde_json::to_string(&ck.model)?),
    ]);
    Ok(safetensors::serialize(views, Some(meta))?)
}

/// What [`import`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Imported {
    /// The family.
    pub family: &'static str,
    /// Tensors read.
    pub tensors: usize,
    /// Parameters and buffer values read.
    pub values: usize,
}

/// Writes the run folder `out` (refusing one that holds a run, unless
/// `force`) from the weights file `weights` and the run config `config`
/// (`config.json` in a run folder's form: `family`, `model`, `train`).
pub fn import(weights: &Path, config: &Path, out: &Path, force: bool) -> Result<Imported> {
    let cfg_text = std::fs::read_to_string(config)
        .with_context(|| format!("{}: cannot read", config.display()))?;
    let mut cfg: serde_json::Value = serde_json::from_str(&cfg_text)
        .with_context(|| format!("{}: not JSON", config.display()))?;
    let field = |k: &str| -> Result<&serde_json::Value> {
        cfg.get(k).with_context(|| {
            format!(
                "{}: no \"{k}\" (a run folder's config.json has \"family\", \"model\" and \"train\")",
                config.display()
            )
        })
    };
    let family_name = field("family")?
        .as_str()
        .with_context(|| format!("{}: \"family\" is not a string", config.display()))?;
    let family = parse_family(family_name, config.display())?;
    let train = TrainConfig::from_stored(
        field("train")?.clone(),
        family,
        format_args!("{}: \"train\"", config.display()),
    )?;
    let stored = Stored::of(
        family,
        field("model")?,
        &train,
        &config.display().to_string(),
    )?;

    let bytes =
        std::fs::read(weights).with_context(|| format!("{}: cannot read", weights.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .with_context(|| format!("{}: not a safetensors file", weights.display()))?;
    if let Ok((_, md)) = SafeTensors::read_metadata(&bytes)
        && let Some(m) = md.metadata()
        && let Some(f) = m.get("family")
        && f != family.name()
    {
        bail!(
            "{}: holds {} {f} model's weights; {} describes {} {}",
            weights.display(),
            parse_family(f, weights.display()).map_or("a", |g| g.article()),
            config.display(),
            family.article(),
            family.name()
        );
    }
    // Every difference at once: what is missing, misshapen, or extra.
    let mut problems = vec![];
    let want: HashMap<&str, &[usize]> = stored
        .tensors()
        .map(|e| (e.name.as_str(), &e.shape[..]))
        .collect();
    for e in stored.tensors() {
        match st.tensor(&e.name) {
            Err(_) => problems.push(format!("missing: {} {:?}", e.name, e.shape)),
            Ok(t) if t.dtype() != Dtype::F32 || t.shape() != e.shape => problems.push(format!(
                "{}: {:?} {:?}, expected F32 {:?}",
                e.name,
                t.dtype(),
                t.shape(),
                e.shape
            )),
            Ok(_) => {}
        }
    }
    let mut extra: Vec<&str> = st
        .names()
        .into_iter()
        .filter(|n| !want.contains_key(n))
        .collect();
    extra.sort();
    problems.extend(extra.iter().map(|n| format!("unexpected: {n}")));
    if !problems.is_empty() {
        const SHOWN: usize = 20;
        let more = problems.len().saturating_sub(SHOWN);
        bail!(
            "{}: does not match the {} model {} describes ({} difference{}):\n  {}{}",
            weights.display(),
            family.name(),
            config.display(),
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            problems[..problems.len().min(SHOWN)].join("\n  "),
            if more > 0 {
                format!("\n  and {more} more")
            } else {
                String::new()
            }
        );
    }
    let read = |name: &str, out: &mut [f32]| -> Result<()> {
        let t = st.tensor(name)?;
        for (o, b) in out.iter_mut().zip(t.data().chunks_exact(4)) {
            *o = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        }
        Ok(())
    };
    let mut groups = vec![];
    for (name, layout) in &stored.groups {
        let mut g = GroupState::zeros(name, layout.total());
        for e in &layout.entries {
            read(&e.name, &mut g.params[e.range()])?;
        }
        groups.push(g);
    }
    let mut buffers = vec![0f32; stored.buffers.total()];
    for e in &stored.buffers.entries {
        read(&e.name, &mut buffers[e.range()])?;
    }
    let values = groups.iter().map(|g| g.params.len()).sum::<usize>() + buffers.len();
    let state = TrainState {
        groups,
        buffers,
        epoch: 0,
        step: 0,
        rng: crate::rng::Rng::new(train.seed).state(),
        best_val: f64::INFINITY,
    };
    let ck = checkpoint::encode(&stored.spec(), &state, &serde_json::to_string(&train)?)?;
    let mut target = Target::fresh(out, force)?;
    cfg["imported_from"] = weights.display().to_string().into();
    crate::fsx::write_atomic(
        &target.dir().join(files::CONFIG),
        serde_json::to_string_pretty(&cfg)?.as_bytes(),
    )?;
    crate::fsx::write_atomic(&target.dir().join(files::BEST), &ck)?;
    crate::fsx::write_atomic(&target.dir().join(files::CHECKPOINT), &ck)?;
    target.commit()?;
    Ok(Imported {
        family: family.name(),
        tensors: stored.tensors().count(),
        values,
    })
}
