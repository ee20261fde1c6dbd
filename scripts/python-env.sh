# Sourced by scripts that need the Python servers: one place for the pinned versions and for
# how a venv is made.
MOTO_SPEC="moto[server]==5.2.5"
CHROMA_SPEC="chromadb==1.5.9"
CFN_LINT_SPEC="cfn-lint==1.58.0"

# ensure_venv DIR PIP_SPEC: a venv at DIR holding PIP_SPEC (`package==version`), made or fixed
# only when the installed version differs.
ensure_venv() {
  local dir="$1" spec="$2"
  local package="${spec%%[*}"; package="${package%%==*}"
  local version="${spec##*==}"
  local module="${package//-/_}"
  if ! "$dir/bin/python" -c "import $module, sys; sys.exit($module.__version__ != '$version')" 2>/dev/null; then
    echo "setting up Python venv in $dir ($spec)" >&2
    python3 -m venv "$dir"
    "$dir/bin/pip" install --quiet --disable-pip-version-check "$spec" >&2
  fi
}
