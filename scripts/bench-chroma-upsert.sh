#!/usr/bin/env bash
# Chroma upsert throughput, side by side in one run against the same fresh Chroma server: the
# Python `chromadb` client and kass's Rust client, the same 20,000 records (384-d vectors, a
# chat-sized document and five metadata keys each), batches of 500, one upsert after another.
# Each client writes its own new collection, so neither pays for the other's index.
# Usage: scripts/bench-chroma-upsert.sh [count] [batch]
set -euo pipefail
cd "$(dirname "$0")/.."
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
. scripts/python-env.sh
venv="$KASS_CACHE/chroma-venv"
ensure_venv "$venv" "$CHROMA_SPEC"
count="${1:-20000}" batch="${2:-500}"
work="$(mktemp -d)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$venv/bin/chroma" run --path "$work/chroma" --host 127.0.0.1 --port "$port" >"$work/chroma.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
url="http://127.0.0.1:$port"
for _ in $(seq 1 100); do
  python3 -c "import urllib.request as u; u.urlopen('$url/api/v2/heartbeat', timeout=1)" 2>/dev/null && break
  sleep 0.2
done
"$venv/bin/python" scripts/bench_chroma_upsert.py make "$work/records.json" --count "$count"
cargo bench --locked --bench chroma_upsert --no-run >&2
# ABBA order, each run into a new collection, so neither client gains from going second.
py() { "$venv/bin/python" scripts/bench_chroma_upsert.py upsert "$work/records.json" --url "$url" --batch "$batch" --collection "py-$1"; }
rs() { cargo bench --locked --bench chroma_upsert -- --url "$url" --records "$work/records.json" --batch "$batch" --collection "rs-$1" 2>/dev/null; }
results="$work/results.jsonl"
{ rs 1; py 1; py 2; rs 2; } | tee "$results"
python3 - "$results" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def mean(prefix):
    rs = [r["vectors_per_s"] for r in rows if r["client"].startswith(prefix)]
    return sum(rs) / len(rs)
py, rs = mean("chromadb"), mean("kass")
print(f"\nPython chromadb client: {py:.0f} vectors/s; kass: {rs:.0f} vectors/s (mean of 2 each, ABBA); ratio {rs / py:.2f}x")
PY
