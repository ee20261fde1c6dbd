#!/usr/bin/env bash
# Local embedding throughput, side by side in one run: kass's in-process model (f32) and
# sentence-transformers `encode`, on the same texts (long: chunk-sized windows of a real Slack
# export, ~237 word pieces; short: single messages, ~34), same batch size (32) and the same 2
# threads. Prints each runtime's texts/s and the ratio kass / sentence-transformers.
#
# Usage: scripts/bench-local-embed.sh [slack export dir]
# Needs the reference venv (about 4.8 GB, created on first use from
# scripts/st-venv-requirements.txt) and the model (scripts/fetch-model.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
venv="$KASS_CACHE/st-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --no-deps -r scripts/st-venv-requirements.txt
fi
. scripts/bench-setup.sh
use_local_model
texts="$(mktemp -d)"
trap 'rm -rf "$texts"' EXIT
"$venv/bin/python" scripts/bench-texts.py "$texts" ${1:+--data "$1"} >&2
cargo bench --locked --bench embed_local --no-run >&2
results="$texts/results.jsonl"
for set in long short; do
  OMP_NUM_THREADS=2 "$venv/bin/python" scripts/bench_st_encode.py \
    --texts "$texts/$set.jsonl" --batch-size 32 --threads 2 --repeat 3 | tee -a "$results"
  cargo bench --locked --bench embed_local -- \
    --texts "$texts/$set.jsonl" --batch-size 32 --workers 2 --repeat 3 2>/dev/null | tee -a "$results"
done
python3 - "$results" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n{'set':6} {'sentence-transformers':>22} {'kass (f32)':>14} {'ratio':>6}")
for s in ("long", "short"):
    by = {r["runtime"]: r for r in rows if os.path.basename(r["file"]).startswith(s)}
    st, k = by["sentence-transformers"]["texts_per_s"], by["kass-f32"]["texts_per_s"]
    print(f"{s:6} {st:>18.1f} t/s {k:>10.1f} t/s {k / st:>5.2f}x")
PY
