"""The data commands: fetch, import, export, digest, search, db."""

from __future__ import annotations

import argparse
import json
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack, aclosing, contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from bot.config import Config, FeedConfig
from bot.delivery.feeds import feed_filters
from bot.digest.render import digest_messages, render_text
from bot.digest.select import select_for_channel
from bot.errors import InputError, PaperbotError
from bot.search.engine import SearchEngine
from bot.sources.jsonl import dump_jsonl
from bot.sources.markdown import render_markdown
from bot.store.connection import migrate
from bot.store.database import Database, connect
from bot.store.papers import iter_all_entries, papers_for_day, store_stats, tag_counts


def _days(args: argparse.Namespace) -> list[date]:
    if args.date:
        return [args.date]
    until = args.until or datetime.now(UTC).date()
    if args.since > until:
        raise InputError(f"--since {args.since} is after --until {until}")
    return [args.since + timedelta(days=n) for n in range((until - args.since).days + 1)]


@contextmanager
def _output(path: str | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        with open(path, "w", encoding="utf-8", newline="\n") as handle:
            yield handle
    except OSError as exc:
        raise PaperbotError(f"cannot write {path}: {exc}") from exc


async def fetch_command(args: argparse.Namespace, config: Config) -> int:
    import aiohttp
    from tqdm import tqdm

    from bot.llm.client import LLMClient
    from bot.llm.embeddings import embed_new, make_embedder
    from bot.llm.enrich import enrich_ids
    from bot.sources.fetch import Fetcher
    from bot.sources.http import USER_AGENT
    from bot.sources.ingest import ingest

    days = _days(args)
    failures = 0
    async with (
        connect(config.database.path) as db,
        aiohttp.ClientSession(headers={"User-Agent": USER_AGENT}) as session,
        AsyncExitStack() as stack,
    ):
        # With an LLM endpoint configured, newly stored papers are summarised on ingest;
        # with an embedder (the local one by default), they are embedded too.
        llm = None
        if config.llm_enabled:
            llm = await stack.enter_async_context(LLMClient.from_config(config, db=db))
        embedder = make_embedder(config, llm)
        fetcher = Fetcher(session, config)
        progress = tqdm(days, desc=f"fetch {args.source}", unit="day", disable=len(days) < 2)
        for day in progress:
            try:
                entries = await fetcher.fetch_day(args.source, day)
            except PaperbotError as exc:
                if len(days) == 1:
                    raise  # one day: its error is the one line
                failures += 1
                tqdm.write(f"paperbot: {day}: {exc}", file=sys.stderr)
                continue
            result = await ingest(db, entries)
            enriched = ""
            if embedder is not None and result.new_ids:
                try:
                    enriched = f"; {await embed_new(db, embedder, result.new_ids)} embedded"
                except (PaperbotError, OSError, RuntimeError) as exc:
                    enriched = "; not embedded (run paperbot embed later)"
                    tqdm.write(f"paperbot: embedding failed: {exc}", file=sys.stderr)
            if llm is not None and result.new_ids:
                report = await enrich_ids(db, llm, result.new_ids)
                enriched = f"; LLM: {report.enriched} summarised, {report.failed} failed"
            tqdm.write(
                f"{day} {args.source}: {len(entries)} papers "
                f"({result.new} new, {result.updated} updated{enriched})"
            )
    if failures:
        raise PaperbotError(f"{failures} of {len(days)} days could not be fetched (see above)")
    return 0


async def import_command(args: argparse.Namespace, config: Config) -> int:
    from bot.sources.archive import import_files

    async with connect(config.database.path) as db:
        results = await import_files(db, args.files, keep_going=args.keep_going)
    failed = [item for item in results if item.error is not None]
    for item in results:
        if item.error is None:
            print(item.summary())
        else:
            print(f"paperbot: not imported: {item.name}: {item.error}", file=sys.stderr)
    if failed:
        raise PaperbotError(
            f"{len(failed)} of {len(results)} files could not be imported (listed above); "
            f"the other {len(results) - len(failed)} were imported"
        )
    return 0


async def export_command(args: argparse.Namespace, config: Config) -> int:
    since = args.date or args.since
    until = args.date or args.until
    async with connect(config.database.path) as db:
        with _output(args.output) as out:
            if args.format == "jsonl":
                # aclosing: a closed pipe must not leave the cursor open past the database.
                async with aclosing(iter_all_entries(db, since, until)) as papers:
                    async for paper, listings in papers:
                        out.write(dump_jsonl(paper, listings) + "\n")
            else:
                from bot.sources.archive import export_markdown

                async for section in export_markdown(db, since, until):
                    out.write(section)
    return 0


def _find_feed(config: Config, wanted: str | None) -> FeedConfig | None:
    if wanted is None:
        return None
    for feed in config.feeds:
        if wanted in (feed.name, str(feed.channel_id)):
            return feed
    names = ", ".join(feed.name or str(feed.channel_id) for feed in config.feeds) or "none"
    raise InputError(f"no configured feed named {wanted!r} (configured: {names})")


async def digest_command(args: argparse.Namespace, config: Config) -> int:
    feed = _find_feed(config, args.feed)
    sources = tuple(feed.sources) if feed else None
    filters = feed_filters(feed, config) if feed else feed_filters(None, config)
    async with connect(config.database.path) as db:
        listed = await papers_for_day(db, args.date, sources)
    papers = select_for_channel([item.paper for item in listed], filters)
    if args.format == "markdown":
        sys.stdout.write(render_markdown([(args.date, papers)]))
    elif args.format == "text":
        sys.stdout.write(render_text(args.date, papers))
    else:
        layout = feed.layout if feed else "compact"
        messages = digest_messages(args.date, papers, layout=layout)
        sys.stdout.write(json.dumps(messages, indent=2, ensure_ascii=False) + "\n")
    return 0


async def search_command(args: argparse.Namespace, config: Config) -> int:
    # A one-shot command never starts the background build of a large store's search index:
    # it would exit long before a build of minutes completes (FTS5 answers meanwhile).
    with SearchEngine(auto_build=False) as engine:
        async with connect(config.database.path) as db:
            if args.list_tags:
                for tag, count in await tag_counts(db):
                    print(f"{count:7d}  {tag}")
                return 0
            result = await engine.search(
                db,
                " ".join(args.query),
                tags=tuple(args.tag),
                authors=tuple(args.author),
                since=args.since,
                until=args.until,
                sort=args.sort,
                limit=args.limit,
            )
    if args.json:
        for hit in result.hits:
            paper = hit.paper
            record = {
                "id": paper.arxiv_id,
                "title": paper.title,
                "score": round(hit.score, 4),
                "authors": list(paper.authors),
                "date": paper.published.isoformat() if paper.published else None,
                "tags": list(paper.tags),
                "upvotes": paper.upvotes,
                "url": paper.url,
            }
            print(json.dumps(record, ensure_ascii=False))
        return 0
    if not result.hits:
        print("no papers match; try fewer words, or `paperbot search --list-tags`")
        return 0
    for number, hit in enumerate(result.hits, start=1):
        paper = hit.paper
        when = paper.published.isoformat() if paper.published else "----------"
        print(f"{number:2d}. [{paper.arxiv_id}] {paper.title}")
        authors = ", ".join(paper.authors[:4]) + (" et al." if len(paper.authors) > 4 else "")
        print(f"    {when}  score {hit.score:.2f}  {authors}")
    if result.has_more:
        print(f"(more results: raise --limit above {args.limit})")
    return 0


async def db_command(args: argparse.Namespace, config: Config) -> int:
    if args.action == "migrate":
        async with connect(config.database.path) as db:
            applied = await migrate(db.conn)  # connect() already migrated; this reports it
        print(f"{config.database.path}: schema up to date" + (f" ({applied})" if applied else ""))
        return 0
    if args.action == "stats":
        from bot.llm.embedding_names import embedder_name  # light: no numpy, no model
        from bot.store.llm_store import count_without_embedding, usage  # light: SQL only

        async with connect(config.database.path) as db:
            stats = await store_stats(db)
            today = await usage(db, datetime.now(UTC).date())
            model = embedder_name(config)
            missing = await count_without_embedding(db, model) if model else None
        for name, value in stats.items():
            print(f"{name}: {value}")
        # Papers hybrid retrieval would find by keywords only (`paperbot embed` fixes that).
        print(f"embedding_model: {model or '- (none: keyword retrieval only)'}")
        print(f"papers_without_embedding: {'-' if missing is None else missing}")
        # Tokens the server did not report are estimated from the text: say how many.
        print(f"llm_tokens_today: {today['tokens']}")
        print(f"llm_tokens_today_estimated: {today['estimated_tokens']}")
        print(f"llm_embedding_tokens_today: {today['embedding_tokens']}")
        print(f"llm_embedding_tokens_today_estimated: {today['estimated_embedding_tokens']}")
        return 0
    if not args.target:
        raise InputError("db backup needs a destination file: paperbot db backup FILE")
    async with connect(config.database.path) as db:
        await _backup(db, Path(args.target))
    print(f"backed up {config.database.path} to {args.target}")
    return 0


async def _backup(db: Database, target: Path) -> None:
    """A consistent online copy (``VACUUM INTO``), safe while the bot is running."""
    if target.exists():
        raise InputError(f"{target} already exists; choose a new file name")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        await db.conn.execute("VACUUM INTO ?", (str(partial),))
        shutil.move(partial, target)
    except (OSError, sqlite3.Error) as exc:
        partial.unlink(missing_ok=True)
        raise PaperbotError(f"backup to {target} failed: {exc}") from exc
