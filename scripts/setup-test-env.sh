#!/usr/bin/env bash
# Installs what the tests need and exports where it is. Source it: `. scripts/setup-test-env.sh`.
# - a Python venv with moto[server] (real S3 + SQS API on loopback), cached in $KASS_CACHE;
# - the all-MiniLM-L6-v2 model files (tokenizer for chunk bounds), via scripts/fetch-model.sh.
# Idempotent and cheap when the cache is warm.
set -euo pipefail
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
venv="${KASS_VENV:-$KASS_CACHE/venv}"
MOTO_VERSION="5.2.5"
if ! "$venv/bin/python" -c "import moto, sys; sys.exit(moto.__version__ != '$MOTO_VERSION')" 2>/dev/null; then
  echo "setting up Python venv in $venv (moto[server]==$MOTO_VERSION)" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION" >&2
fi
export KASS_MOTO_SERVER="$venv/bin/moto_server"
export PIP="$venv/bin/pip"
model_dir="$(bash "$(dirname "${BASH_SOURCE[0]}")/fetch-model.sh")"
export KASS_MODEL_DIR="$model_dir"
export KASS_TOKENIZER="$model_dir/tokenizer.json"
