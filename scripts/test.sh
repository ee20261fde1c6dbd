#!/usr/bin/env bash
# The README's test command: sets up everything the tests need, then runs every test.
# Tests start their own servers (moto, Chroma) on loopback and fail loudly if they cannot.
# The default suite runs on the project's own fixtures (tests/fixtures/); the tests over the
# real exports in ../shared/data (or $KASS_SHARED_DATA) run when it exists and are skipped
# otherwise, unless KASS_REQUIRE_SHARED_DATA=1 (CI), which makes its absence a failure.
# The last line says whether they ran.
set -euo pipefail
# Test binaries run in their own crate's directory: hand them an absolute path.
if [ -n "${KASS_SHARED_DATA:-}" ]; then
    KASS_SHARED_DATA="$(realpath -m "$KASS_SHARED_DATA")"
    export KASS_SHARED_DATA
fi
cd "$(dirname "$0")/.."
. scripts/setup-test-env.sh
shared="${KASS_SHARED_DATA:-../shared/data}"
status=0
cargo test --workspace --all-targets --locked "$@" || status=$?
if [ -d "$shared/slack-export-sample" ]; then
    echo "== real-sample tests: RAN over $(realpath "$shared")"
elif [ "${KASS_REQUIRE_SHARED_DATA:-}" = 1 ]; then
    echo "!! real-sample tests: $shared/slack-export-sample NOT FOUND and KASS_REQUIRE_SHARED_DATA=1: failing" >&2
    status=1
else
    echo "!! real-sample tests: SKIPPED ($shared/slack-export-sample not found): only the project's fixtures were tested" >&2
fi
exit "$status"
