#!/usr/bin/env python3
"""Cut the embedded text sample from Tiny Shakespeare.

  python3 data/cut_text_sample.py ../shared/datasets/text/tinyshakespeare.txt data/text-sample/shakespeare.txt [N_BYTES]

Keeps the first N_BYTES (default 100000) bytes, cut back to the end of the
last whole line, and prints the sha256 of the file written.
"""
import hashlib
import sys


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 100000
    data = open(src, "rb").read()[:n]
    data = data[: data.rfind(b"\n") + 1]
    data.decode("utf-8")
    open(dst, "wb").write(data)
    print(hashlib.sha256(data).hexdigest(), len(data), "bytes", dst)


if __name__ == "__main__":
    main()
