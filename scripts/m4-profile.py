#!/usr/bin/env python3
"""Instructions per function of a Cortex-M4F firmware image under QEMU.

    python3 scripts/m4-profile.py ELF [TOP]

Runs the image under `qemu-system-arm -M mps2-an386 -icount shift=0` with
QEMU's translation-block log (`-d in_asm,exec,nochain`: every executed
block once per execution), multiplies each block's executions by its
instruction count, and sums them by the ELF's function symbols (with
`llvm-nm`). Inlined code counts in the function it was inlined into. The
log of a text model's 53 symbols is about 1 GB, written to a temporary
file and deleted. The totals cover the whole run (start-up, the model's
hash and the SysTick calibration included); divide by the samples or
symbols the firmware reports for a per-symbol cost.

To profile a documented configuration, build it first:
    EDGEGEN_FOOTPRINT_DIR=/tmp/fp cargo test -p edgegen-tests --test firmware_qemu documented
and pass target/firmware-test-budget-text-a8/thumbv7em-none-eabihf/device/edgegen-firmware-m4.
"""

import bisect
import collections
import os
import re
import subprocess
import sys
import tempfile


def symbols(elf):
    out = subprocess.run(["llvm-nm", "-n", "--demangle", elf], capture_output=True, text=True, check=True)
    syms = []
    for line in out.stdout.splitlines():
        p = line.split(" ", 2)
        if len(p) == 3 and p[1] in "tTwW":
            syms.append((int(p[0], 16) & ~1, p[2]))
    return syms


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    elf, top = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25
    syms = symbols(elf)
    addrs = [a for a, _ in syms]
    with tempfile.TemporaryDirectory() as d:
        log = os.path.join(d, "qemu.log")
        run = subprocess.run(
            ["timeout", "600", "qemu-system-arm", "-M", "mps2-an386", "-nographic",
             "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
             "-d", "in_asm,exec,nochain", "-D", log, "-kernel", elf],
            capture_output=True, text=True)
        print(run.stdout, end="")
        size, counts, cur = {}, collections.Counter(), None
        trace = re.compile(r"Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")
        with open(log, errors="replace") as f:
            for line in f:
                if line.startswith("IN:"):
                    cur = None
                elif line.startswith("0x") and ":" in line[:12]:
                    if cur is None:
                        cur = int(line[:10], 16)
                        size[cur] = 0
                    size[cur] += 1
                else:
                    m = trace.match(line)
                    if m:
                        cur = None
                        counts[int(m.group(1), 16)] += 1
    per, total = collections.Counter(), 0
    for pc, n in counts.items():
        i = bisect.bisect_right(addrs, pc) - 1
        k = n * size.get(pc, 0)
        per[syms[i][1] if i >= 0 else "?"] += k
        total += k
    print(f"{total:>12,} instructions in all")
    for name, k in per.most_common(top):
        print(f"{k:>12,} {100 * k / total:5.1f}%  {re.sub(r'::h[0-9a-f]{16}$', '', name)[:120]}")


if __name__ == "__main__":
    main()
