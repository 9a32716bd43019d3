"""Topic subscriptions (tag, keyword, author) and the status of opted-in DMs: SQL only.

Every subscription query is scoped by ``guild_id``: one server never sees another's
subscriptions. Only :func:`forget_user` and the DM status (a user's DMs are not per server)
work across guilds. Validation and wording live in :mod:`bot.subscriptions`.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import replace

import aiosqlite

from bot.models import DmStatus, Subscription, TermTokens
from bot.store.database import Database

log = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 500


class SubscriptionConflict(Exception):
    """The store refused a new subscription; ``reason`` says why."""

    def __init__(self, reason: str, count: int = 0) -> None:
        super().__init__(reason)
        self.reason = reason  # "no-feed" | "duplicate" | "limit"
        self.count = count  # the subscriber's subscriptions in the guild, for "limit"


def terms_to_json(terms: TermTokens) -> str:
    return json.dumps({fts: list(tokens) for fts, tokens in terms}, ensure_ascii=False)


def terms_from_json(text: str | None) -> TermTokens:
    data = json.loads(text) if text else {}
    if not isinstance(data, dict):
        return ()
    return tuple((str(fts), tuple(tokens)) for fts, tokens in data.items())


def _subscription_from_row(row: aiosqlite.Row) -> Subscription:
    return Subscription(
        id=row["id"],
        guild_id=row["guild_id"],
        subscriber_id=row["subscriber_id"],
        subscriber_type=row["subscriber_type"],
        kind=row["kind"],
        value=row["value"],
        norm=row["norm"],
        terms=terms_from_json(row["terms"]),
        feed_id=row["feed_id"],
        dm=bool(row["dm"]),
        created_at=row["created_at"],
    )


async def insert_subscription(db: Database, sub: Subscription, *, limit: int) -> Subscription:
    """Store ``sub`` unless its feed is not in the guild, it exists, or the subscriber already
    has ``limit`` subscriptions in the guild (:class:`SubscriptionConflict`). Subscribing with
    ``dm`` re-enables DMs for a user whose DMs had failed."""
    async with db.transaction() as conn:
        if sub.feed_id is not None:
            async with conn.execute(
                "SELECT 1 FROM feeds WHERE id = ? AND guild_id = ?", (sub.feed_id, sub.guild_id)
            ) as cursor:
                if await cursor.fetchone() is None:
                    raise SubscriptionConflict("no-feed")
        async with conn.execute(
            "SELECT 1 FROM subscriptions WHERE guild_id = ? AND subscriber_type = ? "
            "AND subscriber_id = ? AND kind = ? AND norm = ? "
            "AND coalesce(feed_id, 0) = coalesce(?, 0)",
            (sub.guild_id, sub.subscriber_type, sub.subscriber_id, sub.kind, sub.norm, sub.feed_id),
        ) as cursor:
            if await cursor.fetchone() is not None:
                raise SubscriptionConflict("duplicate")
        async with conn.execute(
            "SELECT count(*) FROM subscriptions WHERE guild_id = ? AND subscriber_type = ? "
            "AND subscriber_id = ?",
            (sub.guild_id, sub.subscriber_type, sub.subscriber_id),
        ) as cursor:
            (count,) = await cursor.fetchone()
        if count >= limit:
            raise SubscriptionConflict("limit", count)
        try:
            async with conn.execute(
                "INSERT INTO subscriptions (guild_id, subscriber_id, subscriber_type, kind, value,"
                " norm, terms, feed_id, dm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id, created_at",
                (
                    sub.guild_id,
                    sub.subscriber_id,
                    sub.subscriber_type,
                    sub.kind,
                    sub.value,
                    sub.norm,
                    terms_to_json(sub.terms),
                    sub.feed_id,
                    int(sub.dm),
                ),
            ) as cursor:
                row = await cursor.fetchone()
        except sqlite3.IntegrityError as exc:  # a concurrent writer got there first
            raise SubscriptionConflict("duplicate") from exc
        if sub.dm:
            await conn.execute("DELETE FROM dm_status WHERE user_id = ?", (sub.subscriber_id,))
    return replace(sub, id=row[0], created_at=row[1])


async def delete_subscription(
    db: Database,
    guild_id: int,
    subscriber_id: int,
    *,
    subscriber_type: str = "user",
    subscription_id: int | None = None,
    kind: str | None = None,
    norm: str | None = None,
    feed_id: int | None = None,
) -> Subscription | None:
    """Delete one subscription, by id or by kind and norm (case-insensitive); None if none."""
    scope = "guild_id = ? AND subscriber_type = ? AND subscriber_id = ?"
    params: list = [guild_id, subscriber_type, subscriber_id]
    if subscription_id is not None:
        where, params = f"{scope} AND id = ?", [*params, subscription_id]
    else:
        where = f"{scope} AND kind = ? AND norm = ? COLLATE NOCASE AND coalesce(feed_id, 0) = ?"
        params = [*params, kind, norm, feed_id or 0]
    async with (
        db.transaction() as conn,
        conn.execute(f"DELETE FROM subscriptions WHERE {where} RETURNING *", params) as cursor,
    ):
        rows = await cursor.fetchall()
    return _subscription_from_row(rows[0]) if rows else None


async def list_subscriptions(
    db: Database, guild_id: int, subscriber_id: int, *, subscriber_type: str = "user"
) -> list[Subscription]:
    """A subscriber's subscriptions in one guild, oldest first."""
    rows = await db.fetchall(
        "SELECT * FROM subscriptions WHERE guild_id = ? AND subscriber_id = ? "
        "AND subscriber_type = ? ORDER BY id",
        (guild_id, subscriber_id, subscriber_type),
    )
    return [_subscription_from_row(row) for row in rows]


async def clear_subscriptions(db: Database, guild_id: int, user_id: int) -> int:
    """Delete a user's subscriptions in one guild; return how many there were."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM subscriptions WHERE guild_id = ? AND subscriber_type = 'user' "
            "AND subscriber_id = ?",
            (guild_id, user_id),
        )
        return cursor.rowcount


async def set_dm(db: Database, guild_id: int, user_id: int, enabled: bool) -> int:
    """Switch DMs on or off for all of a user's subscriptions in a guild; return the count.

    Enabling also clears a recorded DM failure, so DMs are tried again.
    """
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE subscriptions SET dm = ? WHERE guild_id = ? AND subscriber_type = 'user' "
            "AND subscriber_id = ?",
            (int(enabled), guild_id, user_id),
        )
        if enabled:
            await conn.execute("DELETE FROM dm_status WHERE user_id = ?", (user_id,))
        return cursor.rowcount


async def forget_user(db: Database, user_id: int) -> int:
    """Delete everything stored about a user (subscriptions in every guild, DM status)."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM subscriptions WHERE subscriber_type = 'user' AND subscriber_id = ?",
            (user_id,),
        )
        await conn.execute("DELETE FROM dm_status WHERE user_id = ?", (user_id,))
        deleted = cursor.rowcount
    log.info("forgot user %s (%d subscriptions)", user_id, deleted)
    return deleted


async def forget_role(db: Database, guild_id: int, role_id: int) -> int:
    """Delete a (deleted) role's subscriptions in a guild."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM subscriptions WHERE guild_id = ? AND subscriber_type = 'role' "
            "AND subscriber_id = ?",
            (guild_id, role_id),
        )
        return cursor.rowcount


async def forget_guild(db: Database, guild_id: int) -> int:
    """Delete every subscription of a guild (the bot left it)."""
    async with db.transaction() as conn:
        cursor = await conn.execute("DELETE FROM subscriptions WHERE guild_id = ?", (guild_id,))
        return cursor.rowcount


async def all_for_guild(db: Database, guild_id: int) -> list[Subscription]:
    """Every subscription of one guild, in creation order."""
    rows = await db.fetchall(
        "SELECT * FROM subscriptions WHERE guild_id = ? ORDER BY id", (guild_id,)
    )
    return [_subscription_from_row(row) for row in rows]


async def for_guilds(db: Database, guild_ids: Sequence[int]) -> list[Subscription]:
    """Every subscription of the given guilds (to build one index for all of them)."""
    found: list[Subscription] = []
    ids = list(dict.fromkeys(guild_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ",".join("?" * len(chunk))
        rows = await db.fetchall(
            f"SELECT * FROM subscriptions WHERE guild_id IN ({marks}) ORDER BY id", chunk
        )
        found.extend(_subscription_from_row(row) for row in rows)
    return found


async def record_dm_closed(db: Database, user_id: int, error: str) -> None:
    """Remember that a DM to the user failed: no more DMs until they re-enable them."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO dm_status (user_id, closed, closed_at, last_error) "
            "VALUES (?, 1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?) "
            "ON CONFLICT (user_id) DO UPDATE SET closed = 1, closed_at = excluded.closed_at, "
            "last_error = excluded.last_error",
            (user_id, error[:MAX_ERROR_LENGTH]),
        )
    log.info("DMs to user %s failed; not retrying until re-enabled", user_id)


async def reset_dm_status(db: Database, user_id: int) -> None:
    """Forget a DM failure: DMs are tried again."""
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM dm_status WHERE user_id = ?", (user_id,))


async def dm_closed(db: Database, user_id: int) -> bool:
    row = await db.fetchone("SELECT closed FROM dm_status WHERE user_id = ?", (user_id,))
    return bool(row and row[0])


async def get_dm_status(db: Database, user_id: int) -> DmStatus | None:
    """The recorded DM failure, to show the user (None when DMs are fine)."""
    row = await db.fetchone(
        "SELECT user_id, closed, closed_at, last_error FROM dm_status WHERE user_id = ?",
        (user_id,),
    )
    if row is None:
        return None
    return DmStatus(row[0], bool(row[1]), row[2], row[3])
