//! VAE -> ONNX (opset 17), written with `tract_onnx::pb` and prost.
//!
//! Inputs and outputs are named (`z`, `label` -> `x` for the decoder;
//! `x`, `label` -> `mu`, `logvar` for the encoder) with a dynamic batch `N`.
//! The noise is an input (z), so every engine can be fed the same numbers.
//! Stored precision is kept: F16 weights are FLOAT16 initializers behind a
//! Cast, and Q8_0 weights are int8 codes and f32 block scales, multiplied
//! out in the graph, so ONNX Runtime checks the very numbers the GGUF holds.

use super::{Layer, Part, Precision};
use crate::models::vae::{Likelihood, Vae};
use anyhow::Result;
use edgegen_format::arch::Activation;
use edgegen_format::quant::{self, BlockQ8_0};
use prost::Message;
use tract_onnx::pb::{
    self, AttributeProto, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TypeProto, ValueInfoProto, attribute_proto::AttributeType, tensor_proto::DataType,
    tensor_shape_proto, type_proto,
};

/// The opset the graphs use.
pub const OPSET: i64 = 17;

#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    n: usize,
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i,
        ..Default::default()
    }
}

fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Float as i32,
        f,
        ..Default::default()
    }
}

impl Graph {
    /// The ONNX bytes of this graph as a model of opset [`OPSET`] named
    /// `name`, described by `doc`.
    fn into_model(
        self,
        name: String,
        doc: String,
        input: Vec<ValueInfoProto>,
        output: Vec<ValueInfoProto>,
    ) -> Vec<u8> {
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: OPSET,
            }],
            producer_name: "edgegen".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc,
            graph: Some(GraphProto {
                node: self.nodes,
                name,
                initializer: self.inits,
                input,
                output,
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.n += 1;
        format!("{hint}_{}", self.n)
    }

    fn node(
        &mut self,
        op: &str,
        inputs: &[&str],
        attrs: Vec<AttributeProto>,
        hint: &str,
    ) -> String {
        let out = self.fresh(hint);
        self.node_to(op, inputs, attrs, &out);
        out
    }

    fn node_to(&mut self, op: &str, inputs: &[&str], attrs: Vec<AttributeProto>, out: &str) {
        let name = format!("{op}_{}", self.nodes.len());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.to_string()],
            name,
            op_type: op.into(),
            attribute: attrs,
            ..Default::default()
        });
    }

    fn init(&mut self, name: &str, dims: &[usize], ty: DataType, raw: Vec<u8>) -> String {
        self.inits.push(TensorProto {
            name: name.into(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: ty as i32,
            raw_data: raw,
            ..Default::default()
        });
        name.to_string()
    }

    fn init_f32(&mut self, name: &str, dims: &[usize], v: &[f32]) -> String {
        self.init(
            name,
            dims,
            DataType::Float,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
    }

    fn init_i64(&mut self, name: &str, v: &[i64]) -> String {
        self.init(
            name,
            &[v.len()],
            DataType::Int64,
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
    }

    /// A weight `(out, in)` as f32, through the ops its storage needs.
    fn weight(&mut self, l: &Layer<'_>, prec: Precision) -> String {
        let name = format!("{}.weight", l.name);
        match prec {
            Precision::F32 => self.init_f32(&name, &[l.out, l.inp], l.w),
            Precision::F16 => {
                let raw =
                    l.w.iter()
                        .flat_map(|&x| quant::f32_to_f16_bits(x).to_le_bytes())
                        .collect();
                let h = self.init(
                    &format!("{name}.f16"),
                    &[l.out, l.inp],
                    DataType::Float16,
                    raw,
                );
                self.node(
                    "Cast",
                    &[&h],
                    vec![attr_int("to", DataType::Float as i64)],
                    &name,
                )
            }
            Precision::Q8_0 | Precision::Q8_0A8 => {
                // The same blocks as the GGUF: rows padded to whole blocks.
                let pad = l.inp.div_ceil(32) * 32;
                let nb = pad / 32;
                let mut codes = Vec::with_capacity(l.out * pad);
                let mut scales = Vec::with_capacity(l.out * nb);
                let mut row = vec![0f32; pad];
                let mut blocks = vec![
                    BlockQ8_0 {
                        d: [0; 2],
                        qs: [0; 32]
                    };
                    nb
                ];
                for r in 0..l.out {
                    row[..l.inp].copy_from_slice(&l.w[r * l.inp..(r + 1) * l.inp]);
                    row[l.inp..].fill(0.0);
                    quant::quantize_q8_0(&row, &mut blocks);
                    for b in &blocks {
                        codes.extend(b.qs.iter().map(|&q| q as u8));
                        scales.push(b.scale());
                    }
                }
                let q = self.init(
                    &format!("{name}.q8"),
                    &[l.out, nb, 32],
                    DataType::Int8,
                    codes,
                );
                let d = self.init_f32(&format!("{name}.scale"), &[l.out, nb, 1], &scales);
                let qf = self.node(
                    "Cast",
                    &[&q],
                    vec![attr_int("to", DataType::Float as i64)],
                    &name,
                );
                let wq = self.node("Mul", &[&qf, &d], vec![], &name);
                let shape = self.init_i64(&format!("{name}.shape"), &[l.out as i64, pad as i64]);
                let flat = self.node("Reshape", &[&wq, &shape], vec![], &name);
                if pad == l.inp {
                    return flat;
                }
                let starts = self.init_i64(&format!("{name}.starts"), &[0]);
                let ends = self.init_i64(&format!("{name}.ends"), &[l.inp as i64]);
                let axes = self.init_i64(&format!("{name}.axes"), &[1]);
                self.node("Slice", &[&flat, &starts, &ends, &axes], vec![], &name)
            }
        }
    }

    fn activation(&mut self, x: &str, act: Activation) -> String {
        match act {
            Activation::Relu => self.node("Relu", &[x], vec![], "relu"),
            Activation::LeakyRelu => self.node(
                "LeakyRelu",
                &[x],
                vec![attr_float("alpha", Activation::LEAKY_SLOPE)],
                "lrelu",
            ),
            Activation::Tanh => self.node("Tanh", &[x], vec![], "tanh"),
            Activation::Sigmoid => self.node("Sigmoid", &[x], vec![], "sigmoid"),
            Activation::Softplus => self.node("Softplus", &[x], vec![], "softplus"),
            Activation::Gelu => {
                // Opset 17 has no Gelu: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
                let n = self.n;
                let c3 = self.init_f32(&format!("gelu_c3_{n}"), &[], &[0.044_715]);
                let k = self.init_f32(&format!("gelu_k_{n}"), &[], &[0.797_884_6]);
                let one = self.init_f32(&format!("gelu_one_{n}"), &[], &[1.0]);
                let half = self.init_f32(&format!("gelu_half_{n}"), &[], &[0.5]);
                let x2 = self.node("Mul", &[x, x], vec![], "gelu");
                let x3 = self.node("Mul", &[&x2, x], vec![], "gelu");
                let t = self.node("Mul", &[&x3, &c3], vec![], "gelu");
                let u = self.node("Add", &[x, &t], vec![], "gelu");
                let u = self.node("Mul", &[&u, &k], vec![], "gelu");
                let th = self.node("Tanh", &[&u], vec![], "gelu");
                let s = self.node("Add", &[&th, &one], vec![], "gelu");
                let hx = self.node("Mul", &[x, &half], vec![], "gelu");
                self.node("Mul", &[&hx, &s], vec![], "gelu")
            }
        }
    }

    /// `x` `(N, n)` as an `a8` layer multiplies it: each row cut into
    /// blocks of 32 (the last zero-padded), each block quantized to int8
    /// codes, `d = max|x| * fl(1/127)`, `q = clip(round(x * (1 / d)), -127,
    /// 127)`, and widened back to `d * q`. ONNX's Round is half to even, the
    /// runtime's rounding ([`edgegen_format::quant::BlockA8`]); a block
    /// whose `d` is below the least normal f32 takes the reciprocal of 1
    /// instead, and its codes round to 0.
    fn quantize_acts(&mut self, x: &str, n: usize) -> String {
        let pad = n.div_ceil(32) * 32;
        let mut h = x.to_string();
        if pad != n {
            let pads = self.fresh("a8_pads");
            let pads = self.init_i64(&pads, &[0, 0, 0, (pad - n) as i64]);
            h = self.node("Pad", &[&h, &pads], vec![], "a8");
        }
        let consts = [("a8_blocks", (pad / 32) as i64), ("a8_flat", pad as i64)];
        let [blocks, flat] = consts.map(|(hint, v)| {
            let name = self.fresh(hint);
            if hint == "a8_blocks" {
                self.init_i64(&name, &[0, v, 32])
            } else {
                self.init_i64(&name, &[0, v])
            }
        });
        let [inv127, tiny, one, lo, hi] = [
            edgegen_format::quant::A8_INV_127,
            f32::MIN_POSITIVE,
            1.0,
            -127.0,
            127.0,
        ]
        .map(|v| {
            let name = self.fresh("a8_c");
            self.init_f32(&name, &[], &[v])
        });
        let b = self.node("Reshape", &[&h, &blocks], vec![], "a8");
        let abs = self.node("Abs", &[&b], vec![], "a8");
        let amax = self.node(
            "ReduceMax",
            &[&abs],
            vec![attr_ints("axes", &[2]), attr_int("keepdims", 1)],
            "a8",
        );
        // Products and one Reciprocal only: tract turns a Div into a
        // product with a reciprocal, ONNX Runtime fuses a Div(1, b) and its
        // Mul into a Div, and either would move codes that sit on a tie.
        let d = self.node("Mul", &[&amax, &inv127], vec![], "a8");
        let small = self.node("Less", &[&d, &tiny], vec![], "a8");
        let safe = self.node("Where", &[&small, &one, &d], vec![], "a8");
        let id = self.node("Reciprocal", &[&safe], vec![], "a8");
        let v = self.node("Mul", &[&b, &id], vec![], "a8");
        let r = self.node("Round", &[&v], vec![], "a8");
        let q = self.node("Clip", &[&r, &lo, &hi], vec![], "a8");
        let deq = self.node("Mul", &[&q, &d], vec![], "a8");
        let back = self.node("Reshape", &[&deq, &flat], vec![], "a8");
        if pad == n {
            return back;
        }
        let names = ["a8_starts", "a8_ends", "a8_axes"].map(|h| self.fresh(h));
        let starts = self.init_i64(&names[0], &[0]);
        let ends = self.init_i64(&names[1], &[n as i64]);
        let axes = self.init_i64(&names[2], &[1]);
        self.node("Slice", &[&back, &starts, &ends, &axes], vec![], "a8")
    }

    fn dense(&mut self, x: &str, l: &Layer<'_>, prec: Precision) -> String {
        let w = self.weight(l, prec);
        let b = self.init_f32(&format!("{}.bias", l.name), &[l.out], l.b);
        let xq;
        let x = if prec.int8_activations() {
            xq = self.quantize_acts(x, l.inp);
            &xq
        } else {
            x
        };
        let mut y = self.node("Gemm", &[x, &w, &b], vec![attr_int("transB", 1)], &l.name);
        if let Some(t) = l.label {
            let table = self.init_f32(
                &format!("{}.label.weight", l.name),
                &[t.len() / l.out.max(1), l.out],
                t,
            );
            let rows = self.node(
                "Gather",
                &[&table, "label"],
                vec![attr_int("axis", 0)],
                &l.name,
            );
            y = self.node("Add", &[&y, &rows], vec![], &l.name);
        }
        match l.act {
            Some(a) => self.activation(&y, a),
            None => y,
        }
    }

    /// `[x, onehot(label)]` when conditional.
    fn with_label(&mut self, x: &str, k: usize) -> String {
        if k == 0 {
            return x.to_string();
        }
        let depth = self.init_i64("onehot_depth", &[k as i64]);
        let values = self.init_f32("onehot_values", &[2], &[0.0, 1.0]);
        let oh = self.node(
            "OneHot",
            &["label", &depth, &values],
            vec![attr_int("axis", -1)],
            "onehot",
        );
        self.node("Concat", &[x, &oh], vec![attr_int("axis", 1)], "concat")
    }
}

fn value_info(name: &str, elem: DataType, dims: &[Option<usize>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| tensor_shape_proto::Dimension {
            value: Some(match d {
                Some(v) => tensor_shape_proto::dimension::Value::DimValue(*v as i64),
                None => tensor_shape_proto::dimension::Value::DimParam("N".into()),
            }),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: elem as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The ONNX bytes of one part of a VAE.
pub fn vae_to_onnx(m: &Vae, p: &[f32], part: Part, prec: Precision, name: &str) -> Result<Vec<u8>> {
    let layers = super::vae_layers(m, p, part)?;
    let (d, z, k) = (m.cfg.input_dim(), m.cfg.latent, m.cfg.n_classes);
    let mut g = Graph::default();
    let mut inputs = vec![];
    let mut outputs = vec![];
    match part {
        Part::Decoder => {
            inputs.push(value_info("z", DataType::Float, &[None, Some(z)]));
            let mut h = g.with_label("z", k);
            for l in &layers {
                h = g.dense(&h, l, prec);
            }
            let op = match m.likelihood() {
                Likelihood::Bernoulli => "Sigmoid",
                Likelihood::Gaussian => "Clip",
            };
            if op == "Clip" {
                let lo = g.init_f32("clip_min", &[], &[0.0]);
                let hi = g.init_f32("clip_max", &[], &[1.0]);
                g.node_to("Clip", &[&h, &lo, &hi], vec![], "x");
            } else {
                g.node_to(op, &[&h], vec![], "x");
            }
            outputs.push(value_info("x", DataType::Float, &[None, Some(d)]));
        }
        Part::Encoder => {
            inputs.push(value_info("x", DataType::Float, &[None, Some(d)]));
            let mut h = g.with_label("x", k);
            let (hidden, heads) = layers.split_at(layers.len() - 2);
            for l in hidden {
                h = g.dense(&h, l, prec);
            }
            for (l, out) in heads.iter().zip(["mu", "logvar"]) {
                let y = g.dense(&h, l, prec);
                g.node_to("Identity", &[&y], vec![], out);
                outputs.push(value_info(out, DataType::Float, &[None, Some(z)]));
            }
        }
    }
    if k > 0 {
        inputs.push(value_info("label", DataType::Int64, &[None]));
    }
    Ok(g.into_model(
        format!("edgegen_vae_{part:?}").to_lowercase(),
        format!("edgegen VAE {part:?} ({prec:?} weights): {name}"),
        inputs,
        outputs,
    ))
}

/// The `q8_0a8` activation quantizer alone, `x (N, n) -> d * q`: what the
/// tests hold ONNX Runtime and tract to, bit for bit against the runtime's
/// [`edgegen_format::quant::fake_quant_a8`], on inputs full of ties.
pub fn a8_quantizer_onnx(n: usize) -> Vec<u8> {
    let mut g = Graph::default();
    let y = g.quantize_acts("x", n);
    g.node_to("Identity", &[&y], vec![], "y");
    g.into_model(
        "edgegen_a8_quantizer".into(),
        "edgegen: int8 activation quantization, blocks of 32".into(),
        vec![value_info("x", DataType::Float, &[None, Some(n)])],
        vec![value_info("y", DataType::Float, &[None, Some(n)])],
    )
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v.to_vec(),
        ..Default::default()
    }
}

/// The ONNX bytes of a GAN's generator: `z` `(N, Z)` (and `label` `(N)`)
/// in, pixels `x` `(N, C*H*W)` in [0, 1] out, with the batch norms folded
/// as in the GGUF. Each up block's weight is stored as the GGUF stores it,
/// rows `(oc, ky, kx)` over the input channels, and turned into
/// ConvTranspose's `(C_in, C_out, 4, 4)` in the graph.
pub fn gan_to_onnx(
    m: &crate::models::gan::Gan,
    gp: &[f32],
    buffers: &[f32],
    prec: Precision,
    name: &str,
) -> Result<Vec<u8>> {
    let f = super::gan::fold(m, gp, buffers);
    let (z, k) = (m.cfg.latent, m.cfg.n_classes);
    let [c, h, w] = m.cfg.image_shape;
    let (h0, w0) = m.cfg.base();
    let layers = super::gan::layers(&f, z + k);
    let mut g = Graph::default();
    let mut inputs = vec![value_info("z", DataType::Float, &[None, Some(z)])];
    let x = g.with_label("z", k);
    let fc = Layer {
        act: Some(Activation::Relu),
        ..layers[0].clone()
    };
    let mut y = g.dense(&x, &fc, prec);
    let shape = g.init_i64(
        "gen.fc.shape",
        &[-1, m.cfg.g_width as i64, h0 as i64, w0 as i64],
    );
    y = g.node("Reshape", &[&y, &shape], vec![], "plane");
    let n = layers.len() - 1;
    for (i, l) in layers[1..].iter().enumerate() {
        let (cin, cout) = (l.inp, l.out / 16);
        if prec.int8_activations() {
            // Each pixel's channels, as the runtime's transposed
            // convolutions multiply them: (N, C, H, W) -> (N*H*W, C), the
            // quantizer, and back.
            let (hh, ww) = ((h0 << i) as i64, (w0 << i) as i64);
            let nhwc = g.node(
                "Transpose",
                &[&y],
                vec![attr_ints("perm", &[0, 2, 3, 1])],
                "a8",
            );
            let rows_shape = g.fresh("a8_rows");
            let rows_shape = g.init_i64(&rows_shape, &[-1, cin as i64]);
            let rows = g.node("Reshape", &[&nhwc, &rows_shape], vec![], "a8");
            let q = g.quantize_acts(&rows, cin);
            let img_shape = g.fresh("a8_img");
            let img_shape = g.init_i64(&img_shape, &[-1, hh, ww, cin as i64]);
            let img = g.node("Reshape", &[&q, &img_shape], vec![], "a8");
            y = g.node(
                "Transpose",
                &[&img],
                vec![attr_ints("perm", &[0, 3, 1, 2])],
                "a8",
            );
        }
        let rows = g.weight(l, prec);
        let t = g.node(
            "Transpose",
            &[&rows],
            vec![attr_ints("perm", &[1, 0])],
            &l.name,
        );
        let wshape = g.init_i64(
            &format!("{}.wshape", l.name),
            &[cin as i64, cout as i64, 4, 4],
        );
        let wt = g.node("Reshape", &[&t, &wshape], vec![], &l.name);
        let b = g.init_f32(&format!("{}.bias", l.name), &[cout], l.b);
        y = g.node(
            "ConvTranspose",
            &[&y, &wt, &b],
            vec![
                attr_ints("kernel_shape", &[4, 4]),
                attr_ints("strides", &[2, 2]),
                attr_ints("pads", &[1, 1, 1, 1]),
            ],
            &l.name,
        );
        y = if i + 1 < n {
            g.node("Relu", &[&y], vec![], "relu")
        } else {
            g.node("Tanh", &[&y], vec![], "tanh")
        };
    }
    // [-1, 1] to pixels, flattened to (N, C*H*W) as a decoder's.
    let one = g.init_f32("pixel_one", &[], &[1.0]);
    let half = g.init_f32("pixel_half", &[], &[0.5]);
    let y = g.node("Add", &[&y, &one], vec![], "pixels");
    let y = g.node("Mul", &[&y, &half], vec![], "pixels");
    let flat = g.init_i64("pixels.shape", &[-1, (c * h * w) as i64]);
    g.node_to("Reshape", &[&y, &flat], vec![], "x");
    if k > 0 {
        inputs.push(value_info("label", DataType::Int64, &[None]));
    }
    Ok(g.into_model(
        "edgegen_gan_generator".into(),
        format!("edgegen GAN generator ({prec:?} weights): {name}"),
        inputs,
        vec![value_info("x", DataType::Float, &[None, Some(c * h * w)])],
    ))
}

/// The ONNX bytes of one decode step of a text transformer: the symbol
/// `token` `(N)` at `position` `(1)` (and `label` `(N)` when conditional),
/// with the KV cache as explicit tensors `past_k`, `past_v` `(L, N, T, Ckv)`
/// in and `present_k`, `present_v` out, and the next symbol's `logits`
/// `(N, V)`.
///
/// The cache has the full context's length, as on the device: the step
/// writes its key and value at `position` (a `Where` over a one-hot of the
/// positions) and attends to positions `<= position` (later ones are
/// masked with -inf before the softmax). Static shapes keep ONNX Runtime
/// and tract on the same plan at every step.
pub fn text_to_onnx(
    m: &crate::models::transformer::Transformer,
    p: &[f32],
    prec: Precision,
    name: &str,
) -> Result<Vec<u8>> {
    use edgegen_format::arch::transformer as t;
    let c = &m.cfg;
    let (v, tt, d, nh, k) = (c.vocab, c.context, c.dim, c.heads, c.n_classes);
    let hd = d / nh;
    let kvh = c.kv_heads();
    let (ckv, group) = (kvh * hd, nh / kvh);
    let get = |n: &str| -> Result<&[f32]> {
        let e = m
            .layout
            .get(n)
            .ok_or_else(|| anyhow::anyhow!("the model has no tensor {n}"))?;
        Ok(&p[e.range()])
    };
    let lin = |prefix: &str, inp: usize, out: usize| -> Result<Layer<'_>> {
        Ok(Layer {
            name: prefix.into(),
            w: get(&format!("{prefix}.weight"))?,
            b: get(&format!("{prefix}.bias"))?,
            inp,
            out,
            act: None,
            label: None,
        })
    };
    let mut g = Graph::default();
    let tok = Layer {
        name: "token_embd".into(),
        w: get(t::TOKEN_EMBD)?,
        b: &[],
        inp: d,
        out: v,
        act: None,
        label: None,
    };
    let tok_w = g.weight(&tok, prec);
    let mut x = g.node(
        "Gather",
        &[&tok_w, "token"],
        vec![attr_int("axis", 0)],
        "tok",
    );
    let pos_w = g.init_f32(t::POSITION_EMBD, &[tt, d], get(t::POSITION_EMBD)?);
    let pos = g.node(
        "Gather",
        &[&pos_w, "position"],
        vec![attr_int("axis", 0)],
        "pos",
    );
    x = g.node("Add", &[&x, &pos], vec![], "x");
    if k > 0 {
        let cls_w = g.init_f32(t::CLASS_EMBD, &[k, d], get(t::CLASS_EMBD)?);
        let cls = g.node(
            "Gather",
            &[&cls_w, "label"],
            vec![attr_int("axis", 0)],
            "cls",
        );
        x = g.node("Add", &[&x, &cls], vec![], "x");
    }
    // Positions 0..T against `position`: where to write, what to mask.
    let range = g.init_i64("positions", &(0..tt as i64).collect::<Vec<_>>());
    let here = g.node("Equal", &[&range, "position"], vec![], "here");
    let shape_t1 = g.init_i64("shape_1t1", &[1, tt as i64, 1]);
    let here = g.node("Reshape", &[&here, &shape_t1], vec![], "here");
    let later = g.node("Greater", &[&range, "position"], vec![], "later");
    let shape_mask = g.init_i64("shape_111t", &[1, 1, 1, tt as i64]);
    let later = g.node("Reshape", &[&later, &shape_mask], vec![], "later");
    let neg_inf = g.init_f32("neg_inf", &[], &[f32::NEG_INFINITY]);
    let scale = g.init_f32("attn_scale", &[], &[1.0 / (hd as f32).sqrt()]);
    let ax1 = g.init_i64("axis_1", &[1]);
    let ax0 = g.init_i64("axis_0", &[0]);
    // Query heads grouped by the K/V head they share: (N, KV, G, hd).
    let q_shape = g.init_i64("q_shape", &[0, kvh as i64, group as i64, hd as i64]);
    let kv_shape = g.init_i64("kv_shape", &[0, tt as i64, kvh as i64, hd as i64]);
    let out_shape = g.init_i64("att_shape", &[0, d as i64]);
    let (mut present_k, mut present_v) = (vec![], vec![]);
    let layer_norm = |g: &mut Graph, x: &str, prefix: &str| -> Result<String> {
        let w = g.init_f32(
            &format!("{prefix}.weight"),
            &[d],
            get(&format!("{prefix}.weight"))?,
        );
        let b = g.init_f32(
            &format!("{prefix}.bias"),
            &[d],
            get(&format!("{prefix}.bias"))?,
        );
        let eps = g.init_f32(&format!("{prefix}.eps"), &[], &[crate::nn::layernorm::EPS]);
        let axes = vec![attr_ints("axes", &[-1])];
        let mean = g.node("ReduceMean", &[x], axes.clone(), "ln");
        let dx = g.node("Sub", &[x, &mean], vec![], "ln");
        let sq = g.node("Mul", &[&dx, &dx], vec![], "ln");
        let var = g.node("ReduceMean", &[&sq], axes, "ln");
        let ve = g.node("Add", &[&var, &eps], vec![], "ln");
        let sd = g.node("Sqrt", &[&ve], vec![], "ln");
        let n = g.node("Div", &[&dx, &sd], vec![], "ln");
        let n = g.node("Mul", &[&n, &w], vec![], "ln");
        Ok(g.node("Add", &[&n, &b], vec![], "ln"))
    };
    let slice = |g: &mut Graph, x: &str, from: usize, to: usize| {
        let s = g.init_i64(&format!("slice_{}_s", g.n), &[from as i64]);
        let e = g.init_i64(&format!("slice_{}_e", g.n), &[to as i64]);
        g.node("Slice", &[x, &s, &e, &ax1], vec![], "qkv")
    };
    for l in 0..c.layers {
        let xn = layer_norm(&mut g, &x, &format!("blk.{l}.attn_norm"))?;
        let qkv = g.dense(
            &xn,
            &lin(&format!("blk.{l}.attn_qkv"), d, d + 2 * ckv)?,
            prec,
        );
        let q = slice(&mut g, &qkv, 0, d);
        let kn = slice(&mut g, &qkv, d, d + ckv);
        let vn = slice(&mut g, &qkv, d + ckv, d + 2 * ckv);
        let idx = g.init(
            &format!("layer_{l}"),
            &[],
            DataType::Int64,
            (l as i64).to_le_bytes().to_vec(),
        );
        let mut cache = vec![];
        for (past, new, list) in [
            ("past_k", &kn, &mut present_k),
            ("past_v", &vn, &mut present_v),
        ] {
            let pl = g.node("Gather", &[past, &idx], vec![attr_int("axis", 0)], past);
            let nl = g.node("Unsqueeze", &[new, &ax1], vec![], past);
            let upd = g.node("Where", &[&here, &nl, &pl], vec![], past);
            let out = g.node("Unsqueeze", &[&upd, &ax0], vec![], past);
            list.push(out);
            cache.push(upd);
        }
        // Heads: q (N, KV, G, hd), K^T (N, KV, hd, T), V (N, KV, T, hd).
        let qh = g.node("Reshape", &[&q, &q_shape], vec![], "q");
        let kh = g.node("Reshape", &[&cache[0], &kv_shape], vec![], "k");
        let kt = g.node(
            "Transpose",
            &[&kh],
            vec![attr_ints("perm", &[0, 2, 3, 1])],
            "k",
        );
        let vh = g.node("Reshape", &[&cache[1], &kv_shape], vec![], "v");
        let vt = g.node(
            "Transpose",
            &[&vh],
            vec![attr_ints("perm", &[0, 2, 1, 3])],
            "v",
        );
        let s = g.node("MatMul", &[&qh, &kt], vec![], "scores");
        let s = g.node("Mul", &[&s, &scale], vec![], "scores");
        let s = g.node("Where", &[&later, &neg_inf, &s], vec![], "scores");
        let w = g.node("Softmax", &[&s], vec![attr_int("axis", -1)], "weights");
        let att = g.node("MatMul", &[&w, &vt], vec![], "att");
        let att = g.node("Reshape", &[&att, &out_shape], vec![], "att");
        let o = g.dense(&att, &lin(&format!("blk.{l}.attn_output"), d, d)?, prec);
        x = g.node("Add", &[&x, &o], vec![], "x");
        let xn = layer_norm(&mut g, &x, &format!("blk.{l}.ffn_norm"))?;
        let mut up = lin(&format!("blk.{l}.ffn_up"), d, c.ffn)?;
        up.act = Some(Activation::Gelu);
        let h = g.dense(&xn, &up, prec);
        let o = g.dense(&h, &lin(&format!("blk.{l}.ffn_down"), c.ffn, d)?, prec);
        x = g.node("Add", &[&x, &o], vec![], "x");
    }
    let xn = layer_norm(&mut g, &x, "output_norm")?;
    let out_w = if c.tied {
        tok_w
    } else {
        let out = Layer {
            name: "output".into(),
            w: get(t::OUTPUT)?,
            b: &[],
            inp: d,
            out: v,
            act: None,
            label: None,
        };
        g.weight(&out, prec)
    };
    let xn = if prec.int8_activations() {
        g.quantize_acts(&xn, d)
    } else {
        xn
    };
    g.node_to(
        "Gemm",
        &[&xn, &out_w],
        vec![attr_int("transB", 1)],
        "logits",
    );
    for (list, name) in [(&present_k, "present_k"), (&present_v, "present_v")] {
        let refs: Vec<&str> = list.iter().map(String::as_str).collect();
        g.node_to("Concat", &refs, vec![attr_int("axis", 0)], name);
    }
    let cache_dims = [Some(c.layers), None, Some(tt), Some(ckv)];
    let mut inputs = vec![
        value_info("token", DataType::Int64, &[None]),
        value_info("position", DataType::Int64, &[Some(1)]),
    ];
    if k > 0 {
        inputs.push(value_info("label", DataType::Int64, &[None]));
    }
    inputs.push(value_info("past_k", DataType::Float, &cache_dims));
    inputs.push(value_info("past_v", DataType::Float, &cache_dims));
    let outputs = vec![
        value_info("logits", DataType::Float, &[None, Some(v)]),
        value_info("present_k", DataType::Float, &cache_dims),
        value_info("present_v", DataType::Float, &cache_dims),
    ];
    Ok(g.into_model(
        "edgegen_text_step".into(),
        format!("edgegen text decode step ({prec:?} weights): {name}"),
        inputs,
        outputs,
    ))
}

/// An audio GRU -> ONNX: one step, its state an input and an output.
///
/// Inputs `code` `(N)` int64, `label` `(N)` int64 when conditional, `h`
/// `(N, H)`; outputs `logits` `(N, V)` and `h_out` `(N, H)`. The step is
/// ONNX's own `GRU` operator over a sequence of one, with
/// `linear_before_reset = 1` (PyTorch's cell); ONNX orders the gates
/// `[z; r; n]` where PyTorch and the GGUF store `[r; z; n]`, so the rows
/// are permuted here (Q8_0 blocks lie along rows, so the permuted rows
/// hold the same numbers).
///
/// A two-tier model's step has both tiers, side by side: the sample step
/// also reads `bands` `(N, C)` (its frame's) and, with a prediction,
/// `pred` `(N)` int64 (the code of the linear prediction, which the caller
/// computes: Levinson-Durbin is a loop ONNX has no operator for); the
/// frame step reads `frame_in` `(N, C)` (the frame before) and `frame_h`
/// `(N, Hf)` and gives `frame_out` `(N, 2C + 1)` and `frame_h_out`. A
/// caller runs the frame step once per frame and keeps its outputs between
/// frames.
pub fn audio_to_onnx(
    aw: &super::audio::AudioWeights<'_>,
    prec: Precision,
    name: &str,
) -> Result<Vec<u8>> {
    use edgegen_format::arch::audio as a;
    let (m, p) = (aw.m, aw.p);
    let c = &m.cfg;
    let (v, e, h, k) = (c.vocab, c.embed, c.hidden, c.n_classes);
    let [tok, ih, hh, out] = super::audio::layers(m, p)?;
    let tier = super::audio::tier_layers(aw)?;
    let mut g = Graph::default();
    let tok_w = g.weight(&tok, prec);
    let mut x = g.node(
        "Gather",
        &[&tok_w, "code"],
        vec![attr_int("axis", 0)],
        "tok",
    );
    if k > 0 {
        let cls = m
            .layout
            .get("cls_embd.weight")
            .ok_or_else(|| anyhow::anyhow!("the model has no tensor cls_embd.weight"))?;
        let cls_w = g.init_f32(a::CLASS_EMBD, &[k, e], &p[cls.range()]);
        let cls = g.node(
            "Gather",
            &[&cls_w, "label"],
            vec![attr_int("axis", 0)],
            "cls",
        );
        x = g.node("Add", &[&x, &cls], vec![], "x");
    }
    if let Some(t) = &tier {
        if let Some(pe) = &t.pred_embd {
            let pe_w = g.weight(pe, prec);
            let pr = g.node(
                "Gather",
                &[&pe_w, "pred"],
                vec![attr_int("axis", 0)],
                "pred",
            );
            x = g.node("Add", &[&x, &pr], vec![], "x");
        }
        let fx = g.dense("bands", &t.feat_proj, prec);
        x = g.node("Add", &[&x, &fx], vec![], "x");
    }
    gru_step(&mut g, &x, ("h", "h_out"), [&ih, &hh], "gru", prec);
    let logits = g.dense("h_out", &out, prec);
    g.node_to("Identity", &[&logits], vec![], "logits");
    let mut inputs = vec![value_info("code", DataType::Int64, &[None])];
    if k > 0 {
        inputs.push(value_info("label", DataType::Int64, &[None]));
    }
    inputs.push(value_info("h", DataType::Float, &[None, Some(h)]));
    let mut outputs = vec![
        value_info("logits", DataType::Float, &[None, Some(v)]),
        value_info("h_out", DataType::Float, &[None, Some(h)]),
    ];
    if let Some(t) = &tier {
        let (cf, hf) = (c.feat_dim, t.gru[1].inp);
        let mut fx = g.dense("frame_in", &t.inp, prec);
        if let Some(cls) = t.class_embd {
            let cls_w = g.init_f32(a::FRAME_CLASS_EMBD, &[k, t.inp.out], cls);
            let cls = g.node(
                "Gather",
                &[&cls_w, "label"],
                vec![attr_int("axis", 0)],
                "frame.cls",
            );
            fx = g.node("Add", &[&fx, &cls], vec![], "frame.x");
        }
        gru_step(
            &mut g,
            &fx,
            ("frame_h", "frame_h_out"),
            [&t.gru[0], &t.gru[1]],
            "frame.gru",
            prec,
        );
        let fo = g.dense("frame_h_out", &t.out, prec);
        g.node_to("Identity", &[&fo], vec![], "frame_out");
        inputs.push(value_info("bands", DataType::Float, &[None, Some(cf)]));
        if t.pred_embd.is_some() {
            inputs.push(value_info("pred", DataType::Int64, &[None]));
        }
        inputs.push(value_info("frame_in", DataType::Float, &[None, Some(cf)]));
        inputs.push(value_info("frame_h", DataType::Float, &[None, Some(hf)]));
        outputs.push(value_info(
            "frame_out",
            DataType::Float,
            &[None, Some(2 * cf + 1)],
        ));
        outputs.push(value_info(
            "frame_h_out",
            DataType::Float,
            &[None, Some(hf)],
        ));
    }
    Ok(g.into_model(
        "edgegen_audio_step".into(),
        format!("edgegen audio GRU step ({prec:?} weights): {name}"),
        inputs,
        outputs,
    ))
}

/// One GRU step from `x` and the state `io.0` to the state `io.1`, its
/// initializers named under `prefix`. With int8 activations the step is
/// spelled out, as the runtime runs it (ONNX's GRU multiplies inside the
/// operator, where its inputs cannot be quantized; the blend with the
/// previous state keeps it whole); otherwise it is ONNX's own `GRU`.
fn gru_step(
    g: &mut Graph,
    x: &str,
    io: (&str, &str),
    [ih, hh]: [&Layer<'_>; 2],
    prefix: &str,
    prec: Precision,
) {
    let (h_in, h_out) = io;
    let h = hh.inp;
    if !prec.int8_activations() {
        return gru_op(g, x, io, ih, hh, prefix, prec);
    }
    let gx = g.dense(x, ih, prec);
    let gh = g.dense(h_in, hh, prec);
    let ax1 = g.init_i64(&format!("{prefix}.axis_1"), &[1]);
    let part = |g: &mut Graph, v: &str, i: usize| {
        let s = g.fresh(&format!("{prefix}.start"));
        let s = g.init_i64(&s, &[(i * h) as i64]);
        let e = g.fresh(&format!("{prefix}.end"));
        let e = g.init_i64(&e, &[((i + 1) * h) as i64]);
        g.node("Slice", &[v, &s, &e, &ax1], vec![], prefix)
    };
    let (xr, xz, xn) = (part(g, &gx, 0), part(g, &gx, 1), part(g, &gx, 2));
    let (hr, hz, hn) = (part(g, &gh, 0), part(g, &gh, 1), part(g, &gh, 2));
    let r = g.node("Add", &[&xr, &hr], vec![], prefix);
    let r = g.node("Sigmoid", &[&r], vec![], &format!("{prefix}.r"));
    let z = g.node("Add", &[&xz, &hz], vec![], prefix);
    let z = g.node("Sigmoid", &[&z], vec![], &format!("{prefix}.z"));
    let rn = g.node("Mul", &[&r, &hn], vec![], prefix);
    let n = g.node("Add", &[&xn, &rn], vec![], prefix);
    let n = g.node("Tanh", &[&n], vec![], &format!("{prefix}.n"));
    let one = g.init_f32(&format!("{prefix}.one"), &[], &[1.0]);
    let keep = g.node("Sub", &[&one, &z], vec![], prefix);
    let a = g.node("Mul", &[&keep, &n], vec![], prefix);
    let b = g.node("Mul", &[&z, h_in], vec![], prefix);
    g.node_to("Add", &[&a, &b], vec![], h_out);
}

/// ONNX's own `GRU` over a sequence of one, from `x` `(N, E)` and `h` to
/// `h_out`: gates reordered from PyTorch's `[r; z; n]` to ONNX's
/// `[z; r; n]`, and `linear_before_reset`, which is PyTorch's cell.
fn gru_op(
    g: &mut Graph,
    x: &str,
    (h_in, h_out): (&str, &str),
    ih: &Layer<'_>,
    hh: &Layer<'_>,
    prefix: &str,
    prec: Precision,
) {
    let h = hh.inp;
    let ax0 = g.init_i64(&format!("{prefix}.axis_0"), &[0]);
    let seq = g.node("Unsqueeze", &[x, &ax0], vec![], "x");
    // [r; z; n] -> [z; r; n].
    let zrn = |v: &[f32], w: usize| -> Vec<f32> {
        let mut o = v[h * w..2 * h * w].to_vec();
        o.extend_from_slice(&v[..h * w]);
        o.extend_from_slice(&v[2 * h * w..]);
        o
    };
    let gate_weight = |g: &mut Graph, l: &Layer<'_>, onnx_name: &str| {
        let w = zrn(l.w, l.inp);
        let w = g.weight(
            &Layer {
                name: onnx_name.into(),
                w: &w,
                ..l.clone()
            },
            prec,
        );
        g.node("Unsqueeze", &[&w, &ax0], vec![], onnx_name)
    };
    let w_zrn = gate_weight(g, ih, &format!("{prefix}.W"));
    let r_zrn = gate_weight(g, hh, &format!("{prefix}.R"));
    let mut b = zrn(ih.b, 1);
    b.extend(zrn(hh.b, 1));
    let b = g.init_f32(&format!("{prefix}.B"), &[1, 6 * h], &b);
    let h0 = g.node("Unsqueeze", &[h_in, &ax0], vec![], "h0");
    let (y, y_h) = (
        g.fresh(&format!("{prefix}_y")),
        g.fresh(&format!("{prefix}_y_h")),
    );
    g.nodes.push(NodeProto {
        input: [seq.as_str(), &w_zrn, &r_zrn, &b, "", &h0]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        output: vec![y, y_h.clone()],
        name: format!("GRU_{}", g.nodes.len()),
        op_type: "GRU".into(),
        attribute: vec![
            attr_int("hidden_size", h as i64),
            attr_int("linear_before_reset", 1),
        ],
        ..Default::default()
    });
    g.node_to("Squeeze", &[&y_h, &ax0], vec![], h_out);
}
