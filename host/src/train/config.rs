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
        }
    }
}

impl TrainConfig {
    /// Reads a `.toml` or `.json` file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
        match ext {
            "toml" => toml::from_str(&text)
                .with_context(|| format!("{}: invalid training config", path.display())),
            "json" => serde_json::from_str(&text)
                .with_context(|| format!("{}: invalid training config", path.display())),
            _ => bail!("{}: expected a .toml or .json file", path.display()),
        }
    }

    /// Checks ranges before anything runs.
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 {
            bail!("batch: expected at least 1");
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            bail!("lr: expected a positive number, found {}", self.lr);
        }
        if !(0.0..1.0).contains(&self.val_frac) {
            bail!(
                "val_frac: expected 0 <= val_frac < 1, found {}",
                self.val_frac
            );
        }
        Ok(())
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
