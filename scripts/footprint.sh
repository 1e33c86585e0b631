#!/usr/bin/env bash
# Regenerates README.md's footprint table. For each family's documented
# Q8_0 configuration, tests/tests/firmware_qemu.rs builds the Cortex-M4F
# firmware with a 1 MiB / 192 KiB memory map and runs it under
# `qemu-system-arm -icount shift=0`, measuring flash, RAM (statics and the
# stack's high-water mark) and instructions per sample or symbol; then
# `edgegen bench` times the same model on this host's runtime. It also
# writes host/src/cli/thumbv7em.json, the code and stack per family that
# `edgegen inspect --target thumbv7em` adds to a model's own sizes. The
# test checks, on every CI run, that both hold what it measures.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
EDGEGEN_FOOTPRINT_DIR="$dir" cargo test --locked -q -p edgegen-tests --test firmware_qemu \
  documented_configurations_fit_a_1_mib_192_kib_part -- --nocapture >/dev/null
cp "$dir/thumbv7em.json" host/src/cli/thumbv7em.json
cargo build --locked -q --release -p edgegen
for f in vae vae-a8 gan text text-a8 audio audio-2t; do
  target/release/edgegen bench "$dir/$f.gguf" --json --rounds 9 --calls 1000 >"$dir/$f.json"
done
python3 - "$dir" <<'PY'
import json, re, sys
d = sys.argv[1]
rows = open(f"{d}/rows.md").read().splitlines()
out = [
    "| family | documented configuration (Q8_0 weights) | flash, bytes: code + model | RAM, bytes: statics + stack | thumbv7em instructions | deterministic mode | host µs per call |",
    "|---|---|---|---|---|---|---|",
]
for row in rows:
    family = row.split("|")[1].strip()
    r = json.load(open(f"{d}/{family}.json"))
    e = r["engines"][0]
    us = next(v for k, v in e.items() if k.startswith("us"))
    out.append(f"{row} {us:.1f} ({r['isa']}) |")
readme = open("README.md").read()
start, end = "<!-- footprint:start -->\n", "<!-- footprint:end -->"
a, b = readme.index(start) + len(start), readme.index(end)
open("README.md", "w").write(readme[:a] + "\n".join(out) + "\n" + readme[b:])
print("\n".join(out))
PY
