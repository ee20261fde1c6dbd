#!/usr/bin/env bash
# Retrieval quality of the local model's precisions side by side: `kass eval` (nDCG@10,
# recall@10, MRR@10) with `precision = "f32"` and `precision = "int8"` on the same labelled set,
# each into its own collection of a fresh Chroma, and the difference.
#
# Usage: scripts/eval-precision.sh [BEIR dir with corpus.jsonl, queries.jsonl, qrels/test.tsv]
# Without a directory, the set is built from the real Slack export sample
# (scripts/slack-known-item-set.py: thread openers as queries, their replies as the answers).
set -euo pipefail
cd "$(dirname "$0")/.."
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
. scripts/python-env.sh
. scripts/chroma-server.sh
ensure_venv "$KASS_CACHE/chroma-venv" "$CHROMA_SPEC"
. scripts/bench-setup.sh
use_local_model
cargo build --release --locked --bin kass >&2
bin="${CARGO_TARGET_DIR:-target}/release/kass"
work="$(mktemp -d)"
start_chroma "$work"
port=$CHROMA_PORT
set_dir="${1:-}"
if [ -z "$set_dir" ]; then
  set_dir="$work/set"
  python3 scripts/slack-known-item-set.py "$set_dir" >&2
fi
for run in ${KASS_EVAL_RUNS:-f32 int8}; do
  precision="${run%%:*}"
  cat >"$work/$run.toml" <<TOML
[chroma]
url = "http://127.0.0.1:$port"
[embed.provider]
kind = "local"
precision = "$precision"
TOML
  echo "== precision = $precision"
  "$bin" eval --config "$work/$run.toml" --collection "eval-${run//:/-}" \
    --corpus "$set_dir/corpus.jsonl" --queries "$set_dir/queries.jsonl" --qrels "$set_dir/qrels/test.tsv" \
    | tee "$work/$run.out"
done
[ -f "$work/f32.out" ] && [ -f "$work/int8.out" ] || exit 0  # one precision run: nothing to compare
python3 - "$work/f32.out" "$work/int8.out" <<'PY'
import re, sys
def metrics(path):
    return {k: float(v) for k, v in re.findall(r"(nDCG@\d+|recall@\d+|MRR@\d+)\D*?([0-9]\.[0-9]+)", open(path).read())}
a, b = metrics(sys.argv[1]), metrics(sys.argv[2])
print(f"\n{'metric':10} {'f32':>8} {'int8':>8} {'int8 - f32':>11}")
for k in a:
    print(f"{k:10} {a[k]:8.4f} {b.get(k, float('nan')):8.4f} {b.get(k, float('nan')) - a[k]:+11.4f}")
PY
