#!/usr/bin/env python3
"""The Python side of scripts/bench-chroma-upsert.sh: makes the shared record set, or upserts it
with the official `chromadb` client the way kass's Rust client does (one upsert per batch, one
after another, into a new cosine collection) and prints one JSON line.

    python bench_chroma_upsert.py make FILE [--count 20000] [--dim 384]
    python bench_chroma_upsert.py upsert FILE --url http://127.0.0.1:8000 [--batch 500]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from urllib.parse import urlparse


def make(path: str, count: int, dim: int) -> None:
    rng = random.Random(7)
    records = {"ids": [], "embeddings": [], "documents": [], "metadatas": []}
    for i in range(count):
        v = [rng.gauss(0, 1) for _ in range(dim)]
        norm = sum(x * x for x in v) ** 0.5
        records["ids"].append(f"{i:032x}")
        records["embeddings"].append([round(x / norm, 6) for x in v])
        records["documents"].append(f"chunk {i}: " + "some realistic chat text " * 20)
        records["metadatas"].append(
            {"source": "slack", "document_id": f"C{i % 50}/2025-10-{i % 28 + 1:02d}",
             "chunk_index": i % 7, "content_hash": f"{i:016x}", "channel": "general"}
        )
    with open(path, "w") as f:
        json.dump(records, f)


def upsert(path: str, url: str, batch: int, name: str) -> None:
    import chromadb

    records = json.load(open(path))
    u = urlparse(url)
    client = chromadb.HttpClient(host=u.hostname, port=u.port)
    collection = client.get_or_create_collection(name, metadata={"hnsw:space": "cosine"})
    n = len(records["ids"])
    started = time.perf_counter()
    for start in range(0, n, batch):
        end = min(start + batch, n)
        collection.upsert(
            ids=records["ids"][start:end],
            embeddings=records["embeddings"][start:end],
            documents=records["documents"][start:end],
            metadatas=records["metadatas"][start:end],
        )
    seconds = time.perf_counter() - started
    assert collection.count() == n
    print(json.dumps({"client": f"chromadb {chromadb.__version__} (Python)", "records": n,
                      "batch": batch, "seconds": seconds, "vectors_per_s": n / seconds}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["make", "upsert"])
    p.add_argument("file")
    p.add_argument("--count", type=int, default=20000)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--collection", default="bench-python")
    a = p.parse_args()
    if a.command == "make":
        make(a.file, a.count, a.dim)
    else:
        upsert(a.file, a.url, a.batch, a.collection)


if __name__ == "__main__":
    main()
