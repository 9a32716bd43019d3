"""When the postings of ``bot.search.postings`` answer a search, and how they are kept current.

Per database file: the newest saved postings are loaded when the bot starts (``prepare_first``,
which waits for a first build after an import) or on first use. Every search they can answer
first checks, in the same read transaction as its answer, that they describe the store as it is
(max paper id, change-log sequence, FTS5's row and token counts). Papers added since the build
(the daily fetch: only new ids, no saved paper's text changed) are tokenized on the fly and
appended, so the postings keep answering; past ``rebuild_after`` of them, or after any other
change (then FTS5 answers meanwhile, exactly as without postings), a new build starts in a child
process: at most one at a time per engine and not again within ``rebuild_seconds``. A failed
build logs one line and FTS5 keeps answering.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bot.models import Paper
from bot.search.bm25 import plan_phrases
from bot.search.query import Query
from bot.search.snapshots import (
    SNAPSHOT_SQL,
    Snapshot,
    newest_saved,
    saved_folder,
    snapshot_of,
)
from bot.search.tokens import Fts5Tokenizer
from bot.store.database import Database
from bot.store.papers import paper_from_row
from bot.store.readers import ReadPool

if TYPE_CHECKING:
    from bot.search.postings import Postings

log = logging.getLogger(__name__)

HAVE_NUMPY = importlib.util.find_spec("numpy") is not None


@dataclass(frozen=True, slots=True)
class ExactSettings:
    """When the exact postings answer instead of FTS5, and when they are built again."""

    # Below this many papers FTS5 alone is fast (a few ms a search): nothing is built. Stores
    # from ``IndexSettings.min_papers`` on are answered by the tantivy path instead.
    min_papers: int = 20_000
    # Pages beyond this offset are answered by FTS5.
    max_offset: int = 200
    # A new build starts at most this often (after a change, FTS5 answers until it is done).
    rebuild_seconds: float = 30.0
    # Papers added since the build (the daily fetch) are tokenized on the fly and answered
    # with the saved postings, up to this many; past ``rebuild_after`` a new build starts.
    max_added: int = 5_000
    rebuild_after: int = 1_000
    # How long the bot's start waits for a first build (about 30 s at 90k papers).
    startup_wait_seconds: float = 180.0


@dataclass(frozen=True, slots=True)
class ExactRanked:
    papers: list[Paper]  # best first
    scores: list[float]  # bm25, positive


_OUT_OF_RANGE = object()  # the store has fewer papers than min_papers, or tantivy's many
_SMALL_SECONDS = 30.0  # how long an out-of-range answer is trusted


@dataclass(frozen=True, slots=True)
class _Stale:
    """The postings are missing or older than the store (``snapshot``)."""

    snapshot: Snapshot


class ExactIndexes:
    """The postings of the database files one engine searches."""

    def __init__(
        self,
        tokenizer: Fts5Tokenizer,
        settings: ExactSettings | None = None,
        *,
        max_papers: int,
        auto_build: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.settings = settings or ExactSettings()
        self.max_papers = max_papers  # from here on the tantivy path answers
        self.auto_build = auto_build
        self._loaded: dict[str, Postings] = {}  # database path -> Postings (as saved)
        self._current: dict[str, Postings] = {}  # database path -> Postings with papers added
        self._wanted: set[str] = set()  # database paths whose postings should be rebuilt
        self._busy: dict[str, asyncio.Task] = {}  # database path -> its load or build
        self._last_build: dict[str, float] = {}
        self._small: dict[str, float] = {}  # database path -> when last seen out of range
        self._children: set[asyncio.subprocess.Process] = set()
        self._readers: dict[str, ReadPool] = {}  # database path -> its reader
        self._closed = False

    def close(self) -> None:
        """Stop any build (its child process is killed) and the reader threads; FTS5 answers
        from then on."""
        self._closed = True
        for child in list(self._children):
            if child.returncode is None:
                child.kill()
        for task in self._busy.values():
            task.cancel()
        self._busy.clear()
        self._loaded.clear()
        self._current.clear()
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()

    # -- the query path -------------------------------------------------------------------------

    async def ranked(
        self, db: Database, query: Query, limit: int, offset: int
    ) -> ExactRanked | None:
        """Papers ``offset`` to ``offset + limit`` of FTS5's bm25 order, or None when FTS5 should
        answer (small or very large store, postings not current, words they cannot answer)."""
        key = db.file_key
        if key is None or self._closed or not HAVE_NUMPY or offset > self.settings.max_offset:
            return None
        postings = self._loaded.get(key)
        if postings is None and (not self.auto_build or key in self._busy):
            return None
        if time.monotonic() - self._small.get(key, -1e9) < _SMALL_SECONDS:
            return None
        found = await self._reader(key).run(self._answer, key, postings, query, limit, offset)
        if found is _OUT_OF_RANGE:  # a small store (the usual one): FTS5 is fast there
            self._small[key] = time.monotonic()
            return None
        if isinstance(found, _Stale):
            self._start(db, key, found.snapshot)
            return None
        if key in self._wanted:  # many papers added since the build: a new one, meanwhile
            self._wanted.discard(key)
            self._start(db, key, None)
        return found

    def _answer(
        self,
        conn: sqlite3.Connection,
        key: str,
        postings: Postings | None,
        query: Query,
        limit: int,
        offset: int,
    ) -> object:  # ExactRanked, _Stale, _OUT_OF_RANGE, or None (words it cannot answer)
        """In a reader thread, in one read transaction: check that the postings describe the
        store as it is, rank, and read the papers (nothing of it on the event loop)."""
        conn.execute("BEGIN")
        try:
            snapshot = Snapshot.from_row(conn.execute(SNAPSHOT_SQL).fetchone())
            if not self.settings.min_papers <= snapshot.rows < self.max_papers:
                return _OUT_OF_RANGE
            if postings is None:
                return _Stale(snapshot)
            if postings.snapshot != snapshot:
                current = self._current.get(key)
                if current is None or current.snapshot != snapshot:
                    current = self._with_added(conn, postings, snapshot)
                    if current is None:
                        return _Stale(snapshot)
                    self._current[key] = current
                if current.added_papers > self.settings.rebuild_after:
                    self._wanted.add(key)
                postings = current
            plan = plan_phrases(query, self.tokenizer)
            if plan is None or not postings.answers(plan):
                return None
            ids, scores = postings.rank(plan, limit, offset)
            if not ids:
                return ExactRanked([], [])
            rows = conn.execute(
                f"SELECT * FROM papers WHERE id IN ({','.join('?' * len(ids))})", ids
            ).fetchall()
        finally:
            conn.execute("COMMIT")
        by_id = {row["id"]: row for row in rows}
        if len(by_id) != len(ids):  # cannot happen within the snapshot; FTS5 answers if it does
            return None
        return ExactRanked([paper_from_row(by_id[paper_id]) for paper_id in ids], scores)

    def _with_added(
        self, conn: sqlite3.Connection, base: Postings, snapshot: Snapshot
    ) -> Postings | None:
        """``base`` and the papers added since, when adding is all that happened (the daily
        fetch): no row of ``base`` changed or went away, which the change log tells."""
        saved = base.snapshot
        if not saved.max_id <= snapshot.max_id <= saved.max_id + self.settings.max_added:
            return None
        logged, lowest = conn.execute(
            "SELECT count(*), min(paper_id) FROM search_index_log WHERE seq > ?",
            (saved.log_seq,),
        ).fetchone()
        if logged != snapshot.log_seq - saved.log_seq:  # pruned entries: cannot tell
            return None
        if logged and lowest <= saved.max_id:  # a saved paper was edited or removed
            return None
        rows = conn.execute(
            "SELECT id, title, authors_text, summary_text, abstract, tags_text FROM papers "
            "WHERE id > ? AND id <= ? ORDER BY id",
            (saved.max_id, snapshot.max_id),
        ).fetchall()
        return base.with_added([tuple(row) for row in rows], snapshot, self.tokenizer)

    def _reader(self, key: str) -> ReadPool:
        """The read-only connection these searches run on, in a thread of its own: one, as the
        work is mostly Python under the GIL (the store's pool of 4 threads measured 150-160 ms
        of CPU a burst of 50 against 110-130 ms with one)."""
        reader = self._readers.get(key)
        if reader is None:
            reader = self._readers[key] = ReadPool(key, size=1)
        return reader

    def prepare(self, db: Database) -> None:
        """Load (or build) the postings of ``db`` in the background, ahead of the first search."""
        if db.file_key is not None and HAVE_NUMPY:
            self._start(db, db.file_key, None)

    async def prepare_first(self, db: Database) -> None:
        """``prepare``, and wait for it (up to ``startup_wait_seconds``): loading saved postings
        takes a fraction of a second, and the first start after an import builds them before
        the bot takes commands, so that its first searches are already answered from them."""
        self.prepare(db)
        task = self._busy.get(db.file_key) if db.file_key is not None else None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), self.settings.startup_wait_seconds)
        except TimeoutError:
            log.warning(
                "search postings for %s are not ready after %.0f s; FTS5 answers until they are",
                db.path,
                self.settings.startup_wait_seconds,
            )

    async def wait(self, db: Database) -> bool:
        """Wait for a load or build of ``db`` under way; whether postings are loaded then."""
        key = db.file_key
        if key is None:
            return False
        task = self._busy.get(key)
        if task is not None:
            await asyncio.shield(task)
        return key in self._loaded

    # -- loading and building -------------------------------------------------------------------

    def _start(self, db: Database, key: str, snapshot: Snapshot | None) -> None:
        """Load or build the postings of ``db`` (at ``snapshot``; None: as it is now)."""
        if key in self._busy or self._closed or not self.auto_build:
            return
        task = asyncio.get_running_loop().create_task(self._load_or_build(db, key, snapshot))
        self._busy[key] = task
        task.add_done_callback(lambda _: self._busy.pop(key, None))

    async def _load_or_build(self, db: Database, key: str, snapshot: Snapshot | None) -> None:
        try:
            if snapshot is None:
                snapshot = Snapshot.from_row(await db.read.fetchone(SNAPSHOT_SQL))
                if not self.settings.min_papers <= snapshot.rows < self.max_papers:
                    return
            row = await db.read.fetchone("SELECT value FROM search_meta WHERE key = 'uid'")
            if row is None:
                return
            uid = str(row[0])
            saved = saved_folder(db.path, uid, snapshot)
            earlier = None if saved.is_dir() else newest_saved(saved.parent, uid)
            loaded_now = self._loaded.get(key)
            if earlier is not None and (
                loaded_now is None or loaded_now.snapshot != snapshot_of(earlier)
            ):
                saved = earlier  # an earlier state still answers when papers were only added
            elif not saved.is_dir():
                since = time.monotonic() - self._last_build.get(key, -1e9)
                if since < self.settings.rebuild_seconds:
                    return
                self._last_build[key] = time.monotonic()
                log.info(
                    "building search postings for %s (%d papers) in a child process",
                    db.path,
                    snapshot.rows,
                )
                built = await self._build(db.path)
                if built is None:
                    return
                saved = built
            loaded = await asyncio.to_thread(self._load, saved)
            if not self._closed:
                self._loaded[key] = loaded
                self._current.pop(key, None)
                log.info(
                    "search postings ready for %s: %d papers, %d words",
                    db.path,
                    loaded.snapshot.rows,
                    len(loaded.terms),
                )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # postings are a cache: FTS5 answers without them
            log.warning("search postings for %s unavailable (%s); FTS5 answers", db.path, exc)

    def _load(self, folder: Path) -> Postings:
        from bot.search.postings import Postings, load_stems  # numpy, only once there are some

        loaded = Postings.load(folder)
        self.tokenizer.preload(load_stems(folder))
        return loaded

    async def _build(self, path: str | Path) -> Path | None:
        started = time.monotonic()
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot.search.postings",
            str(path),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        self._children.add(child)
        try:
            out, err = await child.communicate()
        finally:
            self._children.discard(child)
        if child.returncode != 0:
            if not self._closed:
                lines = err.decode(errors="replace").strip().splitlines()
                log.warning(
                    "building search postings for %s failed (exit %s): %s",
                    path,
                    child.returncode,
                    lines[-1] if lines else "no message",
                )
            return None
        log.info("search postings for %s built in %.1f s", path, time.monotonic() - started)
        return Path(out.decode().strip())
