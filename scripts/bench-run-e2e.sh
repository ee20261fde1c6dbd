#!/usr/bin/env bash
# End-to-end `kass run` on the real Slack export sample with the local model into a fresh Chroma
# server: chunks/s of the whole pipeline, and each stage's share of the processing time (from
# kass_stage_processing_seconds, scraped from --metrics-addr just before the run ends).
# Usage: scripts/bench-run-e2e.sh [slack export dir]   (default ../shared/data/slack-export-sample)
set -euo pipefail
cd "$(dirname "$0")/.."
src="$(realpath "${1:-../shared/data/slack-export-sample}")"
[ -d "$src" ] || { echo "missing Slack export: $src" >&2; exit 1; }
export KASS_CACHE="${KASS_CACHE:-$HOME/.cache/kass}"
. scripts/python-env.sh
. scripts/chroma-server.sh
ensure_venv "$KASS_CACHE/chroma-venv" "$CHROMA_SPEC"
bash scripts/fetch-model.sh >/dev/null
cargo build --release --locked --bin kass >&2
bin="${CARGO_TARGET_DIR:-target}/release/kass"
work="$(mktemp -d)"
start_chroma "$work"
port=$CHROMA_PORT
mport=$(free_port)
cat >"$work/kass.toml" <<TOML
[store]
type = "local"
path = "$work/store"
[chroma]
url = "http://127.0.0.1:$port"
collection = "e2e"
[[sources]]
type = "slack_export"
name = "slack"
path = "$src"
TOML
"$bin" --metrics-addr "127.0.0.1:$mport" run --config "$work/kass.toml" >"$work/out.txt" &
kpid=$!
while kill -0 $kpid 2>/dev/null; do
  python3 -c "import urllib.request as u; open('$work/metrics.tmp','wb').write(u.urlopen('http://127.0.0.1:$mport/metrics', timeout=1).read())" 2>/dev/null \
    && mv "$work/metrics.tmp" "$work/metrics.txt"
  sleep 0.5
done
wait $kpid
cat "$work/out.txt"
python3 - "$work/out.txt" "$work/metrics.txt" <<'PY'
import re, sys
out = open(sys.argv[1]).read()
m = re.search(r"(\d+) new or changed chunks .* in ([\d.]+)s", out)
chunks, secs = int(m.group(1)), float(m.group(2))
print(f"\n{chunks} chunks in {secs:.1f} s: {chunks / secs:.1f} chunks/s end to end")
sums = {}
for line in open(sys.argv[2]):
    g = re.match(r'kass_stage_processing_seconds_sum\{stage="([^"]+)"\} ([\d.e+-]+)', line)
    if g:
        sums[g.group(1)] = float(g.group(2))
total = sum(sums.values())
print("share of stage processing time (last scrape, up to 0.5 s before the end):")
for stage, s in sorted(sums.items(), key=lambda kv: -kv[1]):
    print(f"  {stage:<14} {s:8.2f} s  {100 * s / total:5.1f} %")
PY
