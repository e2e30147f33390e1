"""What a drift check costs: the first look (prompts embedded) against later looks (cached).

    .venv/bin/python bench/drift_check.py [--requests 1200] [--recent 200] [--reference 1000]

A real SQLite store in a temporary folder gets ``--requests`` logged chat requests (short
Indonesian and English questions, varied lengths and thumbs); ``check`` then runs three times
with the bundled multilingual-e5-small. The anchor, measured in the same run, is the same
model embedding the same texts directly in one call per batch of 32: the first check's ratio
to it is what reading windows, caching vectors and four tests add on top of embedding. Later
checks embed nothing; their ratio to the first shows what the cache saves.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from fondasi.monitor import FeedbackRecord, RequestRecord, Store
from fondasi.monitor.drift import DriftConfig, check, load_embedder
from fondasi.monitor.drift_signals import input_text
from fondasi.settings import Settings

ASKS = [
    "Bagaimana cara memasak {d} yang enak?",
    "Berapa ongkos kirim {d} ke Surabaya?",
    "What is the interest rate on a {d}?",
    "How do I return a {d} I bought online?",
]
THINGS = ["rendang", "nasi goreng", "mortgage", "credit card", "laptop", "sepatu", "kopi"]
# Signatures make most prompts unique, drawn the same way in both windows (no drift).
SIGNED = [
    f"{greeting}, {name}"
    for greeting in ("Terima kasih", "Thanks", "Salam", "Best")
    for name in (
        "Budi",
        "Siti",
        "Ana",
        "Joko",
        "Dewi",
        "Rina",
        "Agus",
        "Tom",
        "Lee",
        "Eko",
        "Putri",
        "Wayan",
        "Made",
        "Sam",
        "Nina",
    )
]


def records(n: int, now: float) -> list[RequestRecord | FeedbackRecord]:
    """``n`` chat requests a second apart, ending now, with a thumb on every third."""
    rng = random.Random(0)
    out: list[RequestRecord | FeedbackRecord] = []
    for i in range(n):
        text = f"{rng.choice(ASKS).format(d=rng.choice(THINGS))} {rng.choice(SIGNED)}"
        rid = f"chatcmpl-bench-{i}"
        out.append(
            RequestRecord(
                id=rid,
                ts=now - n + i,
                route="chat",
                model="bot",
                status=200,
                latency_ms=100.0,
                completion_tokens=rng.randint(10, 80),
                prompt_text=json.dumps([{"role": "user", "content": text}]),
                response_text="Tentu.",
            )
        )
        if i % 3 == 0:
            out.append(FeedbackRecord(response_id=rid, ts=now, rating=rng.choice([1, 1, -1])))
    return out


def main() -> None:
    """Time the anchor and three checks; print seconds and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1200)
    parser.add_argument("--recent", default="200")
    parser.add_argument("--reference", default="1000")
    args = parser.parse_args()
    settings = Settings.load()
    # Two instances: each keeps its own in-memory cache of vectors, so the check cannot
    # reuse what the anchor embedded.
    anchor_embed = load_embedder("multilingual-e5-small", settings)
    embed = load_embedder("multilingual-e5-small", settings)
    config = DriftConfig(recent=args.recent, reference=args.reference)
    with tempfile.TemporaryDirectory() as folder:
        store = Store(str(Path(folder) / "bench.db"))
        now = time.time()
        store.write(records(args.requests, now))
        samples = store.samples("bot", limit=args.requests)  # newest first
        recent = samples[: int(args.recent)][: config.max_embed]
        reference = samples[int(args.recent) :][: config.max_embed]
        texts = [input_text(s) or "" for s in recent + reference]  # what the check embeds
        anchor_embed(["pemanasan"])  # load the weights outside every timing
        embed(["pemanasan"])
        start = time.perf_counter()
        for first in range(0, len(texts), 32):
            anchor_embed(texts[first : first + 32])
        anchor = time.perf_counter() - start
        timings = []
        for _ in range(3):
            start = time.perf_counter()
            result = check(store, "bot", config, embed, "multilingual-e5-small", now=now + 1)
            timings.append(time.perf_counter() - start)
        store.close()
    print(f"{len(texts)} prompts embedded directly (anchor): {anchor:.2f} s")
    print(f"first check (embeds them):  {timings[0]:.2f} s  = {timings[0] / anchor:.2f}x anchor")
    for n, took in enumerate(timings[1:], 2):
        print(f"check {n} (cached vectors):  {took:.2f} s  = {took / timings[0]:.3f}x first check")
    flags = ", ".join(result.flagged) or "none"
    shift = result.signals[0].note
    print(
        f"windows {result.reference.requests}/{result.recent.requests}; {shift}; flagged: {flags}"
    )


if __name__ == "__main__":
    main()
