#!/usr/bin/env python3
"""Compare the retrieval quality of chat-window chunking settings on a labelled set built from a
real Slack export (driven by scripts/chat-window-study.sh).

Why: kass cuts a channel's day into chat windows (stages/src/chunking/chat.rs): a window closes
after a silence longer than `[chunking] chat_gap_minutes`, at `chat_max_messages` or at the token
budget. In the real export most day windows hold one message, so the question is whether windows
that join more messages of the same day (`chat_join_sparse`, or no silence split at all) find
the answer to a question better. That needs answers that sit in day documents, chunked by the
windowing the variants differ in, and questions whose text is not in the corpus.

The labelled set (subcommand `build`):

  threads   every thread of the export with at least --min-replies (2) replies, counted after
            dropping Slack's noise subtypes (bench-texts.py's SKIPPED_SUBTYPES), empty texts and
            texts whose first 80 characters repeat an earlier message (pasted logs, repeated bot
            posts), as scripts/slack-known-item-set.py does: a thread whose opener is such a
            message is not used
  query     the thread's opening message, rendered text (bench-texts.py's render_markup): a
            question as a user would ask it
  answers   the thread's kept replies, each a (channel, ts) message

and a MODIFIED COPY of the export in which, for those threads only, the opening message is
removed and every reply (kept or not) becomes a plain channel message: `thread_ts`,
`parent_user_id`, the reply bookkeeping and a `thread_broadcast` subtype are dropped, so kass puts
them into the channel-day document of the day file they are in instead of a thread document.
Slack exports already place each reply in the day file of its own `ts` (checked: in the sample
every message sits in the day file of its ts in the workspace's time zone, and no `ts` occurs
twice), so replies stay where they are and appear exactly once; `build` checks both and fails
otherwise. Everything else (other threads, loose messages, users, channels) is unchanged. So:
the answers are chunked by the day windowing, interleaved with the day's other messages; the
query text is not in the corpus (it would be found trivially).

Relevance is read from chunk metadata, not by matching text: a chat window stores its
`document_id` (`{channel_id}/{YYYY-MM-DD}` for a channel-day) and `start_ts`/`end_ts` (integer
epoch seconds of its first and last message, the Slack ts floored). A reply (channel, ts) belongs
to the windows of its channel-day whose [start_ts, end_ts] holds floor(ts). Two windows can meet
inside one second; then the RFC 3339 `start_time`/`end_time` (microseconds kept) decide. A reply
longer than the budget is split into pieces and belongs to every window holding a piece. A chunk
is relevant to a query if it holds at least one of the query's answers. The mapping is checked
against the chunk texts (the start of the reply's text must be in one of its chunks) and the
counts of unmapped and unverified replies are printed; an unmapped answer counts as missed.

Metrics per variant (subcommand `evaluate`, in the sentence-transformers venv): queries embedded
with the same all-MiniLM-L6-v2 kass uses, top chunks from the variant's Chroma collection:

  nDCG@10     binary chunk relevance; ideal DCG over min(relevant chunks in the collection, 10)
  MRR@10      reciprocal rank of the first relevant chunk
  R@10        share of the thread's answer messages held by the top 10 chunks
  R@512t      the same within a context budget: top chunks in rank order while their word pieces
  R@1024t     (model tokenizer, no special tokens) stay within 512 / 1024; the fairest for a
              chatbot, as bigger windows spend more of its context per chunk
  tok@10      mean word pieces of the top 10 chunks (what R@10 costs)
  chunks, msg/chk, 1-msg      the collection: chunks, mean `message_count`, share of one-message
              chunks (threads included: the settings apply to thread windows too); day 1-msg
              the same share among channel-day windows only

The differences to the first variant come with a 95% paired bootstrap interval over the queries (2000
resamples, fixed seed): with about 150 queries, a difference whose interval spans 0 is noise.
A known-item task on one workspace: read it as a comparison of the variants on the same set.

    python3 scripts/chat_window_study.py build OUT_DIR [--data EXPORT_DIR]
    python3 scripts/chat_window_study.py variants OUT_DIR gap30 join_sparse day gap60:chat_gap_minutes=60
    ~/.cache/kass/st-venv/bin/python scripts/chat_window_study.py evaluate OUT_DIR --chroma-url URL
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import random
import re
import shutil
import sys
import time
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The export reading and markup rendering of the benchmark text sets, not copied.
_spec = importlib.util.spec_from_file_location("bench_texts", HERE / "bench-texts.py")
bench_texts = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_texts)  # type: ignore[union-attr]

# The variants: name -> the `[chunking]` keys of its kass.toml (empty: kass's defaults). The
# first variant given is the base the others are compared with. `gap30` was kass's default before
# this study; `day` (a day's gap: windows fill to the budget) is the default since.
KNOWN_VARIANTS = {
    "default": "",
    "gap30": "chat_gap_minutes = 30",
    "join_sparse": "chat_gap_minutes = 30\nchat_join_sparse = true",
    "day": "chat_gap_minutes = 1440",
}
DEFAULT_VARIANTS = ["gap30", "join_sparse", "day"]
# Keys a reply carries as part of its thread; dropped to make it a plain channel message.
THREAD_KEYS = ("thread_ts", "parent_user_id", "reply_count", "reply_users", "reply_users_count",
               "latest_reply", "replies", "subscribed", "last_read", "is_locked", "root")
DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.json$")
BUDGETS = (512, 1024)
K = 10


# ---------------------------------------------------------------------------------------- build

def build(args: argparse.Namespace) -> int:
    root = bench_texts.find_data(args.data)
    users, channels = bench_texts.load_users(root), bench_texts.load_channels(root)
    channel_ids = {name: cid for cid, name in channels.items()}
    threads: dict[tuple[str, str], dict] = defaultdict(lambda: {"parent": None, "replies": [], "all": []})
    seen: set[str] = set()
    ts_count: Counter[tuple[str, str]] = Counter()
    by_channel: dict[str, list[tuple[float, str]]] = defaultdict(list)
    dirs = sorted(p for p in root.iterdir() if p.is_dir())
    for channel_dir in dirs:
        for day in sorted(p for p in channel_dir.glob("*.json") if DAY_FILE.match(p.name)):
            for m in json.loads(day.read_text(encoding="utf-8")):
                ts, thread = m.get("ts", ""), m.get("thread_ts")
                ts_count[(channel_dir.name, ts)] += 1
                by_channel[channel_dir.name].append((float(ts), day.stem))
                if thread and thread != ts:
                    threads[(channel_dir.name, thread)]["all"].append(ts)
                if m.get("subtype") in bench_texts.SKIPPED_SUBTYPES:
                    continue
                text = bench_texts.render_markup(m.get("text") or "", users, channels).strip()
                if not text or (args.max_chars and len(text) > args.max_chars) or text[:80] in seen:
                    continue
                seen.add(text[:80])
                if thread and thread == ts:
                    threads[(channel_dir.name, thread)]["parent"] = {"text": text, "day": day.stem}
                elif thread:
                    threads[(channel_dir.name, thread)]["replies"].append(
                        {"ts": ts, "day": day.stem, "text": text})
    doubled = [k for k, n in ts_count.items() if n > 1]
    if doubled:
        sys.exit(f"{len(doubled)} messages occur twice in the export (e.g. {doubled[0]}); "
                 "the modified copy would hold them twice")

    chosen = {key: t for key, t in sorted(threads.items())
              if t["parent"] and len(t["replies"]) >= args.min_replies}
    # A reply must sit in the day file of its own ts (exports do so, in the workspace's time
    # zone), not in its parent's: in each channel, messages sorted by ts must have non-decreasing
    # day files, each within a day of the ts's UTC date.
    for channel, placed in by_channel.items():
        placed.sort()
        days = [d for _, d in placed]
        off = [(ts, d) for ts, d in placed
               if abs((date.fromisoformat(d) - datetime.fromtimestamp(ts, timezone.utc).date()).days) > 1]
        if days != sorted(days) or off:
            sys.exit(f"{channel}: day files do not follow the messages' ts (e.g. {off[:1]}); "
                     "not the export layout this study assumes")

    # The modified copy: parents of chosen threads removed, their replies made channel messages.
    out = args.out
    export = out / "export"
    if export.exists():
        shutil.rmtree(export)
    shutil.copytree(root, export, symlinks=False)
    parents = {(c, ts) for (c, ts) in chosen}
    replies = {(c, r) for (c, ts), t in chosen.items() for r in t["all"]}
    removed = converted = 0
    for channel_dir in sorted(p for p in export.iterdir() if p.is_dir()):
        for day in sorted(p for p in channel_dir.glob("*.json") if DAY_FILE.match(p.name)):
            messages = json.loads(day.read_text(encoding="utf-8"))
            kept, changed = [], False
            for m in messages:
                key = (channel_dir.name, m.get("ts", ""))
                if key in parents:
                    removed += 1
                    changed = True
                    continue
                if key in replies:
                    m = {k: v for k, v in m.items() if k not in THREAD_KEYS}
                    if m.get("subtype") == "thread_broadcast":
                        del m["subtype"]
                    converted += 1
                    changed = True
                kept.append(m)
            if changed:
                day.write_text(json.dumps(kept, ensure_ascii=False, indent=1), encoding="utf-8")
    if removed != len(parents) or converted != len(replies):
        sys.exit(f"modified copy: removed {removed} of {len(parents)} openers, converted "
                 f"{converted} of {len(replies)} replies")

    queries = []
    for n, ((channel, thread_ts), t) in enumerate(chosen.items()):
        cid = channel_ids.get(channel, channel)
        queries.append({
            "id": f"q{n}", "channel": channel, "channel_id": cid, "thread_ts": thread_ts,
            "text": t["parent"]["text"],
            "answers": [{"ts": r["ts"], "document_id": f"{cid}/{r['day']}", "text": r["text"]}
                        for r in t["replies"]],
        })
    summary = {"data": str(root), "export": str(export), "queries": len(queries),
               "answers": sum(len(q["answers"]) for q in queries),
               "replies_made_channel_messages": len(replies), "openers_removed": len(parents)}
    (out / "set.json").write_text(json.dumps({"summary": summary, "queries": queries},
                                             ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps(summary))
    return 0


# ------------------------------------------------------------------------------------- variants

def variants(args: argparse.Namespace) -> int:
    """Writes OUT/variants/NAME.toml (the `[chunking]` table, or nothing) for each variant and
    prints the names. A variant is a known name, or NAME:key=value[,key=value...] (TOML values)."""
    vdir = args.out / "variants"
    vdir.mkdir(parents=True, exist_ok=True)
    names = []
    for spec in args.specs or DEFAULT_VARIANTS:
        name, sep, keys = spec.partition(":")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            sys.exit(f"variant name {name!r}: letters, digits, '_', '.', '-' only")
        if sep:
            body = "\n".join(k.strip() for k in keys.split(",") if k.strip())
        elif name in KNOWN_VARIANTS:
            body = KNOWN_VARIANTS[name]
        else:
            sys.exit(f"unknown variant {name!r}: known {', '.join(KNOWN_VARIANTS)}, "
                     "or NAME:key=value[,key=value...]")
        (vdir / f"{name}.toml").write_text(f"[chunking]\n{body}\n" if body else "", encoding="utf-8")
        names.append(name)
    print(" ".join(names))
    return 0


# ------------------------------------------------------------------------------------- evaluate

def norm(text: str) -> str:
    return " ".join(text.split())


def ts_micros(ts: str) -> tuple[int, int]:
    """A Slack ts ("1657793924.739989") as (whole seconds, exact microseconds since the epoch)."""
    whole, _, frac = ts.partition(".")
    return int(whole), int(whole) * 1_000_000 + int((frac + "000000")[:6])


def rfc3339_micros(value) -> int | None:
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return (dt - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(microseconds=1)


def within(meta: dict, micros: int) -> bool:
    start, end = rfc3339_micros(meta.get("start_time")), rfc3339_micros(meta.get("end_time"))
    return start is not None and end is not None and start <= micros <= end


def dcg(rels: list[int]) -> float:
    return sum(r / math.log2(i + 2) for i, r in enumerate(rels))


def load_collection(collection) -> dict:
    """Every chunk of the collection: id -> {meta, text}."""
    chunks, offset, page = {}, 0, 1000
    while True:
        got = collection.get(include=["metadatas", "documents"], limit=page, offset=offset)
        for cid, meta, doc in zip(got["ids"], got["metadatas"], got["documents"]):
            chunks[cid] = {"meta": meta or {}, "text": doc or ""}
        if len(got["ids"]) < page:
            return chunks
        offset += page


def evaluate_variant(name: str, client, queries: list[dict], qvecs, counter, n_results: int) -> dict:
    try:
        collection = client.get_collection(f"chat-{name}")
    except Exception as e:  # noqa: BLE001 - reported, the other variants go on
        return {"name": name, "error": f"collection chat-{name}: {e}"}
    chunks = load_collection(collection)
    if not chunks:
        return {"name": name, "error": "empty collection"}
    by_doc: dict[str, list[str]] = defaultdict(list)
    for cid, c in chunks.items():
        by_doc[str(c["meta"].get("document_id", ""))].append(cid)
    tokens = {cid: counter.count(c["text"]) for cid, c in chunks.items()}

    # Each answer -> the chunks holding it, from document_id and [start_ts, end_ts].
    unmapped = multi = checked = verified = ties = 0
    unverified_examples = []
    answer_chunks: list[list[set[str]]] = []
    for q in queries:
        per_answer = []
        for a in q["answers"]:
            second, micros = ts_micros(a["ts"])
            hits = {cid for cid in by_doc.get(a["document_id"], [])
                    if int(chunks[cid]["meta"].get("start_ts", -1)) <= second
                    <= int(chunks[cid]["meta"].get("end_ts", -1))}
            if len(hits) > 1:
                # Two windows can meet inside one second; their RFC 3339 start_time/end_time
                # keep the microseconds and tell which holds the reply. A reply split into
                # pieces (longer than the budget) stays in all of its windows.
                exact = {cid for cid in hits if within(chunks[cid]["meta"], micros)}
                if exact and exact != hits:
                    ties += 1
                    hits = exact
            if not hits:
                unmapped += 1
            elif len(hits) > 1:
                multi += 1
            # Verify: the reply's text (whitespace-normalized start) is in one of its chunks.
            if hits:
                checked += 1
                probe = norm(a["text"])[:40]
                if any(probe in norm(chunks[cid]["text"]) for cid in hits):
                    verified += 1
                elif len(unverified_examples) < 3:
                    unverified_examples.append({"ts": a["ts"], "document_id": a["document_id"],
                                                "reply": probe})
            per_answer.append(hits)
        answer_chunks.append(per_answer)

    t0 = time.perf_counter()
    n = min(n_results, len(chunks))
    res = collection.query(query_embeddings=[list(map(float, v)) for v in qvecs], n_results=n,
                           include=["metadatas", "documents"])
    query_seconds = time.perf_counter() - t0
    per_query: dict[str, dict[str, float]] = {}
    short_lists = 0
    for q, per_answer, ranked in zip(queries, answer_chunks, res["ids"]):
        relevant = set().union(*per_answer) if per_answer else set()
        if not relevant:
            continue  # no answer stored: nothing to find (counted as unmapped)
        sums = per_query[q["id"]] = {}
        top = ranked[:K]
        rels = [int(cid in relevant) for cid in top]
        sums["nDCG@10"] = dcg(rels) / dcg([1] * min(len(relevant), K))
        first = next((i for i, r in enumerate(rels) if r), None)
        sums["MRR@10"] = 0.0 if first is None else 1.0 / (first + 1)
        mapped = [hits for hits in per_answer if hits]
        total = len(per_answer)  # unmapped answers count as missed
        sums["R@10"] = sum(1 for hits in mapped if hits & set(top)) / total
        sums["tok@10"] = sum(tokens[cid] for cid in top)
        for budget in BUDGETS:
            taken, spent = set(), 0
            exhausted = True
            for cid in ranked:
                if spent + tokens[cid] > budget:
                    exhausted = False
                    break
                spent += tokens[cid]
                taken.add(cid)
            if exhausted and len(ranked) < len(chunks):
                short_lists += 1
            sums[f"R@{budget}t"] = sum(1 for hits in mapped if hits & taken) / total
    used = len(per_query)
    metrics = {k: sum(v[k] for v in per_query.values()) / used
               for k in next(iter(per_query.values()), {})}
    counts = [int(c["meta"].get("message_count", 0)) for c in chunks.values()]
    day_counts = [int(c["meta"].get("message_count", 0)) for c in chunks.values()
                  if c["meta"].get("kind") == "chat_conversation"]
    return {
        "name": name, "metrics": metrics, "queries_used": used, "per_query": per_query,
        "chunks": len(chunks), "msgs_per_chunk": sum(counts) / len(counts),
        "one_msg_share": sum(1 for c in counts if c == 1) / len(counts),
        "day_chunks": len(day_counts),
        "day_one_msg_share": (sum(1 for c in day_counts if c == 1) / len(day_counts)) if day_counts else 0.0,
        "answers": sum(len(p) for p in answer_chunks), "unmapped": unmapped,
        "multi_chunk_answers": multi, "second_ties": ties, "checked": checked, "verified": verified,
        "unverified_examples": unverified_examples, "budget_short_lists": short_lists,
        "n_results": n, "query_seconds": query_seconds,
        "sample_meta": next(iter(chunks.values()))["meta"],
    }


def evaluate(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import chromadb  # type: ignore[import-not-found]
        import torch  # type: ignore[import-not-found]
        from sentence_transformers import SentenceTransformer  # type: ignore[import-not-found]
    except ImportError as e:
        sys.exit(f"evaluate needs the sentence-transformers venv with chromadb ({e}); "
                 "see scripts/st-venv-requirements.txt")
    data = json.loads((args.out / "set.json").read_text(encoding="utf-8"))
    queries = data["queries"]
    torch.set_num_threads(args.threads)
    model = SentenceTransformer(str(args.model_dir), device="cpu")
    qvecs = model.encode([q["text"] for q in queries], batch_size=32, normalize_embeddings=True)
    counter = bench_texts.PieceCounter(args.model_dir)
    if counter.tokenizer is None:
        sys.exit(f"no tokenizer: need the `tokenizers` package and {args.model_dir}/tokenizer.json")
    url = re.match(r"https?://([^:/]+):(\d+)", args.chroma_url)
    if not url:
        sys.exit(f"--chroma-url {args.chroma_url!r}: want http://HOST:PORT")
    client = chromadb.HttpClient(host=url.group(1), port=int(url.group(2)))

    rows = []
    for name in args.variants:
        run = args.out / "runs" / name
        failed = run / "failed.txt"
        if failed.is_file():
            rows.append({"name": name, "error": failed.read_text(encoding="utf-8").strip()})
            continue
        row = evaluate_variant(name, client, queries, qvecs, counter, args.n_results)
        seconds = run / "seconds.txt"
        if seconds.is_file():
            row["run_seconds"] = float(seconds.read_text())
        rows.append(row)
    (args.out / "results.json").write_text(json.dumps(rows, indent=1, default=str), encoding="utf-8")
    report(data["summary"], rows)
    return 0


def report(summary: dict, rows: list[dict]) -> None:
    print(f"\nlabelled set: {summary['queries']} queries (thread openers), {summary['answers']} "
          f"answer replies; {summary['replies_made_channel_messages']} replies made channel "
          f"messages, {summary['openers_removed']} openers removed (from {summary['data']})")
    metric_names = ["nDCG@10", "MRR@10", "R@10"] + [f"R@{b}t" for b in BUDGETS] + ["tok@10"]
    head = f"{'variant':12} " + " ".join(f"{m:>8}" for m in metric_names) + \
        f" {'chunks':>7} {'msg/chk':>7} {'1-msg':>6} {'day 1-msg':>9} {'run s':>6}"
    print("\n" + head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['name']:12} FAILED: {r['error']}")
            continue
        m = r["metrics"]
        print(f"{r['name']:12} " + " ".join(
            f"{m.get(k, float('nan')):8.1f}" if k == "tok@10" else f"{m.get(k, float('nan')):8.4f}"
            for k in metric_names)
              + f" {r['chunks']:7d} {r['msgs_per_chunk']:7.2f} {r['one_msg_share']:6.1%}"
              f" {r['day_one_msg_share']:9.1%} {r.get('run_seconds', float('nan')):6.0f}")
    base = rows[0] if rows and "error" not in rows[0] else None
    if base:
        print(f"\ndifference to {base['name']}")
        for r in rows:
            if r is base or "error" in r:
                continue
            m, b = r["metrics"], base["metrics"]
            print(f"{r['name']:12} " + " ".join(
                f"{m.get(k, 0) - b.get(k, 0):+8.1f}" if k == "tok@10" else f"{m.get(k, 0) - b.get(k, 0):+8.4f}"
                for k in metric_names)
                  + f" {r['chunks'] - base['chunks']:+7d} {r['msgs_per_chunk'] - base['msgs_per_chunk']:+7.2f}"
                  f" {(r['one_msg_share'] - base['one_msg_share']) * 100:+5.1f}p"
                  f" {(r['day_one_msg_share'] - base['day_one_msg_share']) * 100:+8.1f}p")
        print(f"\n95% interval of the difference to {base['name']} (paired bootstrap over the queries)")
        print(f"{'variant':12} " + " ".join(f"{k:>17}" for k in metric_names[:-1]))
        for r in rows:
            if r is base or "error" in r:
                continue
            print(f"{r['name']:12} " + " ".join(
                f"{interval(base['per_query'], r['per_query'], k):>17}" for k in metric_names[:-1]))
    print("\nchecks (answer reply -> chunks by document_id + start_ts..end_ts):")
    for r in rows:
        if "error" in r:
            continue
        warn = "WARNING: " if r["unmapped"] else ""
        print(f"  {r['name']:12} {warn}{r['unmapped']} of {r['answers']} answers in no chunk; "
              f"{r['multi_chunk_answers']} in more than one (split: longer than the budget), "
              f"{r['second_ties']} second ties settled by start_time/end_time; "
              f"text verified {r['verified']}/{r['checked']}; queries scored {r['queries_used']}; "
              f"top {r['n_results']} fetched, budget lists cut short {r['budget_short_lists']}")
        for ex in r["unverified_examples"]:
            print(f"      text not found: {ex}")


def interval(a: dict[str, dict], b: dict[str, dict], metric: str) -> str:
    """95% paired bootstrap interval of mean(b - a) over the queries both scored."""
    diffs = [b[q][metric] - a[q][metric] for q in a if q in b]
    if not diffs:
        return "n/a"
    rng = random.Random(0)
    means = sorted(sum(rng.choices(diffs, k=len(diffs))) / len(diffs) for _ in range(2000))
    return f"[{means[50]:+.3f},{means[1949]:+.3f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="the labelled set and the modified export copy")
    b.add_argument("out", type=Path)
    b.add_argument("--data", type=Path)
    b.add_argument("--min-replies", type=int, default=2)
    b.add_argument("--max-chars", type=int, default=0, help="drop longer texts (0: keep all)")
    v = sub.add_parser("variants", help="write each variant's [chunking] snippet")
    v.add_argument("out", type=Path)
    v.add_argument("specs", nargs="*")
    e = sub.add_parser("evaluate", help="query each variant's collection and print the table")
    e.add_argument("out", type=Path)
    e.add_argument("--chroma-url", required=True)
    e.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS)
    e.add_argument("--model-dir", type=Path,
                   default=Path(os.environ.get("KASS_MODEL_DIR")
                                or Path.home() / ".cache/kass/models/all-MiniLM-L6-v2"))
    e.add_argument("--n-results", type=int, default=200,
                   help="chunks fetched per query, enough to fill the largest token budget")
    e.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    return {"build": build, "variants": variants, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
