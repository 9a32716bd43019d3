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
            await conn.execute("PRAGMA busy_timeout = 5000")
            if migrate_schema:
                await migrate(conn)
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"cannot use database {path}: {exc}") from exc
        yield conn
    finally:
        await conn.close()
