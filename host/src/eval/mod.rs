//! Evaluation of trained models.

pub mod audio;
pub mod stats;
pub mod suite;
pub mod vae;
