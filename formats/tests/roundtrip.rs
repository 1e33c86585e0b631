//! Writer -> reader round trips, layout checks and typed errors.

mod common;

use edgegen_format::{Error, GgmlType, Gguf, GgufWriter, Value, ValueType, arch};

#[test]
fn every_value_and_tensor_round_trips() {
    let bytes = common::everything().to_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(g.kv_count(), 19);
    assert_eq!(g.get("t.u8"), Some(Value::U8(200)));
    assert_eq!(g.get("t.i8"), Some(Value::I8(-100)));
    assert_eq!(g.get("t.u16"), Some(Value::U16(60000)));
    assert_eq!(g.get("t.i16"), Some(Value::I16(-30000)));
    assert_eq!(g.get("t.u32"), Some(Value::U32(4_000_000_000)));
    assert_eq!(g.get("t.i32"), Some(Value::I32(-2_000_000_000)));
    assert_eq!(g.get("t.f32"), Some(Value::F32(1.5)));
    assert_eq!(g.get("t.bool"), Some(Value::Bool(true)));
    assert_eq!(g.get("t.string"), Some(Value::String("héllo, GGUF")));
    assert_eq!(g.get("t.u64"), Some(Value::U64(u64::MAX - 1)));
    assert_eq!(g.get("t.i64"), Some(Value::I64(i64::MIN + 1)));
    assert_eq!(g.get("t.f64"), Some(Value::F64(-2.25)));
    let a = g.get("t.arr_u32").unwrap().as_array().unwrap();
    assert_eq!(a.elem_type(), ValueType::U32);
    assert_eq!(
        a.iter().map(|v| v.as_u64().unwrap()).collect::<Vec<_>>(),
        [1, 28, 28]
    );
    assert_eq!(a.get(2), Some(Value::U32(28)));
    assert_eq!(a.get(3), None);
    let s = g.get("t.arr_str").unwrap().as_array().unwrap();
    assert_eq!(
        s.iter().map(|v| v.as_str().unwrap()).collect::<Vec<_>>(),
        ["a", "", "ccc"]
    );
    assert_eq!(s.get(2), Some(Value::String("ccc")));
    let n = g.get("t.arr_nested").unwrap().as_array().unwrap();
    let inner: Vec<_> = n.iter().map(|v| v.as_array().unwrap().len()).collect();
    assert_eq!(inner, [2, 0]);
    let b = g.get("t.arr_bool").unwrap().as_array().unwrap();
    assert_eq!(
        b.iter().collect::<Vec<_>>(),
        [Value::Bool(true), Value::Bool(false)]
    );

    let f = g.tensor("w.f32").unwrap();
    assert_eq!(f.shape(), &[5, 3]);
    assert_eq!(f.ggml_type(), GgmlType::F32);
    assert_eq!(
        f.f32().unwrap().iter().collect::<Vec<_>>(),
        common::values(15, 1)
    );
    let h = g.tensor("w.f16").unwrap().f16().unwrap();
    for (x, y) in h.iter().zip(common::values(7, 2)) {
        assert!((x - y).abs() <= y.abs() / 2048.0);
    }
    let q = g.tensor("w.q8_0").unwrap();
    assert_eq!(q.q8_0().unwrap().blocks().len(), 4);
    let mut out = vec![0f32; 128];
    q.dequantize_into(&mut out).unwrap();
    for (x, y) in out.iter().zip(common::values(128, 3)) {
        assert!((x - y).abs() < 1.0 / 127.0, "{x} vs {y}");
    }
    assert_eq!(
        q.dequantize_into(&mut out[..3]),
        Err(Error::BufferSize {
            expected: 128,
            found: 3
        })
    );
    assert!(matches!(q.f32(), Err(Error::WrongTensorType { .. })));
    let sc = g.tensor("w.scalar").unwrap();
    assert_eq!(sc.shape(), &[] as &[u64]);
    assert_eq!(sc.f32().unwrap().get(0), Some(42.0));
    for t in g.tensors() {
        assert_eq!(t.data_offset() % 32, 0, "{} is not aligned", t.name());
    }
    assert_eq!(g.data_start() % 32, 0);
    assert_eq!(bytes.len() % 32, 0);
    assert_eq!(
        g.require_u32("edgegen.data_crc32").unwrap(),
        edgegen_format::crc32(g.data())
    );
}

#[test]
fn the_writer_is_deterministic() {
    assert_eq!(
        common::everything().to_bytes(),
        common::everything().to_bytes()
    );
}

#[test]
fn unaligned_blobs_read_the_same() {
    let bytes = common::everything().to_bytes();
    for shift in 1..8 {
        let mut buf = vec![0u8; shift];
        buf.extend(&bytes);
        let g = Gguf::parse(&buf[shift..]).unwrap();
        let q = g.tensor("w.q8_0").unwrap().q8_0().unwrap();
        assert_eq!(
            q.get(5),
            Gguf::parse(&bytes)
                .unwrap()
                .tensor("w.q8_0")
                .unwrap()
                .q8_0()
                .unwrap()
                .get(5)
        );
        assert_eq!(
            g.tensor("w.f32").unwrap().f32().unwrap().get(14),
            common::values(15, 1).get(14).copied()
        );
    }
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = common::everything().to_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    // Any cut inside the header or the tensor data must be refused; only a
    // cut of trailing padding after the last tensor's data may pass.
    let last_end = g
        .tensors()
        .map(|t| g.data_start() + t.data_offset() as usize + t.bytes().len())
        .max()
        .unwrap();
    for n in 0..bytes.len() {
        let r = Gguf::parse(&bytes[..n]);
        if n < last_end {
            assert!(r.is_err(), "cut at {n} was accepted");
        }
    }
}

#[test]
fn header_errors_are_typed() {
    let mut bytes = common::everything().to_bytes();
    assert_eq!(
        Gguf::parse(b"GGUX\x03\0\0\0").unwrap_err(),
        Error::BadMagic { found: *b"GGUX" }
    );
    bytes[4] = 2;
    assert_eq!(
        Gguf::parse(&bytes).unwrap_err(),
        Error::UnsupportedVersion { found: 2 }
    );
    bytes[4] = 3;
    // A count of key/values no file could hold is refused before any loop.
    let mut huge = bytes.clone();
    huge[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
    let e = Gguf::parse(&huge).unwrap_err();
    assert!(
        matches!(e, Error::CountTooLarge { count: u64::MAX, available, .. } if available == (bytes.len() - 24) as u64),
        "{e:?}"
    );
    // Every byte count in the message is one the file declares or has.
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("has {} bytes", bytes.len() - 24)),
        "{msg}"
    );
    // A string whose length runs past the end says how much is there.
    let mut cut = bytes.clone();
    let past_end = (bytes.len() - 32 + 5) as u64;
    cut[24..32].copy_from_slice(&past_end.to_le_bytes());
    let e = Gguf::parse(&cut).unwrap_err();
    if let Error::Truncated {
        needed,
        available,
        offset,
    } = e
    {
        assert!(
            (offset, needed, available) == (32, past_end, past_end - 5),
            "{e:?}"
        );
    } else {
        panic!("expected Truncated, found {e:?}");
    }
}

#[test]
fn crc_catches_a_flipped_weight_bit() {
    let mut w = GgufWriter::new();
    arch::write_common(&mut w, arch::Family::Gan).unwrap();
    w.add_tensor("x", &[32], GgmlType::F32, &common::values(32, 9))
        .unwrap();
    let mut bytes = w.to_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(arch::check(&g), Ok(arch::Family::Gan));
    let at = g.data_start() + 17;
    bytes[at] ^= 0x10;
    let g = Gguf::parse(&bytes).unwrap();
    assert!(matches!(arch::check(&g), Err(Error::CrcMismatch { .. })));
}

#[test]
fn writer_refuses_bad_tensors() {
    let mut w = GgufWriter::new();
    assert!(
        w.add_tensor("q", &[40], GgmlType::Q8_0, &[0.0; 40])
            .is_err()
    );
    assert!(
        w.add_tensor("c", &[3, 2], GgmlType::F32, &[0.0; 5])
            .is_err()
    );
    assert!(w.add_tensor("t", &[1; 5], GgmlType::F32, &[0.0]).is_err());
    w.add("k", 1u32).unwrap();
    assert!(w.add("k", 2u32).is_err());
    w.add_tensor("a", &[1], GgmlType::F32, &[0.0]).unwrap();
    assert!(w.add_tensor("a", &[1], GgmlType::F32, &[0.0]).is_err());
    assert!(
        w.add(
            "mixed",
            edgegen_format::OwnedValue::Array(ValueType::U32, vec![1u8.into()])
        )
        .is_err()
    );
}

#[test]
fn vae_hparams_round_trip_and_are_checked() {
    use arch::vae::{Hparams, Likelihood};
    let hp = Hparams::new(
        [1, 28, 28],
        20,
        &[400],
        10,
        Likelihood::Bernoulli,
        arch::Activation::Relu,
    )
    .unwrap();
    assert!(
        Hparams::new(
            [1, 1, 1],
            2,
            &[],
            0,
            Likelihood::Bernoulli,
            arch::Activation::Relu
        )
        .is_none()
    );
    assert!(
        Hparams::new(
            [1, 1, 1],
            2,
            &[1; 5],
            0,
            Likelihood::Bernoulli,
            arch::Activation::Relu
        )
        .is_none()
    );
    let mut w = GgufWriter::new();
    hp.write(&mut w).unwrap();
    let bytes = w.to_bytes();
    let g = Gguf::parse(&bytes).unwrap();
    assert_eq!(Hparams::read(&g).unwrap(), hp);
    assert_eq!(hp.decoder_layer(0), (30, 400));
    assert_eq!(hp.decoder_layer(1), (400, 784));

    let mut w = GgufWriter::new();
    w.add(arch::vae::IMAGE_SHAPE, 5u32).unwrap();
    let bytes = w.to_bytes();
    assert!(matches!(
        Hparams::read(&Gguf::parse(&bytes).unwrap()),
        Err(Error::WrongValueType {
            key: arch::vae::IMAGE_SHAPE,
            ..
        })
    ));
}

/// `edgegen.vae.label_every_layer` is optional (absent = false), written
/// only when true, and refused on an unconditional model.
#[test]
fn the_vae_label_flag_round_trips_and_needs_classes() {
    use edgegen_format::arch::{Activation, vae};
    let read = |hp: &vae::Hparams| {
        let mut w = GgufWriter::new();
        hp.write(&mut w).unwrap();
        let bytes = w.to_bytes();
        let g = Gguf::parse(&bytes).unwrap();
        (
            g.get(vae::LABEL_EVERY_LAYER).is_some(),
            vae::Hparams::read(&g),
        )
    };
    let plain = vae::Hparams::new(
        [1, 2, 2],
        2,
        &[3],
        4,
        vae::Likelihood::Bernoulli,
        Activation::Relu,
    )
    .unwrap();
    assert_eq!(read(&plain), (false, Ok(plain)));
    let every = vae::Hparams {
        label_every_layer: true,
        ..plain
    };
    assert_eq!(read(&every), (true, Ok(every)));
    assert!(every.decoder_has_label(1) && !every.decoder_has_label(0));
    let unconditional = vae::Hparams {
        n_classes: 0,
        ..every
    };
    assert!(matches!(
        read(&unconditional).1,
        Err(edgegen_format::Error::BadValue {
            key: vae::LABEL_EVERY_LAYER,
            ..
        })
    ));
}

/// F32 data read in place: a slice where the file sits in aligned memory
/// (tensor data is 32-byte aligned within the file), `None` one byte off,
/// with the same values either way.
#[test]
fn f32_tensors_are_slices_in_aligned_memory() {
    let mut w = GgufWriter::new();
    let vals: Vec<f32> = (0..40).map(|i| i as f32 * 0.25 - 3.0).collect();
    w.add_tensor("v", &[40], GgmlType::F32, &vals).unwrap();
    let bytes = w.to_bytes();
    // 8-byte aligned storage, the file at offset 0 and at offset 1.
    let mut words = vec![[0u64; 4]; bytes.len() / 32 + 2];
    let store: &mut [u8] = as_bytes(&mut words);
    for off in [0, 1] {
        store[off..off + bytes.len()].copy_from_slice(&bytes);
        let g = Gguf::parse(&store[off..off + bytes.len()]).unwrap();
        let v = g.tensor("v").unwrap().f32().unwrap();
        assert_eq!(v.iter().collect::<Vec<_>>(), vals);
        match off {
            0 => assert_eq!(v.as_slice(), Some(&vals[..])),
            _ => assert_eq!(v.as_slice(), None),
        }
    }
}

/// The bytes of 8-byte aligned words.
fn as_bytes(words: &mut [[u64; 4]]) -> &mut [u8] {
    let n = std::mem::size_of_val(words);
    // SAFETY: u64 arrays have no padding and every byte pattern is valid.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr().cast::<u8>(), n) }
}
