//! tract, the pure-Rust ONNX engine, as the second independent reference.

use super::io::{Data, Input, Outputs};
use anyhow::{Result, anyhow, bail};
use tract_onnx::prelude::*;

/// A graph planned by tract for fixed input shapes.
pub struct TractModel {
    plan: std::sync::Arc<TypedRunnableModel>,
    /// The graph's inputs in order, with the shape planned for.
    inputs: Vec<(String, Vec<usize>)>,
    /// The graph's outputs in order.
    outputs: Vec<String>,
}

impl TractModel {
    /// Plans `onnx` for inputs shaped as `like` (names, shapes and types;
    /// the values are not used).
    pub fn new(onnx: &[u8], like: &[Input]) -> Result<Self> {
        let mut model = tract_onnx::onnx()
            .model_for_read(&mut std::io::Cursor::new(onnx))
            .map_err(|e| anyhow!("tract refused the model: {e:#}"))?;
        let mut inputs = vec![];
        for (slot, outlet) in model.input_outlets()?.to_vec().into_iter().enumerate() {
            let name = model.node(outlet.node).name.clone();
            let Some(i) = like.iter().find(|i| i.name == name) else {
                bail!(
                    "tract: the graph's input {name:?} has no value (given {:?})",
                    like.iter().map(|i| i.name.as_str()).collect::<Vec<_>>()
                );
            };
            let fact = match i.data {
                Data::F32(_) => f32::fact(&i.shape),
                Data::I64(_) => i64::fact(&i.shape),
            };
            model
                .set_input_fact(slot, fact.into())
                .map_err(|e| anyhow!("tract input {name}: {e:#}"))?;
            inputs.push((name, i.shape.clone()));
        }
        let outputs = model
            .output_outlets()?
            .iter()
            .map(|o| {
                model
                    .outlet_label(*o)
                    .map(str::to_string)
                    .unwrap_or_else(|| model.node(o.node).name.clone())
            })
            .collect();
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| anyhow!("tract could not plan the model: {e:#}"))?;
        Ok(Self {
            plan,
            inputs,
            outputs,
        })
    }

    /// Runs the planned graph on `inputs` (the shapes it was planned for);
    /// returns every output by name.
    pub fn run(&self, inputs: &[Input]) -> Result<Outputs> {
        let mut feed: TVec<TValue> = tvec![];
        for (name, shape) in &self.inputs {
            let i = super::io::find(inputs, name)?;
            let t = match &i.data {
                Data::F32(v) => Tensor::from_shape(shape, v)?,
                Data::I64(v) => Tensor::from_shape(shape, v)?,
            };
            feed.push(t.into());
        }
        let outs = self
            .plan
            .run(feed)
            .map_err(|e| anyhow!("tract run: {e:#}"))?;
        let mut v = Vec::new();
        for (name, o) in self.outputs.iter().zip(&outs) {
            let a = o
                .to_plain_array_view::<f32>()
                .map_err(|e| anyhow!("tract output {name}: {e:#}"))?;
            v.push((name.clone(), a.iter().copied().collect()));
        }
        Ok(v)
    }
}

/// Plans and runs an ONNX model in tract once on `inputs`.
pub fn run(onnx: &[u8], inputs: &[Input]) -> Result<Outputs> {
    TractModel::new(onnx, inputs)?.run(inputs)
}
