//! tract, the pure-Rust ONNX engine, as the second independent reference.

use anyhow::{Result, anyhow};
use tract_onnx::prelude::*;

/// A decoder graph planned by tract for a fixed batch.
pub struct TractModel {
    plan: std::sync::Arc<TypedRunnableModel>,
    n: usize,
    zdim: usize,
    labels: bool,
}

impl TractModel {
    /// Plans `onnx` for batches of `n` rows of `zdim` latents (and labels).
    pub fn new(onnx: &[u8], n: usize, zdim: usize, labels: bool) -> Result<Self> {
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(onnx))
            .map_err(|e| anyhow!("tract refused the model: {e:?}"))?;
        model
            .set_input_fact(0, f32::fact([n, zdim]).into())
            .map_err(|e| anyhow!("tract input z: {e:?}"))?;
        if labels {
            model
                .set_input_fact(1, i64::fact([n]).into())
                .map_err(|e| anyhow!("tract input label: {e:?}"))?;
        }
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| anyhow!("tract could not plan the model: {e:?}"))?;
        Ok(Self {
            plan,
            n,
            zdim,
            labels,
        })
    }

    /// Runs one batch; returns the output `x` row-major.
    pub fn decode(&self, z: &[f32], labels: &[i64]) -> Result<Vec<f32>> {
        let mut inputs: TVec<TValue> = tvec![Tensor::from_shape(&[self.n, self.zdim], z)?.into()];
        if self.labels {
            inputs.push(Tensor::from_shape(&[self.n], labels)?.into());
        }
        let out = self
            .plan
            .run(inputs)
            .map_err(|e| anyhow!("tract run: {e:?}"))?;
        let x = out[0]
            .to_plain_array_view::<f32>()
            .map_err(|e| anyhow!("tract output: {e:?}"))?;
        Ok(x.iter().copied().collect())
    }
}

/// Runs a decoder ONNX model in tract for `n` rows of `z` (and labels).
pub fn decode(onnx: &[u8], z: &[f32], zdim: usize, labels: &[i64]) -> Result<Vec<f32>> {
    TractModel::new(onnx, z.len() / zdim, zdim, !labels.is_empty())?.decode(z, labels)
}
