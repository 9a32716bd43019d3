"""Subscription matching benchmark: the indexed matcher against the plain per-subscription loop.

    python -m bench.bench_matching [--subscriptions N] [--guilds G] [--rounds R] [--corpus FILE]

Generates N subscriptions across G guilds (tags from the classifier's labels, keyword queries
from real-looking vocabulary with phrases, OR, exclusions, prefixes and tag filters, author
names from the corpus) and a 50-paper day (real papers when the corpus exists, with derived
bullets and tags as ingest gives them). Times the index build, ``SubscriptionIndex.match`` (p50
over R rounds, day table included; wall and CPU time), reading every result once, one guild's
``match_feed`` on a prepared day, and the plain loop of
:func:`bot.subscriptions.matching.reference_match`
(one MATCH per subscription), checks that both give the same matches and prints ``name: value``
lines.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):  # run as a script: python bench/bench_matching.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.errors import InputError
from bot.labels import LABELS
from bot.models import Entry, Paper, Subscription
from bot.sources.ingest import prepare
from bot.sources.jsonl import iter_jsonl_file
from bot.subscriptions.matching import (
    DayIndex,
    MatchStats,
    SubscriptionIndex,
    Tokenizer,
    match_feed,
)
from bot.subscriptions.matching import reference_match as naive_match
from bot.subscriptions.rules import prepare_subscription

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared/data/corpus/papers_corpus.jsonl.gz"
TARGET_MATCH_MS = 50
DAY_SIZE = 50

KEYWORDS = [
    "diffusion",
    "diffusion models",
    "video generation",
    "text-to-image",
    "image editing",
    "large language models",
    "llm",
    "llm agents",
    "agents",
    "multi-agent",
    "reasoning",
    "chain of thought",
    "mathematical reasoning",
    "theorem proving",
    "code generation",
    "reinforcement learning",
    "rlhf",
    "reward model",
    "preference optimization",
    "dpo",
    "retrieval augmented generation",
    "rag",
    "retrieval",
    "embeddings",
    "long context",
    "kv cache",
    "quantization",
    "pruning",
    "distillation",
    "mixture of experts",
    "moe",
    "state space models",
    "mamba",
    "transformer",
    "attention",
    "sparse attention",
    "speculative decoding",
    "inference efficiency",
    "benchmark",
    "evaluation",
    "hallucination",
    "alignment",
    "safety",
    "jailbreak",
    "red teaming",
    "privacy",
    "federated learning",
    "vision language models",
    "multimodal",
    "visual question answering",
    "ocr",
    "document understanding",
    "3d gaussian splatting",
    "nerf",
    "3d reconstruction",
    "point cloud",
    "depth estimation",
    "pose estimation",
    "object detection",
    "segmentation",
    "medical imaging",
    "medical image segmentation",
    "remote sensing",
    "autonomous driving",
    "robotics",
    "robot manipulation",
    "embodied ai",
    "navigation",
    "world models",
    "speech recognition",
    "text-to-speech",
    "audio generation",
    "music generation",
    "time series forecasting",
    "graph neural networks",
    "knowledge graphs",
    "recommendation",
    "tabular data",
    "protein",
    "drug discovery",
    "molecule generation",
    "weather forecasting",
    "climate",
    "physics-informed neural networks",
    "neural operators",
    "continual learning",
    "meta-learning",
    "few-shot learning",
    "self-supervised learning",
    "contrastive learning",
    "representation learning",
    "interpretability",
    "mechanistic interpretability",
    "sparse autoencoders",
    "tokenizer",
    "multilingual",
    "machine translation",
    "summarization",
    "question answering",
    "information extraction",
    "fact checking",
    "misinformation",
    "education",
    "legal",
    "finance",
    "healthcare",
    "clinical notes",
    "scientific discovery",
    "synthetic data",
    "data curation",
    "dataset",
    "scaling laws",
    "optimizer",
    "adam",
    "low-rank adaptation",
    "lora",
    "fine-tuning",
    "instruction tuning",
    "in-context learning",
    "prompt engineering",
    "tool use",
    "function calling",
    "web agents",
    "gui agents",
    "computer use",
    "planning",
    "search",
    "monte carlo tree search",
    "game",
    "chess",
    "uncertainty",
    "calibration",
    "robustness",
    "adversarial attacks",
    "watermarking",
    "deepfake detection",
    "federated",
    "edge devices",
    "on-device",
    "energy efficiency",
    "hardware",
    "fpga",
    "compiler",
    "gpu kernels",
    "distributed training",
    "pipeline parallelism",
    "gaussian processes",
    "bayesian optimization",
    "causal inference",
    "counterfactual",
    "fairness",
    "bias",
    "emotion recognition",
    "sign language",
    "video understanding",
    "temporal grounding",
    "action recognition",
    "tracking",
    "super-resolution",
    "denoising",
    "image restoration",
    "inpainting",
    "style transfer",
    "avatar",
    "human motion",
    "motion generation",
    "talking head",
    "lip sync",
    "4d",
    "scene understanding",
]
EXTRA_WORDS = ["survey", "benchmark", "video", "medical", "efficient", "real-time", "open"]


def load_day(path: Path, seed: int) -> tuple[list[Paper], list[str], str]:
    """50 papers for the day and an author pool (the corpus if present, else generated)."""
    rng = random.Random(seed)
    if path.exists():
        entries = list(itertools.islice(iter_jsonl_file(path), 3000))
        day = rng.sample(entries, DAY_SIZE)
        authors = sorted({name for entry in entries for name in entry.paper.authors})
        return [entry.paper for entry in prepare(day)], authors, path.name
    authors = [f"Author Number{n}" for n in range(3000)]
    papers = []
    for n in range(DAY_SIZE):
        words = rng.sample(KEYWORDS, 6)
        papers.append(
            Paper(
                f"2501.{n:05d}",
                title=" ".join(words[:2]).title(),
                authors=tuple(rng.sample(authors, 5)),
                abstract="We study " + ", ".join(words) + ". " + " ".join(rng.sample(KEYWORDS, 20)),
            )
        )
    return [entry.paper for entry in prepare(Entry(p) for p in papers)], authors, "generated"


def _keyword_query(rng: random.Random) -> str:
    a, b = rng.sample(KEYWORDS, 2)
    roll = rng.random()
    if roll < 0.45:
        return a
    if roll < 0.60:
        return f'"{a}"' if " " in a else a
    if roll < 0.72:
        return f"{a} OR {b}"
    if roll < 0.82:
        return f"{a} -{rng.choice(EXTRA_WORDS)}"
    if roll < 0.90:
        return f"{a} {rng.choice(EXTRA_WORDS)}"
    if roll < 0.95:
        word = rng.choice(a.split())
        return word[: max(3, len(word) - 3)] + "*"
    return f'{a} tag:"{rng.choice(LABELS)}"'


def generate_subscriptions(
    count: int, guilds: int, authors: list[str], day: list[Paper], seed: int
) -> list[Subscription]:
    """``count`` valid, distinct subscriptions: ~40% tags, ~45% keywords, ~15% authors."""
    rng = random.Random(seed)
    day_authors = [name for paper in day for name in paper.authors]
    prepared: dict[tuple[str, str], Subscription | None] = {}
    seen: set[tuple] = set()
    subs: list[Subscription] = []
    with Tokenizer() as tokenizer:
        while len(subs) < count:
            guild = rng.randrange(guilds)
            roll = rng.random()
            if roll < 0.40:
                kind, value = "tag", rng.choice(LABELS)
            elif roll < 0.85:
                kind, value = "keyword", _keyword_query(rng)
            else:
                pool = day_authors if rng.random() < 0.05 else authors
                kind, value = "author", rng.choice(pool)
            if (kind, value) not in prepared:
                try:
                    prepared[kind, value] = prepare_subscription(
                        0, 0, kind, value, tokenizer=tokenizer
                    )
                except InputError:
                    prepared[kind, value] = None
            template = prepared[kind, value]
            if template is None:
                continue
            if rng.random() < 0.05:  # a role, subscribed for one of the guild's two feeds
                subscriber_type, subscriber, feed, dm = (
                    "role",
                    10_000_000 + guild * 10 + rng.randrange(3),
                    guild * 2 + rng.randrange(2),
                    False,
                )
            else:
                subscriber_type, subscriber = "user", guild * 1000 + rng.randrange(70)
                feed, dm = None, rng.random() < 0.1
            ident = (guild, subscriber_type, subscriber, kind, template.norm, feed)
            if ident in seen:
                continue
            seen.add(ident)
            subs.append(
                replace(
                    template,
                    guild_id=guild,
                    subscriber_id=subscriber,
                    subscriber_type=subscriber_type,
                    feed_id=feed,
                    dm=dm,
                    id=len(subs) + 1,
                )
            )
    return subs


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--guilds", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args(argv)

    day, authors, source = load_day(args.corpus, args.seed)
    started = time.perf_counter()
    subs = generate_subscriptions(args.subscriptions, args.guilds, authors, day, args.seed)
    generated = time.perf_counter() - started
    kinds = {kind: sum(1 for s in subs if s.kind == kind) for kind in ("tag", "keyword", "author")}

    builds = []
    for _ in range(3):
        started = time.perf_counter()
        index = SubscriptionIndex.build(subs)
        builds.append(time.perf_counter() - started)

    stats = MatchStats()
    result = index.match(day, stats=stats)  # warm-up, and the counts reported below
    rounds, cpu_rounds, read_rounds, day_builds, guild_rounds = [], [], [], [], []
    for _ in range(args.rounds):
        started, cpu_started = time.perf_counter(), time.process_time()
        matches = index.match(day)
        rounds.append(time.perf_counter() - started)
        cpu_rounds.append(time.process_time() - cpu_started)
        started = time.perf_counter()
        sum(len(papers) for papers in matches.values())  # what sending mentions will read
        read_rounds.append(time.perf_counter() - started)
        started = time.perf_counter()
        with DayIndex(day) as prepared:
            day_builds.append(time.perf_counter() - started)
            guild = random.Random(len(rounds)).randrange(args.guilds)
            started = time.perf_counter()
            match_feed(index, guild * 2, guild, prepared)
            guild_rounds.append(time.perf_counter() - started)

    started = time.perf_counter()
    expected = naive_match(subs, day)
    naive = time.perf_counter() - started
    assert result == expected, "the index and the plain loop disagree"
    match_p50 = statistics.median(rounds)

    pairs = sum(len(papers) for papers in result.values())
    lines = {
        "corpus": source,
        "papers": len(day),
        "subscriptions": len(subs),
        "subscriptions_tag": kinds["tag"],
        "subscriptions_keyword": kinds["keyword"],
        "subscriptions_author": kinds["author"],
        "guilds": args.guilds,
        "distinct_queries": len({(s.kind, s.norm) for s in subs if s.kind != "tag"}),
        "generate_s": round(generated, 2),
        "build_ms_p50": _ms(statistics.median(builds)),
        "day_index_ms_p50": _ms(statistics.median(day_builds)),
        "match_ms_p50": _ms(match_p50),
        "match_ms_min": _ms(min(rounds)),
        "match_ms_max": _ms(max(rounds)),
        # CPU time of this process: less sensitive to other processes sharing the cores.
        "match_cpu_ms_p50": _ms(statistics.median(cpu_rounds)),
        "match_cpu_ms_min": _ms(min(cpu_rounds)),
        "read_all_results_ms_p50": _ms(statistics.median(read_rounds)),
        "match_and_read_ms_p50": _ms(
            statistics.median(a + b for a, b in zip(rounds, read_rounds, strict=True))
        ),
        "match_one_guild_ms_p50": _ms(statistics.median(guild_rounds)),
        "candidate_queries": stats.candidates,
        "evaluated_queries": len(stats.evaluated_queries),
        "match_statements": stats.match_calls,
        "subscribers_matched": len(result),
        "subscriber_paper_pairs": pairs,
        "naive_ms": _ms(naive),
        "speedup_vs_naive": f"{naive / match_p50:.1f}x",
        "target_match_ms": TARGET_MATCH_MS,
        "agree": "yes",
        # Other processes on the machine inflate every timing above: say how busy it was.
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    for name, value in lines.items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
