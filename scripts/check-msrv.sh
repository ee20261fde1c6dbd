#!/usr/bin/env bash
# The MSRV (`rust-version` in Cargo.toml, inherited by every crate) must be the one the code needs.
# Only one toolchain can be installed here, so an older compiler cannot be run; what is checked:
# - the dependencies: the workspace's rust-version is the highest rust-version any locked
#   dependency declares, for each target kass is built for (x86-64 and aarch64 Linux): lower
#   and cargo refuses the older toolchain, higher and the number claims more than the code needs;
# - kass's own code: clippy's `incompatible_msrv` lint (on by default, `-D warnings` in .ci/run)
#   refuses any standard-library item stabilised after the declared rust-version.
# Kass's own floor (AVX-512 and AVX-VNNI target features: 1.89) is below the dependencies'.
set -euo pipefail
cd "$(dirname "$0")/.."
for target in x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu; do
  cargo metadata --format-version 1 --locked --filter-platform "$target" | python3 -c '
import json, sys
target = sys.argv[1]
meta = json.load(sys.stdin)
members = set(meta["workspace_members"])
resolved = {node["id"] for node in meta["resolve"]["nodes"]}
def version(text):
    parts = [int(p) for p in text.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))
declared = {p["name"]: p.get("rust_version") for p in meta["packages"] if p["id"] in members}
missing = [name for name, v in declared.items() if not v]
if missing:
    sys.exit(f"check-msrv: {missing} declare no rust-version")
ours = max(version(v) for v in declared.values())
if len({version(v) for v in declared.values()}) != 1:
    sys.exit(f"check-msrv: the crates declare different rust-versions: {declared}")
deps = [(version(p["rust_version"]), p["name"], p["version"]) for p in meta["packages"]
        if p["id"] in resolved and p["id"] not in members and p.get("rust_version")]
need, name, at = max(deps)
show = lambda v: ".".join(map(str, v))
if ours < need:
    sys.exit(f"check-msrv: {target}: rust-version {show(ours)} is below {name} {at}, which needs {show(need)}")
if ours > need:
    sys.exit(f"check-msrv: {target}: rust-version {show(ours)} is above what the dependencies need ({show(need)}, {name} {at}); lower it, or say in Cargo.toml what of kass needs it")
print(f"check-msrv: {target}: rust-version {show(ours)} = the highest any locked dependency needs ({name} {at})")
' "$target"
done
