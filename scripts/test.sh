#!/usr/bin/env bash
# Runs every test, after installing what the tests need. Safe to run again:
# each install step is skipped when its tool is already there.
#
#   bash scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# Each step prints the seconds since the start, so a CI log shows where the
# time went.
start=$SECONDS
step() { printf '\n== [%4ds] %s\n' "$((SECONDS - start))" "$*"; }
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

step "system packages (qemu-user, qemu-system-arm, gcc-aarch64-linux-gnu)"
missing=()
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
if [ ${#missing[@]} -gt 0 ]; then
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "ok"

step "rust targets and components"
rustup target add thumbv7em-none-eabihf aarch64-unknown-linux-gnu >/dev/null
rustup component add rustfmt clippy >/dev/null 2>&1 || true
echo "ok"

step "python packages (tests/python/requirements.txt)"
PYTHON="${EDGEGEN_PYTHON:-python3}"
if ! "$PYTHON" -c 'import gguf, onnxruntime, numpy' 2>/dev/null; then
  "$PYTHON" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
fi
"$PYTHON" -c 'import importlib.metadata as m; print("gguf", m.version("gguf"), "onnxruntime", m.version("onnxruntime"))'

# The full datasets, for the tests that read them (CI has shared/ beside the clone).
if [ -z "${EDGEGEN_DATASETS:-}" ] && [ -d ../shared/datasets ]; then
  export EDGEGEN_DATASETS="$PWD/../shared/datasets"
fi

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo clippy -D warnings, firmware for thumbv7em-none-eabihf"
for family in vae gan text audio; do
  for f in "" deterministic int8 frames head8 kernel-check size-probe size-probe-all empty; do
    EDGEGEN_FIRMWARE_DEFAULT=$family cargo clippy --locked -p edgegen-firmware-m4 --target thumbv7em-none-eabihf ${f:+--features $f} -- -D warnings
  done
done

step "rustdoc -D warnings for the crates that ship to the device"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -p edgegen-format -p edgegen-runtime
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps -p edgegen-runtime --features int8,frames

step "cargo test (includes the firmware under qemu-system-arm and the gguf-py, ONNX Runtime and tract checks)"
cargo test --workspace --locked

step "no_std build of edgegen-format and edgegen-runtime for thumbv7em-none-eabihf"
cargo build --locked -p edgegen-format -p edgegen-runtime --target thumbv7em-none-eabihf
cargo build --locked -p edgegen-runtime --features fast-math --target thumbv7em-none-eabihf
cargo clippy --locked -p edgegen-runtime --features deterministic --target thumbv7em-none-eabihf -- -D warnings
cargo clippy --locked -p edgegen-runtime --features frames --target thumbv7em-none-eabihf -- -D warnings
cargo clippy --locked -p edgegen-format -p edgegen-runtime --target thumbv7em-none-eabihf -- -D warnings
cargo clippy --locked -p edgegen-format -p edgegen-runtime -p edgegen-sampler --target aarch64-unknown-linux-gnu --all-targets -- -D warnings

step "no-alloc check: link both crates with no global allocator"
# examples/nostd-check defines no #[global_allocator]: rustc refuses to
# build it if anything it links needs alloc.
cargo build --locked -p edgegen-nostd-check --target thumbv7em-none-eabihf --profile device
echo "ok: no allocator needed"

step "NEON kernels (the int8 ones too) and the format crate on aarch64, under qemu-aarch64"
cargo test --locked -p edgegen-format -p edgegen-runtime --features edgegen-runtime/int8 --target aarch64-unknown-linux-gnu

printf '\nall tests passed in %d s\n' "$((SECONDS - start))"
