"""An import writes straight into a store it has to itself (a rollback journal), through the
write-ahead log where another connection has the store open, and either way leaves it in WAL
mode, with all of the import or none of it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.errors import InputError
from bot.sources.archive import import_files
from bot.store.connection import BUSY_TIMEOUT_MS, direct_writes, open_database
from bot.store.database import connect
from tests.conftest import FIXTURES
from tests.store_dump import store_dump

SEED = str(FIXTURES / "seed_2025-01-14.md")
CORPUS = FIXTURES / "sources" / "corpus" / "papers_corpus_20.jsonl"


async def _pragma(conn, name: str):
    async with conn.execute(f"PRAGMA {name}") as cursor:
        return (await cursor.fetchone())[0]


async def test_a_store_of_its_own_is_written_directly_then_back_in_wal_mode(tmp_path):
    path = tmp_path / "store.db"
    async with open_database(path) as conn:
        async with direct_writes(conn) as direct:
            assert direct
            assert await _pragma(conn, "journal_mode") == "truncate"
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute("INSERT INTO papers (arxiv_id, title) VALUES ('2501.00001', 'A')")
            await conn.execute("COMMIT")
        assert await _pragma(conn, "journal_mode") == "wal"
        assert await _pragma(conn, "busy_timeout") == BUSY_TIMEOUT_MS
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("SELECT title FROM papers").fetchall() == [("A",)]
    conn.close()


async def test_a_store_another_connection_has_open_stays_in_wal_mode(tmp_path):
    path = tmp_path / "store.db"
    async with open_database(path) as conn, open_database(path) as reader:
        assert await _pragma(reader, "journal_mode") == "wal"
        async with direct_writes(conn) as direct:
            assert not direct
            assert await _pragma(conn, "journal_mode") == "wal"
            assert await _pragma(conn, "busy_timeout") == BUSY_TIMEOUT_MS
            await conn.execute("BEGIN IMMEDIATE")
            await conn.execute("INSERT INTO papers (arxiv_id, title) VALUES ('2501.00001', 'A')")
            # The reader goes on reading the store as it was while the transaction writes.
            async with reader.execute("SELECT count(*) FROM papers") as cursor:
                assert tuple(await cursor.fetchone()) == (0,)
            await conn.execute("COMMIT")
        async with reader.execute("SELECT count(*) FROM papers") as cursor:
            assert tuple(await cursor.fetchone()) == (1,)


async def test_an_import_with_a_bad_line_leaves_the_store_as_it_was_and_in_wal_mode(tmp_path):
    store, before = tmp_path / "store.db", tmp_path / "before.db"
    for path in (store, before):
        async with connect(path) as db:
            await import_files(db, [SEED])
    lines = CORPUS.read_text(encoding="utf-8").splitlines(True)
    bad = tmp_path / "bad.jsonl"
    bad.write_text("".join([*lines, '{"id": "2501.00001", "ti\n']), encoding="utf-8")
    async with connect(store) as db:
        with pytest.raises(InputError, match="not valid JSON"):
            await import_files(db, [str(bad)])
        assert await _pragma(db.conn, "journal_mode") == "wal"
    assert store_dump(store) == store_dump(before)
    assert not Path(f"{store}-journal").exists() or Path(f"{store}-journal").stat().st_size == 0


async def test_an_import_stores_the_same_either_way(tmp_path):
    direct, logged = tmp_path / "direct.db", tmp_path / "logged.db"
    async with connect(direct) as db:
        await import_files(db, [str(CORPUS), SEED])
    async with connect(logged) as db, open_database(logged):  # a second connection: WAL
        await import_files(db, [str(CORPUS), SEED])
    assert store_dump(direct) == store_dump(logged)
    assert len(store_dump(direct)["papers"]) > 20
