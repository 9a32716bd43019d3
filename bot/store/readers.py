"""A small pool of read-only SQLite connections, each in its own worker thread.

aiosqlite runs every statement of a connection on that connection's one thread, so with a
single connection fifty searches wait for each other. SQLite in WAL mode lets readers run
next to each other and next to the writer, and releases the GIL while it works: with a
few read-only connections (``mode=ro``) in worker threads, interactive reads (searches,
paper cards, autocomplete) run in parallel instead of queueing behind one connection.
A read issued after a write has been awaited sees it (a new read transaction in WAL sees
every committed write).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# Threads: more than the cores, so that a slow read (a common word's bm25 over tens of
# thousands of rows) does not hold up the rest (3 measured slower than 4 on 2 cores).
DEFAULT_SIZE = 4
# Per reader: full-text doclists of common words are large, and SQLite's default page cache
# (2 MB) rereads them from the OS on every query.
CACHE_KIB = 32 * 1024
# Pages are read straight from the OS page cache, shared by every reader, instead of being
# copied into each connection's own cache first (SQLite caps this at its compile-time limit).
MMAP_BYTES = 1 << 30


class ReadPool:
    """``fetchall`` / ``fetchone`` like :class:`bot.store.database.Database`, on read-only
    connections in worker threads (one connection per thread, opened on first use)."""

    def __init__(self, path: str | Path, size: int = DEFAULT_SIZE) -> None:
        self.uri = f"{Path(path).resolve().as_uri()}?mode=ro"
        self.size = max(1, size)
        self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="paperbot-read")
        self._local = threading.local()
        self._opened: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.uri, uri=True, timeout=5.0, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA query_only = ON")
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        return conn

    def _fetchall(self, sql: str, params: tuple | list) -> list[sqlite3.Row]:
        return self._connection().execute(sql, params).fetchall()

    def _fetchone(self, sql: str, params: tuple | list) -> sqlite3.Row | None:
        return self._connection().execute(sql, params).fetchone()

    def _open_here(self, barrier: threading.Barrier) -> None:
        # Reading the schema now spares the first search of each thread from parsing it.
        self._connection().execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=10)  # hold this thread so the next task lands on another

    async def warm(self) -> None:
        """Open every thread's connection now rather than during the first burst."""
        barrier = threading.Barrier(self.size)
        loop = asyncio.get_running_loop()
        opening = [
            loop.run_in_executor(self._executor, self._open_here, barrier) for _ in range(self.size)
        ]
        await asyncio.gather(*opening)

    async def fetchall(self, sql: str, params: tuple | list = ()) -> list[sqlite3.Row]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._fetchall, sql, params)

    async def fetchone(self, sql: str, params: tuple | list = ()) -> sqlite3.Row | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._fetchone, sql, params)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(connection, *args)`` in a reader thread, on that thread's connection: for
        work that needs several statements in one read transaction, or Python work beside them
        that should stay off the event loop."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, lambda: function(self._connection(), *args)
        )

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._opened:
                conn.close()
            self._opened.clear()
