"""Search at scale: the project's ``search()`` and ``/search`` end to end, at 90k and 1M papers.

    python -m bench.bench_search_scale [--sizes 90k,1m] [--rounds R] [--e2e-rounds R] [--rebuild]

Builds (once, cached under ``bench/.data/``) a 90k database from the real corpus and a 1M one
(the corpus plus 10 generated variants of every paper: new id, date and authors, title and
abstract words perturbed with words drawn from the corpus itself, so term statistics stay
realistic), with the bulk path ``upsert_entries`` in batches of 50,000. On a store large enough
for it (``IndexSettings.min_papers``) the search index is built too (and cached next to the
database). Then, over a fixed query set (common single words, multi-word, phrases, OR,
exclusions, author filters, a prefix):

- ``search()`` (top 10) against a bare FTS5 bm25 top-10 query with the same MATCH expression on
  the same database, alternating (p50/p95 and their ratio). Round 0, where every query is new
  to the process (no cached row counts), is reported on its own (``first_round``);
- agreement: the average overlap of ``search()``'s top 10 with the exact bm25 top 10;
- end to end: a PaperBot (search cog) connected to the local Discord stand-in, in a fresh
  process state; ``/search`` is sent as an INTERACTION_CREATE and timed by the stand-in until the
  interaction callback reaches it (``callback_delay``).

Prints ``name: value`` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import random
import sqlite3
import statistics
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import aiohttp

from bot.config import Config
from bot.models import Entry, Paper
from bot.runtime.client import PaperBot
from bot.search.engine import BM25, SearchEngine
from bot.search.index import index_path
from bot.search.query import parse_query
from bot.sources.jsonl import iter_jsonl_file
from bot.store.connection import open_database
from bot.store.database import Database, connect
from bot.store.papers import upsert_entries
from standin import discord_py_pointed_at, running_bot, running_standin

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench/.data"
DEFAULT_CORPUS = ROOT.parent / "shared/data/corpus/papers_corpus.jsonl.gz"
BUILD_VERSION = 1  # bump when the generator changes: cached databases are rebuilt
BATCH = 50_000
SIZES = {"90k": 0, "1m": 10}  # generated copies of every corpus paper

# Realistic queries: common single words (which match a large share of the corpus), multi-word,
# phrases, OR, exclusions, prefixes and author filters.
QUERIES = [
    "model",
    "llm",
    "learning",
    "attention",
    "language",
    "data",
    "training",
    "diffusion",
    "reasoning",
    "benchmark",
    "large language models",
    "deep learning",
    "neural network",
    "reinforcement learning from human feedback",
    "mixture of experts",
    "retrieval augmented generation",
    "video generation",
    "speech recognition",
    "graph neural network",
    "robot manipulation",
    "kv cache compression",
    "vision language model hallucination",
    "federated learning privacy",
    "agent benchmark",
    "mamba state space",
    "medical image segmentation",
    "code generation",
    "time series forecasting",
    "3d gaussian splatting",
    "theorem proving",
    "protein",
    "transformer efficient inference",
    "multimodal large language model",
    "contrastive learning",
    "reward model",
    "autonomous driving",
    '"chain of thought"',
    '"large language models"',
    '"in-context learning"',
    '"diffusion model"',
    "text-to-image OR text-to-video",
    "llm OR language",
    "model OR learning",
    "quantization -survey",
    "learning -reinforcement",
    "model -language",
    "attention -transformer",
    "author:wang",
    "author:zhang learning",
    "quantiz*",
]


# -- building the databases -------------------------------------------------------------------


def corpus_entries(path: Path) -> list[Entry]:
    return list(iter_jsonl_file(path))


class Variants:
    """Generated variants of real papers: same vocabulary and lengths, different wording."""

    def __init__(self, entries: list[Entry], seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.papers = [entry.paper for entry in entries]
        self.title_words = [word for paper in self.papers for word in paper.title.split()]
        self.abstract_words = [
            word for paper in self.papers[::4] for word in paper.abstract.split()
        ]
        self.serial = 0

    def new_id(self) -> str:
        number = self.serial
        self.serial += 1
        month = number // 99_999
        return f"{10 + month // 12:02d}{1 + month % 12:02d}.{1 + number % 99_999:05d}"

    def _perturb(self, words: list[str], pool: list[str], share: float, swaps: int) -> str:
        rng = self.rng
        words = list(words)
        for _ in range(max(1, int(len(words) * share))) if words else ():
            words[rng.randrange(len(words))] = rng.choice(pool)
        for _ in range(swaps if len(words) > 1 else 0):
            i, j = rng.randrange(len(words)), rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
        if len(words) > 4 and rng.random() < 0.5:
            del words[rng.randrange(len(words))]
        return " ".join(words)

    def variant(self, paper: Paper) -> Paper:
        rng = self.rng
        sentences = [s for s in paper.abstract.split(". ") if s]
        rng.shuffle(sentences)
        abstract = ". ".join(
            self._perturb(s.split(), self.abstract_words, 0.15, 1) for s in sentences
        )
        other = rng.choice(self.papers)
        authors = list(paper.authors[: rng.randint(1, max(1, len(paper.authors)))])
        authors += other.authors[: rng.randint(0, 3)]
        published = date(2015, 1, 1) + timedelta(days=rng.randrange(11 * 365))
        return replace(
            paper,
            arxiv_id=self.new_id(),
            title=self._perturb(paper.title.split(), self.title_words, 0.25, 1),
            abstract=abstract,
            authors=tuple(dict.fromkeys(authors)),
            published=published,
            upvotes=rng.choice((None, None, None, rng.randrange(200))),
        )

    def stream(self, copies: int, batch: int) -> Iterator[list[Entry]]:
        for _ in range(copies):
            order = list(range(len(self.papers)))
            self.rng.shuffle(order)
            for start in range(0, len(order), batch):
                chunk = order[start : start + batch]
                yield [Entry(self.variant(self.papers[i]), None) for i in chunk]


async def _build(path: Path, entries: list[Entry], copies: int) -> None:
    async with open_database(path) as conn:
        db = Database(conn, path)
        for start in range(0, len(entries), BATCH):
            await upsert_entries(db, entries[start : start + BATCH])
        if copies:
            for number, batch in enumerate(Variants(entries).stream(copies, BATCH)):
                await upsert_entries(db, batch)
                if number % 4 == 3:
                    await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def build_database(name: str, corpus: Path, copies: int, rebuild: bool) -> tuple[Path, float]:
    """The cached database ``name`` (built if missing); returns (path, build seconds)."""
    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"{name}.db"
    stamp = DATA / f"{name}.json"
    wanted = {"version": BUILD_VERSION, "corpus": str(corpus), "copies": copies}
    if not rebuild and path.exists() and stamp.exists():
        recorded = json.loads(stamp.read_text())
        if {key: recorded.get(key) for key in wanted} == wanted:
            return path, float(recorded["build_seconds"])
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    entries = corpus_entries(corpus)
    started = time.perf_counter()
    asyncio.run(_build(path, entries, copies))
    seconds = time.perf_counter() - started
    del entries
    gc.collect()
    stamp.write_text(json.dumps({**wanted, "build_seconds": seconds}))
    return path, seconds


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _ms(values: list[float], fraction: float) -> str:
    return f"{1000 * percentile(values, fraction):.1f}"


# -- measuring --------------------------------------------------------------------------------


def _stamp(name: str) -> Path:
    return DATA / f"{name}.json"


async def prepare_index(engine: SearchEngine, db: Database, name: str) -> tuple[str, str]:
    """Build (or open and catch up) the search index if the store is large enough for one.

    Returns (build seconds, note) for the report.
    """
    row = await db.fetchone("SELECT count(*) FROM papers")
    if row[0] < engine.settings.min_papers:
        return "-", f"none (fewer than {engine.settings.min_papers} papers: FTS5 answers)"
    existed = (index_path(db.path) / "paperbot-state.json").exists()
    started = time.perf_counter()
    await engine.indexes.ensure(db)
    seconds = time.perf_counter() - started
    stamp = _stamp(name)
    recorded = json.loads(stamp.read_text()) if stamp.exists() else {}
    if existed:
        built = recorded.get("index_build_seconds")
        return (
            "?" if built is None else f"{built:.1f}",
            f"cached index, opened and synced in {seconds:.2f} s",
        )
    recorded["index_build_seconds"] = seconds
    stamp.write_text(json.dumps(recorded))
    return f"{seconds:.1f}", "built now"


def _size(path: Path) -> float:
    if path.is_dir():
        return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())
    return path.stat().st_size if path.exists() else 0.0


async def bare_top(db: Database, expression: str) -> list[int]:
    rows = await db.fetchall(
        f"SELECT rowid, {BM25} AS score FROM papers_fts WHERE papers_fts MATCH ? "
        "ORDER BY score LIMIT 10",
        (expression,),
    )
    return [row[0] for row in rows]


async def measure_search(engine: SearchEngine, db: Database, rounds: int) -> dict[str, object]:
    """``search()`` against the bare bm25 query, alternating, plus agreement."""
    project: list[float] = []
    bare: list[float] = []
    first_round: list[float] = []
    overlaps: list[float] = []
    fast = 0
    expressions = [parse_query(text).to_fts() for text in QUERIES]
    for round_number in range(rounds + 1):  # round 0: every query seen for the first time
        for text, expression in zip(QUERIES, expressions, strict=True):
            started = time.perf_counter()
            result = await engine.search(db, text, limit=10)
            elapsed = time.perf_counter() - started
            (first_round if round_number == 0 else project).append(elapsed)
            started = time.perf_counter()
            exact = await bare_top(db, expression)
            if round_number > 0:
                bare.append(time.perf_counter() - started)
            if round_number == 0:
                found = {hit.paper.arxiv_id for hit in result.hits}
                wanted = await db.fetchall(
                    f"SELECT arxiv_id FROM papers WHERE id IN ({','.join('?' * len(exact))})",
                    exact,
                )
                overlaps.append(
                    len(found & {row[0] for row in wanted}) / len(exact) if exact else 1.0
                )
                if await engine.indexes.ranked(db, parse_query(text), 10, 0) is not None:
                    fast += 1
    return {
        "project": project,
        "bare": bare,
        "first_round": first_round,
        "overlaps": overlaps,
        "fast": fast,
    }


async def measure_end_to_end(path: Path, rounds: int) -> dict[str, list[float]]:
    """/search through the Discord stand-in: INTERACTION_CREATE to the callback arriving."""
    config = Config()
    config.database.path = str(path)
    config.discord_token = "unused"
    delays: list[float] = []
    first_round: list[float] = []
    walls: list[float] = []
    async with running_standin() as standin, aiohttp.ClientSession() as session:
        with discord_py_pointed_at(standin.url):
            async with connect(path) as db:
                bot = PaperBot(
                    config=config,
                    db=db,
                    session=session,
                    cogs=("cogs.search",),
                    search=SearchEngine(),  # a fresh bot process: no cached row counts
                    guild_ready_timeout=0.1,
                    chunk_guilds_at_startup=False,
                )
                async with running_bot(bot, standin.token):
                    bot.config.discord.command_guild_ids = [standin.guild.id]
                    await bot.sync_commands()
                    for round_number in range(rounds + 1):
                        for text in QUERIES:
                            started = time.perf_counter()
                            handle = await standin.slash("search", {"query": text})
                            await handle.wait_callback(timeout=60)
                            walls.append(time.perf_counter() - started)
                            delay = handle.callback_delay or 0.0
                            (first_round if round_number == 0 else delays).append(delay)
                await bot.close()
    return {"warm": delays, "first_round": first_round, "wall": walls}


def report(size: str, path: Path, build: float, rounds: int, e2e_rounds: int) -> None:
    name = path.stem
    print(f"{size}_papers: {_papers(path)}")
    print(f"{size}_build_seconds: {build:.1f}")
    print(f"{size}_database_mb: {_size(path) / 1e6:.0f}")

    async def in_process() -> dict[str, object]:
        with SearchEngine() as engine:  # as the bot's
            async with connect(path) as db:
                seconds, note = await prepare_index(engine, db, name)
                print(f"{size}_index_build_seconds: {seconds} ({note})")
                print(f"{size}_index_mb: {_size(index_path(path)) / 1e6:.0f}")
                return await measure_search(engine, db, rounds)

    measured = asyncio.run(in_process())
    project, bare = measured["project"], measured["bare"]
    for label, values in (("project", project), ("bare", bare)):
        print(f"{size}_search_{label}_p50_ms: {_ms(values, 0.5)}")  # type: ignore[arg-type]
        print(f"{size}_search_{label}_p95_ms: {_ms(values, 0.95)}")  # type: ignore[arg-type]
    for label, fraction in (("p50", 0.5), ("p95", 0.95)):
        ratio = percentile(project, fraction) / percentile(bare, fraction)  # type: ignore[arg-type]
        print(f"{size}_search_ratio_{label}_project_to_bare: {ratio:.2f}")
    first = measured["first_round"]
    print(f"{size}_search_project_first_round_p50_ms: {_ms(first, 0.5)}")  # type: ignore[arg-type]
    print(f"{size}_search_project_first_round_p95_ms: {_ms(first, 0.95)}")  # type: ignore[arg-type]
    overlaps: list[float] = measured["overlaps"]  # type: ignore[assignment]
    print(f"{size}_agreement_top10_avg: {statistics.mean(overlaps):.3f} (target >= 0.90)")
    print(f"{size}_agreement_top10_min: {min(overlaps):.1f}")
    print(f"{size}_queries_on_fast_path: {measured['fast']}/{len(QUERIES)}")

    end_to_end = asyncio.run(measure_end_to_end(path, e2e_rounds))
    warm, first_e2e = end_to_end["warm"], end_to_end["first_round"]
    print(f"{size}_e2e_p50_ms: {_ms(warm, 0.5)}")
    print(f"{size}_e2e_p95_ms: {_ms(warm, 0.95)} (target at 1m: <= 100)")
    print(f"{size}_e2e_first_round_p50_ms: {_ms(first_e2e, 0.5)}")
    print(f"{size}_e2e_first_round_p95_ms: {_ms(first_e2e, 0.95)}")
    every = warm + first_e2e
    print(f"{size}_e2e_all_rounds_p95_ms: {_ms(every, 0.95)}")
    print(f"{size}_e2e_max_ms: {1000 * max(every):.1f}")


def _papers(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM papers").fetchone()[0])
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--sizes", default="90k,1m", help="comma-separated: 90k, 1m")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds after the first")
    parser.add_argument("--e2e-rounds", type=int, default=2, help="/search rounds after the first")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached databases")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("discord").setLevel(logging.ERROR)
    print(f"queries: {len(QUERIES)}")
    for size in args.sizes.split(","):
        copies = SIZES[size]
        path, seconds = build_database(f"papers_{size}", args.corpus, copies, args.rebuild)
        report(size, path, seconds, args.rounds, args.e2e_rounds)


if __name__ == "__main__":
    main()
