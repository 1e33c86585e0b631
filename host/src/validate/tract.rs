//! tract, the pure-Rust ONNX engine, as the second independent reference.

use anyhow::{Result, anyhow};
use tract_onnx::prelude::*;

/// Runs a decoder ONNX model in tract for `n` rows of `z` (and labels).
pub fn decode(onnx: &[u8], z: &[f32], zdim: usize, labels: &[i64]) -> Result<Vec<f32>> {
    let n = z.len() / zdim;
    let mut model = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(onnx))
        .map_err(|e| anyhow!("tract refused the model: {e:?}"))?;
    model
        .set_input_fact(0, f32::fact([n, zdim]).into())
        .map_err(|e| anyhow!("tract input z: {e:?}"))?;
    if !labels.is_empty() {
        model
            .set_input_fact(1, i64::fact([n]).into())
            .map_err(|e| anyhow!("tract input label: {e:?}"))?;
    }
    let plan = model
        .into_optimized()
        .and_then(|m| m.into_runnable())
        .map_err(|e| anyhow!("tract could not plan the model: {e:?}"))?;
    let mut inputs: TVec<TValue> = tvec![Tensor::from_shape(&[n, zdim], z)?.into()];
    if !labels.is_empty() {
        inputs.push(Tensor::from_shape(&[n], labels)?.into());
    }
    let out = plan.run(inputs).map_err(|e| anyhow!("tract run: {e:?}"))?;
    let x = out[0]
        .to_plain_array_view::<f32>()
        .map_err(|e| anyhow!("tract output: {e:?}"))?;
    Ok(x.iter().copied().collect())
}
