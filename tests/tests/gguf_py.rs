//! GGUF interop with gguf-py, the reference Python package of llama.cpp:
//! our writer -> gguf-py reader, and gguf-py writer -> our reader, with
//! every key/value and every tensor value compared.

use edgegen_format::{GgmlType, Gguf, GgufWriter, OwnedValue, Value, ValueType, arch};
use edgegen_tests::{run_python, scratch_dir};
use serde_json::{Value as Json, json};

fn type_chain(v: &OwnedValue) -> Vec<String> {
    let mut t = vec![format!("{:?}", v.value_type())];
    if let OwnedValue::Array(elem, _) = v {
        t.push(format!("{elem:?}"));
    }
    t
}

fn to_json(v: &OwnedValue) -> Json {
    match v {
        OwnedValue::U8(x) => json!(x),
        OwnedValue::I8(x) => json!(x),
        OwnedValue::U16(x) => json!(x),
        OwnedValue::I16(x) => json!(x),
        OwnedValue::U32(x) => json!(x),
        OwnedValue::I32(x) => json!(x),
        OwnedValue::F32(x) => json!(x),
        OwnedValue::Bool(x) => json!(x),
        OwnedValue::String(x) => json!(x),
        OwnedValue::U64(x) => json!(x),
        OwnedValue::I64(x) => json!(x),
        OwnedValue::F64(x) => json!(x),
        OwnedValue::Array(_, items) => Json::Array(items.iter().map(to_json).collect()),
    }
}

fn values(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 20001) as f32 / 1000.0 - 10.0)
        .collect()
}

#[test]
fn gguf_py_reads_what_we_write() {
    let mut w = GgufWriter::new();
    let mut kv = serde_json::Map::new();
    let pairs: Vec<(&str, OwnedValue)> = vec![
        ("general.architecture", "edgegen.vae".into()),
        ("edgegen.format_version", arch::FORMAT_VERSION.into()),
        ("t.u8", 200u8.into()),
        ("t.i8", (-100i8).into()),
        ("t.u16", 60000u16.into()),
        ("t.i16", (-30000i16).into()),
        ("t.u32", 4_000_000_000u32.into()),
        ("t.i32", (-2_000_000_000i32).into()),
        ("t.f32", 0.1f32.into()),
        ("t.bool", true.into()),
        ("t.string", "héllo ✓".into()),
        ("t.u64", (u64::MAX - 1).into()),
        ("t.i64", (i64::MIN + 1).into()),
        ("t.f64", (-2.25e-300f64).into()),
        ("t.arr_u32", OwnedValue::u32s(&[1, 28, 28])),
        ("t.arr_str", OwnedValue::strs(&["a", "", "ccc"])),
        (
            "t.arr_f32",
            OwnedValue::Array(ValueType::F32, vec![0.25f32.into(), (-3.5f32).into()]),
        ),
        (
            "t.arr_i64",
            OwnedValue::Array(ValueType::I64, vec![(-1i64).into(), i64::MAX.into()]),
        ),
    ];
    for (k, v) in pairs {
        kv.insert(
            k.into(),
            json!({"types": type_chain(&v), "value": to_json(&v)}),
        );
        w.add(k, v).unwrap();
    }
    let mut tensors = serde_json::Map::new();
    for (name, dims, ty) in [
        ("w.f32", vec![5u64, 3], GgmlType::F32),
        ("w.f16", vec![7], GgmlType::F16),
        ("w.q8_0", vec![64, 3], GgmlType::Q8_0),
        ("w.q8_0_zero", vec![32], GgmlType::Q8_0),
    ] {
        let n = dims.iter().product::<u64>() as usize;
        let src = if name.ends_with("zero") {
            vec![0.0; n]
        } else {
            values(n, n as u32)
        };
        w.add_tensor(name, &dims, ty, &src).unwrap();
        // What the file must hold: the source rounded the way the type rounds.
        let stored: Vec<f32> = match ty {
            GgmlType::F32 => src.clone(),
            GgmlType::F16 => src
                .iter()
                .map(|&x| {
                    edgegen_format::quant::f16_bits_to_f32(edgegen_format::quant::f32_to_f16_bits(
                        x,
                    ))
                })
                .collect(),
            _ => {
                let mut blocks = vec![
                    edgegen_format::quant::BlockQ8_0 {
                        d: [0; 2],
                        qs: [0; 32]
                    };
                    n / 32
                ];
                edgegen_format::quant::quantize_q8_0(&src, &mut blocks);
                let mut out = vec![0.0; n];
                edgegen_format::quant::dequantize_q8_0(&blocks, &mut out);
                out
            }
        };
        tensors.insert(
            name.into(),
            json!({"type": format!("{ty:?}"), "shape": dims, "values": stored, "source": src}),
        );
    }
    w.add_data_crc32("edgegen.data_crc32").unwrap();
    let bytes = w.to_bytes();
    let crc = Gguf::parse(&bytes).unwrap().data_crc32();
    kv.insert(
        "edgegen.data_crc32".into(),
        json!({"types": ["U32"], "value": crc}),
    );

    let dir = scratch_dir("gguf-py-reads");
    let file = dir.join("ours.gguf");
    let exp = dir.join("expected.json");
    std::fs::write(&file, &bytes).unwrap();
    std::fs::write(&exp, json!({"kv": kv, "tensors": tensors}).to_string()).unwrap();
    let out = run_python(
        "gguf_interop.py",
        &["check", file.to_str().unwrap(), exp.to_str().unwrap()],
    );
    assert!(out.contains("all match"), "{out}");
}

fn json_matches(v: &Value<'_>, types: &[Json], want: &Json) -> Result<(), String> {
    let ty = format!("{:?}", v.value_type());
    if types.first().and_then(Json::as_str) != Some(ty.as_str()) {
        return Err(format!("type {ty}, expected {types:?}"));
    }
    let ok = match v {
        Value::Array(a) => {
            let want = want.as_array().ok_or("expected an array")?;
            if a.len() != want.len() {
                return Err(format!("{} elements, expected {}", a.len(), want.len()));
            }
            for (x, w) in a.iter().zip(want) {
                json_matches(&x, &types[1..], w)?;
            }
            true
        }
        Value::String(s) => want.as_str() == Some(*s),
        Value::Bool(b) => want.as_bool() == Some(*b),
        Value::F32(x) => want.as_f64().map(|w| w as f32) == Some(*x),
        Value::F64(x) => want.as_f64() == Some(*x),
        Value::I8(_) | Value::I16(_) | Value::I32(_) | Value::I64(_) => {
            let x = match *v {
                Value::I8(x) => x as i64,
                Value::I16(x) => x as i64,
                Value::I32(x) => x as i64,
                Value::I64(x) => x,
                _ => unreachable!(),
            };
            want.as_i64() == Some(x)
        }
        _ => want.as_u64() == v.as_u64(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("value {v:?}, expected {want}"))
    }
}

#[test]
fn we_read_what_gguf_py_writes() {
    let dir = scratch_dir("we-read-gguf-py");
    let file = dir.join("py.gguf");
    let exp = dir.join("expected.json");
    run_python(
        "gguf_interop.py",
        &["write", file.to_str().unwrap(), exp.to_str().unwrap()],
    );
    let bytes = std::fs::read(&file).unwrap();
    let exp: Json = serde_json::from_str(&std::fs::read_to_string(&exp).unwrap()).unwrap();
    let g = Gguf::parse(&bytes).unwrap();

    let kv = exp["kv"].as_object().unwrap();
    assert_eq!(g.kv_count(), kv.len());
    for (key, e) in kv {
        let v = g.get(key).unwrap_or_else(|| panic!("missing key {key}"));
        json_matches(&v, e["types"].as_array().unwrap(), &e["value"])
            .unwrap_or_else(|msg| panic!("{key}: {msg}"));
    }
    let tensors = exp["tensors"].as_object().unwrap();
    assert_eq!(g.tensor_count(), tensors.len());
    for (name, e) in tensors {
        let t = g
            .tensor(name)
            .unwrap_or_else(|| panic!("missing tensor {name}"));
        assert_eq!(
            format!("{:?}", t.ggml_type()),
            e["type"].as_str().unwrap(),
            "{name}"
        );
        let shape: Vec<u64> = e["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .collect();
        assert_eq!(t.shape(), shape.as_slice(), "{name}");
        let mut got = vec![0f32; t.n_elements()];
        t.dequantize_into(&mut got).unwrap();
        let want: Vec<f32> = e["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(got, want, "{name}");
        if let Some(src) = e.get("source") {
            // gguf-py's Q8_0 and ours must give the same bytes.
            let src: Vec<f32> = src
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect();
            let mut blocks = vec![
                edgegen_format::quant::BlockQ8_0 {
                    d: [0; 2],
                    qs: [0; 32]
                };
                src.len() / 32
            ];
            edgegen_format::quant::quantize_q8_0(&src, &mut blocks);
            let ours: Vec<u8> = blocks.iter().flat_map(|b| b.to_bytes()).collect();
            assert_eq!(ours, t.bytes(), "{name}: Q8_0 bytes differ from gguf-py's");
        }
    }
}
