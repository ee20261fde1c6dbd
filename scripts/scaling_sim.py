#!/usr/bin/env python3
"""Replays kass's per-worker rates against a workload: how long the embed half takes, which
stage bounds it, and how the bound moves with the number of workers. See docs/scaling.md.

Every stage is a server with a capacity in chunks per second; the workers' capacities add up,
a provider's limit is one budget shared by all workers (requests, tokens and inputs per
request), Chroma is one server. The pipeline runs at its slowest stage; the daily run also
replays the fetcher's 6-hour schedule minute by minute to give the oldest announcement's age.

    python3 scripts/scaling_sim.py                # both scenarios, every embedder
    python3 scripts/scaling_sim.py --workers 1 4 16 64

Rates are arguments with the defaults documented in docs/scaling.md: which were measured
in this repository and which are providers' documented limits is said there.
"""

import argparse

# Measured in this repository (README "Benchmarks", docs/scaling.md): chunks/s of ONE worker.
LOCAL_INT8_PER_CORE = 33.0   # `kass run` int8, 200 long texts, 66.1 texts/s on 2 threads
LOCAL_F32_PER_CORE = 13.7    # `kass run` f32, same set, 27.4 texts/s on 2 threads
CHROMA_CHUNKS_PER_S = 602.0  # whole `kass run` into a Chroma already holding 100k records

# Documented limits (README provider table: each provider's lowest tier).
PROVIDERS = {
    # name: (requests/min, tokens/min, inputs per request)
    "voyage-free": (3, 10_000, 1000),
    "openai-free": (100, 40_000, 2048),
    "cohere-trial": (20, None, 96),
}

TOKENS_PER_CHUNK = 237      # the long set's mean word pieces (chunk-sized chat windows)
MESSAGES_PER_CHUNK = 9      # Slack messages per day-window chunk (assumption, see the doc)


def provider_rate(name, scale=1.0):
    """Chunks/s a provider's whole account allows (all workers together)."""
    rpm, tpm, inputs = PROVIDERS[name]
    # kass sizes requests so both budgets run out together: tpm / rpm tokens, at least tpm / 10.
    per_request = max(tpm // rpm, tpm // 10) // TOKENS_PER_CHUNK if tpm else inputs
    by_requests = rpm * scale * min(inputs, max(1, per_request)) / 60
    by_tokens = (tpm * scale / TOKENS_PER_CHUNK / 60) if tpm else float("inf")
    return min(by_requests, by_tokens)


def bound(embedder, workers, cores_per_worker, scale):
    """(chunks/s, the stage that bounds it) for `workers` workers."""
    stages = {"chroma": CHROMA_CHUNKS_PER_S}
    if embedder == "local-int8":
        stages["local model"] = workers * cores_per_worker * LOCAL_INT8_PER_CORE
    elif embedder == "local-f32":
        stages["local model"] = workers * cores_per_worker * LOCAL_F32_PER_CORE
    else:
        stages[embedder + " limit"] = provider_rate(embedder, scale)
    name = min(stages, key=stages.get)
    return stages[name], name


def human(seconds):
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def daily_age(chunks_per_day, rate):
    """Replays one day minute by minute: a fetch every 6 h adds a quarter of the day's chunks;
    returns the longest a chunk waits (the age of the oldest announcement) and the backlog left."""
    backlog, oldest, worst = 0.0, None, 0
    for minute in range(24 * 60):
        if minute % 360 == 0:
            backlog += chunks_per_day / 4
            oldest = minute if oldest is None else oldest
        backlog = max(0.0, backlog - rate * 60)
        if backlog == 0:
            if oldest is not None:
                worst = max(worst, minute - oldest + 1)
            oldest = None
    if oldest is not None:
        worst = max(worst, 24 * 60 - oldest)
    return worst * 60, backlog


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    p.add_argument("--cores-per-worker", type=float, default=1.0,
                   help="vCPUs per worker (a 2048 MB Lambda has about 1.2)")
    p.add_argument("--provider-scale", type=float, default=1.0,
                   help="multiply the documented free-tier limits (a paid tier)")
    args = p.parse_args()

    daily_messages = 200_000
    daily_chunks = daily_messages / MESSAGES_PER_CHUNK
    backfill_chunks = 20_000_000 / MESSAGES_PER_CHUNK + 50_000 * 3
    print(f"daily: {daily_messages:,} messages -> {daily_chunks:,.0f} chunks; "
          f"backfill: 20M messages + 50k issues -> {backfill_chunks:,.0f} chunks "
          f"({backfill_chunks * TOKENS_PER_CHUNK / 1e6:,.0f}M tokens)")
    embedders = ["local-int8", "local-f32", *PROVIDERS]
    print(f"{'embedder':<14}{'workers':>8}{'chunks/s':>10}  {'bound by':<20}"
          f"{'backfill':>11}{'daily: oldest waits':>21}")
    for embedder in embedders:
        for workers in args.workers:
            rate, name = bound(embedder, workers, args.cores_per_worker, args.provider_scale)
            age, left = daily_age(daily_chunks, rate)
            daily = human(age) + (" (falls behind)" if left > 0 else "")
            print(f"{embedder:<14}{workers:>8}{rate:>10.1f}  {name:<20}"
                  f"{human(backfill_chunks / rate):>11}{daily:>21}")
            if not embedder.startswith("local"):
                break  # a provider's account limit does not grow with workers


if __name__ == "__main__":
    main()
