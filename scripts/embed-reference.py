#!/usr/bin/env python3
"""Write reference embeddings of all-MiniLM-L6-v2, made by sentence-transformers, as a test fixture.

Why: kass embeds text with its own runtime (no Python at run time). Its parity test compares its
vectors with these, made by the reference implementation, on inputs chosen to catch the usual
port bugs: truncation at 256 word pieces, empty and near-empty input, accent stripping and
lower-casing, CJK and other scripts, emoji, [UNK] for over-long words, special-token text, code,
Slack mrkdwn and Markdown. Each item also records the tokenizer's input_ids (after truncation), so
a tokenizer mismatch can be told apart from a model mismatch.

Output: tests/fixtures/minilm_reference.json
    {"model": "all-MiniLM-L6-v2", "generator": "sentence-transformers X, torch Y, transformers Z",
     "max_seq_length": 256, "normalized": true,
     "items": [{"text": ..., "token_count": N, "input_ids": [...], "embedding": [384 floats]}]}
Embeddings are L2-normalised (normalize_embeddings=True) and rounded to 7 significant digits.

Regenerate (needs the model files and the reference venv, not needed to build or test kass):
    scripts/fetch-model.sh                    # model files -> ~/.cache/kass/models/all-MiniLM-L6-v2
    python3.11 -m venv ~/.cache/kass/st-venv
    ~/.cache/kass/st-venv/bin/pip install --no-deps -r scripts/st-venv-requirements.txt
    ~/.cache/kass/st-venv/bin/python scripts/embed-reference.py [MODEL_DIR] [--output PATH]
MODEL_DIR defaults to $KASS_MODEL_DIR, then ~/.cache/kass/models/all-MiniLM-L6-v2. Nothing is
fetched from a model hub (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # no "Loading weights" bar on stderr

MODEL_NAME = "all-MiniLM-L6-v2"
MAX_SEQ_LENGTH = 256
SIGNIFICANT_DIGITS = 7
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = REPO_ROOT / "tests" / "fixtures" / "minilm_reference.json"

# Well over 256 word pieces (about 420), so the tail past the limit must be dropped.
LONG_ENGLISH = (
    "At-least-once delivery is a promise about failure, not about the happy path. When the "
    "pipeline reads an object from the bucket, it splits the documents into chunks, embeds every "
    "chunk in batches, and writes the vectors to the store; only after the store has acknowledged "
    "the write does the source delete the queue message that announced the object. If the process "
    "crashes anywhere before that point, the message becomes visible again after its visibility "
    "timeout, another worker receives it, and the whole object is processed a second time. That "
    "second pass is harmless because every chunk has a deterministic identifier derived from the "
    "document identifier, the chunk index and a hash of the chunk text, so the store overwrites "
    "the earlier vectors instead of adding duplicates. The same reasoning explains why a cache of "
    "already-embedded chunks may only be updated after the store write succeeded: marking a chunk "
    "as done before it is durable turns a crash into silent data loss, which is the one outcome "
    "the design exists to prevent. Retries need the same care. A request that timed out may still "
    "have been applied, so every write must be idempotent, and the retry loop must honour the "
    "Retry-After header, back off exponentially with jitter, and give up after a bounded number "
    "of attempts, sending the batch to the dead-letter directory with the error that stopped it. "
    "One malformed message must never stop the run; it is counted, logged with the name of the "
    "object it came from, and set aside for an operator to inspect. Operators, in turn, need "
    "metrics that answer simple questions quickly: how many objects were received, how many chunks "
    "were embedded per second, how long the store took to acknowledge a batch at the 99th "
    "percentile, and how many items are waiting in the dead-letter directory right now. Without "
    "those numbers, every incident starts with guesswork, and guesswork at three in the morning is "
    "expensive, slow and error-prone for everyone involved in the on-call rotation."
)

# CJK text is split into one word piece per character, so this is over 256 pieces too.
LONG_JAPANESE = (
    "埋め込みモデルは、文章を固定長のベクトルに変換します。検索の品質は、同じ意味の文章が近いベクトルになる"
    "かどうかで決まります。長い文章は最大トークン数で切り捨てられるため、重要な情報は文章の前半に置くのが"
    "望ましいです。チャットのログは短い発言が多いので、数十件の発言をまとめて一つのチャンクにします。"
    "チャンクの境界はスレッドと時間の区切りを尊重し、一つの会話が二つのチャンクに分かれないように注意します。"
    "障害が発生した場合、パイプラインは同じオブジェクトをもう一度処理しますが、各チャンクの識別子は内容から"
    "決まるため、重複は発生しません。処理できなかったメッセージは別のディレクトリに保存され、運用担当者が後で"
    "確認できます。監視のために、受信したオブジェクト数、一秒あたりの埋め込み数、書き込みの遅延などの指標を"
    "記録します。"
)

TEXTS: list[str] = [
    # Short English
    "The quick brown fox jumps over the lazy dog.",
    "How do I reset my password?",
    "Deploys are frozen until Thursday; please hold merges to main.",
    # Long inputs: truncation at MAX_SEQ_LENGTH matters
    LONG_ENGLISH,
    LONG_JAPANESE,
    # Empty and near-empty ("" and " " both tokenize to [CLS] [SEP])
    "",
    " ",
    ".",
    "a",
    "👍",
    "Hello,\tworld!\n\nSecond   paragraph\r\nwith CRLF.",
    # Normalisation: lower-casing and accent stripping of the uncased BERT tokenizer
    "Crème BRÛLÉE, naïve café résumé — Ångström in São Paulo",
    # Non-English
    "Die Datenbank ist seit heute Morgen nicht erreichbar. Können wir den Failover auf die Replik "
    "in Frankfurt starten? Übrigens schlägt die Größenänderung der Festplatte fehl.",
    "本番環境のデプロイは木曜日まで凍結されています。緊急の修正がある場合はチャンネルで確認してください。",
    "我们的向量数据库在凌晨三点出现了延迟高峰，请检查索引重建任务是否仍在运行。",
    "Сборка упала на этапе тестов: не хватает памяти при компиляции. Попробуйте уменьшить число "
    "параллельных задач.",
    "تم نشر الإصدار الجديد بنجاح، لكن بعض المستخدمين أبلغوا عن بطء في تسجيل الدخول.",
    "배포가 완료되었습니다. 문제가 있으면 알려주세요.",
    "Meeting notes: 会議は15時から。Bitte pünktlich sein! 🙂",
    # Emoji
    "🚀 shipped it! 🎉🎉 thanks team 🙏 (no more 🐛 hopefully 🤞)",
    # Code
    "fn main() {\n    let evens: Vec<u32> = (0..10).filter(|x| x % 2 == 0).collect();\n"
    "    println!(\"{:?}\", evens);\n}",
    "def retry(fn, attempts=3):\n    for i in range(attempts):\n        try:\n            return fn()\n"
    "        except TimeoutError:\n            time.sleep(2 ** i)\n    raise RuntimeError(\"gave up\")",
    "SELECT c.channel_id, COUNT(*) AS n FROM chunks c JOIN documents d ON d.id = c.document_id "
    "WHERE d.source = 'slack' GROUP BY c.channel_id ORDER BY n DESC LIMIT 10;",
    # Slack-style chat: mrkdwn links, user/channel mentions, special mentions, URLs
    "<@U0ANA> can you look at <https://github.com/acme/kass/pull/42|PR #42>? CI is red on "
    "`ctrl_c` again :sweat_smile: cc <!here> <#C0DEVHELP|dev-help>",
    "ana: Welcome!\nCho Min-jun: Thanks! Is the release still planned for Friday? Notes: "
    "https://wiki.example.com/release-notes?v=1.4.2&lang=en#schedule",
    # Markdown with a table
    "## Benchmarks\n\n| runtime | long | short |\n|---|---:|---:|\n| PyTorch | 22.9 | 100 |\n"
    "| candle | 7.9 | 42.9 |\n\n*Measured on 2 cores*, see [notes](PERF-NOTES.md).",
    # Numbers, dates, units
    "Q3 revenue rose 12.5% to $4,210,000 on 2025-10-06T12:00:00Z (p99 latency 350ms, 3x faster).",
    # A word over 100 characters becomes [UNK] in WordPiece
    "commit sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a089f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 was reverted",
    # Special-token text written by a user
    "What does [MASK] mean, and why is [CLS] first?",
]


def round_sig(x: float, digits: int = SIGNIFICANT_DIGITS) -> float:
    """Round to `digits` significant digits; json then prints the shortest repr of that float."""
    return float(f"{x:.{digits}g}")


def default_model_dir() -> Path:
    env = os.environ.get("KASS_MODEL_DIR")
    if env:
        return Path(env)
    return Path.home() / ".cache" / "kass" / "models" / MODEL_NAME


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", nargs="?", type=Path, default=None,
                        help="model directory (default: $KASS_MODEL_DIR or ~/.cache/kass/models/%s)"
                        % MODEL_NAME)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT,
                        help="fixture path (default: %(default)s)")
    args = parser.parse_args()
    model_dir: Path = args.model_dir or default_model_dir()
    if not (model_dir / "model.safetensors").is_file():
        print(f"no model at {model_dir}; run scripts/fetch-model.sh first", file=sys.stderr)
        return 1

    import sentence_transformers
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(model_dir), device="cpu")
    model.max_seq_length = MAX_SEQ_LENGTH
    embeddings = model.encode(TEXTS, batch_size=32, normalize_embeddings=True,
                              convert_to_numpy=True, show_progress_bar=False)
    dim = embeddings.shape[1]
    if dim != 384:
        print(f"unexpected embedding dimension {dim}", file=sys.stderr)
        return 1
    encoded = model.tokenizer(TEXTS, truncation=True, max_length=MAX_SEQ_LENGTH)

    header = {
        "model": MODEL_NAME,
        "generator": f"sentence-transformers {sentence_transformers.__version__}, "
                     f"torch {torch.__version__}, transformers {transformers.__version__}",
        "max_seq_length": MAX_SEQ_LENGTH,
        "normalized": True,
    }
    items = []
    for text, ids, vec in zip(TEXTS, encoded["input_ids"], embeddings):
        items.append({
            "text": text,
            "token_count": len(ids),
            "input_ids": list(ids),
            "embedding": [round_sig(float(v)) for v in vec],
        })

    # One item per line: small diffs when regenerated, and no per-float newlines bloating the file.
    lines = [json.dumps(header, ensure_ascii=False)[:-1] + ', "items": [']
    lines += [json.dumps(item, ensure_ascii=False) + ("," if i + 1 < len(items) else "")
              for i, item in enumerate(items)]
    lines.append("]}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n", encoding="utf-8")

    truncated = sum(1 for ids in encoded["input_ids"] if len(ids) == MAX_SEQ_LENGTH)
    print(f"wrote {len(items)} items ({truncated} truncated at {MAX_SEQ_LENGTH}) to {args.output} "
          f"({args.output.stat().st_size} bytes); {header['generator']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
