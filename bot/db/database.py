"""The shared database handle: one aiosqlite connection plus a write lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiosqlite

from bot.db.connection import open_database


class Database:
    """Wraps the connection so that write transactions never interleave.

    aiosqlite runs every statement on one thread, but two coroutines could still mix
    their statements inside one transaction; ``transaction()`` serialises writers.
    """

    def __init__(self, conn: aiosqlite.Connection, path: str | Path) -> None:
        self.conn = conn
        self.path = Path(path)
        self._write_lock = asyncio.Lock()

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

    async def fetchall(self, sql: str, params: tuple | list = ()) -> list[aiosqlite.Row]:
        async with self.conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetchone(self, sql: str, params: tuple | list = ()) -> aiosqlite.Row | None:
        async with self.conn.execute(sql, params) as cursor:
            return await cursor.fetchone()


@asynccontextmanager
async def connect(path: str | Path) -> AsyncIterator[Database]:
    """Open the database at ``path`` (migrated) as a :class:`Database`."""
    async with open_database(path) as conn:
        yield Database(conn, path)
