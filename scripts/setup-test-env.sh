#!/usr/bin/env bash
# Installs what the tests need and exports where it is. Source it: `. scripts/setup-test-env.sh`.
# - a Python venv with moto[server] (real S3 + SQS API on loopback), cached in $KASS_CACHE;
# - a second venv with chromadb (its `chroma run` is the real vector store the tests start; its
#   dependencies conflict with moto's, hence its own venv);
# - the all-MiniLM-L6-v2 model files (tokenizer for chunk bounds), via scripts/fetch-model.sh.
# - Prometheus's tools (prometheus, promtool, prometheus-pushgateway), unpacked from the Debian
#   packages by scripts/install-prometheus.sh: KASS_PROMETHEUS, KASS_PROMTOOL, KASS_PUSHGATEWAY.
# Idempotent and cheap when the cache is warm.
set -euo pipefail
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
. "$(dirname "${BASH_SOURCE[0]}")/python-env.sh"
venv="${KASS_VENV:-$KASS_CACHE/venv}"
ensure_venv "$venv" "$MOTO_SPEC"
export KASS_MOTO_SERVER="$venv/bin/moto_server"
export PIP="$venv/bin/pip"
ensure_venv "$KASS_CACHE/chroma-venv" "$CHROMA_SPEC"
export KASS_CHROMA="$KASS_CACHE/chroma-venv/bin/chroma"
model_dir="$(bash "$(dirname "${BASH_SOURCE[0]}")/fetch-model.sh")"
export KASS_MODEL_DIR="$model_dir"
export KASS_TOKENIZER="$model_dir/tokenizer.json"
. "$(dirname "${BASH_SOURCE[0]}")/install-prometheus.sh"
