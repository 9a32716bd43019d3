"""Relevance search on large stores: tantivy top-k candidates, ranked exactly by FTS5's bm25.

FTS5's bm25 scores every row that matches: on a million papers a common word costs a quarter
of a second or more (DESIGN.md, "Search facts"). On a large store this module answers relevance
queries in three steps instead:

1. candidates: a tantivy index holding the exact FTS5 tokens of every paper (``search_tokens``)
   matches exactly the rows the FTS5 expression matches (words, phrases, prefixes, OR,
   exclusions, ``author:``) and returns its top ``candidates``, ranked by a close approximation
   of FTS5's bm25 (weighted term frequencies, FTS5's idf as boosts) computed in compiled code.
2. exact ranking: each candidate is scored in Python with FTS5's own bm25 formula
   (``search_bm25``): same weights, same average length, idf from the phrase's row count
   (counted by tantivy, cached per index handle). The order and the scores are FTS5's whenever
   FTS5's top results are among the candidates (on average 9.7 of 10 at 1M papers).
3. freshness: SQLite stays the store of record and the index is a cache next to the database
   file (``<db>.search/``). Rows added since the last sync (ids only grow) and rows changed in
   place (logged by triggers, migration 005) are matched by FTS5 itself and join the
   candidates, while a background thread catches the index up. A missing or foreign index is
   built in the background, with FTS5 answering meanwhile.

Small stores (``min_papers``), cheap queries (``min_postings``), far pages and edge cases keep
using FTS5 directly: ``ranked`` returns None and ``bot.search.engine`` runs its FTS5 query.

Nothing here is per process: the thresholds (:class:`IndexSettings`), the open indexes, the
worker threads and the build policy belong to one :class:`Indexes`, owned by a
``bot.search.engine.SearchEngine``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import json
import logging
import math
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.search.bm25 import (
    BM25,
    COLUMNS,
    WEIGHTS,
    IndexStats,
    Phrase,
    PhrasePlan,
    RowScorer,
    docsize,
    idf,
    plan_phrases,
)
from bot.search.query import Query
from bot.search.tokens import Fts5Tokenizer
from bot.store.database import Database


class _Lazy:
    """tantivy, imported on first use: small stores (and ``paperbot --help``) never need it."""

    def __getattr__(self, name: str) -> Any:
        module = importlib.import_module("tantivy")
        globals()["tantivy"] = module
        return getattr(module, name)


# Optional: without it FTS5 answers every query.
tantivy: Any = None if importlib.util.find_spec("tantivy") is None else _Lazy()

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IndexSettings:
    """When the index answers instead of FTS5, and how much work it does (one per engine)."""

    # Below this many papers no tantivy index is built: FTS5 answers, or from 20k papers on the
    # exact postings of bot/search/exact.py (FTS5 alone at 90k: p95 about 35 ms).
    min_papers: int = 200_000
    # A query whose phrases have fewer postings than this in all is answered by FTS5 (exact, and
    # fast then). Above it FTS5's cost grows with the postings it reads and the rows it scores
    # (at 1M papers 20,000 postings already cost it 20-60 ms), while this path stays around
    # 10-20 ms.
    min_postings: int = 5_000
    # Candidates taken from tantivy (at least; more for later pages). At 1M papers the average
    # overlap with FTS5's top 10 is 0.86 with 50, 0.96 with 100, 0.97 with 150, 0.98 with 200
    # and 0.99 with 300; each candidate costs about 0.04 ms to fetch and score.
    candidates: int = 150
    # Pages beyond this offset are answered by FTS5.
    max_offset: int = 200
    # New rows not yet in the index, and rows changed in place since its last sync, that FTS5
    # matches on the side; past these, FTS5 answers alone until the background sync catches up.
    max_backlog: int = 5_000
    max_changed: int = 500
    # Row counts (IDF) are reused until the store has grown or shrunk by this share.
    idf_drift: float = 0.005
    # Prefix searches expanding to more terms than this are answered by FTS5.
    max_prefix_terms: int = 64


SCHEMA_VERSION = 1
_STATE = "paperbot-state.json"
_BATCH = 2000
_CHECK_SECONDS = 30.0  # how long a "this store is small" answer is trusted


@dataclass(frozen=True, slots=True)
class IndexState:
    """What the index holds: every paper with id <= watermark as of log entry ``seq``."""

    uid: str
    watermark: int
    seq: int


def index_path(db_path: Path) -> Path:
    return Path(f"{db_path}.search")


AUTHOR = "a:"  # marks the authors' tokens again, for author: filters (FTS5 tokens have no ':')
_REPEAT = tuple(int(weight) for weight in WEIGHTS)  # 10, 4, 3, 1, 4


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", indexed=True, fast=True)
    builder.add_unsigned_field("length", fast=True)  # FTS5's token count of the row (D)
    # One field holding every column's FTS5 tokens (joined by spaces, so positions are FTS5's),
    # each column repeated as many times as its bm25 weight: a term's frequency in the field is
    # then FTS5's weighted frequency, which makes tantivy's ranking close to FTS5's. Separate
    # values get a position gap, so phrases never match across columns or copies.
    builder.add_text_field("all", tokenizer_name="whitespace", index_option="position")
    return builder.build()


class SearchIndex:
    """The tantivy index of one database file, and how far it has caught up with it."""

    def __init__(
        self, db_path: Path, tokenizer: Fts5Tokenizer, settings: IndexSettings | None = None
    ) -> None:
        self.db_path = Path(db_path)
        self.path = index_path(self.db_path)
        self.tokenizer = tokenizer
        self.settings = settings or IndexSettings()
        self.schema = _schema()
        self.index: tantivy.Index | None = None
        self.state: IndexState | None = None
        self._sync_lock = threading.Lock()
        self._syncing: threading.Thread | None = None
        self._row_counts: dict[str, tuple[int, int]] = {}  # expression -> (rows, at N)
        self._failed_at = 0.0

    # -- opening and building ---------------------------------------------------------------

    def open(self, uid: str) -> bool:
        """Open an existing index built for the database ``uid``; False if there is none."""
        state_file = self.path / _STATE
        try:
            recorded = json.loads(state_file.read_text())
            if recorded.get("schema") != SCHEMA_VERSION or recorded.get("uid") != uid:
                return False
            index = tantivy.Index(self.schema, str(self.path), reuse=True)
        except (OSError, ValueError):
            return False
        self.index = index
        self.state = IndexState(uid, int(recorded["watermark"]), int(recorded["seq"]))
        return True

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=5.0, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        return conn

    def build(self) -> None:
        """(Re)build the whole index from the database (blocking; minutes at 1M papers).

        The new index is written next to the old one and swapped in when complete, so that a
        crash or a concurrent reader never sees a half-built index.
        """
        with self._sync_lock:
            conn = self._connect()
            building = Path(f"{self.path}.building-{os.getpid()}")
            try:
                uid = _read_uid(conn)
                watermark, seq = _marks(conn)
                self._remove_leftovers()
                shutil.rmtree(building, ignore_errors=True)
                building.mkdir(parents=True)
                index = tantivy.Index(self.schema, str(building), reuse=False)
                writer = index.writer(heap_size=256_000_000, num_threads=2)
                try:
                    last = 0
                    while True:
                        rows = conn.execute(
                            "SELECT id, title, authors_text, summary_text, abstract, tags_text "
                            "FROM papers WHERE id > ? AND id <= ? ORDER BY id LIMIT ?",
                            (last, watermark, _BATCH),
                        ).fetchall()
                        if not rows:
                            break
                        self._add(writer, rows)
                        last = rows[-1][0]
                    writer.commit()
                    writer.wait_merging_threads()
                finally:
                    del writer
                del index
                state = IndexState(uid, watermark, seq)
                _write_state(building, state)
                old = Path(f"{self.path}.old-{os.getpid()}")
                if self.path.exists():
                    os.replace(self.path, old)
                os.replace(building, self.path)
                shutil.rmtree(old, ignore_errors=True)
                self.index = tantivy.Index(self.schema, str(self.path), reuse=True)
                self.state = state
                self._row_counts.clear()
                self._prune_log(seq)
            finally:
                conn.close()
                shutil.rmtree(building, ignore_errors=True)

    def _remove_leftovers(self) -> None:
        """Half-built indexes of processes that ended mid-build (e.g. a one-shot CLI run)."""
        for folder in self.path.parent.glob(f"{self.path.name}.*-*"):
            kind, _, pid = folder.name[len(self.path.name) + 1 :].partition("-")
            if kind not in ("building", "old") or not pid.isdigit():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass  # alive (or not ours to signal): leave it

    def sync(self) -> int:
        """Catch up with rows added or changed since the last sync; returns how many."""
        if self.index is None or self.state is None:
            raise RuntimeError("the index is not open")
        with self._sync_lock:
            state = self.state
            conn = self._connect()
            try:
                watermark, seq = _marks(conn)
                changed = [
                    paper_id
                    for (paper_id,) in conn.execute(
                        "SELECT DISTINCT paper_id FROM search_index_log WHERE seq > ? AND seq <= ?",
                        (state.seq, seq),
                    )
                ]
                if watermark == state.watermark and not changed:
                    if seq != state.seq:
                        self._publish(IndexState(state.uid, watermark, seq))
                    return 0
                writer = self.index.writer(heap_size=64_000_000, num_threads=1)
                try:
                    stale = sorted({*changed, *range(state.watermark + 1, watermark + 1)})
                    self._delete(writer, stale)
                    count = 0
                    for start in range(0, len(stale), 500):
                        chunk = stale[start : start + 500]
                        rows = conn.execute(
                            "SELECT id, title, authors_text, summary_text, abstract, tags_text "
                            f"FROM papers WHERE id IN ({','.join('?' * len(chunk))})",
                            chunk,
                        ).fetchall()
                        self._add(writer, rows)
                        count += len(rows)
                    writer.commit()
                finally:
                    del writer
                self.index.reload()
                self._publish(IndexState(state.uid, watermark, seq))
                self._prune_log(seq)
                return count
            finally:
                conn.close()

    def _prune_log(self, seq: int) -> None:
        """Forget log entries the index has taken in (best effort: the log is small anyway)."""
        try:
            conn = sqlite3.connect(self.db_path, timeout=1.0, isolation_level=None)
            try:
                conn.execute("DELETE FROM search_index_log WHERE seq <= ?", (seq,))
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.debug("could not prune the search index log: %s", exc)

    def _publish(self, state: IndexState) -> None:
        _write_state(self.path, state)
        self.state = state

    def _add(self, writer: tantivy.IndexWriter, rows: Sequence[tuple]) -> None:
        texts = [text or "" for row in rows for text in row[1:]]
        tokens = self.tokenizer.tokens_many(texts)
        width = len(COLUMNS)
        authors = COLUMNS.index("authors_text")
        for number, row in enumerate(rows):
            document = tantivy.Document()
            document.add_unsigned("id", row[0])
            length = 0
            for column in range(width):
                column_tokens = tokens[number * width + column]
                if not column_tokens:
                    continue
                length += len(column_tokens)
                if column == authors:  # marked, so that author: filters can find them alone
                    column_tokens = [AUTHOR + token for token in column_tokens]
                text = " ".join(column_tokens)
                for _ in range(_REPEAT[column]):
                    document.add_text("all", text)
            document.add_unsigned("length", length)
            writer.add_document(document)

    def _delete(self, writer: tantivy.IndexWriter, ids: Sequence[int]) -> None:
        for start in range(0, len(ids), 1000):
            chunk = list(ids[start : start + 1000])
            writer.delete_documents_by_query(tantivy.Query.term_set_query(self.schema, "id", chunk))

    def start_sync(self, build: bool = False) -> None:
        """Build or catch up in a background thread (one at a time)."""
        if self._syncing is not None and self._syncing.is_alive():
            return
        if time.monotonic() - self._failed_at < 60.0:
            return  # e.g. another process holds the index writer: retry later

        def run() -> None:
            try:
                started = time.perf_counter()
                if build:
                    self.build()
                    log.info("built the search index in %.1f s", time.perf_counter() - started)
                else:
                    count = self.sync()
                    log.info("search index caught up with %d papers", count)
            except Exception:  # a cache: FTS5 answers meanwhile
                self._failed_at = time.monotonic()
                log.exception("search index %s failed", "build" if build else "sync")

        self._syncing = threading.Thread(target=run, name="search-index", daemon=True)
        self._syncing.start()

    def wait(self, timeout: float | None = None) -> None:
        thread = self._syncing
        if thread is not None:
            thread.join(timeout)

    # -- querying ---------------------------------------------------------------------------

    @staticmethod
    def _variants(phrase: Phrase) -> list[tuple[str, ...]] | None:
        """The phrase's term sequences in the ``all`` field (authors' tokens are marked)."""
        marked = tuple(AUTHOR + token for token in phrase.tokens)
        if len(phrase.columns) == len(COLUMNS):
            return [phrase.tokens, marked]
        if phrase.columns == (COLUMNS.index("authors_text"),):
            return [marked]
        return None  # other column filters are never produced by bot.query

    def _match(
        self, phrase: Phrase, searcher: tantivy.Searcher, weight: float | None = None
    ) -> tantivy.Query | None:
        """The rows ``phrase`` matches in, as a tantivy query (None: not expressible).

        With ``weight`` (FTS5's idf for the phrase), every term sequence is boosted so that it
        weighs ``weight`` in tantivy's score instead of tantivy's own idf, which for the rare
        marked author tokens, say, would be far larger: the ranking gets closer to FTS5's.
        """
        variants = self._variants(phrase)
        if variants is None:
            return None
        rows = max(searcher.num_docs, 1)

        def weighed(query: tantivy.Query, hits: Sequence[int]) -> tantivy.Query:
            if weight is None:
                return query
            own = sum(math.log(1.0 + (rows - n + 0.5) / (n + 0.5)) for n in hits) or 1.0
            return tantivy.Query.boost_query(query, max(weight / own, 1e-6))

        queries = []
        for terms in variants:
            if phrase.prefix:
                most = self.settings.max_prefix_terms
                expanded = searcher.terms_with_prefix("all", terms[0], limit=most + 1)
                if len(expanded) > most:
                    return None
                queries += [
                    weighed(tantivy.Query.term_query(self.schema, "all", term), [hits])
                    for term, hits in expanded
                ]
            elif len(terms) == 1:
                query = tantivy.Query.term_query(self.schema, "all", terms[0], index_option="freq")
                queries.append(weighed(query, [searcher.doc_freq("all", terms[0])]))
            else:
                query = tantivy.Query.phrase_query(self.schema, "all", list(terms))
                queries.append(weighed(query, [searcher.doc_freq("all", term) for term in terms]))
        if not queries:
            return tantivy.Query.empty_query()
        if len(queries) == 1:
            return queries[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, query) for query in queries])

    def to_query(
        self,
        plan: PhrasePlan,
        searcher: tantivy.Searcher,
        idfs: dict[Phrase, float] | None = None,
    ) -> tantivy.Query | None:
        """The tantivy query matching exactly the rows the FTS5 expression matches.

        With ``idfs`` (FTS5's idf per phrase) its scores approximate FTS5's bm25 (``_match``).
        """
        clauses = []
        for group in plan.groups:
            alternatives = []
            for phrase in group:
                query = self._match(phrase, searcher, idfs[phrase] if idfs else None)
                if query is None:
                    return None
                alternatives.append(query)
            inner = (
                alternatives[0]
                if len(alternatives) == 1
                else tantivy.Query.boolean_query(
                    [(tantivy.Occur.Should, query) for query in alternatives]
                )
            )
            clauses.append((tantivy.Occur.Must, inner))
        for phrase in plan.excluded:
            query = self._match(phrase, searcher)
            if query is None:
                return None
            clauses.append((tantivy.Occur.MustNot, query))
        return tantivy.Query.boolean_query(clauses)

    def phrase_estimate(self, phrase: Phrase, searcher: tantivy.Searcher) -> int | None:
        """About (at most) how many rows ``phrase`` matches, from document frequencies."""
        variants = self._variants(phrase)
        if variants is None:
            return None
        total = 0
        for terms in variants:
            if phrase.prefix:
                limit = self.settings.max_prefix_terms + 1
                expanded = searcher.terms_with_prefix("all", terms[0], limit=limit)
                total += sum(count for _, count in expanded)
            else:
                total += min(searcher.doc_freq("all", term) for term in terms)
        return total

    def postings(self, plan: PhrasePlan, searcher: tantivy.Searcher) -> int | None:
        """How many postings FTS5 would read for the query (a measure of its cost)."""
        phrases = [phrase for group in plan.groups for phrase in group] + list(plan.excluded)
        total = 0
        for phrase in phrases:
            variants = self._variants(phrase)
            if variants is None:
                return None
            for terms in variants:
                if phrase.prefix:
                    expanded = searcher.terms_with_prefix(
                        "all", terms[0], limit=self.settings.max_prefix_terms + 1
                    )
                    total += sum(count for _, count in expanded)
                else:
                    total += sum(searcher.doc_freq("all", term) for term in terms)
        return total

    def candidates(
        self,
        query: tantivy.Query,
        searcher: tantivy.Searcher,
        count: int,
        shortest: bool = False,
        with_total: bool = False,
    ) -> tuple[list[int], int | None]:
        """Ids of tantivy's top ``count`` for ``query`` (and, with ``shortest``, of the
        ``count`` shortest rows it matches), and (``with_total``) how many rows it matches.

        When every phrase is confined to one short column (``author:`` filters), many matches
        have the same weighted frequency and bm25 orders them by row length alone, which
        tantivy's field length (a weighted one) follows only loosely.
        """
        result = searcher.search(query, count, count=with_total)
        found = list(result.hits)
        if shortest:
            found += searcher.search(
                query, count, count=False, order_by_field="length", order=tantivy.Order.Asc
            ).hits
        addresses = [address for _, address in found]
        ids = [int(i) for i in searcher.fast_field_values("id", addresses)] if addresses else []
        return ids, (int(result.count) if with_total else None)

    def cached_row_count(self, phrase: Phrase, rows: int) -> int | None:
        """Rows matching ``phrase`` alone (FTS5's n in its idf) if counted at about ``rows``."""
        cached = self._row_counts.get(phrase.expression)
        drift = self.settings.idf_drift
        if cached is not None and abs(cached[1] - rows) <= drift * max(cached[1], 1):
            return cached[0]
        return None

    def remember_row_count(self, phrase: Phrase, hits: int, rows: int) -> None:
        if len(self._row_counts) > 50_000:
            self._row_counts.clear()
        self._row_counts[phrase.expression] = (hits, rows)

    def count_in_index(
        self, phrase: Phrase, searcher: tantivy.Searcher, leave_out: Sequence[int] = ()
    ) -> int | None:
        """Indexed rows matching ``phrase``, except those with the ids ``leave_out``."""
        query = self._match(phrase, searcher)
        if query is None:
            return None
        if leave_out:
            ids = tantivy.Query.term_set_query(self.schema, "id", list(leave_out))
            query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, query), (tantivy.Occur.MustNot, ids)]
            )
        return int(searcher.search(query, 1, count=True).count)


def _write_state(folder: Path, state: IndexState) -> None:
    data = {"schema": SCHEMA_VERSION, "uid": state.uid, "watermark": state.watermark}
    data["seq"] = state.seq
    temporary = folder / f"{_STATE}.tmp"
    temporary.write_text(json.dumps(data))
    os.replace(temporary, folder / _STATE)


def _read_uid(conn: sqlite3.Connection) -> str:
    row = conn.execute("SELECT value FROM search_meta WHERE key = 'uid'").fetchone()
    if row is None:
        raise sqlite3.OperationalError("the database has no search_meta uid (migration 005)")
    return str(row[0])


def _marks(conn: sqlite3.Connection) -> tuple[int, int]:
    """(max paper id, max log seq) right now."""
    row = conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM papers), "
        "(SELECT coalesce(max(seq), 0) FROM search_index_log)"
    ).fetchone()
    return int(row[0]), int(row[1])


# -- the open indexes of one engine, and the query path ------------------------------------------


@dataclass(frozen=True, slots=True)
class Ranked:
    rows: list  # ``papers`` rows, best first
    scores: list[float]  # their bm25 scores (positive: higher is better)


@dataclass(frozen=True, slots=True)
class _Freshness:
    """How the index lags behind the store for one query."""

    stats: IndexStats
    watermark: int  # rows above it are not in the index
    behind: int  # how many ids above the watermark
    changed: list[int]  # rows changed in place (or deleted) since the index's last sync


class Indexes:
    """The search indexes of the database files one engine searches, opened (or built in the
    background) on first use, and the worker threads that query them."""

    def __init__(
        self,
        tokenizer: Fts5Tokenizer,
        settings: IndexSettings | None = None,
        *,
        auto_build: bool = True,
        workers: int = 4,
    ) -> None:
        self.tokenizer = tokenizer
        self.settings = settings or IndexSettings()
        # Build a missing index in a background thread on first use (a one-shot process such
        # as a CLI search turns this off: it would exit long before a build of minutes ends).
        self.auto_build = auto_build
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="search-index")
        self._indexes: dict[str, SearchIndex] = {}
        self._small: dict[str, float] = {}  # database path -> when last seen below min_papers
        self._lock = threading.Lock()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Drop the open indexes and stop the worker threads once their queries are done;
        FTS5 answers every search afterwards. A background build still running is not waited
        for (minutes on a large store): it finishes, or the next build removes what it left."""
        with self._lock:
            self._closed = True
            self._indexes.clear()
            self._small.clear()
        self._executor.shutdown(wait=True)

    def _key(self, db: Database) -> str | None:
        """The database file's resolved path (None for an in-memory database)."""
        return db.file_key

    def _new_index(self, db: Database) -> SearchIndex:
        return SearchIndex(db.path, self.tokenizer, self.settings)

    async def index_for(self, db: Database, *, build: bool | None = None) -> SearchIndex | None:
        """The ready index for ``db``, or None: in-memory or small store (FTS5 answers alone),
        or an index still being built (in a background thread, started here when ``build``,
        which defaults to ``auto_build``)."""
        key = self._key(db)
        if key is None or tantivy is None or self._closed:
            return None
        index = self._indexes.get(key)
        if index is not None and index.index is not None:
            return index
        if time.monotonic() - self._small.get(key, -1e9) < _CHECK_SECONDS:
            return None
        row = await db.fetchone("SELECT block FROM papers_fts_data WHERE id = 1")
        if IndexStats.from_record(row[0] if row else None).rows < self.settings.min_papers:
            self._small[key] = time.monotonic()
            return None
        if index is None:
            uid = await _uid(db)
            if uid is None:
                return None
            index = self._new_index(db)
            if await asyncio.to_thread(index.open, uid):
                self._indexes[key] = index
                return index
            index = self._indexes.setdefault(key, index)
        if self.auto_build if build is None else build:
            index.start_sync(build=True)
        return None

    async def ensure(self, db: Database) -> SearchIndex:
        """Build (or open and catch up) the index of ``db`` now, whatever the store's size."""
        key = self._key(db)
        if key is None:
            raise ValueError("an in-memory database has no search index")
        if tantivy is None:
            raise RuntimeError("the search index needs the tantivy package")
        uid = await _uid(db)
        if uid is None:
            raise RuntimeError("the database lacks migration 005")
        with self._lock:
            index = self._indexes.setdefault(key, self._new_index(db))
        index.wait()
        if index.index is None and not await asyncio.to_thread(index.open, uid):
            await asyncio.to_thread(index.build)
        else:
            await asyncio.to_thread(index.sync)
        self._small.pop(key, None)
        return index

    async def ranked(self, db: Database, query: Query, limit: int, offset: int) -> Ranked | None:
        """Rows ``offset`` to ``offset + limit`` of FTS5's bm25 order for ``query``, or None when
        this path does not apply (small store, cheap query, edge cases) and FTS5 should answer."""
        if offset > self.settings.max_offset:
            return None
        index = await self.index_for(db)
        if index is None:
            return None
        try:
            return await self._ranked(db, index, query, limit, offset)
        except Exception:  # the index is a cache: when it fails, FTS5 answers
            log.exception("the search index failed on %r; FTS5 answers", query.raw)
            key = self._key(db) or ""
            with self._lock:  # open it afresh next time (e.g. rebuilt by another process)
                if self._indexes.get(key) is index:
                    del self._indexes[key]
            return None

    async def _in_thread(self, function, *args):
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def _ranked(
        self, db: Database, index: SearchIndex, query: Query, limit: int, offset: int
    ) -> Ranked | None:
        settings = self.settings
        state = index.state  # read before the searcher, so the searcher is never older
        handle = index.index
        if state is None or handle is None:
            return None
        plan = plan_phrases(query, index.tokenizer)
        if plan is None:
            return None
        searcher = handle.searcher()
        postings = index.postings(plan, searcher)
        if postings is None or postings < settings.min_postings:
            return None
        fresh = await _freshness(db, state, settings.max_changed)
        if fresh.behind or fresh.changed:
            index.start_sync()
            if fresh.behind > settings.max_backlog or len(fresh.changed) > settings.max_changed:
                return None

        # Each phrase's row count (for its idf) is cached, or counted by tantivy in worker threads
        # while the candidates are searched (tantivy releases the GIL); meanwhile a guess from
        # document frequencies weighs the phrases in tantivy's ranking. A query of one phrase
        # matches exactly that phrase's rows: the candidate search counts them itself.
        rows = fresh.stats.rows
        phrases = plan.scored
        unique = list(dict.fromkeys(phrases))
        hits = {p: n for p in unique if (n := index.cached_row_count(p, rows)) is not None}
        missing = [phrase for phrase in unique if phrase not in hits]
        alone = len(phrases) == 1 and not plan.excluded and not fresh.changed and bool(missing)
        counting = {
            phrase: asyncio.ensure_future(
                self._in_thread(index.count_in_index, phrase, searcher, fresh.changed)
            )
            for phrase in ([] if alone else missing)
        }
        try:
            guesses = {
                phrase: idf(
                    rows, hits[phrase] if phrase in hits else _guess(index, phrase, searcher)
                )
                for phrase in unique
            }
            tantivy_query = index.to_query(plan, searcher, guesses)
            if tantivy_query is None:
                return None
            shortest = all(len(phrase.columns) == 1 for phrase in unique)
            size = max(settings.candidates, 2 * (offset + limit))
            ids, total = await self._in_thread(
                index.candidates, tantivy_query, searcher, size, shortest, alone
            )
            counted = {phrase: await task for phrase, task in counting.items()}
        finally:
            for task in counting.values():
                task.cancel()
        if alone:
            counted = {phrases[0]: total}
        for phrase, in_index in counted.items():
            hits[phrase] = await _count_missing(db, phrase, in_index, fresh)
            index.remember_row_count(phrase, hits[phrase], rows)
        idfs = {phrase: idf(rows, hits[phrase]) for phrase in unique}

        stale = set(fresh.changed)
        candidates = [paper_id for paper_id in ids if paper_id not in stale]
        candidates += await _unindexed_matches(db, query.to_fts(), fresh, offset + limit)
        scorer = RowScorer(
            phrases, [idfs[phrase] for phrase in phrases], fresh.stats.avgdl, index.tokenizer
        )
        scored = sorted(
            (
                (scorer.score(row[1:6], docsize(row[6])), row[0])
                for row in await _fetch_texts(db, list(dict.fromkeys(candidates)))
            ),
            key=lambda item: (-item[0], item[1]),  # ties: lower id first
        )
        window = scored[offset : offset + limit]
        papers = {row["id"]: row for row in await _fetch(db, [paper_id for _, paper_id in window])}
        window = [(score, paper_id) for score, paper_id in window if paper_id in papers]
        return Ranked([papers[paper_id] for _, paper_id in window], [score for score, _ in window])


async def _uid(db: Database) -> str | None:
    try:
        row = await db.fetchone("SELECT value FROM search_meta WHERE key = 'uid'")
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row else None


def _guess(index: SearchIndex, phrase: Phrase, searcher: tantivy.Searcher) -> int:
    return index.phrase_estimate(phrase, searcher) or 0


async def _freshness(db: Database, state: IndexState, max_changed: int) -> _Freshness:
    row = await db.fetchone(
        "SELECT (SELECT block FROM papers_fts_data WHERE id = 1), "
        "(SELECT coalesce(max(id), 0) FROM papers), "
        "(SELECT coalesce(max(seq), 0) FROM search_index_log)"
    )
    max_id, max_seq = int(row[1]), int(row[2])
    changed: list[int] = []
    if max_seq > state.seq:
        changed = [
            int(r[0])
            for r in await db.fetchall(
                "SELECT DISTINCT paper_id FROM search_index_log WHERE seq > ? LIMIT ?",
                (state.seq, max_changed + 1),
            )
        ]
    return _Freshness(
        IndexStats.from_record(row[0]), state.watermark, max(0, max_id - state.watermark), changed
    )


async def _unindexed_matches(db: Database, fts: str, fresh: _Freshness, wanted: int) -> list[int]:
    """Rows the index lacks (or has an old version of) that match: FTS5 finds them.

    Of the rows above the watermark only FTS5's best ``wanted`` can reach the results.
    """
    found: list[int] = []
    if fresh.behind:
        rows = await db.fetchall(
            f"SELECT rowid FROM papers_fts WHERE papers_fts MATCH ? AND rowid > ? "
            f"ORDER BY {BM25} LIMIT ?",
            (fts, fresh.watermark, wanted),
        )
        found += [int(row[0]) for row in rows]
    # No bm25 here: with rowid IN (...) FTS5 would recount the idf for every value.
    for start in range(0, len(fresh.changed), 500):
        chunk = fresh.changed[start : start + 500]
        rows = await db.fetchall(
            "SELECT rowid FROM papers_fts WHERE papers_fts MATCH ? "
            f"AND rowid IN ({','.join('?' * len(chunk))})",
            (fts, *chunk),
        )
        found += [int(row[0]) for row in rows]
    return found


async def _count_missing(
    db: Database, phrase: Phrase, in_index: int | None, fresh: _Freshness
) -> int:
    """A phrase's row count: tantivy's (``in_index``, changed rows left out) plus FTS5's count
    of the rows the index lacks (above the watermark, and the changed ones)."""
    if in_index is None:
        row = await db.fetchone(
            "SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ?", (phrase.expression,)
        )
        return int(row[0])
    hits = in_index
    if fresh.behind:
        row = await db.fetchone(
            "SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ? AND rowid > ?",
            (phrase.expression, fresh.watermark),
        )
        hits += int(row[0])
    for start in range(0, len(fresh.changed), 500):
        chunk = fresh.changed[start : start + 500]
        row = await db.fetchone(
            "SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ? "
            f"AND rowid IN ({','.join('?' * len(chunk))})",
            (phrase.expression, *chunk),
        )
        hits += int(row[0])
    return hits


async def _fetch(db: Database, ids: Sequence[int]) -> list:
    rows = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows += await db.fetchall(
            f"SELECT * FROM papers WHERE id IN ({','.join('?' * len(chunk))})", chunk
        )
    return rows


async def _fetch_texts(db: Database, ids: Sequence[int]) -> list:
    """``(id, title, authors_text, summary_text, abstract, tags_text, docsize)`` rows."""
    rows = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows += await db.fetchall(
            "SELECT p.id, p.title, p.authors_text, p.summary_text, p.abstract, p.tags_text, d.sz "
            "FROM papers p JOIN papers_fts_docsize d ON d.id = p.id "
            f"WHERE p.id IN ({','.join('?' * len(chunk))})",
            chunk,
        )
    return rows
