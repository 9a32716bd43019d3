"""The shared database handle: one aiosqlite connection plus a write lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from bot.store.connection import open_database
from bot.store.readers import DEFAULT_SIZE, ReadPool


class Database:
    """Wraps the connection so that write transactions never interleave.

    aiosqlite runs every statement on one thread, but two coroutines could still mix
    their statements inside one transaction; ``transaction()`` serialises writers.
    """

    def __init__(
        self, conn: aiosqlite.Connection, path: str | Path, readers: ReadPool | None = None
    ) -> None:
        self.conn = conn
        self.path = Path(path)
        # The resolved file path, or None in memory: what the search caches beside the file
        # (its index and postings) are kept under.
        self.file_key = None if str(path) in ("", ":memory:") else str(self.path.resolve())
        self._write_lock = asyncio.Lock()
        self._readers = readers
        # Bumped after every committed write transaction, so that caches of reads (e.g.
        # search results) know when what they hold may be stale.
        self.generation = 0

    @property
    def read(self) -> ReadPool | Database:
        """Where interactive reads go: the read-only pool when there is one (a file
        database opened by :func:`connect`), else this connection."""
        return self._readers if self._readers is not None else self

    async def warm(self) -> None:
        """Open the read pool's connections ahead of the first interactions."""
        if self._readers is not None:
            await self._readers.warm()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        async with self._write_lock:
            await self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                await self.conn.execute("ROLLBACK")
                raise
            else:
                await self.conn.execute("COMMIT")
                self.generation += 1

    async def fetchall(self, sql: str, params: tuple | list = ()) -> list[aiosqlite.Row]:
        async with self.conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, params: tuple | list = ()) -> aiosqlite.Row | None:
        async with self.conn.execute(sql, params) as cursor:
            return await cursor.fetchone()


@asynccontextmanager
async def connect(path: str | Path, *, readers: int = DEFAULT_SIZE) -> AsyncIterator[Database]:
    """Open the database at ``path`` (migrated) as a :class:`Database`, with ``readers``
    read-only connections for interactive reads (none for ``:memory:`` or ``readers=0``)."""
    async with open_database(path) as conn:
        pool = ReadPool(path, readers) if readers > 0 and str(path) != ":memory:" else None
        try:
            yield Database(conn, path, pool)
        finally:
            if pool is not None:
                await asyncio.to_thread(pool.close)
