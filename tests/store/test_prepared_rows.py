"""Rows prepared ahead (an import's workers) store exactly what merging their entries stores."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.models import Entry, Listing, Paper, SummarySource
from bot.store.database import connect
from bot.store.papers import _dump as dump_list
from bot.store.papers import bulk_indexing, insert_prepared, prepare_row, upsert_batch
from tests.store_dump import store_dump

DAY = date(2025, 1, 14)


def _paper(arxiv_id: str, title: str, **fields) -> Paper:
    return Paper(arxiv_id=arxiv_id, title=title, **fields)


RICH = _paper(
    "2501.00001",
    "Gaussian splatting for robots",
    authors=("Ann Author", "Bo Ünicode"),
    abstract="We splat. It works.",
    version=2,
    published=date(2025, 1, 10),
    categories=("cs.CV", "cs.RO"),
    bullets=("We splat.", "It works."),
    bullets_source=SummarySource.ABSTRACT,
    tags=("Image-to-3D", "Robotics"),
    tags_source=SummarySource.ABSTRACT,
    keywords=("gaussian splatting",),
    github_urls=("https://github.com/a/b",),
    hf_urls=("https://huggingface.co/a/b",),
    project_url="https://a.example",
    comment="10 pages",
    upvotes=7,
    github_stars=3,
)
FRESH = [
    Entry(RICH, Listing(DAY, "hf", upvotes=7)),
    Entry(_paper("2501.00002", "No date, listed", tags=("Other",)), Listing(DAY, "hf", rank=2)),
    Entry(_paper("2501.00003", "Nothing but a title")),
]
# Papers the store holds before the batch, and a batch with one of them again and a repeat.
STORED = [Entry(_paper("2501.00002", "No date, listed"), Listing(date(2025, 1, 13), "hf"))]
MERGING = [
    *FRESH,
    Entry(_paper("2501.00003", "Nothing but a title", comment="now with a comment")),
]


async def _store(path: Path, before: list[Entry], batch: list[Entry], *, prepared: bool) -> tuple:
    async with connect(path) as db:
        if before:
            async with db.transaction() as conn:
                await upsert_batch(conn, before)
        async with db.transaction() as conn:
            if prepared:
                result = await insert_prepared(conn, [prepare_row(entry) for entry in batch])
            else:
                result = await upsert_batch(conn, batch)
    return result.new, result.updated, result.unchanged, result.listings, result.new_ids


@pytest.mark.parametrize(
    ("before", "batch"),
    [([], FRESH), (STORED, FRESH), ([], MERGING), (STORED, MERGING)],
    ids=["new papers", "one stored", "one repeated", "stored and repeated"],
)
async def test_prepared_rows_store_what_their_entries_store(tmp_path, before, batch):
    expected = await _store(tmp_path / "entries.db", before, batch, prepared=False)
    assert await _store(tmp_path / "rows.db", before, batch, prepared=True) == expected
    assert store_dump(tmp_path / "rows.db") == store_dump(tmp_path / "entries.db")


async def test_a_prepared_row_is_the_paper_it_was_made_of(tmp_path):
    async with connect(tmp_path / "paperbot.db") as db:
        async with db.transaction() as conn:
            await insert_prepared(conn, [prepare_row(entry) for entry in FRESH])
        async with db.conn.execute("SELECT sort_date FROM papers ORDER BY id") as cursor:
            sort_dates = [row[0] for row in await cursor.fetchall()]
    assert sort_dates == ["2025-01-10", DAY.isoformat(), None]  # published, else listed


async def test_a_failing_bulk_import_leaves_the_store_and_its_index_settings_as_they_were(tmp_path):
    path = tmp_path / "paperbot.db"
    async with connect(path) as db, db.transaction() as conn:
        await upsert_batch(conn, STORED)
        await conn.execute("INSERT INTO papers_fts (papers_fts, rank) VALUES ('automerge', 8)")
    before = store_dump(path)
    bad = prepare_row(Entry(_paper("2501.00009", "Bad")))
    bad = ((*bad[0][:2], None, *bad[0][3:]), None)  # no title: the schema refuses it
    async with connect(path) as db:
        with pytest.raises(sqlite3.IntegrityError):
            async with db.transaction() as conn, bulk_indexing(conn):
                await insert_prepared(conn, [prepare_row(entry) for entry in FRESH[:1]])
                await insert_prepared(conn, [bad])
    assert store_dump(path) == before
    assert ("automerge", 8) in before["fts_config"]


async def test_bulk_indexing_puts_back_the_settings_it_changed(tmp_path):
    path = tmp_path / "paperbot.db"
    async with connect(path) as db:
        before = store_dump(path)["fts_config"]
        async with db.transaction() as conn, bulk_indexing(conn):
            async with conn.execute("SELECT v FROM papers_fts_config WHERE k = 'hashsize'") as cur:
                assert (await cur.fetchone())[0] > 1 << 20
            await insert_prepared(conn, [prepare_row(entry) for entry in FRESH])
    assert store_dump(path)["fts_config"] == before


@given(st.lists(st.text() | st.integers() | st.none(), max_size=6).map(tuple))
def test_a_list_column_is_written_as_json_dumps_writes_it(values: tuple) -> None:
    assert dump_list(values) == json.dumps(list(values), ensure_ascii=False)
