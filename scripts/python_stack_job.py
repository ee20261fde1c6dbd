#!/usr/bin/env python3
"""The Python side of scripts/bench-vs-python.sh: the stack a user would put together instead of
kass, written the plain way its libraries' docs show, so kass's figures have something real to be
compared with. Two jobs, each one process, each printing one JSON line (its phases' seconds, what
it made) on stdout; the caller times the whole process from outside (start-up and imports count):

  split: the fetch half. Reads a Slack export's day files (`<channel>/<YYYY-MM-DD>.json`, the
         same files `kass fetch` reads), makes one document per channel-day of its messages'
         `text` ("user: text" lines; noise subtypes dropped as kass drops them, no markup
         rendering), splits each with LangChain and writes the chunks as JSON batch files of 100
         (kass's [batch] max_chunks; plain writes, no fsync, where kass fsyncs each file):
           --splitter recursive  RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=100)
           --splitter token      SentenceTransformersTokenTextSplitter over the model's own
                                 WordPiece tokenizer, --tokens (254) pieces a chunk + [CLS]/[SEP]
                                 = 256, kass's max_tokens (which counts the special tokens);
                                 chunk_overlap 0, as kass's chunks do not overlap.
  job:   the whole job. Reads every file of --texts (the files `kass run`'s files source reads),
         splits each with the token splitter above, embeds the chunks with sentence-transformers
         `encode` (batch 32, torch threads 2, normalize_embeddings=True, the splitter's own model,
         so it is loaded once) and upserts them with the `chromadb` client into a cosine
         collection (get_or_create, batches of 500) under deterministic ids, so running it again
         on the same collection re-embeds everything and upserts the same records.

    ~/.cache/kass/st-venv/bin/python scripts/python_stack_job.py split --export DIR --out DIR --splitter token
    ~/.cache/kass/st-venv/bin/python scripts/python_stack_job.py job --texts DIR --url http://127.0.0.1:8000 --collection c

Needs ~/.cache/kass/st-venv (scripts/st-venv-requirements.txt) plus langchain-text-splitters and
chromadb, which scripts/bench-vs-python.sh installs into it without moving its pinned stack. The
model is read from --model-dir ($KASS_MODEL_DIR, ~/.cache/kass/models/all-MiniLM-L6-v2); nothing
is fetched (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # no fork warning; kass's tokenizer is serial too
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb: no telemetry attempts

# kass's [transform] drop_subtypes default.
NOISE_SUBTYPES = {
    "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name",
    "channel_archive", "channel_unarchive", "group_join", "group_leave", "bot_add", "bot_remove",
    "pinned_item", "welcome_party", "tombstone",
}
BATCH_CHUNKS = 100


def chunk_id(source: str, document_id: str, index: int, text: str) -> str:
    content = hashlib.sha256(text.encode()).hexdigest()[:16]
    return hashlib.sha256(f"{source}\0{document_id}\0{index}\0{content}".encode()).hexdigest()[:32]


def token_splitter(model_dir: Path, tokens: int, threads: int | None = None):
    if threads:
        import torch

        torch.set_num_threads(threads)
    from langchain_text_splitters import SentenceTransformersTokenTextSplitter

    return SentenceTransformersTokenTextSplitter(
        model_name=str(model_dir), tokens_per_chunk=tokens, chunk_overlap=0,
        model_kwargs={"device": "cpu"})


def slack_documents(export: Path):
    """(document id, text, metadata) per channel-day, in folder and day order."""
    for folder in sorted(p for p in export.iterdir() if p.is_dir()):
        for day in sorted(folder.glob("*.json")):
            try:
                messages = json.loads(day.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                print(f"skipping {day}: {e}", file=sys.stderr)
                continue
            lines = []
            for m in messages:
                if not isinstance(m, dict) or m.get("subtype") in NOISE_SUBTYPES:
                    continue
                text = (m.get("text") or "").strip()
                if not text:
                    continue
                profile = m.get("user_profile") or {}
                author = (profile.get("display_name") or profile.get("real_name")
                          or m.get("username") or m.get("user") or "unknown")
                lines.append(f"{author}: {text}")
            if lines:
                yield (f"{folder.name}/{day.stem}", "\n".join(lines),
                       {"channel": folder.name, "date": day.stem})


def split(args: argparse.Namespace) -> dict:
    phases = {}
    t = time.perf_counter()
    if args.splitter == "recursive":
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=100)
        what = "RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=100)"
    else:
        splitter = token_splitter(args.model_dir, args.tokens)
        what = (f"SentenceTransformersTokenTextSplitter(tokens_per_chunk={args.tokens}, "
                f"chunk_overlap=0)")
    phases["import_and_load"] = time.perf_counter() - t

    t = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    documents = chunks = batches = 0
    pending: list[dict] = []

    def flush() -> None:
        nonlocal batches, pending
        if pending:
            path = args.out / f"batch_{batches:06}.json"
            with open(path, "w", encoding="utf-8") as f:
                json.dump({"source": "slack", "chunk_count": len(pending), "chunks": pending}, f,
                          ensure_ascii=False)
            batches += 1
            pending = []

    for doc_id, text, meta in slack_documents(args.export):
        documents += 1
        for i, piece in enumerate(splitter.split_text(text)):
            pending.append({"id": chunk_id("slack", doc_id, i, piece), "text": piece,
                            "metadata": {**meta, "source": "slack", "document_id": doc_id,
                                         "chunk_index": i}})
            chunks += 1
            if len(pending) == BATCH_CHUNKS:
                flush()
    flush()
    phases["read_split_write"] = time.perf_counter() - t
    return {"job": "split", "splitter": what, "documents": documents, "chunks": chunks,
            "batch_files": batches, "phases_s": phases}


def job(args: argparse.Namespace) -> dict:
    phases = {}
    t = time.perf_counter()
    import chromadb
    import sentence_transformers

    phases["import"] = time.perf_counter() - t

    t = time.perf_counter()
    splitter = token_splitter(args.model_dir, args.tokens, threads=args.threads)
    model = splitter._model  # the same SentenceTransformer: loaded once for both
    model.max_seq_length = 256
    phases["model_load"] = time.perf_counter() - t

    t = time.perf_counter()
    ids, texts, metas = [], [], []
    for path in sorted(args.texts.iterdir()):
        if not path.is_file():
            continue
        doc_id = path.name
        for i, piece in enumerate(splitter.split_text(path.read_text(encoding="utf-8"))):
            ids.append(chunk_id("texts", doc_id, i, piece))
            texts.append(piece)
            metas.append({"source": "texts", "document_id": doc_id, "chunk_index": i})
    phases["read_split"] = time.perf_counter() - t

    t = time.perf_counter()
    vectors = model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True,
                           convert_to_numpy=True, show_progress_bar=False)
    phases["encode"] = time.perf_counter() - t

    t = time.perf_counter()
    host, _, port = args.url.removeprefix("http://").rstrip("/").partition(":")
    client = chromadb.HttpClient(host=host, port=int(port or 8000))
    collection = client.get_or_create_collection(args.collection,
                                                 metadata={"hnsw:space": "cosine"})
    for s in range(0, len(ids), args.upsert_batch):
        e = s + args.upsert_batch
        collection.upsert(ids=ids[s:e], embeddings=vectors[s:e], documents=texts[s:e],
                          metadatas=metas[s:e])
    phases["upsert"] = time.perf_counter() - t
    return {"job": "job", "chunks": len(ids), "collection_count": collection.count(),
            "phases_s": phases,
            "versions": f"sentence-transformers {sentence_transformers.__version__}, "
                        f"chromadb {chromadb.__version__}"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    model_dir = Path(os.environ.get("KASS_MODEL_DIR")
                     or Path.home() / ".cache/kass/models/all-MiniLM-L6-v2")
    s = sub.add_parser("split", help="the fetch half: Slack export -> LangChain -> JSON batch files")
    s.add_argument("--export", type=Path, required=True)
    s.add_argument("--out", type=Path, required=True)
    s.add_argument("--splitter", choices=["recursive", "token"], required=True)
    s.add_argument("--tokens", type=int, default=254)
    s.add_argument("--model-dir", type=Path, default=model_dir)
    j = sub.add_parser("job", help="split + sentence-transformers encode + chromadb upsert")
    j.add_argument("--texts", type=Path, required=True, help="directory, one document per file")
    j.add_argument("--url", required=True)
    j.add_argument("--collection", required=True)
    j.add_argument("--tokens", type=int, default=254)
    j.add_argument("--batch-size", type=int, default=32)
    j.add_argument("--threads", type=int, default=2)
    j.add_argument("--upsert-batch", type=int, default=500)
    j.add_argument("--model-dir", type=Path, default=model_dir)
    args = p.parse_args()
    result = split(args) if args.command == "split" else job(args)
    result["in_process_s"] = time.perf_counter() - STARTED
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
