#!/usr/bin/env bash
# arm64 as deploy/template.yaml deploys it (`Architectures: [arm64]`), checked from an x86-64
# machine. CI runs it (.ci/run); run it by hand the same way: `bash scripts/test-arm64.sh`.
#
# 1. Both Lambdas built for aarch64 with the ecosystem's tool, `cargo lambda build --release
#    --arm64` (cargo-lambda and zig, its cross linker, from PyPI, in a venv under $KASS_CACHE),
#    into target/lambda/{kass-fetcher,kass-embedder}/bootstrap, where the template's CodeUri
#    points; each must be an aarch64 ELF executable.
# 2. The local model's tests built for aarch64-unknown-linux-gnu and run under qemu-aarch64
#    (Debian's qemu-user; Debian's gcc-aarch64-linux-gnu links them): the int8 kernels of every
#    arm64 path (portable, neon, neon-dot) bit for bit against each other, and the model's
#    vectors against sentence-transformers' reference vectors on each path.
#    - First on qemu's default CPU, which has every extension: the best path is `neon-dot`.
#    - Then the kernels' and CPU-path unit tests on a Cortex-A72 (Armv8.0, no dotprod, as
#      Graviton 1): `neon` must be chosen there, and an `sdot` run by mistake dies of SIGILL.
# 3. The local model's tests on x86-64 with every fast path switched off
#    (`KASS_CPU_PATH=portable`): the baseline build any x86-64 CPU runs.
#
# Needs rustup's aarch64-unknown-linux-gnu target (added here when missing) and, when qemu or the
# cross gcc is missing, apt-get as root. Model files come from scripts/setup-test-env.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$KASS_CACHE/target}"
target=aarch64-unknown-linux-gnu
sysroot=/usr/aarch64-linux-gnu
LAMBDA_SPECS=("cargo-lambda==1.9.2" "ziglang==0.17.1")

step() { echo "== test-arm64: $*" >&2; }
fail() { echo "!! test-arm64: $*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------------------------
rustup target list --installed | grep -qx "$target" || rustup target add "$target" \
  || fail "cannot add the rustup target $target"
missing=()
command -v qemu-aarch64 >/dev/null || missing+=(qemu-user)
command -v aarch64-linux-gnu-gcc >/dev/null || missing+=(gcc-aarch64-linux-gnu)
[ -e "$sysroot/lib/ld-linux-aarch64.so.1" ] || missing+=(libc6-dev-arm64-cross)
if [ ${#missing[@]} -gt 0 ]; then
  step "installing ${missing[*]} (Debian packages)"
  [ "$(id -u)" = 0 ] || fail "${missing[*]} missing and not root: install them with apt-get"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; } \
    || fail "apt-get could not install ${missing[*]}"
fi
lambda_venv="$KASS_CACHE/lambda-venv"
if ! "$lambda_venv/bin/cargo-lambda" lambda --version 2>/dev/null | grep -q "${LAMBDA_SPECS[0]##*==}" \
  || ! "$lambda_venv/bin/python" -m ziglang version >/dev/null 2>&1; then
  step "setting up cargo-lambda and zig in $lambda_venv"
  python3 -m venv "$lambda_venv"
  "$lambda_venv/bin/pip" install --quiet --disable-pip-version-check "${LAMBDA_SPECS[@]}" \
    || fail "pip could not install ${LAMBDA_SPECS[*]}"
fi
export PATH="$lambda_venv/bin:$PATH"

# --- 1. the Lambdas, built as the template deploys them ------------------------------------------
step "cargo lambda build --release --arm64 (kass-fetcher, kass-embedder)"
lambda_dir="$PWD/target/lambda"
cargo lambda build --release --arm64 --locked --bin kass-fetcher --bin kass-embedder \
  --lambda-dir "$lambda_dir"
for bin in kass-fetcher kass-embedder; do
  file="$lambda_dir/$bin/bootstrap"
  [ -x "$file" ] || fail "$file was not built"
  # ELF header: class 64-bit (byte 4 = 2) and e_machine EM_AARCH64 (183 = 0xb7, bytes 18-19).
  header="$(od -An -tx1 -j4 -N1 "$file" | tr -d ' ')$(od -An -tx1 -j18 -N2 "$file" | tr -d ' ')"
  [ "$header" = "02b700" ] || fail "$file is not a 64-bit aarch64 ELF (header bytes $header)"
  step "$file: aarch64 ELF, $(du -h "$file" | cut -f1)"
done

# --- 2. the local model's tests under qemu-aarch64 ----------------------------------------------
. scripts/setup-test-env.sh
set -euo pipefail
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L $sysroot"
export CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc
step "local model tests for $target under qemu-aarch64 (default CPU: every extension)"
unset QEMU_CPU KASS_CPU_PATH
cargo test --locked -p kass-stages --target "$target" --lib -- providers::local
# Every arm64 path against sentence-transformers' reference vectors (f32 and int8). The 29-sentence
# tests/local_model.rs adds nothing arm64-specific and takes 200 s under qemu: it runs natively
# (scripts/test.sh) and with the fast paths off (step 3).
cargo test --locked -p kass-stages --target "$target" --test local_model_cpu_paths
step "kernel and CPU-path unit tests under qemu-aarch64 -cpu cortex-a72 (no dotprod)"
QEMU_CPU=cortex-a72 cargo test --locked -p kass-stages --target "$target" --lib -- \
  providers::local::int8_matmul providers::local::cpu_features --nocapture

# --- 3. x86-64 with the fast paths off -------------------------------------------------------
step "local model tests on x86-64 with KASS_CPU_PATH=portable"
# `--workspace`, as scripts/test.sh builds: the same feature set, so nothing is compiled again
# (`-p kass-stages` alone resolves its dependencies' features apart and rebuilt them).
KASS_CPU_PATH=portable cargo test --locked --workspace --test local_model
step "passed"
