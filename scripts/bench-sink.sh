#!/usr/bin/env bash
# kass's own path from batch file to Chroma, with an embedding server that answers at once
# (scripts/instant_embed.py): `kass run` of N one-line chunks into a real Chroma, after the
# collection already holds P records, for each P given; beside it the Python chromadb client
# upserting the very records kass stored (same vectors, texts, metadata; new ids) into the same
# collection in the same batch size: what the server itself costs at that level.
#
#   scripts/bench-sink.sh [N=1000] [P levels="1000 10000 50000 100000"]
#
# Prints per level: kass seconds and chunks/s for the whole `kass run`, the Python client's
# records/s, and their ratio; then the ingest time at the last level over the first, for kass, for
# the server's own upserts, and for kass over the server (what kass's own path adds as it grows).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-1000}"
LEVELS="${2:-1000 10000 50000 100000}"
. scripts/setup-test-env.sh >/dev/null
cargo build --release --locked --bin kass >&2
KASS="${CARGO_TARGET_DIR:-target}/release/kass"
PY="$KASS_CACHE/chroma-venv/bin/python"
work="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

embed_port="$(port)"
python3 scripts/instant_embed.py "$embed_port" 384 &
lines() { # lines PREFIX COUNT -> jsonl of one-line documents
  python3 - "$1" "$2" <<'PY'
import json, sys
prefix, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    print(json.dumps({"id": f"{prefix}/{i}", "kind": "text",
                      "text": f"{prefix} note {i}: the deploy of build {i * 7919 % 100003} went out at {i % 24}:00"}))
PY
}
config() { # config NAME JSONL COLLECTION CHROMA_PORT
  cat > "$work/$1.toml" <<TOML
[store]
type = "local"
path = "$work/store-$1"

[[sources]]
type = "jsonl"
name = "$1"
path = "$2"

[embed.provider]
kind = "openai"
base_url = "http://127.0.0.1:$embed_port/v1"
model = "instant"
dimensions = 384
api_key_env = "KASS_BENCH_KEY"
# No rate limit: the OpenAI defaults (100 requests/min) would be all one measures.
requests_per_minute = 0
tokens_per_minute = 0

[chroma]
url = "http://127.0.0.1:$4"
collection = "$3"
TOML
  echo "$work/$1.toml"
}
export KASS_BENCH_KEY=bench
first=""
for level in $LEVELS; do
  chroma_port="$(port)"
  rm -rf "$work/chroma"
  "$KASS_CHROMA" run --path "$work/chroma" --host 127.0.0.1 --port "$chroma_port" >/dev/null 2>&1 &
  chroma_pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$chroma_port/api/v2/heartbeat" >/dev/null && break; sleep 0.2; done
  if [ "$level" -gt 0 ]; then
    lines prefill "$level" > "$work/prefill.jsonl"
    "$KASS" run --config "$(config prefill "$work/prefill.jsonl" bench "$chroma_port")" >/dev/null 2>&1
  fi
  lines bench "$N" > "$work/bench.jsonl"
  cfg="$(config bench "$work/bench.jsonl" bench "$chroma_port")"
  start=$(date +%s.%N)
  "$KASS" run --config "$cfg" >/dev/null 2>"$work/run.err"
  end=$(date +%s.%N)
  stages="$(grep 'time per stage' "$work/run.err" | sed 's/^ *time per stage *//')"
  kass_s=$(python3 -c "print(f'{$end - $start:.2f}')")
  py_s=$("$PY" - "$chroma_port" <<'PY'
import sys, time
import chromadb
client = chromadb.HttpClient(host="127.0.0.1", port=int(sys.argv[1]))
# The very records kass just stored (same vectors, texts and metadata), upserted again under new
# ids into the same collection in kass's batch size: the server's own cost at this level.
col = client.get_collection("bench")
got = col.get(where={"source": "bench"}, include=["embeddings", "documents", "metadatas"])
n = len(got["ids"])
ids = ["py/" + i for i in got["ids"]]
t = time.perf_counter()
for s in range(0, n, 500):
    col.upsert(ids=ids[s:s+500], embeddings=got["embeddings"][s:s+500],
               documents=got["documents"][s:s+500], metadatas=got["metadatas"][s:s+500])
print(f"{time.perf_counter() - t:.3f}")
PY
)
  kass_rps=$(python3 -c "print(f'{$N / $kass_s:.0f}')")
  py_rps=$(python3 -c "print(f'{$N / $py_s:.0f}')")
  echo "level=$level records: kass run ${kass_s}s = ${kass_rps} chunks/s; python client upsert of the same records ${py_s}s = ${py_rps} records/s; ratio $(python3 -c "print(f'{$kass_rps / $py_rps:.2f}')"); kass stages: $stages"
  [ -z "$first" ] && { first="$kass_s"; py_first="$py_s"; }
  last="$kass_s"; py_last="$py_s"
  kill "$chroma_pid"; wait "$chroma_pid" 2>/dev/null || true
done
echo "ingest time per $N chunks, last level over first: kass $(python3 -c "print(f'{$last / $first:.2f}')"); the server's own upserts $(python3 -c "print(f'{$py_last / $py_first:.2f}')"); kass over the server $(python3 -c "print(f'{($last / $py_last) / ($first / $py_first):.2f}')")"
