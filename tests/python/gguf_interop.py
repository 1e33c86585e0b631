#!/usr/bin/env python3
"""Interop between edgegen's GGUF code and gguf-py (PyPI `gguf`, from llama.cpp).

  gguf_interop.py check FILE EXPECTED.json   read FILE with gguf-py, compare to EXPECTED
  gguf_interop.py write FILE EXPECTED.json   write FILE with gguf-py, describe it in EXPECTED

Type names in the JSON are edgegen's (`U8`, `String`, `Array`, ...; tensors `F32`, `F16`, `Q8_0`).
Exits non-zero with a message naming the key or tensor on any mismatch.
"""
import json
import sys

import numpy as np
import gguf
from gguf import GGUFValueType as VT, GGMLQuantizationType as QT

VALUE_NAMES = {
    "U8": VT.UINT8, "I8": VT.INT8, "U16": VT.UINT16, "I16": VT.INT16,
    "U32": VT.UINT32, "I32": VT.INT32, "F32": VT.FLOAT32, "Bool": VT.BOOL,
    "String": VT.STRING, "Array": VT.ARRAY, "U64": VT.UINT64, "I64": VT.INT64,
    "F64": VT.FLOAT64,
}
TENSOR_NAMES = {"F32": QT.F32, "F16": QT.F16, "Q8_0": QT.Q8_0}
FLOATS = {"F32", "F64"}


def fail(msg):
    print(f"gguf_interop: {msg}", file=sys.stderr)
    sys.exit(1)


def same(a, b, typ):
    if typ == "F32":
        return np.float32(a) == np.float32(b)
    return a == b


def check(path, expected_path):
    exp = json.load(open(expected_path))
    r = gguf.GGUFReader(path)
    fields = {k: f for k, f in r.fields.items() if not k.startswith("GGUF.")}
    if set(fields) != set(exp["kv"]):
        fail(f"keys differ: gguf-py has {sorted(fields)}, expected {sorted(exp['kv'])}")
    for key, e in exp["kv"].items():
        f = fields[key]
        types = [VALUE_NAMES[t] for t in e["types"]]
        if list(f.types) != types:
            fail(f"{key}: gguf-py reads types {f.types}, expected {types}")
        got = f.contents()
        want = e["value"]
        if e["types"][0] == "Array":
            if len(got) != len(want) or not all(same(a, b, e["types"][-1]) for a, b in zip(got, want)):
                fail(f"{key}: gguf-py reads {got}, expected {want}")
        elif not same(got, want, e["types"][0]):
            fail(f"{key}: gguf-py reads {got!r}, expected {want!r}")
    tensors = {t.name: t for t in r.tensors}
    if set(tensors) != set(exp["tensors"]):
        fail(f"tensors differ: gguf-py has {sorted(tensors)}, expected {sorted(exp['tensors'])}")
    for name, e in exp["tensors"].items():
        t = tensors[name]
        if t.tensor_type != TENSOR_NAMES[e["type"]]:
            fail(f"{name}: type {t.tensor_type.name}, expected {e['type']}")
        if [int(d) for d in t.shape] != e["shape"]:
            fail(f"{name}: shape {list(t.shape)}, expected {e['shape']}")
        got = gguf.quants.dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        want = np.array(e["values"], dtype=np.float32)
        if got.shape != want.shape or not np.array_equal(got, want):
            diff = np.abs(got - want).max() if got.shape == want.shape else "shape"
            fail(f"{name}: dequantized values differ (max abs {diff})")
        if "source" in e:
            # Our F32/F16/Q8_0 encoding must match gguf-py's (ggml's reference) bit for bit.
            src = np.array(e["source"], dtype=np.float32).reshape(-1, e["shape"][0])
            ref = np.ascontiguousarray(gguf.quants.quantize(src, t.tensor_type)).reshape(-1).view(np.uint8)
            if not np.array_equal(ref, np.ascontiguousarray(t.data).reshape(-1).view(np.uint8)):
                fail(f"{name}: quantized bytes differ from gguf-py's quantize()")
    print(f"gguf-py read {len(fields)} keys and {len(tensors)} tensors: all match")


def write(path, expected_path):
    w = gguf.GGUFWriter(path, "edgegen.vae")
    kv = {"general.architecture": {"types": ["String"], "value": "edgegen.vae"}}

    def add(key, types, value, fn):
        fn(key, value)
        kv[key] = {"types": types, "value": value}

    add("py.u8", ["U8"], 255, w.add_uint8)
    add("py.i8", ["I8"], -128, w.add_int8)
    add("py.u16", ["U16"], 65535, w.add_uint16)
    add("py.i16", ["I16"], -32768, w.add_int16)
    add("py.u32", ["U32"], 4294967295, w.add_uint32)
    add("py.i32", ["I32"], -2147483648, w.add_int32)
    add("py.f32", ["F32"], 0.1, w.add_float32)
    add("py.bool", ["Bool"], False, w.add_bool)
    add("py.string", ["String"], "grüße 🌍", w.add_string)
    add("py.u64", ["U64"], 2**64 - 1, w.add_uint64)
    add("py.i64", ["I64"], -(2**63), w.add_int64)
    add("py.f64", ["F64"], 1e300, w.add_float64)
    w.add_key_value("py.arr_u32", [1, 2, 3], VT.ARRAY, sub_type=VT.UINT32)
    kv["py.arr_u32"] = {"types": ["Array", "U32"], "value": [1, 2, 3]}
    w.add_array("py.arr_str", ["x", "yy", ""])
    kv["py.arr_str"] = {"types": ["Array", "String"], "value": ["x", "yy", ""]}
    w.add_key_value("py.arr_f32", [0.5, -1.25], VT.ARRAY, sub_type=VT.FLOAT32)
    kv["py.arr_f32"] = {"types": ["Array", "F32"], "value": [0.5, -1.25]}

    rng = np.random.default_rng(7)
    tensors = {}
    a = rng.standard_normal((3, 5)).astype(np.float32)
    w.add_tensor("py.f32", a)
    tensors["py.f32"] = {"type": "F32", "shape": [5, 3], "values": a.reshape(-1).tolist()}
    b = rng.standard_normal((4, 6)).astype(np.float16)
    w.add_tensor("py.f16", b)
    tensors["py.f16"] = {"type": "F16", "shape": [6, 4],
                         "values": b.astype(np.float32).reshape(-1).tolist()}
    c = rng.standard_normal((2, 64)).astype(np.float32)
    q = gguf.quants.quantize(c, QT.Q8_0)
    w.add_tensor("py.q8_0", q, raw_dtype=QT.Q8_0)
    tensors["py.q8_0"] = {"type": "Q8_0", "shape": [64, 2],
                          "values": gguf.quants.dequantize(q, QT.Q8_0).reshape(-1).tolist(),
                          "source": c.reshape(-1).tolist()}
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    json.dump({"kv": kv, "tensors": tensors}, open(expected_path, "w"))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] not in ("check", "write"):
        fail(__doc__)
    {"check": check, "write": write}[sys.argv[1]](sys.argv[2], sys.argv[3])
