#!/usr/bin/env python3
"""Write the "long" and "short" embedding benchmark text sets, built from a real Slack export.

Why: embedding throughput depends mostly on token count and on how much padding a batch carries,
so the runtimes kass compares (sentence-transformers, ONNX Runtime, candle, ...) must be timed on
the same realistic inputs. The export data stays where it is; this script reads it at run time and
writes only the derived sets:

  OUT_DIR/long.jsonl    about 200 chunks of consecutive messages ("author: text" lines), each
                        close to --long-tokens word pieces (default 240, so under the model's 256
                        limit with [CLS] and [SEP]), the way the chunker feeds the embedder
  OUT_DIR/short.jsonl   about 500 single messages of at most 280 characters
  OUT_DIR/manifest.json where the text came from and the token statistics

Each .jsonl line is {"text": ...}. Word pieces are counted with the model's tokenizer.json when
the `tokenizers` package is importable (it is in the reference venv, see
scripts/st-venv-requirements.txt); otherwise 4 characters count as one piece, a rougher guess.

Data: --data, else ../shared/data/slack-export-sample beside the repo (or /work/shared/...), else
the repo's examples/data/slack-export (small: its messages are then reused to reach the counts).
Markup is rendered roughly as stages/src/markup.rs does (<@U1> -> @name, <url|label> ->
"label (url)", entities decoded), so the text resembles what kass embeds.

    ~/.cache/kass/st-venv/bin/python scripts/bench-texts.py /tmp/kass-bench-texts
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_CANDIDATES = [
    REPO_ROOT.parent / "shared" / "data" / "slack-export-sample",
    Path("/work/shared/data/slack-export-sample"),
    REPO_ROOT / "examples" / "data" / "slack-export",
]
# Subtypes whose text is Slack's own noise, not something a person wrote.
SKIPPED_SUBTYPES = {
    "channel_join", "channel_leave", "channel_topic", "channel_purpose", "channel_name",
    "channel_archive", "channel_unarchive", "group_join", "group_leave", "tombstone",
    "welcome_party", "pinned_item", "bot_add", "bot_remove",
}
MARKUP = re.compile(r"<([^<>\n]+)>")
CHARS_PER_PIECE = 4.0  # fallback estimate when no tokenizer is available


class PieceCounter:
    """Counts word pieces (without [CLS]/[SEP]) and cuts text at a piece boundary."""

    def __init__(self, model_dir: Path) -> None:
        self.tokenizer = None
        path = model_dir / "tokenizer.json"
        try:
            from tokenizers import Tokenizer  # type: ignore[import-not-found]
        except ImportError:
            Tokenizer = None
        if Tokenizer is not None and path.is_file():
            self.tokenizer = Tokenizer.from_file(str(path))
            self.tokenizer.no_truncation()
            self.tokenizer.no_padding()
        self.method = f"tokenizer {path}" if self.tokenizer else f"{CHARS_PER_PIECE} chars per piece"

    def count(self, text: str) -> int:
        if self.tokenizer is None:
            return int(len(text) / CHARS_PER_PIECE + 0.999)
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def prefix(self, text: str, pieces: int) -> str:
        """The longest prefix of `text` that holds at most `pieces` word pieces."""
        if pieces <= 0:
            return ""
        if self.tokenizer is None:
            return text[: int(pieces * CHARS_PER_PIECE)]
        offsets = self.tokenizer.encode(text, add_special_tokens=False).offsets
        if len(offsets) <= pieces:
            return text
        return text[: offsets[pieces - 1][1]]


def find_data(explicit: Path | None) -> Path:
    for candidate in ([explicit] if explicit else DATA_CANDIDATES):
        if candidate and (candidate / "channels.json").is_file():
            return candidate
    sys.exit(f"no Slack export found (tried {explicit or DATA_CANDIDATES})")


def load_users(root: Path) -> dict[str, str]:
    users: dict[str, str] = {}
    path = root / "users.json"
    if path.is_file():
        for u in json.loads(path.read_text(encoding="utf-8")):
            p = u.get("profile") or {}
            name = p.get("display_name") or p.get("real_name") or u.get("real_name") or u.get("name")
            if u.get("id") and name:
                users[u["id"]] = name
    return users


def load_channels(root: Path) -> dict[str, str]:
    path = root / "channels.json"
    return {c["id"]: c["name"] for c in json.loads(path.read_text(encoding="utf-8"))
            if c.get("id") and c.get("name")}


def decode_entities(text: str) -> str:
    """Slack escapes only these three; one pass, so "&amp;lt;" stays "&lt;"."""
    return re.sub(r"&(lt|gt|amp);", lambda m: {"lt": "<", "gt": ">", "amp": "&"}[m.group(1)], text)


def render_markup(text: str, users: dict[str, str], channels: dict[str, str]) -> str:
    """Slack mrkdwn -> plain text, following kass's stages/src/markup.rs (near enough for a
    benchmark; the Rust code is the one that matters)."""

    def prefixed(sigil: str, name: str) -> str:
        return decode_entities(name if name.startswith(sigil) else sigil + name)

    def one(m: re.Match[str]) -> str:
        target, _, label = m.group(1).partition("|")
        target, label = target.strip(), label.strip()
        if target.startswith("@"):
            name = users.get(target[1:])
            return "@" + name if name else prefixed("@", label or target[1:])
        if target.startswith("#"):
            name = channels.get(target[1:])
            return "#" + name if name else prefixed("#", label or target[1:])
        if target.startswith("!"):
            command, _, argument = target[1:].partition("^")
            if command == "date":
                return decode_entities(label or argument)
            return prefixed("@", label or (argument if command == "subteam" else command))
        if target.startswith("mailto:"):
            address = target[len("mailto:"):]
            if label and label != address:
                return f"{decode_entities(label)} ({decode_entities(address)})"
            return decode_entities(address)
        bare = target.removeprefix("https://") if target.startswith("https://") \
            else target.removeprefix("http://")
        if label and label not in (target, bare):
            return f"{decode_entities(label)} ({decode_entities(target)})"
        return decode_entities(target)

    # Text between markup is decoded after parsing, so escaped "&lt;@U1&gt;" never becomes markup.
    out, pos = [], 0
    for m in MARKUP.finditer(text):
        out.append(decode_entities(text[pos:m.start()]))
        out.append(one(m))
        pos = m.end()
    out.append(decode_entities(text[pos:]))
    return "".join(out).strip()


def load_messages(root: Path) -> list[tuple[str, str]]:
    """(author, rendered text) for every message a person or bot wrote, in channel and time order."""
    users, channels = load_users(root), load_channels(root)
    out: list[tuple[str, str]] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        day_msgs = []
        for day in sorted(folder.glob("*.json")):
            try:
                day_msgs.extend(json.loads(day.read_text(encoding="utf-8")))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                print(f"skipping {day}: {e}", file=sys.stderr)
        day_msgs.sort(key=lambda m: float(m.get("ts") or 0))
        for m in day_msgs:
            if m.get("subtype") in SKIPPED_SUBTYPES:
                continue
            text = render_markup(m.get("text") or "", users, channels)
            if not text:
                continue
            profile = m.get("user_profile") or {}
            author = (profile.get("display_name") or profile.get("real_name")
                      or users.get(m.get("user", "")) or m.get("username")
                      or (m.get("bot_profile") or {}).get("name") or m.get("user") or "unknown")
            out.append((author, text))
    return out


def long_windows(lines: list[str], count: int, budget: int, pc: PieceCounter) -> tuple[list[str], bool]:
    """Packs consecutive lines into `count` windows of at most `budget` pieces (at least 90% full,
    filling with the start of the next line when a whole line would not fit)."""
    windows: list[str] = []
    repeated = False
    i, current, used = 0, [], 0
    while len(windows) < count:
        if i == len(lines):
            i, repeated = 0, True
        line = lines[i]
        n = pc.count(line)
        if used + n <= budget:
            current.append(line)
            used += n
            i += 1
            continue
        if used < 0.9 * budget:
            head = pc.prefix(line, budget - used)
            if head.strip():
                current.append(head)
            lines_rest = line[len(head):].strip()
            if lines_rest:
                lines[i] = lines_rest  # the rest starts the next window
            else:
                i += 1
        if current:
            windows.append("\n".join(current))
        current, used = [], 0
    return windows, repeated


def short_texts(texts: list[str], count: int, max_chars: int) -> tuple[list[str], bool]:
    """`count` messages of at most `max_chars`, spread evenly over the export."""
    pool = [t for t in texts if len(t) <= max_chars]
    if not pool:
        sys.exit("no short messages in the export")
    if len(pool) >= count:
        step = len(pool) / count
        return [pool[int(k * step)] for k in range(count)], False
    return [pool[k % len(pool)] for k in range(count)], True


def stats(texts: list[str], pc: PieceCounter) -> dict[str, float]:
    pieces = sorted(pc.count(t) for t in texts)
    return {
        "count": len(texts),
        "pieces_mean": round(sum(pieces) / len(pieces), 1),
        "pieces_min": pieces[0],
        "pieces_median": pieces[len(pieces) // 2],
        "pieces_max": pieces[-1],
        "chars_mean": round(sum(len(t) for t in texts) / len(texts), 1),
    }


def write_jsonl(path: Path, texts: list[str]) -> None:
    with path.open("w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path, help="directory to write long.jsonl and short.jsonl to")
    parser.add_argument("--data", type=Path, default=None, help="Slack export directory")
    parser.add_argument("--model-dir", type=Path,
                        default=Path(os.environ.get("KASS_MODEL_DIR")
                                     or Path.home() / ".cache/kass/models/all-MiniLM-L6-v2"),
                        help="model directory whose tokenizer.json counts word pieces")
    parser.add_argument("--long-count", type=int, default=200)
    parser.add_argument("--long-tokens", type=int, default=240,
                        help="word pieces per long text, without [CLS]/[SEP] (default: %(default)s)")
    parser.add_argument("--short-count", type=int, default=500)
    parser.add_argument("--short-chars", type=int, default=280)
    args = parser.parse_args()

    root = find_data(args.data)
    pc = PieceCounter(args.model_dir)
    messages = load_messages(root)
    if not messages:
        sys.exit(f"no messages in {root}")

    long_set, long_repeated = long_windows([f"{a}: {t}" for a, t in messages],
                                           args.long_count, args.long_tokens, pc)
    short_set, short_repeated = short_texts([t for _, t in messages], args.short_count,
                                            args.short_chars)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out_dir / "long.jsonl", long_set)
    write_jsonl(args.out_dir / "short.jsonl", short_set)
    manifest = {
        "source": str(root),
        "messages": len(messages),
        "piece_counting": pc.method,
        "long": {**stats(long_set, pc), "budget": args.long_tokens, "reused_messages": long_repeated},
        "short": {**stats(short_set, pc), "max_chars": args.short_chars,
                  "reused_messages": short_repeated},
    }
    (args.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n",
                                                encoding="utf-8")
    print(json.dumps(manifest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
