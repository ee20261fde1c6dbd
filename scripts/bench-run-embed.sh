#!/usr/bin/env bash
# Local embedding as it counts: inside a whole `kass run` (files source -> chunk router -> local
# model -> Chroma), on the "long" (~240 word pieces) and "short" (single messages) text sets of
# scripts/bench-texts.py, each text one file. Side by side in one run, interleaved A B A B:
#   - `kass run` with this tree's release binary, `precision = "f32"` and `"int8"`,
#   - `kass run` with another binary (f32), when KASS_BIN_B is set (e.g. an older commit's build),
#   - sentence-transformers `encode` (torch fp32, batch 32, 2 threads) on the same texts, when the
#     reference venv exists (scripts/st-venv-requirements.txt), and its faster backends
#     (KASS_ST_BACKENDS="onnx-int8 openvino", when installed in that venv),
# printing the median texts/s of each and the ratios to sentence-transformers (torch).
#
# Usage: scripts/bench-run-embed.sh [repeats=3]
#   KASS_BIN_B=/path/to/kass  KASS_BENCH_SETS="long short"  KASS_ST_BACKENDS="onnx-int8 openvino"
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-3}"
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
. scripts/python-env.sh
. scripts/chroma-server.sh
ensure_venv "$KASS_CACHE/chroma-venv" "$CHROMA_SPEC"
. scripts/bench-setup.sh
use_local_model
cargo build --release --locked --bin kass >&2
bin_a="$(realpath "${CARGO_TARGET_DIR:-target}/release/kass")"
bin_b="${KASS_BIN_B:-}"
st="$KASS_CACHE/st-venv/bin/python"
work="$(mktemp -d)"
start_chroma "$work"
port=$CHROMA_PORT
py=python3
[ -x "$st" ] && py="$st"   # its `tokenizers` counts word pieces exactly
"$py" scripts/bench-texts.py "$work/texts" >&2
python3 - "$work/texts" <<'PY'
import json, pathlib, sys
root = pathlib.Path(sys.argv[1])
for name in ("long", "short"):
    d = root / name
    d.mkdir()
    for i, line in enumerate(open(root / f"{name}.jsonl")):
        (d / f"{i:05}.txt").write_text(json.loads(line)["text"])
PY
results="$work/results.jsonl"
run_kass() { # label binary set round precision
  local label="$1" bin="$2" set="$3" round="$4" precision="$5"
  local dir="$work/run-$label-$set-$round"
  mkdir -p "$dir"
  cat >"$dir/kass.toml" <<TOML
[store]
type = "local"
path = "$dir/store"
[chroma]
url = "http://127.0.0.1:$port"
collection = "bench-$label-$set-$round"
[[sources]]
type = "files"
name = "texts"
path = "$work/texts/$set"
[embed.provider]
kind = "local"
precision = "$precision"
TOML
  local started ended
  started=$(date +%s.%N)
  "$bin" run --config "$dir/kass.toml" >"$dir/out.txt" 2>"$dir/err.txt" || { cat "$dir/err.txt" >&2; exit 1; }
  ended=$(date +%s.%N)
  python3 - "$label" "$set" "$started" "$ended" "$work/texts/$set" "$dir/out.txt" >>"$results" <<'PY'
import json, os, re, sys
label, s, t0, t1, d, out = sys.argv[1:]
texts = len(os.listdir(d))
m = re.search(r"(\d+) new or changed chunks", open(out).read())
secs = float(t1) - float(t0)
print(json.dumps({"runtime": label, "set": s, "texts": texts, "chunks": int(m.group(1)) if m else None,
                  "seconds": secs, "texts_per_s": texts / secs}))
PY
}
for set in ${KASS_BENCH_SETS:-long short}; do
  for round in $(seq 1 "$repeats"); do
    if [ -x "$st" ]; then
      for backend in torch ${KASS_ST_BACKENDS:-}; do
        OMP_NUM_THREADS=2 "$st" scripts/bench_st_encode.py --texts "$work/texts/$set.jsonl" \
          --batch-size 32 --threads 2 --repeat 1 --backend "$backend" \
          | python3 -c "import json,sys; r=json.loads(sys.stdin.read()); r['set']='$set'; print(json.dumps(r))" >>"$results"
      done
    fi
    run_kass A "$bin_a" "$set" "$round" f32
    run_kass A-int8 "$bin_a" "$set" "$round" int8
    if [ -n "$bin_b" ]; then run_kass B "$bin_b" "$set" "$round" f32; fi
  done
done
python3 - "$results" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print(f"\n{'set':6} {'runtime':22} {'texts':>6} {'chunks':>7} {'median texts/s':>15} {'vs sentence-transformers':>25}")
for s in sorted({r["set"] for r in rows}):
    by = {}
    for r in rows:
        if r["set"] == s:
            by.setdefault(r["runtime"], []).append(r)
    med = {k: statistics.median(x["texts_per_s"] for x in v) for k, v in by.items()}
    ref = med.get("sentence-transformers")
    for k, v in by.items():
        name = {"A": "kass run f32", "A-int8": "kass run int8", "B": "kass run (KASS_BIN_B)"}.get(k, k)
        ratio = f"{med[k] / ref:.2f}x" if ref else "-"
        print(f"{s:6} {name:22} {v[0]['texts']:>6} {str(v[0].get('chunks', '-')):>7} {med[k]:>15.1f} {ratio:>25}")
PY
