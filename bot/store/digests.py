"""Imported markdown digest days and the table rows they were written with (exact export)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date

import aiosqlite

from bot.store.database import Database


async def record_digest_days(conn: aiosqlite.Connection, days: Mapping[date, int]) -> None:
    """Remember every imported digest day with its row count (header-only days included),
    inside the caller's transaction."""
    if days:
        await conn.executemany(
            "INSERT INTO digest_days (day, rows) VALUES (?, ?) "
            "ON CONFLICT (day) DO UPDATE SET rows = excluded.rows",
            [(day.isoformat(), rows) for day, rows in days.items()],
        )


async def digest_days(
    db: Database, since: date | None = None, until: date | None = None
) -> list[date]:
    """Imported digest days in ``since..until`` (inclusive, either may be open), ascending."""
    rows = await db.fetchall(
        "SELECT day FROM digest_days WHERE (? IS NULL OR day >= ?) AND (? IS NULL OR day <= ?) "
        "ORDER BY day",
        [
            *(2 * [since.isoformat() if since else None]),
            *(2 * [until.isoformat() if until else None]),
        ],
    )
    return [date.fromisoformat(row[0]) for row in rows]


async def digest_rows(db: Database, day: date) -> dict[str, tuple[int | None, str | None]]:
    """``{arxiv_id: (rank, row text)}`` of the papers a digest listed on ``day``."""
    rows = await db.fetchall(
        "SELECT p.arxiv_id, l.rank, l.row_text FROM listings l JOIN papers p ON p.id = l.paper_id "
        "WHERE l.day = ? AND l.source = 'digest'",
        (day.isoformat(),),
    )
    return {row[0]: (row[1], row[2]) for row in rows}
