//! Evaluation of trained models.

pub mod stats;
pub mod suite;
pub mod vae;
