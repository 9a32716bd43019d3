"""Retrieval benchmark for /ask: bm25 alone vs hybrid (bm25 + embeddings), plus enrichment speed.

    python -m bench.bench_retrieval [--embedder auto|local|fake] [--db FILE] [--k 3]

Data (in the repo, nothing else needed): ``bench/data/papers.jsonl.gz`` (2,000 real arXiv
records: every Hugging Face Daily Paper of 2024-10..2025-02 in the corpus plus a random
sample of 2025-03 papers as distractors) and ``bench/questions.jsonl`` (questions written in
plain, paraphrased words, each with the arXiv id that answers it, plus off-topic questions
that no paper answers). Reports hit@1, hit@3 and MRR@10 for both methods in the same run,
how many off-topic questions are flagged as not covered, query latency, and the enrichment
throughput against the local fake OpenAI-compatible server. Prints ``name: value`` lines.

The embedder is the local all-MiniLM-L6-v2 when ``paperbot[embeddings]`` is installed
(``auto``), else the fake server's hashed bag-of-words vectors (``fake``: a lexical
baseline, not a semantic model). ``--db`` keeps the store and its vectors between runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bot.config import LLMConfig
from bot.db.database import Database, connect
from bot.db.papers import get_papers
from bot.embeddings import (
    Embedder,
    EndpointEmbedder,
    LocalEmbedder,
    count_missing,
    embed_missing,
    local_embedder_available,
)
from bot.enrich import enrich_papers
from bot.ingest import ingest
from bot.llm import LLMClient
from bot.retrieval import retrieve
from bot.sources.jsonl import read_jsonl_file
from tests.llm_server import FakeLLMServer, enrichment_responder

HERE = Path(__file__).resolve().parent
DEFAULT_PAPERS = HERE / "data" / "papers.jsonl.gz"
DEFAULT_QUESTIONS = HERE / "questions.jsonl"
DEPTH = 10  # MRR@10


@dataclass
class Scores:
    ranks: list[int | None] = field(default_factory=list)  # rank of the first right paper
    seconds: list[float] = field(default_factory=list)
    misses: list[str] = field(default_factory=list)

    def hit(self, k: int) -> float:
        return sum(1 for r in self.ranks if r is not None and r <= k) / len(self.ranks)

    def mrr(self) -> float:
        return sum(1.0 / r for r in self.ranks if r is not None) / len(self.ranks)


def load_questions(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


async def build_store(db: Database, papers: Path) -> tuple[int, float]:
    entries = read_jsonl_file(papers)
    started = time.perf_counter()
    result = await ingest(db, entries)
    return result.new + result.updated + result.unchanged, time.perf_counter() - started


async def score(
    db: Database, questions: list[dict], embedder: Embedder | None, k: int
) -> tuple[Scores, int, int]:
    scores = Scores()
    off_topic = rejected = 0
    await retrieve(db, "warm up the caches and the model", embedder=embedder)  # not timed
    for item in questions:
        started = time.perf_counter()
        results = await retrieve(db, item["question"], embedder=embedder, k=DEPTH)
        scores.seconds.append(time.perf_counter() - started)
        if item.get("off_topic"):
            off_topic += 1
            rejected += not any(r.relevant for r in results[:k])
            continue
        wanted = set(item["ids"])
        ids = [r.paper.arxiv_id for r in results]
        rank = next((n for n, pid in enumerate(ids, start=1) if pid in wanted), None)
        scores.ranks.append(rank)
        if rank is None or rank > k:
            scores.misses.append(f"{item['ids'][0]} rank={rank}: {item['question']}")
    return scores, off_topic, rejected


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench_enrichment(db: Database, count: int, concurrency: int) -> None:
    """Enrich ``count`` stored papers against the fake server (measures our own overhead)."""
    rows = await db.fetchall("SELECT arxiv_id FROM papers ORDER BY id LIMIT ?", (count,))
    papers = list((await get_papers(db, [row[0] for row in rows])).values())
    async with FakeLLMServer() as server:
        server.responder = enrichment_responder()
        config = LLMConfig(
            base_url=server.base_url,
            model="fake-chat",
            concurrency=concurrency,
            timeout=30.0,
            daily_token_budget=0,
        )
        async with LLMClient(config, db=db, max_retries=0) as client:
            report = await enrich_papers(db, client, papers, force=True)
    print(f"enrich_papers: {report.enriched} (failed {report.failed})")
    print(f"enrich_concurrency: {concurrency}")
    print(f"enrich_papers_per_s: {report.papers_per_second:.1f} (local fake server)")
    print(f"enrich_tokens: {report.tokens}")


async def run(args: argparse.Namespace) -> None:
    questions = load_questions(args.questions)
    answerable = [q for q in questions if not q.get("off_topic")]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(args.db) if args.db else Path(tmp) / "bench.db"
        fresh = not path.exists()
        async with connect(path) as db:
            if fresh:
                count, seconds = await build_store(db, args.papers)
                print(f"papers: {count}")
                print(f"ingest_seconds: {seconds:.1f}")
            else:
                row = await db.fetchone("SELECT count(*) FROM papers")
                print(f"papers: {row[0]} (reused {path})")
            print(f"questions: {len(answerable)} (+{len(questions) - len(answerable)} off-topic)")

            server: FakeLLMServer | None = None
            client: LLMClient | None = None
            use_local = args.embedder == "local" or (
                args.embedder == "auto" and local_embedder_available()
            )
            if use_local:
                embedder: Embedder = LocalEmbedder()
            else:
                server = await FakeLLMServer().start()
                client = LLMClient(
                    LLMConfig(base_url=server.base_url, embedding_model="fake-embed"), db=db
                )
                embedder = EndpointEmbedder(client)
            try:
                print(f"embedder: {embedder.name}")
                missing = await count_missing(db, embedder)
                started = time.perf_counter()
                embedded = await embed_missing(db, embedder)
                seconds = time.perf_counter() - started
                if embedded:
                    print(f"embed_papers_per_s: {embedded / seconds:.1f} ({embedded} papers)")
                else:
                    print(f"embed_papers_per_s: - (all {missing} vectors stored already)")

                bm25, off_total, bm25_rejected = await score(db, questions, None, args.k)
                hybrid, _, hybrid_rejected = await score(db, questions, embedder, args.k)
            finally:
                if client is not None:
                    await client.close()
                if server is not None:
                    await server.stop()

            for name, result, rejected in (
                ("bm25", bm25, bm25_rejected),
                ("hybrid", hybrid, hybrid_rejected),
            ):
                print(f"{name}_hit@1: {result.hit(1):.3f}")
                print(f"{name}_hit@{args.k}: {result.hit(args.k):.3f}")
                print(f"{name}_mrr@{DEPTH}: {result.mrr():.3f}")
                print(f"{name}_query_p50_ms: {1000 * statistics.median(result.seconds):.1f}")
                print(f"{name}_query_p95_ms: {1000 * percentile(result.seconds, 0.95):.1f}")
                print(f"{name}_off_topic_flagged: {rejected}/{off_total}")
            target = hybrid.hit(args.k) >= 0.97 and hybrid.hit(args.k) > bm25.hit(args.k)
            print(
                f"hybrid_target (hit@{args.k} >= 0.97 and above bm25): "
                f"{'met' if target else 'NOT met'}"
            )
            if args.verbose:
                for name, result in (("bm25", bm25), ("hybrid", hybrid)):
                    for miss in result.misses:
                        print(f"{name}_miss: {miss}")
            if args.enrich:
                await bench_enrichment(db, args.enrich, args.concurrency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--papers", type=Path, default=DEFAULT_PAPERS)
    parser.add_argument("--questions", type=Path, default=DEFAULT_QUESTIONS)
    parser.add_argument("--embedder", choices=("auto", "local", "fake"), default="auto")
    parser.add_argument("--db", help="keep the store (and its vectors) in this file")
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--enrich", type=int, default=200, help="papers to enrich (0: skip)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("-v", "--verbose", action="store_true", help="list the misses")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
