# Sourced by the benchmark and study scripts: the set-up they share, written once.
#
# use_local_model: fetches all-MiniLM-L6-v2 (scripts/fetch-model.sh) and exports KASS_MODEL_DIR.
# copy_kass DEST: DEST becomes a copy of $KASS_BIN, or of a fresh release build without it; a
#   copy, so that a rebuild during a long run cannot swap the binary under it.
use_local_model() {
  bash scripts/fetch-model.sh >/dev/null
  export KASS_MODEL_DIR="${KASS_MODEL_DIR:-$KASS_CACHE/models/all-MiniLM-L6-v2}"
}

copy_kass() {
  if [ -n "${KASS_BIN:-}" ]; then
    cp "$KASS_BIN" "$1"
  else
    cargo build --release --locked --bin kass >&2
    cp "${CARGO_TARGET_DIR:-target}/release/kass" "$1"
  fi
}
