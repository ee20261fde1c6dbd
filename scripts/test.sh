#!/usr/bin/env bash
# The README's test command: sets up everything the tests need, then runs every test.
# Tests start their own servers (moto) on loopback and fail loudly if they cannot.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-test-env.sh
cargo test --workspace --all-targets --locked "$@"
