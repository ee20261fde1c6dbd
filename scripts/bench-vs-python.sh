#!/usr/bin/env bash
# kass against the Python stack a user would pick instead, side by side in one run, on the same
# machine and the same data, interleaved (A B A B ..., median of the repeats), each side timed from
# outside as a whole process (start-up, imports and model load included), peak RSS by GNU time:
#
#   1. fetch half: `kass fetch` over a Slack export, 1x and 10x (every channel copied ten times
#      under new names, as scripts/bench-fetch-memory.sh does), against LangChain splitting the
#      same day files' messages (one document per channel-day) and writing its chunks as JSON batch
#      files (scripts/python_stack_job.py split): RecursiveCharacterTextSplitter(1000, 100), and
#      SentenceTransformersTokenTextSplitter over the same WordPiece tokenizer (256 tokens with
#      [CLS]/[SEP], as kass counts). Figure: MB/s of message text (every message's `text` bytes
#      over wall seconds), and peak RSS at 1x and 10x.
#   2. whole job: `kass run` (files source, local model, precision f32, int8 and auto) over
#      scripts/bench-texts.py's long set (one text per file) into a fresh Chroma, against the same
#      files through LangChain's token splitter + sentence-transformers `encode` (batch 32,
#      2 threads, normalized) + the `chromadb` client (upserts of 500)
#      (scripts/python_stack_job.py job). Figure: chunks/s end to end, and peak RSS.
#   3. re-run over unchanged data: each side run again on its own store and collection; kass
#      drops every chunk at skip_stored and embeds nothing, the Python stack re-embeds all.
#      Figure: wall seconds.
# Prints a table of kass's figure, Python's and the ratio (which way round is said per row), the
# per-phase times of both sides for rows 1 and 2, and what was skipped and why.
#
# Usage: scripts/bench-vs-python.sh [repeats=3] [slack export dir=../shared/data/slack-export-sample]
#   KASS_BENCH_SET=long|short (row 2's text set)   KASS_BENCH_ROWS="fetch job" (job = rows 2 and 3)
#   KASS_BIN=/path/to/kass (use this binary, no cargo build)
# First use installs langchain-text-splitters and chromadb into ~/.cache/kass/st-venv (made from
# scripts/st-venv-requirements.txt when missing, about 4.8 GB) with the venv's own `pip freeze` as
# constraints, so torch, numpy, transformers, tokenizers and sentence-transformers never move.
# The Chroma server runs from ~/.cache/kass/chroma-venv (scripts/python-env.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
repeats="${1:-3}"
src="${2:-../shared/data/slack-export-sample}"
set_name="${KASS_BENCH_SET:-long}"
rows="${KASS_BENCH_ROWS:-fetch job}"
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
. scripts/python-env.sh
LANGCHAIN_SPLITTERS_SPEC="langchain-text-splitters==1.1.3"
[ -d "$src" ] || { echo "missing Slack export: $src" >&2; exit 1; }
src="$(cd "$src" && pwd)"
. scripts/bench-setup.sh
use_local_model
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=2

work="$(mktemp -d)"
cpid=""
trap '[ -n "$cpid" ] && { kill $cpid 2>/dev/null; wait $cpid 2>/dev/null; }; rm -rf "$work"' EXIT
skipped="$work/skipped.txt"
: >"$skipped"
skip() { echo "SKIPPED: $*" | tee -a "$skipped" >&2; }

# kass: a copy of the binary, so a rebuild during the run cannot swap it under the benchmark.
copy_kass "$work/kass"
kass="$work/kass"

# The Python stack: the sentence-transformers venv plus LangChain's splitters and chromadb.
st="$KASS_CACHE/st-venv/bin/python"
py_ok=1
if [ ! -x "$st" ]; then
  echo "setting up $KASS_CACHE/st-venv (scripts/st-venv-requirements.txt, about 4.8 GB)" >&2
  { python3 -m venv "$KASS_CACHE/st-venv" \
      && "$KASS_CACHE/st-venv/bin/pip" install -q --disable-pip-version-check --no-deps \
           -r scripts/st-venv-requirements.txt >&2; } \
    || { skip "Python stack: could not make $KASS_CACHE/st-venv"; py_ok=0; }
fi
chroma_version="${CHROMA_SPEC##*==}" splitters_version="${LANGCHAIN_SPLITTERS_SPEC##*==}"
if [ "$py_ok" = 1 ] && ! "$st" -c "
import sys, chromadb, importlib.metadata as m
sys.exit(chromadb.__version__ != '$chroma_version' or m.version('langchain-text-splitters') != '$splitters_version')" 2>/dev/null; then
  echo "installing $LANGCHAIN_SPLITTERS_SPEC $CHROMA_SPEC into $KASS_CACHE/st-venv, its installed versions as constraints" >&2
  "$st" -m pip freeze --disable-pip-version-check | grep -v -i -E '^(chromadb|langchain)|@' >"$work/constraints.txt"
  "$st" -m pip install -q --disable-pip-version-check -c "$work/constraints.txt" \
      "$LANGCHAIN_SPLITTERS_SPEC" "$CHROMA_SPEC" >&2 \
    || { skip "Python stack: pip could not install $LANGCHAIN_SPLITTERS_SPEC $CHROMA_SPEC into st-venv"; py_ok=0; }
fi
if [ "$py_ok" = 1 ] && ! "$st" -c "import torch, sentence_transformers, langchain_text_splitters, chromadb" 2>"$work/import.err"; then
  skip "Python stack: st-venv does not import ($(tail -1 "$work/import.err"))"; py_ok=0
fi
[ "$py_ok" = 1 ] && "$st" - >"$work/versions.txt" <<'PY'
import importlib.metadata as m
print(", ".join(f"{p} {m.version(p)}" for p in ("langchain-text-splitters", "langchain-core",
      "sentence-transformers", "torch", "transformers", "tokenizers", "chromadb")))
PY

results="$work/results.jsonl"
: >"$results"
# measure ROW SIDE SCALE ROUND DIR CMD...: runs CMD under GNU time, appends one JSON line: wall
# seconds (date, ns), peak RSS, the command's stdout and the summary/stage lines of its stderr.
measure() {
  local row="$1" side="$2" scale="$3" round="$4" dir="$5"
  shift 5
  mkdir -p "$dir"
  local t0 t1
  t0=$(date +%s.%N)
  if ! /usr/bin/time -v -o "$dir/time.txt" "$@" >"$dir/out.txt" 2>"$dir/err.txt"; then
    echo "FAILED: $row $side $scale round $round: $*" >&2
    tail -20 "$dir/err.txt" >&2
    return 1
  fi
  t1=$(date +%s.%N)
  python3 - "$row" "$side" "$scale" "$round" "$t0" "$t1" "$dir" >>"$results" <<'PY'
import json, re, sys
row, side, scale, rnd, t0, t1, d = sys.argv[1:]
time_v = open(f"{d}/time.txt").read()
out, err = open(f"{d}/out.txt").read(), open(f"{d}/err.txt").read()
r = {"row": row, "side": side, "scale": scale, "round": int(rnd), "wall_s": float(t1) - float(t0),
     "rss_kb": int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", time_v).group(1))}
try:
    r["py"] = json.loads(out.strip().splitlines()[-1])
    r["chunks"] = r["py"]["chunks"]
except (ValueError, IndexError, KeyError):
    m = re.search(r"(\d+) new or changed chunks", out) or re.search(r"\((\d+) chunks\)", out)
    r["chunks"] = int(m.group(1)) if m else None
    m = re.search(r"time per stage (.*)", err)
    if m:
        r["stages"] = {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+)s", m.group(1))}
    m = re.search(r"embedded\s+(\d+) stored", err)
    r["embedded"] = int(m.group(1)) if m else None
print(json.dumps(r))
PY
}

# ---- row 1: the fetch half -------------------------------------------------------------------
if [[ " $rows " == *" fetch "* ]]; then
  python3 scripts/scale-slack-export.py "$src" "$work/x10" 10
  # The denominator of MB/s: every message's `text` in the day files both sides read.
  python3 - "$src" "$work/x10" >"$work/text-bytes.json" <<'PY'
import glob, json, os, sys
out = {}
for scale, root in zip(("1x", "10x"), sys.argv[1:]):
    n = msgs = 0
    for f in glob.glob(os.path.join(root, "*", "*.json")):
        try:
            day = json.load(open(f, encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            continue
        for m in day if isinstance(day, list) else []:
            if isinstance(m, dict) and isinstance(m.get("text"), str):
                n += len(m["text"].encode("utf-8"))
                msgs += 1
    out[scale] = {"text_bytes": n, "messages": msgs,
                  "json_bytes": sum(os.path.getsize(p) for p in glob.glob(os.path.join(root, "**", "*.json"), recursive=True))}
print(json.dumps(out))
PY
  cat "$work/text-bytes.json" >&2
  for round in $(seq 1 "$repeats"); do
    for scale in 1x 10x; do
      input="$src"; [ "$scale" = 10x ] && input="$work/x10"
      d="$work/fetch-kass-$scale-$round"
      mkdir -p "$d"
      cat >"$d/kass.toml" <<TOML
[store]
type = "local"
path = "$d/store"
[[sources]]
type = "slack_export"
name = "slack"
path = "$input"
TOML
      echo "row 1, round $round, $scale: kass fetch" >&2
      measure fetch kass "$scale" "$round" "$d" "$kass" fetch --config "$d/kass.toml"
      rm -rf "$d/store"
      if [ "$py_ok" = 1 ]; then
        for splitter in recursive token; do
          d="$work/fetch-py-$splitter-$scale-$round"
          echo "row 1, round $round, $scale: LangChain $splitter" >&2
          measure fetch "py-$splitter" "$scale" "$round" "$d" \
            "$st" scripts/python_stack_job.py split --export "$input" --out "$d/batches" --splitter "$splitter"
          rm -rf "$d/batches"
        done
      fi
    done
  done
  [ "$py_ok" = 1 ] || skip "row 1 Python side (LangChain splitters): no usable st-venv"
fi

# ---- rows 2 and 3: the whole job, then the re-run -------------------------------------------
if [[ " $rows " == *" job "* ]]; then
  chroma_ok=1
  ensure_venv "$KASS_CACHE/chroma-venv" "$CHROMA_SPEC" || chroma_ok=0
  if [ "$chroma_ok" = 1 ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$KASS_CACHE/chroma-venv/bin/chroma" run --path "$work/chroma" --host 127.0.0.1 --port "$port" >"$work/chroma.log" 2>&1 &
    cpid=$!
    up=0
    for _ in $(seq 1 150); do
      python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$port/api/v2/heartbeat', timeout=1)" 2>/dev/null && { up=1; break; }
      sleep 0.2
    done
    [ "$up" = 1 ] || { skip "rows 2 and 3: the Chroma server did not start ($(tail -1 "$work/chroma.log"))"; chroma_ok=0; }
  else
    skip "rows 2 and 3: no Chroma server venv ($CHROMA_SPEC)"
  fi
  if [ "$chroma_ok" = 1 ]; then
    py=python3
    [ "$py_ok" = 1 ] && py="$st"   # its `tokenizers` counts word pieces exactly
    "$py" scripts/bench-texts.py "$work/texts" ${2:+--data "$src"} >&2
    python3 - "$work/texts" "$set_name" <<'PY'
import json, pathlib, sys
root, name = pathlib.Path(sys.argv[1]), sys.argv[2]
d = root / name
d.mkdir()
for i, line in enumerate(open(root / f"{name}.jsonl")):
    (d / f"{i:05}.txt").write_text(json.loads(line)["text"])
PY
    texts="$work/texts/$set_name"
    kass_config() { # kass_config DIR COLLECTION PRECISION
      cat >"$1/kass.toml" <<TOML
[store]
type = "local"
path = "$1/store"
[chroma]
url = "http://127.0.0.1:$port"
collection = "$2"
[[sources]]
type = "files"
name = "texts"
path = "$texts"
[embed.provider]
kind = "local"
precision = "$3"
TOML
    }
    for round in $(seq 1 "$repeats"); do
      for pass in first rerun; do
        row=job; [ "$pass" = rerun ] && row=rerun
        if [ "$py_ok" = 1 ]; then
          echo "row ${row}, round $round: Python stack" >&2
          measure "$row" py "$set_name" "$round" "$work/$row-py-$round" \
            "$st" scripts/python_stack_job.py job --texts "$texts" --url "http://127.0.0.1:$port" \
            --collection "py-$round" --batch-size 32 --threads 2 --upsert-batch 500
        fi
        for precision in f32 int8 auto; do
          d="$work/run-kass-$precision-$round"   # the same store and collection on the re-run
          mkdir -p "$d"
          [ "$pass" = first ] && kass_config "$d" "kass-$precision-$round" "$precision"
          echo "row ${row}, round $round: kass run $precision" >&2
          measure "$row" "kass-$precision" "$set_name" "$round" "$d/$pass" "$kass" run --config "$d/kass.toml"
        done
      done
    done
    [ "$py_ok" = 1 ] || skip "rows 2 and 3 Python side: no usable st-venv"
  fi
fi

# ---- the table -------------------------------------------------------------------------------
# The CPU the figures come from: which SIMD it has decides kass's path and `auto`'s precision.
cpu_model="$(grep -m1 -E '^(model name|Model)' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
cpu_flags="$(grep -m1 -E '^(flags|Features)' /proc/cpuinfo | tr ' ' '\n' \
  | grep -x -E 'avx2|fma|avx_vnni|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|amx_int8|asimd|asimddp|i8mm|sve' \
  | tr '\n' ' ')"
echo "CPU: ${cpu_model:-unknown}, $(nproc) cores; SIMD flags: ${cpu_flags:-none of the listed}"
python3 - "$results" "$work/text-bytes.json" "$work/versions.txt" "$skipped" "$repeats" "$set_name" <<'PY'
import json, os, statistics, sys
res_path, tb_path, ver_path, skip_path, repeats, set_name = sys.argv[1:]
rows = [json.loads(l) for l in open(res_path)]
tb = json.load(open(tb_path)) if os.path.exists(tb_path) else {}

def runs(row, side, scale=None):
    return [r for r in rows if r["row"] == row and r["side"] == side and (scale is None or r["scale"] == scale)]

def med(row, side, key, scale=None):
    v = [r[key] for r in runs(row, side, scale) if r.get(key) is not None]
    return statistics.median(v) if v else None

def fmt(x, unit, digits=2):
    return "-" if x is None else f"{x:.{digits}f} {unit}"

def ratio(a, b, how):
    return "-" if a is None or b is None or b == 0 else f"{a / b:.2f}x ({how})"

table = []
# Row 1: MB/s of message text, peak RSS.
for scale in ("10x", "1x"):
    if not tb:
        break
    mb = tb[scale]["text_bytes"] / 1e6
    k = med("fetch", "kass", "wall_s", scale)
    for sp, name in (("recursive", "RecursiveCharacterTextSplitter(1000, 100)"),
                     ("token", "SentenceTransformersTokenTextSplitter(256)")):
        p = med("fetch", f"py-{sp}", "wall_s", scale)
        kf = mb / k if k else None
        pf = mb / p if p else None
        table.append((f"1. fetch half {scale} ({mb:.2f} MB text), MB/s vs LangChain {name}",
                      fmt(kf, "MB/s"), fmt(pf, "MB/s"), ratio(kf, pf, "kass/Python, >1 kass faster")))
if tb:
    for scale in ("1x", "10x"):
        k = med("fetch", "kass", "rss_kb", scale)
        for sp in ("recursive", "token"):
            p = med("fetch", f"py-{sp}", "rss_kb", scale)
            table.append((f"1. fetch half {scale} peak RSS vs {sp} splitter",
                          fmt(k and k / 1024, "MB", 1), fmt(p and p / 1024, "MB", 1),
                          ratio(k, p, "kass/Python, <1 kass smaller")))
    k1, k10 = med("fetch", "kass", "rss_kb", "1x"), med("fetch", "kass", "rss_kb", "10x")
    p1, p10 = med("fetch", "py-token", "rss_kb", "1x"), med("fetch", "py-token", "rss_kb", "10x")
    table.append(("1. fetch half peak RSS 10x/1x (Python: token splitter)",
                  "-" if not (k1 and k10) else f"{k10 / k1:.2f}", "-" if not (p1 and p10) else f"{p10 / p1:.2f}", "flat = 1"))
# Row 2: chunks/s end to end, peak RSS.
pyw = runs("job", "py")
for prec in ("f32", "int8", "auto"):
    kr = runs("job", f"kass-{prec}")
    if not kr:
        continue
    kc = statistics.median(r["chunks"] / r["wall_s"] for r in kr)
    pc = statistics.median(r["chunks"] / r["wall_s"] for r in pyw) if pyw else None
    table.append((f"2. whole job, {set_name} set ({kr[0]['chunks']} kass / {pyw[0]['chunks'] if pyw else '-'} Python chunks), chunks/s, kass {prec}",
                  fmt(kc, "chunks/s", 1), fmt(pc, "chunks/s", 1), ratio(kc, pc, "kass/Python, >1 kass faster")))
for prec in ("f32", "int8", "auto"):
    k, p = med("job", f"kass-{prec}", "rss_kb"), med("job", "py", "rss_kb")
    if k is None:
        continue
    table.append((f"2. whole job peak RSS, kass {prec} (Python process only; Chroma server apart)",
                  fmt(k / 1024, "MB", 1), fmt(p and p / 1024, "MB", 1), ratio(k, p, "kass/Python, <1 kass smaller")))
# Row 3: re-run wall seconds.
for prec in ("f32", "int8", "auto"):
    k, p = med("rerun", f"kass-{prec}", "wall_s"), med("rerun", "py", "wall_s")
    if k is None:
        continue
    emb = [r.get("embedded") for r in runs("rerun", f"kass-{prec}")]
    table.append((f"3. re-run over unchanged data, wall s, kass {prec} (kass embedded {max(e or 0 for e in emb)})",
                  fmt(k, "s"), fmt(p, "s"), ratio(p, k, "Python/kass time, >1 kass faster")))

w0 = max([len(t[0]) for t in table] + [3])
print(f"\nkass vs the Python stack, median of {repeats} interleaved runs, wall clock per whole process")
if os.path.exists(ver_path):
    print("Python stack: " + open(ver_path).read().strip())
print(f"\n| {'row':{w0}} | {'kass':>16} | {'Python':>16} | ratio |")
print(f"|{'-' * (w0 + 2)}|{'-' * 18}|{'-' * 18}|---|")
for name, k, p, r in table:
    print(f"| {name:{w0}} | {k:>16} | {p:>16} | {r} |")

# What the time went to, medians: Python's phases (in process), kass's time per stage.
def phases(row, side, scale=None):
    got = {}
    for r in runs(row, side, scale):
        for k, v in (r["py"]["phases_s"] if "py" in r else r.get("stages", {})).items():
            got.setdefault(k, []).append(v)
    return ", ".join(f"{k} {statistics.median(v):.2f}" for k, v in got.items())

print("\nwhere the time went (median seconds; kass: time per stage, stages overlap):")
for side in ("kass", "py-recursive", "py-token"):
    wall = med("fetch", side, "wall_s", "10x")
    if wall is not None:
        print(f"  fetch 10x {side:14} wall {wall:6.2f}, {med('fetch', side, 'chunks', '10x'):.0f} chunks, "
              f"RSS {med('fetch', side, 'rss_kb', '10x') / 1024:.0f} MB: {phases('fetch', side, '10x')}")
for row in ("job", "rerun"):
    for side in ("py", "kass-f32", "kass-int8"):
        wall = med(row, side, "wall_s")
        if wall is not None:
            print(f"  {row:9} {side:14} wall {wall:6.2f}, {med(row, side, 'chunks'):.0f} chunks, "
                  f"RSS {med(row, side, 'rss_kb') / 1024:.0f} MB: {phases(row, side)}")
sk = open(skip_path).read().strip()
print("\n" + (sk if sk else "nothing skipped"))
PY
