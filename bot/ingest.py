"""Ingest: derive missing summaries/tags, then merge into the store."""

from __future__ import annotations

from collections.abc import Iterable
from itertools import islice

import aiosqlite

from bot.db.database import Database
from bot.db.papers import UpsertResult, upsert_batch, upsert_entries
from bot.models import Entry
from bot.summarize import with_derived_fields

BATCH_SIZE = 2000  # entries per batch of a streamed import: memory stays flat


def prepare(entries: Iterable[Entry]) -> list[Entry]:
    """Give every paper bullets and tags (from the source, else derived without an LLM)."""
    return [Entry(with_derived_fields(entry.paper), entry.listing) for entry in entries]


async def ingest(db: Database, entries: Iterable[Entry]) -> UpsertResult:
    """Store ``entries`` in one transaction: all of them or none."""
    return await upsert_entries(db, prepare(entries))


async def ingest_stream(
    conn: aiosqlite.Connection,
    entries: Iterable[Entry],
    result: UpsertResult | None = None,
    *,
    batch_size: int = BATCH_SIZE,
) -> UpsertResult:
    """Store a stream of entries batch by batch, inside the caller's transaction.

    Only one batch is in memory at a time. A failure anywhere (a bad line late in a file)
    propagates, and the caller's transaction rolls every batch back. (Deriving the next batch
    in a worker thread while SQLite writes was measured slower: the two contend for the GIL.)
    """
    result = UpsertResult() if result is None else result
    source = iter(entries)
    while batch := prepare(islice(source, batch_size)):
        await upsert_batch(conn, batch, result)
    return result
