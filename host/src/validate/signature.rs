//! The inputs and outputs an ONNX graph declares, compared with what a GGUF
//! file's hyperparameters imply, before any engine runs. A mismatched pair
//! (another latent size, a conditional graph beside an unconditional GGUF)
//! gets every difference in edgegen's words instead of an engine's error.

use anyhow::{Context, Result, anyhow, bail};
use edgegen_format::Gguf;
use edgegen_format::arch::vae;
use prost::Message;
use tract_onnx::pb::{self, tensor_shape_proto::dimension, type_proto};

/// One input or output: its name, element type and dimensions (`None` for
/// a symbolic one, such as the batch).
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    /// The tensor's name.
    pub name: String,
    /// `float`, `int64`, ...
    pub elem: String,
    /// Dimensions; `None` is symbolic.
    pub dims: Vec<Option<i64>>,
}

impl Port {
    fn new(name: &str, elem: &str, dims: &[Option<i64>]) -> Self {
        Self {
            name: name.into(),
            elem: elem.into(),
            dims: dims.to_vec(),
        }
    }

    /// `[N, 20] float`.
    fn shape(&self) -> String {
        let d: Vec<String> = self
            .dims
            .iter()
            .map(|d| d.map_or("N".into(), |v| v.to_string()))
            .collect();
        format!("[{}] {}", d.join(", "), self.elem)
    }
}

/// The inputs and outputs of a network.
#[derive(Debug, Clone, PartialEq)]
pub struct Signature {
    /// Inputs, in order.
    pub inputs: Vec<Port>,
    /// Outputs, in order.
    pub outputs: Vec<Port>,
}

fn elem_name(t: i32) -> String {
    match pb::tensor_proto::DataType::try_from(t) {
        Ok(pb::tensor_proto::DataType::Float) => "float".into(),
        Ok(pb::tensor_proto::DataType::Int64) => "int64".into(),
        Ok(other) => format!("{other:?}").to_lowercase(),
        Err(_) => format!("type {t}"),
    }
}

fn port(v: &pb::ValueInfoProto) -> Port {
    let (elem, dims) = match v.r#type.as_ref().and_then(|t| t.value.as_ref()) {
        Some(type_proto::Value::TensorType(t)) => (
            elem_name(t.elem_type),
            t.shape
                .as_ref()
                .map(|s| {
                    s.dim
                        .iter()
                        .map(|d| match d.value {
                            Some(dimension::Value::DimValue(v)) => Some(v),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default(),
        ),
        _ => ("not a tensor".into(), vec![]),
    };
    Port {
        name: v.name.clone(),
        elem,
        dims,
    }
}

/// What an ONNX graph declares. Initializers listed among the inputs (as
/// older exporters do) are not inputs.
pub fn of_onnx(onnx: &[u8]) -> Result<Signature> {
    let m = pb::ModelProto::decode(onnx).map_err(|e| anyhow!("not an ONNX model: {e}"))?;
    let g = m.graph.context("not an ONNX model: it has no graph")?;
    let inits: Vec<&str> = g.initializer.iter().map(|t| t.name.as_str()).collect();
    Ok(Signature {
        inputs: g
            .input
            .iter()
            .filter(|v| !inits.contains(&v.name.as_str()))
            .map(port)
            .collect(),
        outputs: g.output.iter().map(port).collect(),
    })
}

/// What edgegen's ONNX export of the model in `g` declares.
pub fn of_gguf(g: &Gguf<'_>) -> Result<Signature> {
    if edgegen_format::arch::check(g)? == edgegen_format::arch::Family::Text {
        // One decode step with its KV cache.
        use edgegen_format::arch::{Family, transformer::Hparams};
        let hp = Hparams::read(g, Family::Text)?;
        let cache = [
            Some(hp.block_count as i64),
            None,
            Some(hp.context_length as i64),
            Some(hp.kv_dim() as i64),
        ];
        let mut inputs = vec![
            Port::new("token", "int64", &[None]),
            Port::new("position", "int64", &[Some(1)]),
        ];
        if hp.n_classes > 0 {
            inputs.push(Port::new("label", "int64", &[None]));
        }
        inputs.push(Port::new("past_k", "float", &cache));
        inputs.push(Port::new("past_v", "float", &cache));
        return Ok(Signature {
            inputs,
            outputs: vec![
                Port::new("logits", "float", &[None, Some(hp.vocab_size as i64)]),
                Port::new("present_k", "float", &cache),
                Port::new("present_v", "float", &cache),
            ],
        });
    }
    if edgegen_format::arch::check(g)? == edgegen_format::arch::Family::Audio {
        // One GRU step, its state in and out.
        let hp = edgegen_format::arch::audio::Hparams::read(g)?;
        let h = Some(hp.state_length as i64);
        let mut inputs = vec![Port::new("code", "int64", &[None])];
        if hp.n_classes > 0 {
            inputs.push(Port::new("label", "int64", &[None]));
        }
        inputs.push(Port::new("h", "float", &[None, h]));
        let mut outputs = vec![
            Port::new("logits", "float", &[None, Some(hp.vocab_size as i64)]),
            Port::new("h_out", "float", &[None, h]),
        ];
        // A two-tier model's step has its frame tier's beside it.
        if let Some(f) = edgegen_format::arch::audio::FrameHparams::read(g)? {
            let (c, hf) = (Some(f.feature_length as i64), Some(f.state_length as i64));
            inputs.push(Port::new("bands", "float", &[None, c]));
            if f.lpc_order > 0 {
                inputs.push(Port::new("pred", "int64", &[None]));
            }
            inputs.push(Port::new("frame_in", "float", &[None, c]));
            inputs.push(Port::new("frame_h", "float", &[None, hf]));
            outputs.push(Port::new(
                "frame_out",
                "float",
                &[None, Some(f.outputs() as i64)],
            ));
            outputs.push(Port::new("frame_h_out", "float", &[None, hf]));
        }
        return Ok(Signature { inputs, outputs });
    }
    if edgegen_format::arch::check(g)? == edgegen_format::arch::Family::Gan {
        // A generator: noise (and a label) in, pixels out, as a decoder.
        let hp = edgegen_format::arch::gan::Hparams::read(g)?;
        let mut inputs = vec![Port::new("z", "float", &[None, Some(hp.latent_dim as i64)])];
        if hp.n_classes > 0 {
            inputs.push(Port::new("label", "int64", &[None]));
        }
        return Ok(Signature {
            inputs,
            outputs: vec![Port::new(
                "x",
                "float",
                &[None, Some(hp.image_len() as i64)],
            )],
        });
    }
    let hp = vae::Hparams::read(g)?;
    let d = hp.image_shape.iter().map(|&v| v as i64).product::<i64>();
    let (z, k) = (hp.latent_dim as i64, hp.n_classes);
    let rows = |w: i64| [None, Some(w)];
    let (mut inputs, outputs) = match vae::Part::read(g)? {
        vae::Part::Decoder => (
            vec![Port::new("z", "float", &rows(z))],
            vec![Port::new("x", "float", &rows(d))],
        ),
        vae::Part::Encoder => (
            vec![Port::new("x", "float", &rows(d))],
            vec![
                Port::new("mu", "float", &rows(z)),
                Port::new("logvar", "float", &rows(z)),
            ],
        ),
    };
    if k > 0 {
        inputs.push(Port::new("label", "int64", &[None]));
    }
    Ok(Signature { inputs, outputs })
}

/// Every difference between the ports the GGUF implies and the ONNX
/// graph's, one line each.
fn differences(side: &str, want: &[Port], have: &[Port], label_note: &str) -> Vec<String> {
    let mut out = vec![];
    let note = |p: &Port| if p.name == "label" { label_note } else { "" };
    for w in want {
        let gguf_note = note(w);
        match have.iter().find(|h| h.name == w.name) {
            None => out.push(format!(
                "{side} {}: the GGUF's model has it ({}{gguf_note}), the ONNX graph does not",
                w.name,
                w.shape()
            )),
            Some(h) => {
                // A symbolic dimension on either side matches any size.
                let dims_ok = h.dims.len() == w.dims.len()
                    && h.dims
                        .iter()
                        .zip(&w.dims)
                        .all(|(a, b)| a.is_none() || b.is_none() || a == b);
                if h.elem != w.elem || !dims_ok {
                    out.push(format!(
                        "{side} {}: the ONNX graph has {}, the GGUF's model needs {}",
                        w.name,
                        h.shape(),
                        w.shape()
                    ));
                }
            }
        }
    }
    for h in have
        .iter()
        .filter(|h| !want.iter().any(|w| w.name == h.name))
    {
        let gguf_note = note(h);
        out.push(format!(
            "{side} {}: the ONNX graph has it ({}), the GGUF's model does not{gguf_note}",
            h.name,
            h.shape()
        ));
    }
    out
}

/// Refuses a pair whose ONNX graph is not the network in the GGUF, listing
/// each difference.
pub fn check(onnx: &[u8], g: &Gguf<'_>) -> Result<()> {
    let have = of_onnx(onnx)?;
    let want = of_gguf(g)?;
    // Either family states its classes under its own key.
    let k = match edgegen_format::arch::check(g)? {
        edgegen_format::arch::Family::Gan => edgegen_format::arch::gan::Hparams::read(g)?.n_classes,
        f @ edgegen_format::arch::Family::Text => {
            edgegen_format::arch::transformer::Hparams::read(g, f)?.n_classes
        }
        edgegen_format::arch::Family::Audio => {
            edgegen_format::arch::audio::Hparams::read(g)?.n_classes
        }
        _ => vae::Hparams::read(g)?.n_classes,
    };
    let note = if k > 0 {
        format!("; it is conditional on {k} classes")
    } else {
        "; it is unconditional".into()
    };
    let mut diffs = differences("input", &want.inputs, &have.inputs, &note);
    diffs.extend(differences("output", &want.outputs, &have.outputs, ""));
    if !diffs.is_empty() {
        bail!(
            "the ONNX graph and the GGUF file are not the same network:\n  - {}",
            diffs.join("\n  - ")
        );
    }
    Ok(())
}
