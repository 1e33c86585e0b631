//! Training settings: the family's defaults, a TOML or JSON file, then
//! command-line flags, each overriding the one before.
//!
//! One section is common to every family: the data, the run and the
//! optimizer, at the top level of a file. Each family's model settings sit
//! in a table named for it (`[vae]`), so that a key means one thing in every
//! family, and a key in the wrong place is an error that says where it goes.

use crate::models::Family;
use crate::nn::optim::Schedule;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;

pub use super::audio::AudioSettings;
pub use super::classifier::ClassifierSettings;
pub use super::gan::GanSettings;
pub use super::text::TextSettings;
pub use super::vae::VaeSettings;

/// Every setting of a training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Dataset path (`builtin:mnist-sample` by default).
    pub data: Option<String>,
    /// Fraction of the training images held out for validation. 0 uses the
    /// test split for validation, as PyTorch's example does.
    pub val_frac: f64,
    /// Use at most this many training images (for quick runs).
    pub max_train: Option<usize>,
    /// Bring every image to this many channels (1 to 4).
    pub channels: Option<usize>,
    /// Resize every image to `[H, W]`.
    pub image_size: Option<[usize; 2]>,
    /// Epochs to train in total.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Seed of every random choice: split, init, shuffles, noise.
    pub seed: u64,
    /// Threads (0 = all cores).
    pub threads: usize,
    /// Peak learning rate (of every parameter group, unless a family's
    /// table sets a group's own).
    pub lr: f32,
    /// Adam's beta1.
    pub beta1: f32,
    /// Adam's beta2.
    pub beta2: f32,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Warm-up steps of the cosine schedule.
    pub warmup_steps: u64,
    /// AdamW weight decay (0 = Adam). Norms, biases and embeddings never
    /// decay.
    pub weight_decay: f32,
    /// Global gradient-norm clip (0 = off).
    pub clip: f32,
    /// The VAE's model settings (`[vae]`); present exactly when the run
    /// trains a VAE.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vae: Option<VaeSettings>,
    /// The GAN's model and loss settings (`[gan]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gan: Option<GanSettings>,
    /// The classifier's settings (`[classifier]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classifier: Option<ClassifierSettings>,
    /// The text model's settings (`[text]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<TextSettings>,
    /// The audio model's settings (`[audio]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioSettings>,
}

impl Default for TrainConfig {
    /// The common defaults, with no family table: see [`Self::for_family`].
    fn default() -> Self {
        Self {
            data: None,
            val_frac: 0.1,
            max_train: None,
            channels: None,
            image_size: None,
            epochs: 10,
            batch: 128,
            seed: 1,
            threads: 0,
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            schedule: Schedule::Constant,
            warmup_steps: 0,
            weight_decay: 0.0,
            clip: 0.0,
            vae: None,
            gan: None,
            classifier: None,
            text: None,
            audio: None,
        }
    }
}

impl TrainConfig {
    /// The defaults of a `family` run.
    pub fn for_family(family: Family) -> Self {
        match family {
            Family::Vae => Self {
                vae: Some(VaeSettings::default()),
                ..Self::default()
            },
            // DCGAN's recipe: Adam at 2e-4 with beta1 0.5, on every
            // training image (the test split watches nothing a GAN picks).
            Family::Gan => Self {
                gan: Some(GanSettings::default()),
                lr: 2e-4,
                beta1: 0.5,
                val_frac: 0.0,
                ..Self::default()
            },
            // 99.15% on the MNIST test set (best of 12 epochs, about 17 s an
            // epoch on 2 cores); 8 epochs of constant 1e-3 stopped at 98.96%.
            Family::Classifier => Self {
                classifier: Some(ClassifierSettings::default()),
                epochs: 12,
                lr: 2e-3,
                schedule: Schedule::Cosine,
                warmup_steps: 200,
                weight_decay: 0.05,
                ..Self::default()
            },
            // nanoGPT's CPU "baby" recipe: AdamW (0.9, 0.99) with decay
            // 0.1, 100 warm-up steps then cosine to a tenth, clip 1, the
            // last 10% of the text held out.
            Family::Text => Self {
                text: Some(TextSettings::default()),
                batch: 12,
                lr: 1e-3,
                beta2: 0.99,
                schedule: Schedule::Cosine,
                warmup_steps: 100,
                weight_decay: 0.1,
                clip: 1.0,
                ..Self::default()
            },
            // The text recipe at a higher rate: AdamW (0.9, 0.99), decay
            // 0.1 on matrices, warm-up then cosine, clip 1; batch 16
            // windows; a tenth of the training takes held out.
            Family::Audio => Self {
                audio: Some(AudioSettings::default()),
                batch: 16,
                lr: 2e-3,
                beta2: 0.99,
                schedule: Schedule::Cosine,
                warmup_steps: 100,
                weight_decay: 0.1,
                clip: 1.0,
                ..Self::default()
            },
        }
    }

    /// A VAE run's defaults.
    pub fn vae() -> Self {
        Self::for_family(Family::Vae)
    }

    /// The family whose table the config holds.
    pub fn family(&self) -> Result<Family> {
        let present: Vec<Family> = Family::ALL
            .into_iter()
            .filter(|f| self.table(*f).is_some())
            .collect();
        match present.as_slice() {
            [f] => Ok(*f),
            [] => bail!(
                "the training config has no model table (expected one of [vae], [gan], [classifier], [text], [audio])"
            ),
            many => bail!(
                "the training config has {} model tables ({}); a run trains one family",
                many.len(),
                many.iter()
                    .map(|f| format!("[{f}]"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The family's table, as JSON, if present.
    fn table(&self, f: Family) -> Option<Value> {
        match f {
            Family::Vae => self.vae.as_ref().and_then(|t| serde_json::to_value(t).ok()),
            Family::Gan => self.gan.as_ref().and_then(|t| serde_json::to_value(t).ok()),
            Family::Classifier => self
                .classifier
                .as_ref()
                .and_then(|t| serde_json::to_value(t).ok()),
            Family::Text => self
                .text
                .as_ref()
                .and_then(|t| serde_json::to_value(t).ok()),
            Family::Audio => self
                .audio
                .as_ref()
                .and_then(|t| serde_json::to_value(t).ok()),
        }
    }

    /// The VAE table; an error for a run of another family.
    pub fn vae_settings(&self) -> Result<&VaeSettings> {
        match &self.vae {
            Some(v) => Ok(v),
            None => Err(self
                .family()?
                .refuse("this run", &[Family::Vae], "a VAE setting")),
        }
    }

    /// The GAN table; an error for a run of another family.
    pub fn gan_settings(&self) -> Result<&GanSettings> {
        match &self.gan {
            Some(v) => Ok(v),
            None => Err(self
                .family()?
                .refuse("this run", &[Family::Gan], "a GAN setting")),
        }
    }

    /// The classifier table; an error for a run of another family.
    pub fn classifier_settings(&self) -> Result<&ClassifierSettings> {
        match &self.classifier {
            Some(v) => Ok(v),
            None => Err(self.family()?.refuse(
                "this run",
                &[Family::Classifier],
                "a classifier setting",
            )),
        }
    }

    /// The text table; an error for a run of another family.
    pub fn text_settings(&self) -> Result<&TextSettings> {
        match &self.text {
            Some(v) => Ok(v),
            None => Err(self
                .family()?
                .refuse("this run", &[Family::Text], "a text setting")),
        }
    }

    /// The audio table; an error for a run of another family.
    pub fn audio_settings(&self) -> Result<&AudioSettings> {
        match &self.audio {
            Some(v) => Ok(v),
            None => Err(self
                .family()?
                .refuse("this run", &[Family::Audio], "an audio setting")),
        }
    }

    /// Reads a `.toml` or `.json` file over the defaults of `family`.
    pub fn from_file(path: &Path, family: Family) -> Result<Self> {
        Self::from_file_over(path, &Self::for_family(family))
    }

    /// Reads a `.toml` or `.json` file over `base`: keys the file does not
    /// name keep `base`'s values (a resumed run's own, for `--resume`).
    /// Unknown keys are errors; a model key at the top level, or another
    /// family's table, is an error that says where the key belongs.
    pub fn from_file_over(path: &Path, base: &Self) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let file: Value = match ext {
            "toml" => toml::from_str(&text)
                .with_context(|| format!("{}: invalid training config", path.display()))?,
            "json" => serde_json::from_str(&text)
                .with_context(|| format!("{}: invalid training config", path.display()))?,
            _ => bail!("{}: expected a .toml or .json file", path.display()),
        };
        let Value::Object(file) = file else {
            bail!(
                "{}: expected a table of settings at the top level",
                path.display()
            );
        };
        let family = base.family()?;
        let own = base.table(family).unwrap_or(Value::Null);
        for (k, v) in &file {
            if let Some(other) = Family::from_name(k) {
                if other != family {
                    bail!(
                        "{}: [{other}] holds the settings of {} {other} run; this is {} {family} run, whose model settings go under [{family}]",
                        path.display(),
                        other.article(),
                        family.article()
                    );
                }
                if !v.is_object() {
                    bail!("{}: {k}: expected a table of settings", path.display());
                }
            } else if own.get(k).is_some() {
                bail!(
                    "{}: `{k}` is a {family} model setting: put it under [{family}]",
                    path.display()
                );
            }
        }
        let mut merged = serde_json::to_value(base)?;
        merge(&mut merged, Value::Object(file));
        serde_json::from_value(merged)
            .with_context(|| format!("{}: invalid training config", path.display()))
    }

    /// A run's stored settings (`config.json`'s `train`, or a checkpoint's
    /// `train` field). Runs written before the model tables existed kept
    /// the VAE's keys at the top level; they are moved into `[vae]`, and
    /// the keys added since take their defaults (the values those runs used).
    pub fn from_stored(v: Value, family: Family, what: impl std::fmt::Display) -> Result<Self> {
        let added_since = [
            (Family::Vae, "label_every_layer", Value::Bool(false)),
            (Family::Gan, "d_hidden", Value::from(0)),
        ];
        let Value::Object(mut top) = v else {
            bail!("{what}: the training settings are not a table");
        };
        let defaults = Self::for_family(family);
        if !top.contains_key(family.name())
            && let Some(Value::Object(own)) = defaults.table(family)
        {
            let mut moved = Map::new();
            for k in own.keys() {
                if let Some(v) = top.remove(k) {
                    moved.insert(k.clone(), v);
                }
            }
            top.insert(family.name().into(), Value::Object(moved));
        }
        // Keys added after runs were stored, whose default for new runs is
        // not what those runs did.
        for (fam, key, old) in added_since {
            if fam == family
                && let Some(Value::Object(own)) = top.get_mut(family.name())
            {
                own.entry(key).or_insert(old);
            }
        }
        let mut merged = serde_json::to_value(&defaults)?;
        merge(&mut merged, Value::Object(top));
        let cfg: Self = serde_json::from_value(merged)
            .with_context(|| format!("{what}: not a training config"))?;
        if cfg.family()? != family {
            bail!(
                "{what}: the training settings are for {} {} run, the checkpoint's family is {family}",
                cfg.family()?.article(),
                cfg.family()?
            );
        }
        Ok(cfg)
    }

    /// Checks every setting before anything runs. Each error names the
    /// command-line flag (the config file's key is the same name with `_`),
    /// the value expected and the value found, so that no run starts that
    /// would leave nothing usable behind.
    pub fn validate(&self) -> Result<()> {
        let family = self.family()?;
        self.shaping().validate()?;
        at_least_1("--epochs", self.epochs)?;
        if matches!(family, Family::Text | Family::Audio) {
            // A sequence run's length is its steps; flags for images do
            // not apply, and are refused rather than ignored.
            let d = Self::for_family(family);
            let refuse = |flag: &str, hint: &str| {
                anyhow::anyhow!(
                    "{flag}: {} {family} run does not take it{hint}",
                    family.article()
                )
            };
            if self.epochs != d.epochs {
                return Err(refuse(
                    "--epochs",
                    "; its length is --iters (optimizer steps)",
                ));
            }
            if self.max_train.is_some() {
                return Err(refuse("--max-train", ""));
            }
            if self.channels.is_some() {
                return Err(refuse("--channels", " (it is for images)"));
            }
            if self.image_size.is_some() {
                return Err(refuse("--image-size", " (it is for images)"));
            }
        }
        at_least_1("--batch", self.batch)?;
        if let Some(m) = self.max_train {
            at_least_1("--max-train", m)?;
        }
        if self.batch > 1 << 16 {
            bail!("--batch: expected at most 65536, found {}", self.batch);
        }
        if self.threads > 1024 {
            bail!(
                "--threads: expected 0 (all cores) to 1024, found {}",
                self.threads
            );
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("--lr: expected a positive number, found {}", self.lr);
        }
        for (flag, v) in [("--beta1", self.beta1), ("--beta2", self.beta2)] {
            if !(0.0..1.0).contains(&v) {
                bail!("{flag}: expected 0 <= value < 1, found {v}");
            }
        }
        for (flag, v) in [("--weight-decay", self.weight_decay), ("--clip", self.clip)] {
            if !(v >= 0.0 && v.is_finite()) {
                bail!("{flag}: expected 0 or a positive number, found {v}");
            }
        }
        if !(0.0..1.0).contains(&self.val_frac) {
            bail!(
                "--val-frac: expected 0 <= value < 1, found {}",
                self.val_frac
            );
        }
        match family {
            Family::Vae => self.vae_settings()?.validate(),
            Family::Gan => self.gan_settings()?.validate(),
            Family::Classifier => self.classifier_settings()?.validate(),
            Family::Text => self.text_settings()?.validate(),
            Family::Audio => self.audio_settings()?.validate(),
        }
    }

    /// How the run's images are brought to one shape.
    pub fn shaping(&self) -> crate::data::images::Shaping {
        crate::data::images::Shaping {
            channels: self.channels,
            size: self.image_size,
        }
    }

    /// The settings that `--resume` may change: how long the run goes on
    /// (`iters` for text; its cosine schedule then stretches to the new
    /// length from where it is) and on how many threads. Threads change no result, since faer splits
    /// each GEMM's output, not its sums (and the VAE's `--parallel batch`
    /// keeps its split of the batch when resumed on other threads).
    pub const RESUMABLE: [&'static str; 3] = ["epochs", "iters", "threads"];

    /// Every setting of `given` that differs from the run's `stored` one,
    /// besides [`Self::RESUMABLE`]: `(flag, stored, given)`. Model settings
    /// are named by their flag, as at the top level.
    pub fn conflicts(stored: &Self, given: &Self) -> Vec<(String, String, String)> {
        // Through text, so that an f32 reads as written (0.001, not
        // 0.0010000000474974513 as a direct conversion gives).
        let value = |c: &Self| {
            serde_json::to_string(c)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .map(flatten)
                .unwrap_or_default()
        };
        let (a, b) = (value(stored), value(given));
        let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
        keys.sort();
        keys.dedup();
        keys.into_iter()
            .filter(|k| !Self::RESUMABLE.contains(&k.as_str()))
            .filter_map(|k| {
                let va = a.get(k).unwrap_or(&Value::Null);
                let vb = b.get(k).unwrap_or(&Value::Null);
                (va != vb).then(|| {
                    (
                        format!("--{}", k.replace('_', "-")),
                        va.to_string(),
                        vb.to_string(),
                    )
                })
            })
            .collect()
    }
}

fn at_least_1(flag: &str, v: usize) -> Result<()> {
    if v == 0 {
        bail!("{flag}: expected at least 1, found 0");
    }
    Ok(())
}

/// Merges `over` into `base`: tables key by key, anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (b, o) => *b = o,
    }
}

/// The settings as one flat table: a family table's keys join the top
/// level, where their flags live.
fn flatten(v: Value) -> Map<String, Value> {
    let Value::Object(top) = v else {
        return Map::new();
    };
    let mut out = Map::new();
    for (k, v) in top {
        match v {
            Value::Object(inner) if Family::from_name(&k).is_some() => out.extend(inner),
            v => {
                out.insert(k, v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_files_fill_settings_and_reject_unknown_keys() {
        let d = std::env::temp_dir().join(format!("edgegen-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("a.toml"),
            "schedule = \"cosine\"\n[vae]\nlatent = 2\nhidden = [256, 128]\n",
        )
        .unwrap();
        let c = TrainConfig::from_file(&d.join("a.toml"), Family::Vae).unwrap();
        let v = c.vae_settings().unwrap();
        assert_eq!(
            (v.latent, v.hidden(), c.schedule),
            (2, vec![256, 128], Schedule::Cosine)
        );
        assert_eq!((c.batch, v.likelihood.as_str()), (128, "bernoulli"));
        std::fs::write(d.join("b.json"), r#"{"epochs": 3, "lr": 0.01}"#).unwrap();
        let c = TrainConfig::from_file(&d.join("b.json"), Family::Vae).unwrap();
        assert_eq!((c.epochs, c.lr), (3, 0.01));
        let err = |file: &str, text: &str| {
            std::fs::write(d.join(file), text).unwrap();
            format!(
                "{:#}",
                TrainConfig::from_file(&d.join(file), Family::Vae).unwrap_err()
            )
        };
        let e = err("c.toml", "laten = 2\n");
        assert!(e.contains("c.toml") && e.contains("laten"), "{e}");
        let e = err("d.toml", "[vae]\nlaten = 2\n");
        assert!(e.contains("d.toml") && e.contains("laten"), "{e}");
        let e = err("e.toml", "latent = 2\n");
        assert!(
            e.contains("`latent` is a vae model setting: put it under [vae]"),
            "{e}"
        );
    }

    #[test]
    fn a_file_over_a_stored_run_keeps_the_run_s_model_settings() {
        let d = std::env::temp_dir().join(format!("edgegen-cfg2-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let mut stored = TrainConfig::vae();
        stored.vae.as_mut().unwrap().hidden = Some(vec![32]);
        std::fs::write(d.join("f.toml"), "epochs = 4\n[vae]\nlatent = 20\n").unwrap();
        let c = TrainConfig::from_file_over(&d.join("f.toml"), &stored).unwrap();
        assert_eq!(c.vae_settings().unwrap().hidden(), vec![32]);
        assert!(TrainConfig::conflicts(&stored, &c).is_empty());
        let mut other = c.clone();
        other.vae.as_mut().unwrap().latent = 3;
        other.lr = 0.01;
        let k: Vec<String> = TrainConfig::conflicts(&stored, &other)
            .into_iter()
            .map(|c| format!("{} {} {}", c.0, c.1, c.2))
            .collect();
        assert_eq!(k, ["--latent 20 3", "--lr 0.001 0.01"]);
    }

    #[test]
    fn settings_stored_before_the_model_tables_still_read() {
        let old = serde_json::json!({
            "data": "x", "conditional": true, "latent": 3, "hidden": [16],
            "likelihood": "bernoulli", "activation": "relu", "epochs": 2, "batch": 8,
            "lr": 0.001, "schedule": "constant", "warmup_steps": 0, "weight_decay": 0.0,
            "clip": 0.0, "seed": 1, "threads": 0, "parallel": "gemm", "val_frac": 0.1,
            "max_train": null, "channels": null, "image_size": null
        });
        let c = TrainConfig::from_stored(old, Family::Vae, "ck").unwrap();
        let v = c.vae_settings().unwrap();
        assert!(v.conditional && v.latent == 3 && v.hidden() == [16]);
        assert_eq!((c.beta1, c.batch), (0.9, 8));
    }

    /// A GAN run stored before the discriminator's hidden layer existed
    /// had none, whatever new runs default to; one stored with it keeps it.
    #[test]
    fn gan_runs_stored_before_the_hidden_layer_keep_none() {
        let mut new = TrainConfig::for_family(Family::Gan);
        assert_eq!(new.gan_settings().unwrap().d_hidden, 512);
        let mut old = serde_json::to_value(&new).unwrap();
        old["gan"].as_object_mut().unwrap().remove("d_hidden");
        let c = TrainConfig::from_stored(old, Family::Gan, "ck").unwrap();
        assert_eq!(c.gan_settings().unwrap().d_hidden, 0);
        new.gan.as_mut().unwrap().d_hidden = 64;
        let stored = serde_json::to_value(&new).unwrap();
        let c = TrainConfig::from_stored(stored, Family::Gan, "ck").unwrap();
        assert_eq!(c.gan_settings().unwrap().d_hidden, 64);
    }
}
