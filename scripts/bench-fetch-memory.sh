#!/usr/bin/env bash
# Peak memory (max RSS) and wall time of `kass fetch` on the real Slack export sample at 1x and
# 10x its size (10x = every channel copied ten times under new names). Memory must stay flat:
# the 10x/1x ratio of peak RSS should be close to 1, not 10.
# Usage: scripts/bench-fetch-memory.sh [path to slack export]   (default ../shared/data/slack-export-sample)
set -euo pipefail
cd "$(dirname "$0")/.."
src="${1:-../shared/data/slack-export-sample}"
[ -d "$src" ] || { echo "missing Slack export: $src" >&2; exit 1; }
bash scripts/fetch-model.sh >/dev/null
cargo build --release --locked --bin kass >&2
bin="${CARGO_TARGET_DIR:-target}/release/kass"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 scripts/scale-slack-export.py "$src" "$work/x10" 10

printf '%-6s %10s %10s %8s %9s %12s\n' input json_MB batches wall_s MB/s peak_RSS_MB
declare -A rss
for scale in x1 x10; do
  input="$src"; [ "$scale" = x10 ] && input="$work/x10"
  cat > "$work/$scale.toml" <<TOML
[store]
type = "local"
path = "$work/store-$scale"
[[sources]]
type = "slack_export"
name = "slack"
path = "$(cd "$input" && pwd)"
TOML
  mb=$(du -sm --apparent-size "$input" | cut -f1)
  /usr/bin/time -f "%M %e" -o "$work/time-$scale" "$bin" fetch --config "$work/$scale.toml" > "$work/out-$scale"
  read -r kb secs < "$work/time-$scale"
  batches=$(find "$work/store-$scale" -name 'batch_*' | wc -l)
  rss[$scale]=$kb
  printf '%-6s %10s %10s %8s %9.2f %12.1f\n' "$scale" "$mb" "$batches" "$secs" "$(python3 -c "print($mb / max($secs, 0.01))")" "$(python3 -c "print($kb / 1024)")"
done
printf 'peak RSS ratio 10x/1x: %.2f\n' "$(python3 -c "print(${rss[x10]} / ${rss[x1]})")"
