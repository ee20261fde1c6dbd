#!/usr/bin/env bash
# The README's main command: runs kass end to end on the embedded defaults (the sample data the
# repository ships, a local store in .kass-data/, the local MiniLM model for tokens and
# embeddings, a real Chroma server), then searches what it stored.
# A Chroma server is started on 127.0.0.1:8000 (data in .kass-data/chroma) unless CHROMA_URL
# points at one.
set -euo pipefail
cd "$(dirname "$0")/.."
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
if [ -z "${PIP:-}" ] && ! python3 -m pip --version >/dev/null 2>&1; then
  python3 -m venv "$KASS_CACHE/venv" && export PIP="$KASS_CACHE/venv/bin/pip"
fi
bash scripts/fetch-model.sh >/dev/null
kass() { cargo run --quiet --release --locked --bin kass -- "$@"; }
rm -rf .kass-data
if [ -z "${CHROMA_URL:-}" ]; then
  . scripts/python-env.sh
  chroma_venv="$KASS_CACHE/chroma-venv"
  ensure_venv "$chroma_venv" "$CHROMA_SPEC"
  mkdir -p .kass-data
  "$chroma_venv/bin/chroma" run --path .kass-data/chroma --host 127.0.0.1 --port 8000 \
    >.kass-data/chroma.log 2>&1 &
  chroma_pid=$!
  trap 'kill $chroma_pid 2>/dev/null; wait $chroma_pid 2>/dev/null || true' EXIT
  export CHROMA_URL="http://127.0.0.1:8000"
  for _ in $(seq 1 100); do
    python3 -c "import urllib.request as u; u.urlopen('$CHROMA_URL/api/v2/heartbeat', timeout=1)" \
      2>/dev/null && break
    sleep 0.2
  done
fi
kass run --config examples/kass.toml
first=$(cd .kass-data && find slack/chunked -name 'batch_*.json*' | sort | head -n 1)
kass inspect --config examples/kass.toml --chunks 1 "$first"
echo
kass stats --config examples/kass.toml
echo
echo '$ kass query "how do I run only the chunker tests" -k 2'
kass query --config examples/kass.toml "how do I run only the chunker tests" -k 2
