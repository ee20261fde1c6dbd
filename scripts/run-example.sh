#!/usr/bin/env bash
# The README's main command: runs kass end to end on the embedded defaults (the sample data the
# repository ships, a local store in .kass-data/, the local MiniLM model for tokens and
# embeddings) and shows a batch.
set -euo pipefail
cd "$(dirname "$0")/.."
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
if [ -z "${PIP:-}" ] && ! python3 -m pip --version >/dev/null 2>&1; then
  python3 -m venv "$KASS_CACHE/venv" && export PIP="$KASS_CACHE/venv/bin/pip"
fi
bash scripts/fetch-model.sh >/dev/null
kass() { cargo run --quiet --release --locked --bin kass -- "$@"; }
rm -rf .kass-data
kass run --config examples/kass.toml
first=$(cd .kass-data && find slack/chunked -name 'batch_*.json*' | sort | head -n 1)
kass inspect --config examples/kass.toml --chunks 2 "$first"
