#!/usr/bin/env python3
"""Time sentence-transformers encoding all-MiniLM-L6-v2 on a text set: the baseline kass's own
embedding runtimes are measured against.

Why: a throughput figure only means something next to the reference measured the same way: same
texts (scripts/bench-texts.py), same batch size, same thread count, on the same machine. This
script prints one JSON line per run so figures from different runtimes can be collected side by
side:

  {"runtime": "sentence-transformers", "texts": N, "seconds": S, "texts_per_s": R,
   "threads": T, "batch_size": B, ...}

`seconds` is the median of --repeat timed passes over all texts (after one untimed warm-up batch);
each pass is model.encode(texts, batch_size, normalize_embeddings=True), which sorts the texts by
length before batching and pads each batch to its longest text, truncated at --max-seq-length.

    ~/.cache/kass/st-venv/bin/python scripts/bench-texts.py /tmp/kass-bench-texts
    ~/.cache/kass/st-venv/bin/python scripts/bench_st_encode.py --texts /tmp/kass-bench-texts/long.jsonl

The venv recipe is in scripts/st-venv-requirements.txt. The model is read from --model-dir,
$KASS_MODEL_DIR or ~/.cache/kass/models/all-MiniLM-L6-v2; nothing is fetched (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar on stderr


def read_texts(path: Path) -> list[str]:
    """JSONL with one {"text": ...} per line, or plain text with one text per line."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        sys.exit(f"{path}: no texts")
    try:
        first = json.loads(lines[0])
    except json.JSONDecodeError:
        first = None
    if not (isinstance(first, dict) and "text" in first):
        return lines
    texts = []
    for n, line in enumerate(lines, 1):
        try:
            texts.append(str(json.loads(line)["text"]))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            sys.exit(f"{path}:{n}: not a {{\"text\": ...}} object ({e})")
    return texts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=Path, required=True,
                        help='JSONL of {"text": ...} objects, or plain text lines')
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; the median is reported")
    parser.add_argument("--max-seq-length", type=int, default=256)
    parser.add_argument("--model-dir", type=Path,
                        default=Path(os.environ.get("KASS_MODEL_DIR")
                                     or Path.home() / ".cache/kass/models/all-MiniLM-L6-v2"))
    args = parser.parse_args()
    if args.repeat < 1 or args.batch_size < 1 or args.threads < 1:
        parser.error("--repeat, --batch-size and --threads must be at least 1")

    texts = read_texts(args.texts)

    import torch
    from sentence_transformers import SentenceTransformer
    import sentence_transformers

    torch.set_num_threads(args.threads)
    model = SentenceTransformer(str(args.model_dir), device="cpu")
    model.max_seq_length = args.max_seq_length

    def encode(batch: list[str]) -> None:
        model.encode(batch, batch_size=args.batch_size, normalize_embeddings=True,
                     convert_to_numpy=True, show_progress_bar=False)

    encode(texts[: args.batch_size])  # warm-up: first-call allocations and kernel selection
    runs = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        encode(texts)
        runs.append(time.perf_counter() - start)
    seconds = statistics.median(runs)

    print(json.dumps({
        "runtime": "sentence-transformers",
        "texts": len(texts),
        "seconds": round(seconds, 3),
        "texts_per_s": round(len(texts) / seconds, 1),
        "threads": args.threads,
        "batch_size": args.batch_size,
        "repeat": args.repeat,
        "runs_s": [round(r, 3) for r in runs],
        "file": str(args.texts),
        "version": f"sentence-transformers {sentence_transformers.__version__}, "
                   f"torch {torch.__version__}",
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
