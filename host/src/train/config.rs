//! Training settings: defaults, a TOML or JSON file, then command-line
//! flags, each overriding the one before.

use crate::nn::optim::Schedule;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Every setting of a VAE training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Dataset path (`builtin:mnist-sample` by default).
    pub data: Option<String>,
    /// Condition on the class label.
    pub conditional: bool,
    /// Latent size Z.
    pub latent: usize,
    /// Hidden widths, encoder order.
    pub hidden: Vec<usize>,
    /// `bernoulli` or `gaussian`.
    pub likelihood: String,
    /// Hidden activation.
    pub activation: String,
    /// Epochs to train in total.
    pub epochs: usize,
    /// Batch size.
    pub batch: usize,
    /// Peak learning rate.
    pub lr: f32,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Warm-up steps of the cosine schedule.
    pub warmup_steps: u64,
    /// AdamW weight decay (0 = Adam).
    pub weight_decay: f32,
    /// Global gradient-norm clip (0 = off).
    pub clip: f32,
    /// Seed of every random choice: split, init, shuffles, noise.
    pub seed: u64,
    /// Threads (0 = all cores).
    pub threads: usize,
    /// How a step uses the threads.
    pub parallel: super::Parallel,
    /// Fraction of the training images held out for validation. 0 uses the
    /// test split for validation, as PyTorch's example does.
    pub val_frac: f64,
    /// Use at most this many training images (for quick runs).
    pub max_train: Option<usize>,
    /// Bring every image to this many channels (1 to 4).
    pub channels: Option<usize>,
    /// Resize every image to `[H, W]`.
    pub image_size: Option<[usize; 2]>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            data: None,
            conditional: false,
            latent: 20,
            hidden: vec![400],
            likelihood: "bernoulli".into(),
            activation: "relu".into(),
            epochs: 10,
            batch: 128,
            lr: 1e-3,
            schedule: Schedule::Constant,
            warmup_steps: 0,
            weight_decay: 0.0,
            clip: 0.0,
            seed: 1,
            threads: 0,
            parallel: super::Parallel::Gemm,
            val_frac: 0.1,
            max_train: None,
            channels: None,
            image_size: None,
        }
    }
}

impl TrainConfig {
    /// Reads a `.toml` or `.json` file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_file_over(path, &Self::default())
    }

    /// Reads a `.toml` or `.json` file over `base`: keys the file does not
    /// name keep `base`'s values (a resumed run's own, for `--resume`).
    pub fn from_file_over(path: &Path, base: &Self) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        let file: serde_json::Value = match ext {
            "toml" => toml::from_str(&text)
                .with_context(|| format!("{}: invalid training config", path.display()))?,
            "json" => serde_json::from_str(&text)
                .with_context(|| format!("{}: invalid training config", path.display()))?,
            _ => bail!("{}: expected a .toml or .json file", path.display()),
        };
        let serde_json::Value::Object(file) = file else {
            bail!(
                "{}: expected a table of settings at the top level",
                path.display()
            );
        };
        let serde_json::Value::Object(mut merged) = serde_json::to_value(base)? else {
            bail!("training config is not a table");
        };
        merged.extend(file);
        serde_json::from_value(serde_json::Value::Object(merged))
            .with_context(|| format!("{}: invalid training config", path.display()))
    }

    /// Checks every setting before anything runs. Each error names the
    /// command-line flag (the config file's key is the same name with `_`),
    /// the value expected and the value found, so that no run starts that
    /// would leave nothing usable behind.
    pub fn validate(&self) -> Result<()> {
        self.shaping().validate()?;
        let at_least_1 = |flag: &str, v: usize| -> Result<()> {
            if v == 0 {
                bail!("{flag}: expected at least 1, found 0");
            }
            Ok(())
        };
        at_least_1("--epochs", self.epochs)?;
        at_least_1("--batch", self.batch)?;
        at_least_1("--latent", self.latent)?;
        if let Some(m) = self.max_train {
            at_least_1("--max-train", m)?;
        }
        let max_hidden = edgegen_format::arch::vae::MAX_HIDDEN;
        if self.hidden.is_empty() || self.hidden.len() > max_hidden {
            bail!(
                "--hidden: expected 1 to {max_hidden} comma-separated widths, found {}",
                self.hidden.len()
            );
        }
        if let Some(i) = self.hidden.iter().position(|&h| h == 0) {
            bail!(
                "--hidden: expected every width to be at least 1, found 0 at position {}",
                i + 1
            );
        }
        const MAX_WIDTH: usize = 1 << 16;
        for (flag, v) in [
            ("--latent", self.latent),
            ("--hidden", self.hidden.iter().copied().max().unwrap_or(0)),
        ] {
            if v > MAX_WIDTH {
                bail!("{flag}: expected at most {MAX_WIDTH}, found {v}");
            }
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
        if crate::models::vae::Likelihood::from_name(&self.likelihood).is_none() {
            bail!(
                "--likelihood: expected bernoulli or gaussian, found {:?}",
                self.likelihood
            );
        }
        if crate::nn::act::Activation::from_name(&self.activation).is_none() {
            bail!(
                "--activation: expected relu, leaky_relu, tanh, sigmoid, gelu or softplus, found {:?}",
                self.activation
            );
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("--lr: expected a positive number, found {}", self.lr);
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
        Ok(())
    }

    /// How the run's images are brought to one shape.
    pub fn shaping(&self) -> crate::data::images::Shaping {
        crate::data::images::Shaping {
            channels: self.channels,
            size: self.image_size,
        }
    }

    /// The settings that `--resume` may change: how long the run goes on
    /// and on how many threads. Threads change no result in `gemm` mode,
    /// since faer splits each GEMM's output, not its sums.
    pub const RESUMABLE: [&'static str; 2] = ["epochs", "threads"];

    /// Every setting of `given` that differs from the run's `stored` one,
    /// besides [`Self::RESUMABLE`]: `(flag, stored, given)`.
    pub fn conflicts(stored: &Self, given: &Self) -> Vec<(String, String, String)> {
        // Through text, so that an f32 reads as written (0.001, not
        // 0.0010000000474974513 as a direct conversion gives).
        let value = |c: &Self| {
            serde_json::to_string(c)
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        };
        let (Some(serde_json::Value::Object(a)), Some(serde_json::Value::Object(b))) =
            (value(stored), value(given))
        else {
            return vec![];
        };
        a.iter()
            .filter(|(k, _)| !Self::RESUMABLE.contains(&k.as_str()))
            .filter_map(|(k, va)| {
                let vb = b.get(k).unwrap_or(&serde_json::Value::Null);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_and_json_files_fill_settings_and_reject_unknown_keys() {
        let d = std::env::temp_dir().join(format!("edgegen-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(
            d.join("a.toml"),
            "latent = 2\nhidden = [256, 128]\nschedule = \"cosine\"\n",
        )
        .unwrap();
        let c = TrainConfig::from_file(&d.join("a.toml")).unwrap();
        assert_eq!(
            (c.latent, c.hidden.clone(), c.schedule),
            (2, vec![256, 128], Schedule::Cosine)
        );
        assert_eq!(c.batch, 128);
        std::fs::write(d.join("b.json"), r#"{"epochs": 3, "lr": 0.01}"#).unwrap();
        let c = TrainConfig::from_file(&d.join("b.json")).unwrap();
        assert_eq!((c.epochs, c.lr), (3, 0.01));
        std::fs::write(d.join("c.toml"), "laten = 2\n").unwrap();
        let e = format!(
            "{:#}",
            TrainConfig::from_file(&d.join("c.toml")).unwrap_err()
        );
        assert!(e.contains("c.toml") && e.contains("laten"), "{e}");
    }
}
