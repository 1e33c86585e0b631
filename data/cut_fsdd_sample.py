#!/usr/bin/env python3
"""Cut the embedded audio sample from the Free Spoken Digit Dataset.

  python3 data/cut_fsdd_sample.py ../shared/datasets/audio/fsdd data/fsdd-sample [SPEAKER]

Copies the ten digits of one speaker (default george), takes 0 to 9, byte
for byte: takes 0 to 4 are FSDD's test set, 5 to 9 train. Writes `clips.rs`,
the table the host compiles in, and prints each file's sha256 and the
sha256 of the sorted list of those.
"""
import hashlib
import os
import shutil
import sys


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    src, dst = sys.argv[1], sys.argv[2]
    speaker = sys.argv[3] if len(sys.argv) > 3 else "george"
    os.makedirs(dst, exist_ok=True)
    names = [f"{d}_{speaker}_{t}.wav" for d in range(10) for t in range(10)]
    sums = []
    for n in names:
        shutil.copyfile(os.path.join(src, n), os.path.join(dst, n))
        h = hashlib.sha256(open(os.path.join(dst, n), "rb").read()).hexdigest()
        sums.append(h)
        print(h, n)
    with open(os.path.join(dst, "clips.rs"), "w") as f:
        f.write("// Written by data/cut_fsdd_sample.py; the clips beside this file.\n")
        f.write("&[\n")
        for n in names:
            f.write(f'    ("{n}", include_bytes!("{n}")),\n')
        f.write("]\n")
    total = sum(os.path.getsize(os.path.join(dst, n)) for n in names)
    print(hashlib.sha256("".join(sorted(sums)).encode()).hexdigest(), "sorted list;", len(names), "files,", total, "bytes")


if __name__ == "__main__":
    main()
