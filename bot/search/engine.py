"""Full-text search over every stored paper (SQLite FTS5 with bm25 column weights).

A :class:`SearchEngine` holds what searching keeps between queries: the FTS5 tokenizer and its
word cache, the large-store indexes with their worker threads, the thresholds that decide when
they answer (:class:`~bot.search.index.IndexSettings`) and whether a missing index is built in
the background. The runtime builds one for the bot and closes it with the bot; a CLI command
builds its own (without background builds); tests build theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

from bot.errors import InputError
from bot.labels import normalize_label
from bot.models import Paper
from bot.search.bm25 import BM25
from bot.search.exact import ExactIndexes, ExactSettings
from bot.search.index import Indexes, IndexSettings
from bot.search.query import SORTS, Query, parse_query, with_filters
from bot.search.tags import resolve_tag
from bot.search.tokens import Fts5Tokenizer, UsesTokenizer
from bot.store.database import Database
from bot.store.papers import paper_from_row, tag_counts

Sort = Literal["relevance", "date", "upvotes"]
# BM25: "bm25(papers_fts, 10.0, 4.0, 3.0, 1.0, 4.0)", the column weights (title, authors,
# summary, abstract, tags) spelled out; bot.search_bm25 computes the same scores in Python.


@dataclass(frozen=True, slots=True)
class SearchHit:
    paper: Paper
    score: float  # higher is better; -bm25 for relevance, 0 when there is no text query


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: tuple[SearchHit, ...]
    has_more: bool
    query: Query
    offset: int = 0
    tags: tuple[str, ...] = field(default=())  # the resolved tag names used as filters
    unused_tags: tuple[str, ...] = field(default=())  # wanted labels no stored paper carries


async def known_tags(db: Database) -> list[str]:
    return [tag for tag, _ in await tag_counts(db)]


async def _resolve_tags(db: Database, texts: tuple[str, ...]) -> tuple[tuple[str, ...], set[str]]:
    """Stored tag names for user spellings, and which of them no stored paper carries yet
    (vocabulary labels are accepted even then: autocomplete offers them). The usual case is
    one indexed lookup; listing every tag (a scan of all tag rows) happens only on a miss."""
    resolved: list[str] = []
    unused: set[str] = set()
    known: list[str] | None = None
    for text in texts:
        label = normalize_label(text)
        row = await db.read.fetchone(
            "SELECT tag FROM paper_tags WHERE tag = ? LIMIT 1", (label or text,)
        )
        if row is not None:
            resolved.append(row[0])
            continue
        if label is not None:
            resolved.append(label)
            unused.add(label)
            continue
        if known is None:
            known = await known_tags(db)
        resolved.append(resolve_tag(known, text))
    return tuple(dict.fromkeys(resolved)), unused


class SearchEngine(UsesTokenizer):
    """Searches stores: one for the bot (or a command), shared by its searches, then closed."""

    def __init__(
        self,
        *,
        settings: IndexSettings | None = None,
        exact: ExactSettings | None = None,
        auto_build: bool = True,
        tokenizer: Fts5Tokenizer | None = None,
        workers: int = 4,
    ) -> None:
        """``auto_build``: build a missing large-store index in a background thread on first
        use (off for one-shot processes, which would exit long before a build completes)."""
        super().__init__(tokenizer)
        self.tokenizer = self.fts5
        self.indexes = Indexes(self.tokenizer, settings, auto_build=auto_build, workers=workers)
        self.exact = ExactIndexes(
            self.tokenizer,
            exact,
            max_papers=self.indexes.settings.min_papers,
            auto_build=auto_build,
        )

    @property
    def settings(self) -> IndexSettings:
        return self.indexes.settings

    def close(self) -> None:
        """Stop the index worker threads; searches still work afterwards, by FTS5 alone."""
        self.exact.close()
        self.indexes.close()
        super().close()

    def prepare(self, db: Database) -> None:
        """Start loading (or building) what makes searches of ``db`` fast, in the background."""
        self.exact.prepare(db)

    async def prepare_first(self, db: Database) -> None:
        """``prepare`` and wait for it: the bot's start, before it takes commands."""
        await self.exact.prepare_first(db)

    async def search(
        self,
        db: Database,
        text: str,
        *,
        tags: tuple[str, ...] = (),
        authors: tuple[str, ...] = (),
        since: date | None = None,
        until: date | None = None,
        sort: Sort = "relevance",
        limit: int = 10,
        offset: int = 0,
    ) -> SearchResult:
        """Search stored papers. ``tags``/``authors`` add to any ``tag:``/``author:`` in ``text``.

        Raises InputError for an unknown tag or a bad sort; never for the query text itself.
        """
        if sort not in SORTS:
            raise InputError(f"unknown sort {sort!r}; use one of {', '.join(SORTS)}")
        if since and until and since > until:
            raise InputError(f"the date range is empty: {since} is after {until}")
        query = with_filters(parse_query(text), tags=tags, authors=authors)
        wanted_tags: tuple[str, ...] = ()
        unwanted_tags: tuple[str, ...] = ()
        unused: set[str] = set()
        if query.tags or query.excluded_tags:
            wanted_tags, unused = await _resolve_tags(db, query.tags)
            unwanted_tags, absent = await _resolve_tags(db, query.excluded_tags)
            unwanted_tags = tuple(tag for tag in unwanted_tags if tag not in absent)
        if unused:  # a wanted tag no paper carries: nothing can match
            missing = tuple(tag for tag in wanted_tags if tag in unused)
            return SearchResult((), False, query, offset, wanted_tags, missing)
        limit = max(1, min(limit, 100))
        offset = max(0, offset)

        fts = query.to_fts()
        filters, params = _filters(wanted_tags, unwanted_tags, since, until)
        if fts is not None and not filters and sort == "relevance":
            # Stores of 20k papers on: FTS5's bm25 from postings arrays (bot/search/exact.py);
            # 200k on: tantivy candidates ranked by the same bm25 (bot/search/index.py).
            exact = await self.exact.ranked(db, query, limit + 1, offset)
            if exact is not None:
                hits = tuple(
                    SearchHit(paper, score)
                    for paper, score in zip(exact.papers[:limit], exact.scores, strict=False)
                )
                return SearchResult(hits, len(exact.papers) > limit, query, offset, wanted_tags)
            fast = await self.indexes.ranked(db, query, limit + 1, offset)
            if fast is not None:
                hits = tuple(
                    SearchHit(paper_from_row(row), score)
                    for row, score in zip(fast.rows[:limit], fast.scores, strict=False)
                )
                return SearchResult(hits, len(fast.rows) > limit, query, offset, wanted_tags)
            rows = await _top_by_rank(db, fts, limit + 1, offset)
        elif fts is not None:
            rows = await _filtered_by_rank(db, fts, filters, params, sort, limit + 1, offset)
        else:
            rows = await _without_text(db, query, filters, params, sort, limit + 1, offset)
        hits = tuple(SearchHit(paper_from_row(row), -float(row["rank"])) for row in rows[:limit])
        return SearchResult(hits, len(rows) > limit, query, offset, wanted_tags)


def _filters(
    tags: tuple[str, ...], excluded_tags: tuple[str, ...], since: date | None, until: date | None
) -> tuple[list[str], list]:
    clauses: list[str] = []
    params: list = []
    for tag in tags:
        clauses.append("p.id IN (SELECT paper_id FROM paper_tags WHERE tag = ?)")
        params.append(tag)
    if excluded_tags:
        marks = ",".join("?" * len(excluded_tags))
        clauses.append(f"p.id NOT IN (SELECT paper_id FROM paper_tags WHERE tag IN ({marks}))")
        params.extend(excluded_tags)
    if since:
        clauses.append("p.sort_date >= ?")
        params.append(since.isoformat())
    if until:
        clauses.append("p.sort_date <= ?")
        params.append(until.isoformat())
    return clauses, params


async def _top_by_rank(db: Database, fts: str, limit: int, offset: int) -> list:
    # Pick the top k inside FTS5 first, then look the rows up: a join would read every
    # matching row before sorting (DESIGN.md, "Search facts").
    return await db.read.fetchall(
        f"WITH top AS MATERIALIZED ("
        f"  SELECT rowid, {BM25} AS score FROM papers_fts WHERE papers_fts MATCH ?"
        f"  ORDER BY score LIMIT ? OFFSET ?"
        f") SELECT p.*, top.score AS rank FROM top JOIN papers p ON p.id = top.rowid"
        f" ORDER BY top.score",
        (fts, limit, offset),
    )


_ORDER = {
    "relevance": "rank",
    "date": "p.sort_date DESC, rank",
    "upvotes": "coalesce(p.upvotes, 0) DESC, rank",
}


async def _filtered_by_rank(
    db: Database, fts: str, filters: list[str], params: list, sort: str, limit: int, offset: int
) -> list:
    where = " AND ".join(["papers_fts MATCH ?", *filters])
    return await db.read.fetchall(
        f"SELECT p.*, {BM25} AS rank FROM papers_fts JOIN papers p ON p.id = papers_fts.rowid "
        f"WHERE {where} ORDER BY {_ORDER[sort]} LIMIT ? OFFSET ?",
        (fts, *params, limit, offset),
    )


async def _without_text(
    db: Database, query: Query, filters: list[str], params: list, sort: str, limit: int, offset: int
) -> list:
    """Filters and exclusions only: newest (or most upvoted) first."""
    clauses = list(filters)
    excluded = query.excluded_fts()
    if excluded:
        clauses.append("p.id NOT IN (SELECT rowid FROM papers_fts WHERE papers_fts MATCH ?)")
        params = [*params, excluded]
    if not clauses:
        return []  # an empty query lists nothing rather than the whole store
    order = (
        "coalesce(p.upvotes, 0) DESC, p.sort_date DESC"
        if sort == "upvotes"
        else ("p.sort_date DESC, coalesce(p.upvotes, 0) DESC")
    )
    return await db.read.fetchall(
        f"SELECT p.*, 0.0 AS rank FROM papers p WHERE {' AND '.join(clauses)} "
        f"ORDER BY {order}, p.id DESC LIMIT ? OFFSET ?",
        (*params, limit, offset),
    )
