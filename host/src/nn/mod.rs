//! The training engine, in the style of llm.c: every layer is a pair of
//! functions, `forward` and `backward`, over whole batch buffers that are
//! allocated once. A backward pass *adds* into its gradients; zeroing them
//! is the caller's separate step. GEMMs go through faer.
//!
//! Dimension letters: B batch, IC/OC input/output features, D pixels per
//! image, Z latent size, K classes.

pub mod act;
pub mod attention;
pub mod conv;
pub mod dropout;
pub mod embed;
pub mod fastmath;
pub mod gemm;
pub mod gru;
pub mod layernorm;
pub mod linear;
pub mod loss;
pub mod norm;
pub mod optim;
pub mod params;
pub mod spectral;

#[cfg(test)]
mod gradcheck;
