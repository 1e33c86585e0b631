#!/usr/bin/env bash
# The main job, on the built-in samples (MNIST, or --data PATH / EDGEGEN_DATA;
# Shakespeare; FSDD): trains a VAE, a conditional GAN, a text transformer and
# a conditional audio GRU, exports each as GGUF and ONNX at f32, f16, Q8_0
# and q8_0a8, validates every export against ONNX Runtime, tract, the device
# runtime and the host, and samples each with the device runtime (images,
# text, a WAV file). Outputs go to out/demo.
#
#   bash scripts/demo.sh [edgegen demo flags]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${EDGEGEN_PYTHON:-python3}"
# Validation loads ONNX Runtime from its Python wheel; nothing else is fetched.
if [ -z "${ORT_DYLIB_PATH:-}" ] && ! "$PYTHON" -c 'import onnxruntime' 2>/dev/null; then
  echo "== installing onnxruntime (pip) for validation"
  "$PYTHON" -m pip install --quiet --disable-pip-version-check onnxruntime==1.32.0
fi
exec cargo run --release --locked -p edgegen -- demo "$@"
