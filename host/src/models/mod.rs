//! Model families built on the training engine.

pub mod classifier;
pub mod frames;
pub mod gan;
pub mod rnn;
pub mod transformer;
pub mod vae;

use anyhow::{Result, bail};
use std::fmt;

/// The model families. A run's checkpoint stores its family, and every
/// command that loads a run matches on it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// A variational autoencoder on images.
    Vae,
    /// A DCGAN on images.
    Gan,
    /// A CNN that classifies images: what the evaluation suite scores
    /// every image model with.
    Classifier,
    /// A byte-level (or character-level) transformer on text.
    Text,
    /// A GRU over 8-bit mu-law audio.
    Audio,
}

impl Family {
    /// Every family, in the order the CLI lists them.
    pub const ALL: [Family; 5] = [
        Family::Vae,
        Family::Gan,
        Family::Classifier,
        Family::Text,
        Family::Audio,
    ];

    /// The name stored in checkpoints and config files (`[vae]`).
    pub fn name(self) -> &'static str {
        match self {
            Family::Vae => "vae",
            Family::Gan => "gan",
            Family::Classifier => "classifier",
            Family::Text => "text",
            Family::Audio => "audio",
        }
    }

    /// The family named `s`.
    pub fn from_name(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    /// "a vae" / "an audio": for messages.
    pub fn article(self) -> &'static str {
        match self {
            Family::Audio => "an",
            _ => "a",
        }
    }

    /// Whether the family models images (and so is scored by the
    /// classifier suite and drawn in grids).
    pub fn is_image(self) -> bool {
        matches!(self, Family::Vae | Family::Gan | Family::Classifier)
    }

    /// The error for a run of this family given to something that needs
    /// another: "runs/x is a gan run; `latent` needs a vae".
    pub fn refuse(self, what: impl fmt::Display, wanted: &[Family], by: &str) -> anyhow::Error {
        let names: Vec<String> = wanted
            .iter()
            .map(|f| format!("{} {}", f.article(), f.name()))
            .collect();
        anyhow::anyhow!(
            "{what} is {} {} run; {by} needs {}",
            self.article(),
            self.name(),
            names.join(" or ")
        )
    }

    /// Checks that this family is one of `wanted`.
    pub fn expect(self, what: impl fmt::Display, wanted: &[Family], by: &str) -> Result<()> {
        if wanted.contains(&self) {
            return Ok(());
        }
        Err(self.refuse(what, wanted, by))
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a stored family name.
pub fn parse_family(s: &str, what: impl fmt::Display) -> Result<Family> {
    match Family::from_name(s) {
        Some(f) => Ok(f),
        None => {
            let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            bail!(
                "{what}: family {s:?} is not one this edgegen knows (expected {})",
                names.join(", ")
            )
        }
    }
}
