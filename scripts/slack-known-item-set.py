#!/usr/bin/env python3
"""Write a BEIR-format labelled retrieval set built from a real Slack export, for `kass eval`.

Why: comparing two ways of embedding (fp32 and int8) needs a labelled set, and the public ones
(BEIR SciFact, ...) cannot be fetched on a machine that reaches only package registries. A
Slack export holds one naturally: a thread's opening message asks, its replies answer. So:

  queries.jsonl  the opening message of each thread with at least --min-replies replies
  corpus.jsonl   each such thread's replies as one document (the opening message left out),
                 plus every message outside threads as a distractor document
  qrels/test.tsv each query -> its own thread's replies, relevance 1

It is a known-item task, easier and noisier than SciFact, so read it as a comparison of two
embeddings on the same set, not as an absolute score. Messages longer than --max-chars and
messages that begin like one seen before (pasted build logs, repeated bot posts) are left out:
their chunks are the same text many times over, and many equal vectors make Chroma's HNSW
index miss even exact matches (measured: 46% of stored vectors queried for themselves found
another record first), which would score the index, not the embedding.

    python3 scripts/slack-known-item-set.py OUT_DIR [--data EXPORT_DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The export reading and markup rendering of the benchmark text sets, not copied.
_spec = importlib.util.spec_from_file_location("bench_texts", HERE / "bench-texts.py")
bench_texts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_texts)  # type: ignore[union-attr]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--min-replies", type=int, default=2)
    ap.add_argument("--max-chars", type=int, default=2000)
    args = ap.parse_args()
    root = bench_texts.find_data(args.data)
    users, channels = bench_texts.load_users(root), bench_texts.load_channels(root)
    threads: dict[str, dict] = defaultdict(lambda: {"parent": None, "replies": []})
    loose: list[tuple[str, str]] = []
    seen: set[str] = set()
    for channel_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for day in sorted(channel_dir.glob("*.json")):
            for m in json.loads(day.read_text()):
                if m.get("subtype") in bench_texts.SKIPPED_SUBTYPES:
                    continue
                text = bench_texts.render_markup(m.get("text") or "", users, channels).strip()
                if not text or len(text) > args.max_chars or text[:80] in seen:
                    continue
                seen.add(text[:80])
                ts, thread = m.get("ts", ""), m.get("thread_ts")
                if thread and thread == ts:
                    threads[f"{channel_dir.name}/{thread}"]["parent"] = text
                elif thread:
                    threads[f"{channel_dir.name}/{thread}"]["replies"].append(text)
                else:
                    loose.append((f"{channel_dir.name}/{ts}", text))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "qrels").mkdir(exist_ok=True)
    queries = corpus = 0
    with open(args.out / "queries.jsonl", "w") as q, open(args.out / "corpus.jsonl", "w") as c, open(
        args.out / "qrels" / "test.tsv", "w"
    ) as r:
        r.write("query-id\tcorpus-id\tscore\n")
        for n, (key, t) in enumerate(sorted(threads.items())):
            if t["parent"] and len(t["replies"]) >= args.min_replies:
                q.write(json.dumps({"_id": f"q{n}", "text": t["parent"]}) + "\n")
                c.write(json.dumps({"_id": f"t{n}", "title": "", "text": "\n".join(t["replies"])}) + "\n")
                r.write(f"q{n}\tt{n}\t1\n")
                queries += 1
                corpus += 1
        for n, (key, text) in enumerate(loose):
            c.write(json.dumps({"_id": f"m{n}", "title": "", "text": text}) + "\n")
            corpus += 1
    print(json.dumps({"data": str(root), "queries": queries, "documents": corpus}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
