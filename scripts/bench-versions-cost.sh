#!/usr/bin/env bash
# What document versions and the tombstone ledger cost: two kass binaries side by side on the
# real Slack export sample, into a fresh Chroma collection each, interleaved rounds.
#   1. `kass run` (fetch + embed with the local model): wall seconds, and the requests kass
#      made to Chroma, counted at the wire by a proxy (scripts/count_requests_proxy.py);
#   2. `kass replay` of the same batches into the same collection (everything stored already:
#      the path every redelivery takes): wall seconds and requests.
# Usage: scripts/bench-versions-cost.sh BASE_BIN NEW_BIN [rounds] [slack export dir]
# KASS_BENCH_EXTRA_TOML is appended to both configs (e.g. the same `[embed.provider]` precision
# for builds whose defaults differ).
# Prints the CPU flags it ran on, each round's figures, and the medians with NEW/BASE ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
base="$(realpath "$1")"; new="$(realpath "$2")"; rounds="${3:-3}"
src="$(realpath "${4:-../shared/data/slack-export-sample}")"
[ -d "$src" ] || { echo "missing Slack export: $src" >&2; exit 1; }
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
. scripts/python-env.sh
. scripts/chroma-server.sh
ensure_venv "$KASS_CACHE/chroma-venv" "$CHROMA_SPEC"
bash scripts/fetch-model.sh >/dev/null
work="$(mktemp -d)"
start_chroma "$work"
pport=$(free_port)
python3 scripts/count_requests_proxy.py "$pport" "http://127.0.0.1:$CHROMA_PORT" "$work/counts.json" &
proxy=$!
trap "kill $proxy 2>/dev/null; kill $CHROMA_PID 2>/dev/null; wait 2>/dev/null; rm -rf '$work'" EXIT
for _ in $(seq 1 50); do  # the proxy is up once it forwards a heartbeat
  python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$pport/api/v2/heartbeat', timeout=1)" 2>/dev/null && break
  sleep 0.1
done
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); flags: $(grep -m1 -o -w 'avx2\|avx512f\|avx512_vnni\|avx512_bf16\|avx_vnni' /proc/cpuinfo | sort -u | xargs)"
# The proxy counts from its start: a step's requests are the difference of two snapshots.
snapshot() { cp "$work/counts.json" "$work/before.json" 2>/dev/null || echo '{}' >"$work/before.json"; }
delta() { # total, then per route
  python3 - "$work/before.json" "$work/counts.json" <<'PY'
import json, sys
before, after = (json.load(open(p)) for p in sys.argv[1:3])
d = {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}
print(sum(d.values()), "[" + ", ".join(f"{k.split('/')[-1]} {v}" for k, v in sorted(d.items())) + "]")
PY
}
one() { # one round of one binary: NAME BIN ROUND
  local name="$1" bin="$2" round="$3" dir="$work/$1-$3"
  mkdir -p "$dir"
  cat >"$dir/kass.toml" <<TOML
[store]
type = "local"
path = "$dir/store"
[chroma]
url = "http://127.0.0.1:$pport"
collection = "$name-$round"
[[sources]]
type = "slack_export"
name = "slack"
path = "$src"
${KASS_BENCH_EXTRA_TOML:-}
TOML
  snapshot
  local t0 t1
  t0=$(date +%s.%N)
  "$bin" run --config "$dir/kass.toml" >"$dir/run.txt" 2>&1
  t1=$(date +%s.%N)
  echo "$name run $round $(python3 -c "print(round($t1 - $t0, 2))") $(delta)" | tee -a "$work/results.txt"
  snapshot
  t0=$(date +%s.%N)
  "$bin" replay --source slack --config "$dir/kass.toml" >"$dir/replay.txt" 2>&1
  t1=$(date +%s.%N)
  echo "$name replay $round $(python3 -c "print(round($t1 - $t0, 2))") $(delta)" | tee -a "$work/results.txt"
}
for r in $(seq 1 "$rounds"); do
  one base "$base" "$r"
  one new "$new" "$r"
done
python3 - "$work/results.txt" <<'PY'
import statistics, sys
rows = [l.split()[:5] for l in open(sys.argv[1])]
med = lambda name, what, i: statistics.median(float(r[i]) for r in rows if r[0] == name and r[1] == what)
for what in ("run", "replay"):
    for i, label in ((3, "wall s"), (4, "Chroma requests")):
        b, n = med("base", what, i), med("new", what, i)
        print(f"{what:7} {label:16} base {b:9.2f}  new {n:9.2f}  new/base {n / b:.3f}")
PY
