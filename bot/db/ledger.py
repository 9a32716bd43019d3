"""The delivery ledger: what each feed posts for a day, message by message.

A day's digest is *planned* once (every message payload stored with a nonce), then each
message moves pending → sending → sent. A restart resumes from the ledger, so nothing is
posted twice and nothing is skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.db.database import Database


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    seq: int
    kind: str  # header, papers, mentions, note
    payload: dict[str, Any]
    paper_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LedgerMessage:
    delivery_id: int
    seq: int
    kind: str
    payload: dict[str, Any]
    paper_ids: tuple[str, ...]
    nonce: str
    status: str
    message_id: int | None
    attempts: int


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    feed_id: int
    day: date
    status: str
    thread_id: int | None
    error: str | None


def _delivery(row) -> Delivery:
    return Delivery(
        id=row["id"],
        feed_id=row["feed_id"],
        day=date.fromisoformat(row["day"]),
        status=row["status"],
        thread_id=row["thread_id"],
        error=row["error"],
    )


async def get_delivery(db: Database, feed_id: int, day: date) -> Delivery | None:
    row = await db.fetchone(
        "SELECT * FROM deliveries WHERE feed_id = ? AND day = ?", (feed_id, day.isoformat())
    )
    return _delivery(row) if row else None


async def plan_delivery(
    db: Database, feed_id: int, day: date, messages: list[PlannedMessage]
) -> Delivery:
    """Store the plan for (feed, day) unless one exists; returns the stored delivery.

    The first plan wins: a plan is never rebuilt, so a restart sends exactly what was planned.
    """
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO deliveries (feed_id, day) VALUES (?, ?) ON CONFLICT DO NOTHING",
            (feed_id, day.isoformat()),
        )
        if cursor.rowcount:
            delivery_id = cursor.lastrowid
            await conn.executemany(
                "INSERT INTO delivery_messages (delivery_id, seq, kind, paper_ids, payload, nonce)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        delivery_id,
                        message.seq,
                        message.kind,
                        json.dumps(list(message.paper_ids)),
                        json.dumps(message.payload, ensure_ascii=False),
                        f"pb{feed_id}-{day.strftime('%Y%m%d')}-{message.seq}",
                    )
                    for message in messages
                ],
            )
    delivery = await get_delivery(db, feed_id, day)
    assert delivery is not None
    return delivery


async def ledger_messages(db: Database, delivery_id: int) -> list[LedgerMessage]:
    rows = await db.fetchall(
        "SELECT * FROM delivery_messages WHERE delivery_id = ? ORDER BY seq", (delivery_id,)
    )
    return [
        LedgerMessage(
            delivery_id=row["delivery_id"],
            seq=row["seq"],
            kind=row["kind"],
            payload=json.loads(row["payload"]),
            paper_ids=tuple(json.loads(row["paper_ids"])),
            nonce=row["nonce"],
            status=row["status"],
            message_id=row["message_id"],
            attempts=row["attempts"],
        )
        for row in rows
    ]


async def mark_sending(db: Database, delivery_id: int, seq: int) -> None:
    """Record the attempt *before* the request, so a crash mid-send is detectable."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE delivery_messages SET status = 'sending', attempts = attempts + 1"
            " WHERE delivery_id = ? AND seq = ?",
            (delivery_id, seq),
        )
        await conn.execute(
            "UPDATE deliveries SET status = 'sending' WHERE id = ? AND status != 'done'",
            (delivery_id,),
        )


async def mark_sent(db: Database, delivery_id: int, seq: int, message_id: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE delivery_messages SET status = 'sent', message_id = ?,"
            " sent_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE delivery_id = ? AND seq = ?",
            (message_id, delivery_id, seq),
        )


async def mark_skipped(db: Database, delivery_id: int, seq: int) -> None:
    """A message that will never be sent (e.g. a DM to a user who closed DMs)."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE delivery_messages SET status = 'skipped' WHERE delivery_id = ? AND seq = ?",
            (delivery_id, seq),
        )


async def set_thread(db: Database, delivery_id: int, thread_id: int) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE deliveries SET thread_id = ? WHERE id = ?", (thread_id, delivery_id)
        )


async def finish_delivery(
    db: Database, delivery_id: int, status: str, error: str | None = None
) -> None:
    """``done`` when every message is sent; ``failed`` keeps the rest for a later retry."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE deliveries SET status = ?, error = ?,"
            " finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
            (status, error, delivery_id),
        )


async def unfinished_deliveries(db: Database) -> list[Delivery]:
    """Deliveries that were planned or interrupted and still have messages to send."""
    rows = await db.fetchall(
        "SELECT * FROM deliveries WHERE status != 'done' ORDER BY day, feed_id"
    )
    return [_delivery(row) for row in rows]


async def recent_deliveries(db: Database, feed_id: int, limit: int = 5) -> list[Delivery]:
    rows = await db.fetchall(
        "SELECT * FROM deliveries WHERE feed_id = ? ORDER BY day DESC LIMIT ?", (feed_id, limit)
    )
    return [_delivery(row) for row in rows]


async def last_delivered_day(db: Database, feed_id: int) -> date | None:
    row = await db.fetchone(
        "SELECT max(day) FROM deliveries WHERE feed_id = ? AND status = 'done'", (feed_id,)
    )
    return date.fromisoformat(row[0]) if row and row[0] else None


async def record_fetch(
    db: Database, source: str, day: date, status: str, papers: int = 0, error: str | None = None
) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO fetch_runs (source, day, status, papers, attempts, last_error)"
            " VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (source, day) DO UPDATE SET"
            " status = excluded.status, papers = excluded.papers,"
            " attempts = fetch_runs.attempts + 1, last_error = excluded.last_error,"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (source, day.isoformat(), status, papers, error),
        )


async def fetch_status(db: Database, source: str, day: date) -> str | None:
    row = await db.fetchone(
        "SELECT status FROM fetch_runs WHERE source = ? AND day = ?", (source, day.isoformat())
    )
    return row[0] if row else None


async def latest_fetch(db: Database, source: str) -> tuple[date, str, int, str | None] | None:
    """The newest fetch of ``source``: (day, status, papers, last error)."""
    row = await db.fetchone(
        "SELECT day, status, papers, last_error FROM fetch_runs WHERE source = ? "
        "ORDER BY day DESC LIMIT 1",
        (source,),
    )
    return (date.fromisoformat(row[0]), row[1], row[2], row[3]) if row else None
