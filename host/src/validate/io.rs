//! Named, typed tensors: what every engine takes and gives. Inputs are f32
//! (latents, pixels, noise) or int64 (labels, and the token and position
//! inputs of the text family); outputs are f32, by name.

/// An input's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    /// Real-valued inputs.
    F32(Vec<f32>),
    /// Integer inputs (ONNX int64).
    I64(Vec<i64>),
}

/// One named input of a graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Input {
    /// The graph input's name.
    pub name: String,
    /// Its shape, batch first.
    pub shape: Vec<usize>,
    /// Its values, row-major.
    pub data: Data,
}

impl Input {
    /// An f32 input.
    pub fn f32(name: &str, shape: &[usize], data: Vec<f32>) -> Self {
        Self {
            name: name.into(),
            shape: shape.to_vec(),
            data: Data::F32(data),
        }
    }

    /// An int64 input.
    pub fn i64(name: &str, shape: &[usize], data: Vec<i64>) -> Self {
        Self {
            name: name.into(),
            shape: shape.to_vec(),
            data: Data::I64(data),
        }
    }

    /// The f32 values, if that is its type.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            Data::F32(v) => Some(v),
            Data::I64(_) => None,
        }
    }

    /// The int64 values, if that is its type.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            Data::F32(_) => None,
        }
    }
}

/// The inputs named `name`, or an error naming it.
pub fn find<'a>(inputs: &'a [Input], name: &str) -> anyhow::Result<&'a Input> {
    inputs
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| anyhow::anyhow!("no input named {name:?}"))
}

/// An engine's outputs: `(name, values)`, in the graph's order.
pub type Outputs = Vec<(String, Vec<f32>)>;
