"""The dataset formats edgegen reads, for the twin's training scripts."""

import gzip
import math
import os
import struct

import numpy as np


def idx(path):
    """An IDX array (`.gz` or not), as numpy."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist(folder):
    """`(train_x, train_y, test_x, test_y)` of an MNIST-style IDX folder (the
    full dataset or edgegen's built-in `data/mnist-sample`): pixels in
    [0, 1] as float32 rows, labels as int64."""

    def find(stem):
        for name in (stem, stem + ".gz"):
            p = os.path.join(folder, name)
            if os.path.exists(p):
                return p
        raise FileNotFoundError(f"{folder}: no {stem}[.gz]")

    def images(stem):
        a = idx(find(stem))
        return (a.reshape(a.shape[0], -1).astype(np.float32) / 255.0), a.shape[1:]

    tx, shape = images("train-images-idx3-ubyte")
    vx, _ = images("t10k-images-idx3-ubyte")
    ty = idx(find("train-labels-idx1-ubyte")).astype(np.int64)
    vy = idx(find("t10k-labels-idx1-ubyte")).astype(np.int64)
    return tx, ty, vx, vy, [1, int(shape[0]), int(shape[1])]


def _txt(name):
    return name.lower().endswith(".txt")


def text_classes(path):
    """`(classes, texts)` as edgegen reads text (host/src/data/text.rs): a
    file is one unconditional text (`classes` empty); a folder is one class
    per `.txt` file (named by its stem) or, else, one class per sub-folder
    holding `.txt` files (its files joined by newlines, in name order).
    Names sort as edgegen sorts paths (bytewise)."""
    if not os.path.isdir(path):
        with open(path, encoding="utf-8") as f:
            return [], [f.read()]
    entries = sorted(os.listdir(path))
    files = [e for e in entries if _txt(e) and not os.path.isdir(os.path.join(path, e))]
    dirs = [e for e in entries if os.path.isdir(os.path.join(path, e))
            and any(_txt(f) and not os.path.isdir(os.path.join(path, e, f)) for f in os.listdir(os.path.join(path, e)))]
    if files and dirs:
        raise SystemExit(f"{path}: holds both .txt files and sub-folders of them; expected one or the other")
    if not files and not dirs:
        raise SystemExit(f"{path}: no .txt files here or one folder down")

    def read(p):
        with open(p, encoding="utf-8") as f:
            return f.read()

    if files:
        return [os.path.splitext(f)[0] for f in files], [read(os.path.join(path, f)) for f in files]
    texts = []
    for d in dirs:
        names = sorted(f for f in os.listdir(os.path.join(path, d)) if _txt(f))
        texts.append("\n".join(read(os.path.join(path, d, f)) for f in names))
    return dirs, texts


def vocabulary(kind, texts):
    """`None` for bytes; for `chars`, the distinct characters of all the
    texts in code-point order (symbol i is the i-th), as edgegen's
    `Vocab::new` learns them."""
    if kind == "bytes":
        return None
    if kind != "chars":
        raise SystemExit(f"--vocab: expected bytes or chars, found {kind!r}")
    return "".join(sorted(set("".join(texts))))


def encode(text, chars):
    """The symbols of `text`: its UTF-8 bytes, or indices into `chars`."""
    if chars is None:
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)
    index = {c: i for i, c in enumerate(chars)}
    return np.array([index[c] for c in text], dtype=np.int64)


def split_text(text, val_frac):
    """edgegen's split of one text: the first `1 - val_frac` of its UTF-8
    bytes (rounded, then back to a character boundary) train, the rest
    validates."""
    raw = text.encode("utf-8")
    n = min(int(math.floor(len(raw) * (1.0 - val_frac) + 0.5)), len(raw))  # Rust's round: half away from zero
    while 0 < n < len(raw) and (raw[n] & 0xC0) == 0x80:
        n -= 1
    return raw[:n].decode("utf-8"), raw[n:].decode("utf-8")
