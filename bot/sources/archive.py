"""Importing files into the store, and exporting stored days as a markdown digest archive.

Import is all-or-nothing by default: every file is stored inside one transaction, so one bad
file (or a bad line late in a large JSON Lines file) leaves the store untouched. Small files are
parsed before anything is stored, so every bad one is reported at once; JSON Lines files are
streamed in batches (a 90k-paper corpus never sits in memory) and a bad line is found as it is
read. With ``keep_going`` the good files are stored and the bad ones reported with their
reasons (each file in its own savepoint).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from pathlib import Path

import aiosqlite

from bot.errors import InputError, PaperbotError
from bot.models import Entry, Listing, Paper
from bot.sources.detect import LoadedFile, is_streamed, load, stream_file
from bot.sources.ingest import ingest_prepared, ingest_stream
from bot.sources.ingest_pool import PreparedChunks, use_pool
from bot.sources.markdown import SOURCE as DIGEST_SOURCE
from bot.sources.markdown import render_markdown_day
from bot.store.connection import direct_writes
from bot.store.database import Database
from bot.store.digests import digest_days, digest_rows, record_digest_days
from bot.store.papers import PreparedRow, listed_days, papers_for_day


@dataclass
class FileImport:
    """What importing one file did (or why it was not imported)."""

    name: str
    records: int = 0
    new: int = 0
    updated: int = 0
    days: list[date] = field(default_factory=list)
    error: str | None = None

    def summary(self) -> str:
        span = f", {len(self.days)} days ({self.days[0]}..{self.days[-1]})" if self.days else ""
        return (
            f"{self.name}: {self.records} records, {self.new} new papers, "
            f"{self.updated} updated{span}"
        )


def _reason(name: str, exc: PaperbotError) -> str:
    """The error without a leading ``name: `` (the loader names the file already)."""
    return str(exc).removeprefix(f"{name}: ")


def _nothing_imported(failed: Sequence[FileImport], total: int) -> InputError:
    reasons = "; ".join(f"{item.name}: {item.error}" for item in failed)
    if len(failed) > 1:
        reasons = f"{len(failed)} of {total} files cannot be imported: {reasons}"
    good = total - len(failed)
    hint = f" (--keep-going imports the other {good})" if good else ""
    return InputError(f"{reasons}; nothing was imported{hint}")


class _Tracked:
    """Counts a stream's records and collects its listing days as they pass."""

    def __init__(self, item: FileImport) -> None:
        self.item = item
        self.days: set[date] = set()

    def track_chunks(
        self, next_chunk: Callable[[], list[PreparedRow] | None]
    ) -> list[PreparedRow] | None:
        """``next_chunk()``, tracked."""
        chunk = next_chunk()
        if chunk is not None:
            self.item.records += len(chunk)
            self.days.update(listing.day for _, listing in chunk if listing is not None)
        return chunk

    def track(self, entries: Iterable[Entry]) -> Iterator[Entry]:
        for entry in entries:
            self.item.records += 1
            if entry.listing is not None:
                self.days.add(entry.listing.day)
            yield entry


async def import_files(
    db: Database, names: Sequence[str], *, keep_going: bool = False
) -> list[FileImport]:
    """Import ``names`` in order; one :class:`FileImport` per file.

    Without ``keep_going`` a file that cannot be read or parsed raises :class:`InputError`
    ("nothing was imported") and nothing is stored. With it, the good files are stored and
    the bad ones come back with ``error`` set.
    """
    loaded: list[tuple[FileImport, LoadedFile | None]] = []
    for name in names:
        item = FileImport(name)
        try:
            # Streamed files are read while storing; the others are parsed first.
            loaded.append((item, None if is_streamed(Path(name)) else load(Path(name))))
        except PaperbotError as exc:
            item.error = _reason(name, exc)
            loaded.append((item, None))
    failed = [item for item, _ in loaded if item.error is not None]
    if failed and not keep_going:
        raise _nothing_imported(failed, len(names))
    async with direct_writes(db.conn), db.transaction() as conn:
        for item, content in loaded:
            if item.error is None:
                await _store_one(conn, item, content, keep_going=keep_going, total=len(names))
    return [item for item, _ in loaded]


async def _store_one(
    conn: aiosqlite.Connection,
    item: FileImport,
    content: LoadedFile | None,
    *,
    keep_going: bool,
    total: int,
) -> None:
    """Store one file inside a savepoint, so that ``keep_going`` can drop just this file."""
    tracked = _Tracked(item)
    await conn.execute("SAVEPOINT import_file")
    try:
        if content is None and use_pool(Path(item.name)):
            # A large JSON Lines file: parsed and derived by worker processes meanwhile.
            with PreparedChunks(Path(item.name)) as chunks:
                next_chunk = partial(tracked.track_chunks, chunks.next_chunk)
                result = await ingest_prepared(conn, next_chunk)
            digest = {}
        else:
            if content is None:
                entries: Iterable[Entry] = stream_file(Path(item.name))
                digest = {}
            else:
                entries, digest = content.entries, content.digest_days
            result = await ingest_stream(conn, tracked.track(entries))
        await record_digest_days(conn, digest)
    except PaperbotError as exc:
        await conn.execute("ROLLBACK TO import_file")
        await conn.execute("RELEASE import_file")
        item.error, item.records = _reason(item.name, exc), 0
        if not keep_going:
            raise _nothing_imported([item], total) from exc
        return
    await conn.execute("RELEASE import_file")
    item.new, item.updated = result.new, result.updated
    item.days = sorted(tracked.days | set(digest))


async def _day_items(db: Database, day: date) -> list[Paper | Entry]:
    """The day's papers; those a digest listed come first, in its order, with its rows."""
    listed = await papers_for_day(db, day)
    rows = await digest_rows(db, day)
    items: list[tuple[tuple[int, int], Paper | Entry]] = []
    for position, item in enumerate(listed):
        written = rows.get(item.paper.arxiv_id)
        if written is None:
            items.append(((1, position), item.paper))
            continue
        rank, row = written
        listing = Listing(day, DIGEST_SOURCE, rank=rank, row=row)
        items.append(((0, rank if rank is not None else position), Entry(item.paper, listing)))
    return [item for _, item in sorted(items, key=lambda pair: pair[0])]


async def export_markdown(
    db: Database, since: date | None = None, until: date | None = None
) -> AsyncIterator[str]:
    """Each stored day's section in ``since..until``, oldest first.

    Days come from every listing and every imported digest (a header-only digest day is
    exported as its empty table). Rows imported from a digest are written as they were
    (see :func:`bot.sources.markdown.render_row`); other papers in the seed's style.
    """
    days = sorted(
        set(await listed_days(db, since, until)) | set(await digest_days(db, since, until))
    )
    for day in days:
        yield render_markdown_day(day, await _day_items(db, day))
