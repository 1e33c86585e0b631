#!/usr/bin/env python3
"""Cut the embedded MNIST sample from the full MNIST IDX files.

  python3 data/cut_mnist_sample.py ../shared/datasets/mnist data/mnist-sample [N_TRAIN] [N_TEST]

Takes the first N_TRAIN (default 6000) training and the first N_TEST
(default 1000) test images with their labels, and writes them as gzipped IDX
files with a zero gzip timestamp, so that the output is byte-for-byte
reproducible. Prints the sha256 of each file written.
"""
import gzip
import hashlib
import os
import struct
import sys


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    dims = list(struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim]))
    return dims, data[4 + 4 * ndim:]


def write_idx(path, dims, body):
    header = struct.pack(">HBB", 0, 0x08, len(dims)) + struct.pack(f">{len(dims)}I", *dims)
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f:
            f.write(header + body)
    print(hashlib.sha256(open(path, "rb").read()).hexdigest(), os.path.basename(path))


def main():
    if len(sys.argv) not in (3, 4, 5):
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    n = {"train": int(sys.argv[3]) if len(sys.argv) > 3 else 6000,
         "t10k": int(sys.argv[4]) if len(sys.argv) > 4 else 1000}
    os.makedirs(dst, exist_ok=True)
    for split, count in n.items():
        dims, body = read_idx(os.path.join(src, f"{split}-images-idx3-ubyte.gz"))
        per = dims[1] * dims[2]
        write_idx(os.path.join(dst, f"{split}-images-idx3-ubyte.gz"), [count] + dims[1:], body[:count * per])
        dims, body = read_idx(os.path.join(src, f"{split}-labels-idx1-ubyte.gz"))
        write_idx(os.path.join(dst, f"{split}-labels-idx1-ubyte.gz"), [count], body[:count])


if __name__ == "__main__":
    main()
