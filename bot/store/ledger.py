"""The delivery ledger: what each feed posts for a day, message by message.

A day's digest is *planned* once (every message payload stored with a nonce), then each
message moves pending → sending → sent. A restart resumes from the ledger, so nothing is
posted twice and nothing is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from bot.store.database import Database


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
    attempts: int = 0
    next_attempt_at: datetime | None = None
    first_attempt_at: datetime | None = None


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _delivery(row) -> Delivery:
    return Delivery(
        id=row["id"],
        feed_id=row["feed_id"],
        day=date.fromisoformat(row["day"]),
        status=row["status"],
        thread_id=row["thread_id"],
        error=row["error"],
        attempts=row["attempts"],
        next_attempt_at=_instant(row["next_attempt_at"]),
        first_attempt_at=_instant(row["first_attempt_at"]),
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


async def get_delivery(db: Database, feed_id: int, day: date) -> Delivery | None:
    row = await db.fetchone(
        "SELECT * FROM deliveries WHERE feed_id = ? AND day = ?", (feed_id, day.isoformat())
    )
    return _delivery(row) if row else None


def _message_rows(feed_id: int, day: date, delivery_id: int, messages: list[PlannedMessage]):
    return [
        (
            delivery_id,
            message.seq,
            message.kind,
            json.dumps(list(message.paper_ids)),
            json.dumps(message.payload, ensure_ascii=False),
            f"pb{feed_id}-{day.strftime('%Y%m%d')}-{message.seq}",
        )
        for message in messages
    ]


async def plan_deliveries(
    db: Database, day: date, plans: Sequence[tuple[int, list[PlannedMessage]]]
) -> int:
    """Store many feeds' plans for ``day`` in one transaction; existing plans are kept.

    Returns how many new plans were stored. One commit for a thousand feeds instead of a
    thousand: the minute's fan-out is planned ahead without holding the connection long.
    """
    stored = 0
    async with db.transaction() as conn:
        for feed_id, messages in plans:
            cursor = await conn.execute(
                "INSERT INTO deliveries (feed_id, day) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (feed_id, day.isoformat()),
            )
            if cursor.rowcount:
                stored += 1
                await conn.executemany(
                    "INSERT INTO delivery_messages"
                    " (delivery_id, seq, kind, paper_ids, payload, nonce)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    _message_rows(feed_id, day, cursor.lastrowid, messages),
                )
    return stored


async def plan_delivery(
    db: Database, feed_id: int, day: date, messages: list[PlannedMessage]
) -> Delivery:
    """Store the plan for (feed, day) unless one exists; returns the stored delivery.

    The first plan wins: a plan is never rebuilt, so a restart sends exactly what was planned.
    """
    await plan_deliveries(db, day, [(feed_id, messages)])
    delivery = await get_delivery(db, feed_id, day)
    assert delivery is not None
    return delivery


async def discard_unsent_plans(db: Database, feed_id: int) -> int:
    """Forget plans of ``feed_id`` that nothing was sent from yet (its settings changed)."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM deliveries WHERE feed_id = ? AND status = 'planned' AND NOT EXISTS"
            " (SELECT 1 FROM delivery_messages m WHERE m.delivery_id = deliveries.id"
            " AND m.status != 'pending')",
            (feed_id,),
        )
        return cursor.rowcount


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


async def start_attempt(db: Database, delivery_id: int, now: datetime) -> int:
    """Count one more delivery attempt (the first one stamps the deadline's start)."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = NULL,"
            " first_attempt_at = coalesce(first_attempt_at, ?) WHERE id = ?",
            (_iso(now), delivery_id),
        )
    row = await db.fetchone("SELECT attempts FROM deliveries WHERE id = ?", (delivery_id,))
    return int(row[0]) if row else 0


async def finish_delivery(
    db: Database, delivery_id: int, status: str, error: str | None = None
) -> None:
    """``done`` when every message is sent; ``failed`` (paused) or ``expired`` keep the rest."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE deliveries SET status = ?, error = ?, next_attempt_at = NULL,"
            " finished_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
            (status, error, delivery_id),
        )


async def schedule_retry(db: Database, delivery_id: int, at: datetime, error: str) -> None:
    """The delivery failed for now; its next attempt is due ``at`` (kept across restarts)."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE deliveries SET status = 'retrying', error = ?, next_attempt_at = ?"
            " WHERE id = ?",
            (error, _iso(at), delivery_id),
        )


async def unfinished_deliveries(db: Database) -> list[Delivery]:
    """Deliveries that were planned, interrupted or are waiting for a retry.

    ``expired`` ones (retries gave up) are left for a manual ``/digest post-now``.
    """
    rows = await db.fetchall(
        "SELECT * FROM deliveries WHERE status NOT IN ('done', 'expired') ORDER BY day, feed_id"
    )
    return [_delivery(row) for row in rows]


async def recent_deliveries(db: Database, feed_id: int, limit: int = 5) -> list[Delivery]:
    rows = await db.fetchall(
        "SELECT * FROM deliveries WHERE feed_id = ? ORDER BY day DESC LIMIT ?", (feed_id, limit)
    )
    return [_delivery(row) for row in rows]


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
