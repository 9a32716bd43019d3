"""Papers, their listings and tags: merging upserts and reads."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date

import aiosqlite

from bot.models import Entry, Listing, Paper, SummarySource, merge_papers, search_texts
from bot.store.database import Database

_CHUNK = 500  # parameters per IN (...) lookup, well under SQLite's limit

_PAPER_COLUMNS = (
    "arxiv_id, version, title, authors, abstract, published, sort_date, categories, bullets,"
    " bullets_source, tags, tags_source, keywords, github_urls, hf_urls, project_url, comment,"
    " upvotes, github_stars, authors_text, summary_text, tags_text"
)
_COLUMN_NAMES = tuple(name.strip() for name in _PAPER_COLUMNS.split(","))
_PLACEHOLDERS = ", ".join("?" * len(_COLUMN_NAMES))
_FTS_COLUMNS = "title, authors_text, summary_text, abstract, tags_text"


@dataclass
class UpsertResult:
    """What one ingest changed."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    listings: int = 0
    new_ids: list[str] = field(default_factory=list)
    fresh_ids: set[str] = field(default_factory=set, repr=False)  # new_ids, for lookups


# What json.dumps(..., ensure_ascii=False) builds on every call, built once.
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode
# The encoder's own string quoting (C), which a list of strings needs alone: "[" + ", "...
_QUOTE = json.encoder.encode_basestring


def _dump(values: Sequence[str]) -> str:
    """``json.dumps(list(values), ensure_ascii=False)``, about 3x faster for strings."""
    if not values:
        return "[]"
    try:
        return "[" + ", ".join(map(_QUOTE, values)) + "]"
    except TypeError:  # not all strings: the encoder says how to write them, or refuses
        return _ENCODE(list(values))


_DECODE = json.JSONDecoder().decode


def _load(text: str | None) -> tuple[str, ...]:
    return tuple(_DECODE(text)) if text and text != "[]" else ()


def _row_values(paper: Paper, sort_date: str | None) -> tuple:
    authors_text, summary_text, tags_text = search_texts(paper)
    return (
        paper.arxiv_id,
        paper.version,
        paper.title,
        _dump(paper.authors),
        paper.abstract,
        paper.published.isoformat() if paper.published else None,
        sort_date,
        _dump(paper.categories),
        _dump(paper.bullets),
        int(paper.bullets_source),
        _dump(paper.tags),
        int(paper.tags_source),
        _dump(paper.keywords),
        _dump(paper.github_urls),
        _dump(paper.hf_urls),
        paper.project_url,
        paper.comment,
        paper.upvotes,
        paper.github_stars,
        authors_text,
        summary_text,
        tags_text,
    )


# A new paper's ``papers`` row and its listing, made where the paper is prepared (an import's
# worker process) so that the importer only executes the insert: see insert_prepared().
PreparedRow = tuple[tuple, Listing | None]


def prepare_row(entry: Entry) -> PreparedRow:
    """The row :func:`upsert_batch` would insert for ``entry``'s paper if new, and its listing."""
    paper, listing = entry.paper, entry.listing
    sort_date = _sort_date(paper, () if listing is None else (listing,), None)
    return _row_values(paper, sort_date), listing


def _paper_from_values(values: Sequence) -> Paper:
    """The Paper of a :func:`_row_values` tuple (its inverse)."""
    return paper_from_row(dict(zip(_COLUMN_NAMES, values, strict=True)))


def paper_from_row(row: aiosqlite.Row | dict) -> Paper:
    """Build a Paper from a ``papers`` row (or a dict of its columns)."""
    return Paper(
        arxiv_id=row["arxiv_id"],
        title=row["title"],
        authors=_load(row["authors"]),
        abstract=row["abstract"],
        version=row["version"],
        published=date.fromisoformat(row["published"]) if row["published"] else None,
        categories=_load(row["categories"]),
        bullets=_load(row["bullets"]),
        bullets_source=SummarySource(row["bullets_source"]),
        tags=_load(row["tags"]),
        tags_source=SummarySource(row["tags_source"]),
        keywords=_load(row["keywords"]),
        github_urls=_load(row["github_urls"]),
        hf_urls=_load(row["hf_urls"]),
        project_url=row["project_url"],
        comment=row["comment"],
        upvotes=row["upvotes"],
        github_stars=row["github_stars"],
    )


def _merge_batch(entries: Iterable[Entry]) -> tuple[dict[str, Paper], dict[str, list[Listing]]]:
    """Collapse duplicates inside one batch, keeping every listing."""
    papers: dict[str, Paper] = {}
    listings: dict[str, list[Listing]] = {}
    for entry in entries:
        key = entry.paper.arxiv_id
        previous = papers.get(key)
        papers[key] = entry.paper if previous is None else merge_papers(previous, entry.paper)
        if entry.listing is not None:
            listings.setdefault(key, []).append(entry.listing)
    return papers, listings


def _sort_date(paper: Paper, listings: Sequence[Listing], stored: str | None) -> str | None:
    if paper.published:
        return paper.published.isoformat()
    days = [listing.day.isoformat() for listing in listings]
    if stored:
        days.append(stored)
    return min(days) if days else None


async def _existing(conn: aiosqlite.Connection, ids: Sequence[str]) -> dict[str, aiosqlite.Row]:
    found: dict[str, aiosqlite.Row] = {}
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        marks = ",".join("?" * len(chunk))
        async with conn.execute(
            f"SELECT * FROM papers WHERE arxiv_id IN ({marks})", chunk
        ) as cursor:
            for row in await cursor.fetchall():
                found[row["arxiv_id"]] = row
    return found


async def upsert_entries(db: Database, entries: Iterable[Entry]) -> UpsertResult:
    """Merge entries into the store in one transaction: all of them or none."""
    async with db.transaction() as conn:
        return await upsert_batch(conn, entries)


async def upsert_batch(
    conn: aiosqlite.Connection, entries: Iterable[Entry], result: UpsertResult | None = None
) -> UpsertResult:
    """Merge entries inside the caller's transaction, adding the counts to ``result``.

    Called batch after batch in one transaction, a paper stored by an earlier batch is merged
    again, not stored twice, and still counts once as new.
    """
    papers, listings = _merge_batch(entries)
    result = UpsertResult() if result is None else result
    existing = await _existing(conn, list(papers))
    async with conn.execute("SELECT coalesce(max(id), 0) FROM papers") as cursor:
        (max_id_before,) = await cursor.fetchone()

    inserts, updates = [], []
    for arxiv_id, paper in papers.items():
        row = existing.get(arxiv_id)
        day_listings = listings.get(arxiv_id, [])
        if row is None:
            inserts.append(_row_values(paper, _sort_date(paper, day_listings, None)))
            result.new_ids.append(arxiv_id)
            continue
        stored = paper_from_row(row)
        merged = merge_papers(stored, paper)
        sort_date = _sort_date(merged, day_listings, row["sort_date"])
        if merged == stored and sort_date == row["sort_date"]:
            result.unchanged += 1
        else:
            updates.append((row, stored, merged, sort_date))
    result.new += len(inserts)
    fresh = result.fresh_ids
    result.updated += sum(1 for row, *_ in updates if row["arxiv_id"] not in fresh)
    fresh.update(values[0] for values in inserts)

    if inserts:
        await _insert_new(conn, inserts, max_id_before)
    for row, stored, merged, sort_date in updates:
        await _update_paper(conn, row, stored, merged, sort_date)

    result.listings += await _upsert_listings(conn, listings, max_id_before, existing)
    return result


async def insert_prepared(
    conn: aiosqlite.Connection, rows: Sequence[PreparedRow], result: UpsertResult | None = None
) -> UpsertResult:
    """:func:`upsert_batch` for prepared rows (see :func:`prepare_row`), inside the caller's
    transaction, with the same outcome.

    When every paper is new (none stored, none twice in ``rows``), the rows are inserted as
    they are; otherwise the batch is merged as entries by :func:`upsert_batch`.
    """
    result = UpsertResult() if result is None else result
    ids = [values[0] for values, _ in rows]
    if len(set(ids)) < len(ids) or await _existing(conn, ids):
        entries = [Entry(_paper_from_values(values), listing) for values, listing in rows]
        return await upsert_batch(conn, entries, result)
    if not rows:
        return result
    async with conn.execute("SELECT coalesce(max(id), 0) FROM papers") as cursor:
        (max_id_before,) = await cursor.fetchone()
    await _insert_new(conn, [values for values, _ in rows], max_id_before)
    result.new += len(ids)
    result.new_ids.extend(ids)
    result.fresh_ids.update(ids)
    listings = {values[0]: [listing] for values, listing in rows if listing is not None}
    result.listings += await _upsert_listings(conn, listings, max_id_before, {})
    return result


# FTS5 settings for a bulk import: the index merges its segments less often and buffers more
# terms in memory before writing a segment (measured 20-30% less time indexing the corpus).
# Values are SQLite's defaults, which a store has unless it was set otherwise.
_BULK_FTS_SETTINGS = {"automerge": 16, "crisismerge": 64, "hashsize": 32 << 20}
_DEFAULT_FTS_SETTINGS = {"automerge": 4, "crisismerge": 16, "hashsize": 1 << 20}


async def _set_fts(conn: aiosqlite.Connection, settings: dict[str, object]) -> None:
    for key, value in settings.items():
        await conn.execute("INSERT INTO papers_fts (papers_fts, rank) VALUES (?, ?)", (key, value))


@asynccontextmanager
async def bulk_indexing(conn: aiosqlite.Connection) -> AsyncIterator[None]:
    """Index with :data:`_BULK_FTS_SETTINGS` inside the block, then as before, in the caller's
    transaction (a rollback restores the store's settings too).

    A setting the store did not have is set back to its default, then its row is dropped from
    the index's configuration table: the store is left as it was, and FTS5 holds the value a
    fresh read of that table gives.
    """
    keys = tuple(_BULK_FTS_SETTINGS)
    marks = ",".join("?" * len(keys))
    async with conn.execute(
        f"SELECT k, v FROM papers_fts_config WHERE k IN ({marks})", keys
    ) as cursor:
        stored = {key: value for key, value in await cursor.fetchall()}
    await _set_fts(conn, _BULK_FTS_SETTINGS)
    try:
        yield
    finally:
        await _set_fts(conn, {key: stored.get(key, _DEFAULT_FTS_SETTINGS[key]) for key in keys})
        unset = [key for key in keys if key not in stored]
        await conn.execute(
            f"DELETE FROM papers_fts_config WHERE k IN ({','.join('?' * len(unset))})", unset
        )


async def _insert_new(conn: aiosqlite.Connection, rows: list[tuple], max_id_before: int) -> None:
    """Insert new papers' rows, index them and file their tags."""
    await conn.executemany(f"INSERT INTO papers ({_PAPER_COLUMNS}) VALUES ({_PLACEHOLDERS})", rows)
    # One bulk statement for the index: much faster than a trigger per row.
    await conn.execute(
        f"INSERT INTO papers_fts (rowid, {_FTS_COLUMNS}) "
        f"SELECT id, {_FTS_COLUMNS} FROM papers WHERE id > ?",
        (max_id_before,),
    )
    await conn.execute(
        "INSERT OR IGNORE INTO paper_tags (tag, paper_id) "
        "SELECT value, papers.id FROM papers, json_each(papers.tags) WHERE papers.id > ?",
        (max_id_before,),
    )


async def _update_paper(
    conn: aiosqlite.Connection,
    row: aiosqlite.Row,
    stored: Paper,
    merged: Paper,
    sort_date: str | None,
) -> None:
    paper_id = row["id"]
    index_changed = (
        stored.title != merged.title
        or stored.abstract != merged.abstract
        or (search_texts(stored) != search_texts(merged))
    )
    if index_changed:
        await conn.execute(
            f"INSERT INTO papers_fts (papers_fts, rowid, {_FTS_COLUMNS}) "
            f"VALUES ('delete', ?, ?, ?, ?, ?, ?)",
            (
                paper_id,
                row["title"],
                row["authors_text"],
                row["summary_text"],
                row["abstract"],
                row["tags_text"],
            ),
        )
    values = _row_values(merged, sort_date)
    assignments = ", ".join(f"{name} = ?" for name in _COLUMN_NAMES[1:])
    await conn.execute(
        f"UPDATE papers SET {assignments}, "
        "updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
        (*values[1:], paper_id),
    )
    if index_changed:
        await conn.execute(
            f"INSERT INTO papers_fts (rowid, {_FTS_COLUMNS}) "
            f"SELECT id, {_FTS_COLUMNS} FROM papers WHERE id = ?",
            (paper_id,),
        )
    if stored.tags != merged.tags:
        await conn.execute("DELETE FROM paper_tags WHERE paper_id = ?", (paper_id,))
        await conn.executemany(
            "INSERT OR IGNORE INTO paper_tags (tag, paper_id) VALUES (?, ?)",
            [(tag, paper_id) for tag in merged.tags],
        )


async def _upsert_listings(
    conn: aiosqlite.Connection,
    listings: dict[str, list[Listing]],
    max_id_before: int,
    existing: dict[str, aiosqlite.Row],
) -> int:
    if not listings:
        return 0
    ids = {arxiv_id: row["id"] for arxiv_id, row in existing.items()}
    async with conn.execute(
        "SELECT arxiv_id, id FROM papers WHERE id > ?", (max_id_before,)
    ) as cursor:
        ids.update({row[0]: row[1] for row in await cursor.fetchall()})
    rows = [
        (
            ids[arxiv_id],
            listing.day.isoformat(),
            listing.source,
            listing.rank,
            listing.upvotes,
            listing.row,
        )
        for arxiv_id, day_listings in listings.items()
        for listing in day_listings
    ]
    await conn.executemany(
        "INSERT INTO listings (paper_id, day, source, rank, upvotes, row_text) "
        "VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (paper_id, day, source) DO UPDATE SET "
        "rank = coalesce(excluded.rank, listings.rank), "
        "upvotes = coalesce(excluded.upvotes, listings.upvotes), "
        "row_text = coalesce(excluded.row_text, listings.row_text)",
        rows,
    )
    return len(rows)


async def get_paper(db: Database, arxiv_id: str) -> Paper | None:
    row = await db.read.fetchone("SELECT * FROM papers WHERE arxiv_id = ?", (arxiv_id,))
    return paper_from_row(row) if row else None


async def get_papers(db: Database, arxiv_ids: Sequence[str]) -> dict[str, Paper]:
    """Papers by id (missing ids are simply absent)."""
    rows = await _existing(db.conn, list(arxiv_ids))
    return {arxiv_id: paper_from_row(row) for arxiv_id, row in rows.items()}


@dataclass(frozen=True)
class ListedPaper:
    paper: Paper
    listing: Listing


async def papers_for_day(
    db: Database, day: date, sources: Sequence[str] | None = None
) -> list[ListedPaper]:
    """The papers listed on ``day`` (by any of ``sources``), best-ranked listing first.

    A paper listed by several sources appears once, with its most prominent listing
    (most upvotes, then best rank, then the earliest source in ``sources``).
    """
    params: list = [day.isoformat()]
    where = "l.day = ?"
    if sources:
        where += f" AND l.source IN ({','.join('?' * len(sources))})"
        params.extend(sources)
    rows = await db.fetchall(
        f"SELECT p.*, l.day AS l_day, l.source AS l_source, l.rank AS l_rank, "
        f"l.upvotes AS l_upvotes, l.row_text AS l_row "
        f"FROM listings l JOIN papers p ON p.id = l.paper_id "
        f"WHERE {where}",
        params,
    )
    order = {name: index for index, name in enumerate(sources or ())}
    best: dict[str, ListedPaper] = {}
    for row in rows:
        listing = Listing(
            day=date.fromisoformat(row["l_day"]),
            source=row["l_source"],
            rank=row["l_rank"],
            upvotes=row["l_upvotes"],
            row=row["l_row"],
        )
        current = best.get(row["arxiv_id"])
        if current is None or _prominence(listing, order) < _prominence(current.listing, order):
            best[row["arxiv_id"]] = ListedPaper(paper_from_row(row), listing)
    return sorted(best.values(), key=lambda item: _prominence(item.listing, order))


def _prominence(listing: Listing, order: dict[str, int]) -> tuple:
    return (
        -(listing.upvotes or 0),
        listing.rank if listing.rank is not None else 1 << 30,
        order.get(listing.source, len(order)),
    )


def _day_range(since: date | None, until: date | None) -> tuple[str, list[str]]:
    """A ``day`` condition (empty when unbounded) and its parameters."""
    clauses, params = [], []
    if since:
        clauses.append("day >= ?")
        params.append(since.isoformat())
    if until:
        clauses.append("day <= ?")
        params.append(until.isoformat())
    return " AND ".join(clauses), params


async def listed_days(
    db: Database, since: date | None = None, until: date | None = None
) -> list[date]:
    """Days that have at least one listing, ascending."""
    condition, params = _day_range(since, until)
    where = f"WHERE {condition}" if condition else ""
    rows = await db.fetchall(f"SELECT DISTINCT day FROM listings {where} ORDER BY day", params)
    return [date.fromisoformat(row[0]) for row in rows]


async def iter_all_entries(db: Database, since: date | None = None, until: date | None = None):
    """Every stored paper (or those listed in the date range) with all its listings.

    Yields ``(paper, [listings])`` in id order; used by the JSON Lines backup.
    """
    condition, params = _day_range(since, until)
    id_filter = (
        f"WHERE id IN (SELECT paper_id FROM listings WHERE {condition})" if condition else ""
    )
    listings: dict[int, list[Listing]] = {}
    for row in await db.fetchall(
        "SELECT paper_id, day, source, rank, upvotes, row_text FROM listings "
        "ORDER BY day, source, rank"
    ):
        listings.setdefault(row[0], []).append(
            Listing(date.fromisoformat(row[1]), row[2], row[3], row[4], row[5])
        )
    async with db.conn.execute(f"SELECT * FROM papers {id_filter} ORDER BY id", params) as cursor:
        async for row in cursor:
            yield paper_from_row(row), listings.get(row["id"], [])


async def tag_counts(db: Database) -> list[tuple[str, int]]:
    """Known tags with their paper counts, most used first."""
    rows = await db.read.fetchall(
        "SELECT tag, count(*) AS n FROM paper_tags GROUP BY tag ORDER BY n DESC, tag"
    )
    return [(row[0], row[1]) for row in rows]


async def store_stats(db: Database) -> dict[str, object]:
    """Counts for ``paperbot db stats``."""
    papers = await db.fetchone("SELECT count(*), min(sort_date), max(sort_date) FROM papers")
    listing = await db.fetchone(
        "SELECT count(*), count(DISTINCT day), min(day), max(day) FROM listings"
    )
    sources = await db.fetchall(
        "SELECT source, count(*) FROM listings GROUP BY source ORDER BY source"
    )
    return {
        "papers": papers[0],
        "oldest_paper_date": papers[1],
        "newest_paper_date": papers[2],
        "listings": listing[0],
        "listed_days": listing[1],
        "first_day": listing[2],
        "last_day": listing[3],
        "listings_by_source": {row[0]: row[1] for row in sources},
        "tags": len(await tag_counts(db)),
    }
