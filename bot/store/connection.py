"""Opening the SQLite database and applying numbered migrations."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path

import aiosqlite

from bot.errors import PaperbotError

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000  # how long a statement waits for another connection's lock
_MIGRATION_NAME = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")


class DatabaseError(PaperbotError):
    """The database file cannot be opened or migrated."""


def migration_scripts() -> list[tuple[int, str, str]]:
    """All migrations shipped with the package as ``(version, name, sql)``, in order."""
    folder = resources.files("bot.store") / "migrations"
    found = []
    for item in folder.iterdir():
        match = _MIGRATION_NAME.match(item.name)
        if match:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    return sorted(found)


async def current_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def migrate(conn: aiosqlite.Connection) -> list[str]:
    """Apply pending migrations, each in its own transaction; return the names applied."""
    applied = []
    version = await current_version(conn)
    for number, name, sql in migration_scripts():
        if number <= version:
            continue
        # executescript would COMMIT first; run statement by statement inside BEGIN instead.
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _split_sql(sql):
                await conn.execute(statement)
            await conn.execute(f"PRAGMA user_version = {number}")
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
        log.info("applied migration %s", name)
        applied.append(name)
    return applied


def _split_sql(script: str) -> list[str]:
    """Split a migration script into complete statements (handles triggers' BEGIN...END)."""
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--") and not buffer.strip():
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements


async def _set_journal_mode(conn: aiosqlite.Connection, mode: str) -> bool:
    """Whether the store's journal mode is now ``mode``; never waits for other connections."""
    await conn.execute("PRAGMA busy_timeout = 0")
    try:
        async with conn.execute(f"PRAGMA journal_mode = {mode}") as cursor:
            row = await cursor.fetchone()
    except sqlite3.OperationalError:  # another connection has the store open
        return False
    finally:
        await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return row is not None and str(row[0]).lower() == mode


@asynccontextmanager
async def direct_writes(conn: aiosqlite.Connection) -> AsyncIterator[bool]:
    """For one large write transaction in the block: write it straight into the database file
    (a rollback journal) rather than through the write-ahead log, if no other connection has
    the store open. Yields whether it does; the store is in WAL mode again afterwards.

    Through the log every page is written twice, to the log and by the checkpoint at commit
    into the file, and that checkpoint runs on one core after all else is done (3.3 s of the
    corpus import). A rollback journal copies only the pages that existed before the
    transaction changed them (none of a new store's); new pages are written once. The change
    needs the store to itself: with a bot running on it, it stays in WAL mode (readers go on
    reading while the transaction writes).
    """
    switched = await _set_journal_mode(conn, "truncate")
    try:
        yield switched
    finally:
        if switched and not await _set_journal_mode(conn, "wal"):
            log.warning("the database stays in rollback-journal mode until it is opened again")


@asynccontextmanager
async def open_database(
    path: str | Path, *, migrate_schema: bool = True
) -> AsyncIterator[aiosqlite.Connection]:
    """Open (creating if needed) the database with WAL and foreign keys, migrated to the latest."""
    target = Path(path)
    if str(path) != ":memory:":
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DatabaseError(f"cannot create the folder for database {path}: {exc}") from exc
    try:
        conn = await aiosqlite.connect(str(path), isolation_level=None)
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot open database {path}: {exc}") from exc
    try:
        conn.row_factory = aiosqlite.Row
        try:
            await conn.execute("PRAGMA journal_mode = WAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if migrate_schema:
                await migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot use database {path}: {exc}") from exc
        yield conn
    finally:
        await conn.close()
