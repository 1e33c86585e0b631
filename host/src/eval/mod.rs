//! Evaluation of trained models.

pub mod vae;
