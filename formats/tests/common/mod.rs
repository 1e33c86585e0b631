//! Files the format tests share: one that uses every value type and every
//! writable tensor type.

use edgegen_format::{GgmlType, GgufWriter, OwnedValue, ValueType};

/// Deterministic values in [-1, 1).
pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// A writer holding every GGUF value type and F32, F16 and Q8_0 tensors.
pub fn everything() -> GgufWriter {
    let mut w = GgufWriter::new();
    w.add("general.architecture", "edgegen.vae").unwrap();
    w.add("t.u8", 200u8).unwrap();
    w.add("t.i8", -100i8).unwrap();
    w.add("t.u16", 60000u16).unwrap();
    w.add("t.i16", -30000i16).unwrap();
    w.add("t.u32", 4_000_000_000u32).unwrap();
    w.add("t.i32", -2_000_000_000i32).unwrap();
    w.add("t.f32", 1.5f32).unwrap();
    w.add("t.bool", true).unwrap();
    w.add("t.string", "héllo, GGUF").unwrap();
    w.add("t.u64", u64::MAX - 1).unwrap();
    w.add("t.i64", i64::MIN + 1).unwrap();
    w.add("t.f64", -2.25f64).unwrap();
    w.add("t.arr_u32", OwnedValue::u32s(&[1, 28, 28])).unwrap();
    w.add("t.arr_str", OwnedValue::strs(&["a", "", "ccc"]))
        .unwrap();
    w.add(
        "t.arr_nested",
        OwnedValue::Array(
            ValueType::Array,
            vec![OwnedValue::u32s(&[1, 2]), OwnedValue::u32s(&[])],
        ),
    )
    .unwrap();
    w.add(
        "t.arr_f32",
        OwnedValue::Array(ValueType::F32, vec![OwnedValue::F32(0.25)]),
    )
    .unwrap();
    w.add(
        "t.arr_bool",
        OwnedValue::Array(ValueType::Bool, vec![true.into(), false.into()]),
    )
    .unwrap();
    w.add_tensor("w.f32", &[5, 3], GgmlType::F32, &values(15, 1))
        .unwrap();
    w.add_tensor("w.f16", &[7], GgmlType::F16, &values(7, 2))
        .unwrap();
    w.add_tensor("w.q8_0", &[64, 2], GgmlType::Q8_0, &values(128, 3))
        .unwrap();
    w.add_tensor("w.scalar", &[], GgmlType::F32, &[42.0])
        .unwrap();
    w.add_data_crc32("edgegen.data_crc32").unwrap();
    w
}
