"""The dataset formats edgegen reads, for the twin's training scripts."""

import gzip
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
