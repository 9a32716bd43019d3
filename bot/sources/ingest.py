"""Ingest: derive missing summaries/tags, then merge into the store."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from itertools import chain, islice

import aiosqlite

from bot.digest.summarize import with_derived_fields
from bot.models import Entry
from bot.store.database import Database
from bot.store.papers import (
    PreparedRow,
    UpsertResult,
    bulk_indexing,
    insert_prepared,
    upsert_batch,
    upsert_entries,
)

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


def _rebatch(chunks: Iterable[list[PreparedRow]], size: int) -> Iterator[list[PreparedRow]]:
    """Chunks of any length as batches of ``size`` (the last may be shorter)."""
    entries = chain.from_iterable(chunks)
    while batch := list(islice(entries, size)):
        yield batch


async def ingest_prepared(
    conn: aiosqlite.Connection,
    next_chunk: Callable[[], list[PreparedRow] | None],
    result: UpsertResult | None = None,
    *,
    batch_size: int = BATCH_SIZE,
) -> UpsertResult:
    """Store already prepared rows (``next_chunk()`` until None, see
    :func:`bot.store.papers.insert_prepared`) as :func:`ingest_stream` stores their entries:
    the same batches, the same outcome, inside the caller's transaction.

    ``next_chunk`` blocks (on a worker process, see :mod:`bot.sources.ingest_pool`), so it runs in a
    thread, fetching the next batch while SQLite stores this one.
    """
    result = UpsertResult() if result is None else result
    batches = _rebatch(iter(next_chunk, None), batch_size)
    loop = asyncio.get_running_loop()
    pending = loop.run_in_executor(None, next, batches, None)
    try:
        async with bulk_indexing(conn):
            while (batch := await pending) is not None:
                pending = loop.run_in_executor(None, next, batches, None)
                await insert_prepared(conn, batch, result)
    finally:
        if not pending.done():  # storing failed: the caller stops the workers, then this ends
            pending.add_done_callback(lambda future: future.exception())
    return result
