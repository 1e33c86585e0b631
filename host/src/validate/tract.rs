//! tract, the pure-Rust ONNX engine, as the second independent reference.

use anyhow::{Result, anyhow};
use tract_onnx::prelude::*;

/// A graph planned by tract for a fixed batch: a decoder (`z` in, `x`
/// out) or an encoder (`x` in, `mu` and `logvar` out).
pub struct TractModel {
    plan: std::sync::Arc<TypedRunnableModel>,
    n: usize,
    width: usize,
    labels: bool,
}

impl TractModel {
    /// Plans `onnx` for batches of `n` rows of `width` inputs (latents or
    /// pixels), and labels when `labels`.
    pub fn new(onnx: &[u8], n: usize, width: usize, labels: bool) -> Result<Self> {
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(onnx))
            .map_err(|e| anyhow!("tract refused the model: {e:#}"))?;
        model
            .set_input_fact(0, f32::fact([n, width]).into())
            .map_err(|e| anyhow!("tract input 0: {e:#}"))?;
        if labels {
            model
                .set_input_fact(1, i64::fact([n]).into())
                .map_err(|e| anyhow!("tract input label: {e:#}"))?;
        }
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| anyhow!("tract could not plan the model: {e:#}"))?;
        Ok(Self {
            plan,
            n,
            width,
            labels,
        })
    }

    /// Runs one batch; returns every output, row-major, one after another.
    pub fn run(&self, data: &[f32], labels: &[i64]) -> Result<Vec<f32>> {
        let mut inputs: TVec<TValue> =
            tvec![Tensor::from_shape(&[self.n, self.width], data)?.into()];
        if self.labels {
            inputs.push(Tensor::from_shape(&[self.n], labels)?.into());
        }
        let outs = self
            .plan
            .run(inputs)
            .map_err(|e| anyhow!("tract run: {e:#}"))?;
        let mut v = Vec::new();
        for o in &outs {
            let a = o
                .to_plain_array_view::<f32>()
                .map_err(|e| anyhow!("tract output: {e:#}"))?;
            v.extend(a.iter().copied());
        }
        Ok(v)
    }
}

/// Runs an ONNX model in tract on `n` rows of `width` inputs (and labels);
/// returns every output, one after another.
pub fn run(onnx: &[u8], data: &[f32], width: usize, labels: &[i64]) -> Result<Vec<f32>> {
    TractModel::new(onnx, data.len() / width.max(1), width, !labels.is_empty())?.run(data, labels)
}
