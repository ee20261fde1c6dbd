#!/usr/bin/env bash
# Installs what the tests need and exports where it is. Source it: `. scripts/setup-test-env.sh`.
# - a Python venv with moto[server] (real S3 + SQS API on loopback), cached in $KASS_CACHE;
# - a second venv with chromadb (its `chroma run` is the real vector store the tests start; its
#   dependencies conflict with moto's, hence its own venv);
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
chroma_venv="$KASS_CACHE/chroma-venv"
CHROMA_VERSION="1.5.9"
if ! "$chroma_venv/bin/python" -c "import chromadb, sys; sys.exit(chromadb.__version__ != '$CHROMA_VERSION')" 2>/dev/null; then
  echo "setting up Python venv in $chroma_venv (chromadb==$CHROMA_VERSION)" >&2
  python3 -m venv "$chroma_venv"
  "$chroma_venv/bin/pip" install --quiet --disable-pip-version-check "chromadb==$CHROMA_VERSION" >&2
fi
export KASS_CHROMA="$chroma_venv/bin/chroma"
export PIP="$venv/bin/pip"
model_dir="$(bash "$(dirname "${BASH_SOURCE[0]}")/fetch-model.sh")"
export KASS_MODEL_DIR="$model_dir"
export KASS_TOKENIZER="$model_dir/tokenizer.json"
