//! # edgegen (host)
//!
//! The workstation side of edgegen: data loading, training, evaluation,
//! export to GGUF and ONNX, and validation. The `edgegen` binary is a thin
//! CLI over these modules.

pub mod bench;
pub mod cli;
pub mod data;
pub mod eval;
pub mod export;
pub mod fsx;
pub mod models;
pub mod nn;
pub mod plot;
pub mod provenance;
pub mod rng;
pub mod train;
pub mod validate;
