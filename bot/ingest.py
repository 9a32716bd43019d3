"""Ingest: derive missing summaries/tags, then merge into the store."""

from __future__ import annotations

from collections.abc import Iterable

from bot.db.database import Database
from bot.db.papers import UpsertResult, upsert_entries
from bot.models import Entry
from bot.summarize import with_derived_fields


def prepare(entries: Iterable[Entry]) -> list[Entry]:
    """Give every paper bullets and tags (from the source, else derived without an LLM)."""
    return [Entry(with_derived_fields(entry.paper), entry.listing) for entry in entries]


async def ingest(db: Database, entries: Iterable[Entry]) -> UpsertResult:
    """Store ``entries`` in one transaction: all of them or none."""
    return await upsert_entries(db, prepare(entries))
