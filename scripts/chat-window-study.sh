#!/usr/bin/env bash
# Retrieval quality of chat-window chunking settings side by side: each variant's `[chunking]`
# keys, one `kass run` (slack_export source, local model f32) into its own collection of a fresh
# Chroma, then the same labelled queries against each collection, and the difference to the first.
#
# The labelled set comes from the real Slack export sample (scripts/chat_window_study.py, whose
# docstring says how and why): thread openers as queries, their replies as the answers, in a
# modified copy of the export where those replies are plain channel messages, so they are
# chunked by the day windowing the variants differ in. Prints nDCG@10, MRR@10, reply recall in
# the top 10 and within 512 / 1024 word pieces of context, and the collection's window shapes.
#
# Usage: scripts/chat-window-study.sh [VARIANT ...]
#   VARIANT: default (kass's defaults), gap30 (chat_gap_minutes = 30, the default before this study),
#   join_sparse (gap30 + chat_join_sparse = true), day (chat_gap_minutes = 1440, the default now), or
#   NAME:key=value[,key=value...] (its [chunking] keys, TOML values), e.g. gap120:chat_gap_minutes=120
#   Default: gap30 join_sparse day; the first variant is the base of the differences. A variant kass refuses (a key it does not know yet) is
#   reported as failed with kass's error; the others go on.
#   KASS_BIN=/path/to/kass (use this binary, no cargo build)
#   KASS_STUDY_DATA=DIR (the Slack export; default ../shared/data/slack-export-sample)
#   KASS_STUDY_OUT=DIR (keep set.json and results.json, per-query scores included; the rest of
#   the work directory, export copy and Chroma data, is removed on exit)
# Queries are embedded with sentence-transformers in ~/.cache/kass/st-venv (the same
# all-MiniLM-L6-v2, from $KASS_MODEL_DIR) and sent with the `chromadb` client; the Chroma server
# runs from ~/.cache/kass/chroma-venv (scripts/python-env.sh). Each variant embeds the whole
# sample once: about a minute each on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
. scripts/python-env.sh
. scripts/chroma-server.sh
st="$KASS_CACHE/st-venv/bin/python"
if ! "$st" -c "import sentence_transformers, tokenizers" 2>/dev/null; then
  cat >&2 <<EOF
chat-window-study: no sentence-transformers venv at $KASS_CACHE/st-venv; make it (about 4.8 GB,
see scripts/st-venv-requirements.txt):
  python3.11 -m venv $KASS_CACHE/st-venv
  $KASS_CACHE/st-venv/bin/pip install --no-deps -r scripts/st-venv-requirements.txt
EOF
  exit 1
fi
ensure_venv "$KASS_CACHE/chroma-venv" "$CHROMA_SPEC"
. scripts/bench-setup.sh
use_local_model
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 OMP_NUM_THREADS=2
work="$(mktemp -d)"
start_chroma "$work"
# The chromadb client in st-venv, at the server's version, the venv's own versions as
# constraints (as scripts/bench-vs-python.sh installs it), so torch & co. never move.
if ! "$st" -c "import sys, chromadb; sys.exit(chromadb.__version__ != '${CHROMA_SPEC##*==}')" 2>/dev/null; then
  echo "installing $CHROMA_SPEC into $KASS_CACHE/st-venv, its installed versions as constraints" >&2
  "$st" -m pip freeze --disable-pip-version-check | grep -v -i -E '^chromadb|@' >"$work/constraints.txt"
  "$st" -m pip install -q --disable-pip-version-check -c "$work/constraints.txt" "$CHROMA_SPEC" >&2
fi

# kass: a copy of the binary, so a rebuild during the run cannot swap it under the study.
copy_kass "$work/kass"

data_arg=()
[ -n "${KASS_STUDY_DATA:-}" ] && data_arg=(--data "$KASS_STUDY_DATA")
python3 scripts/chat_window_study.py build "$work" "${data_arg[@]}" >&2
names=$(python3 scripts/chat_window_study.py variants "$work" "$@")
read -r -a variants <<<"$names"

for name in "${variants[@]}"; do
  run="$work/runs/$name"
  mkdir -p "$run"
  cat >"$run/kass.toml" <<TOML
[store]
type = "local"
path = "$run/store"

[[sources]]
type = "slack_export"
name = "slack"
path = "$work/export"

[embed.provider]
kind = "local"
precision = "f32"

[chroma]
url = "http://127.0.0.1:$CHROMA_PORT"
collection = "chat-$name"

TOML
  cat "$work/variants/$name.toml" >>"$run/kass.toml"
  echo "== $name: $(grep -v '^\[chunking\]' "$work/variants/$name.toml" | paste -sd' ' - | sed 's/^$/(kass defaults)/')" >&2
  start=$(date +%s.%N)
  # Only this config decides where kass writes.
  if env -u CHROMA_URL -u CHROMADB_HOST -u CHROMADB_PORT -u S3_BUCKET_NAME -u KASS_S3_BUCKET NO_COLOR=1 \
      "$work/kass" run --config "$run/kass.toml" >"$run/out.log" 2>"$run/err.log"; then
    python3 -c "import sys, time; print(round(time.time() - float(sys.argv[1]), 1))" "$start" >"$run/seconds.txt"
    grep -h '^kass run:' "$run/out.log" "$run/err.log" >&2 || tail -n 1 "$run/err.log" >&2
    if grep -qE 'dead letters +[1-9]' "$run/out.log" "$run/err.log"; then
      echo "WARNING: $name: dead letters in the run: $(grep -hE 'dead letters' "$run/out.log" "$run/err.log")" >&2
    fi
  else
    rc=$?
    # kass's own error on one line, without log colours and TOML's source excerpt: from
    # `Error:` to the end (e.g. "... unknown field `chat_join_sparse`, expected one of ..."),
    # else the last lines.
    sed 's/\x1b\[[0-9;]*m//g' "$run/err.log" >"$run/err.txt"
    msg=$(sed -n '/^Error:/,$p' "$run/err.txt" | grep -v -E '^ *[0-9]* *\|' || true)
    [ -n "$msg" ] || msg=$(tail -n 3 "$run/err.txt")
    printf 'kass run exit %s: %s\n' "$rc" "$(printf '%s\n' "$msg" | paste -sd' ' -)" >"$run/failed.txt"
    echo "FAILED: $name: $(cat "$run/failed.txt")" >&2
  fi
done

"$st" scripts/chat_window_study.py evaluate "$work" --chroma-url "http://127.0.0.1:$CHROMA_PORT" \
  --variants "${variants[@]}"
if [ -n "${KASS_STUDY_OUT:-}" ]; then
  mkdir -p "$KASS_STUDY_OUT"
  cp "$work/set.json" "$work/results.json" "$KASS_STUDY_OUT/"
  echo "kept set.json and results.json in $KASS_STUDY_OUT" >&2
fi
