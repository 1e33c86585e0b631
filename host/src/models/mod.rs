//! Model families built on the training engine.

pub mod vae;
