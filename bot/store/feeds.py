"""Channel feeds and per-guild settings."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

import aiosqlite

from bot.models import DigestFilters
from bot.store.database import Database


@dataclass(frozen=True, slots=True)
class Feed:
    """A channel that receives the daily digest."""

    guild_id: int
    channel_id: int
    name: str = ""
    post_time: str = "09:00"
    timezone: str = "UTC"
    sources: tuple[str, ...] = ("hf",)
    layout: str = "compact"
    thread: bool = False
    empty_day: str = ""
    filters: DigestFilters = field(default_factory=DigestFilters)
    origin: str = "command"
    paused: bool = False
    pause_reason: str | None = None
    id: int | None = None
    created_at: datetime | None = None

    @property
    def label(self) -> str:
        return self.name or f"channel {self.channel_id}"


def _filters_to_json(filters: DigestFilters) -> str:
    return json.dumps(
        {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(filters).items()}
    )


def _filters_from_json(text: str) -> DigestFilters:
    data = json.loads(text or "{}")
    return DigestFilters(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def _feed_from_row(row: aiosqlite.Row) -> Feed:
    return Feed(
        id=row["id"],
        guild_id=row["guild_id"],
        channel_id=row["channel_id"],
        name=row["name"],
        post_time=row["post_time"],
        timezone=row["timezone"],
        sources=tuple(json.loads(row["sources"])),
        layout=row["layout"],
        thread=bool(row["thread"]),
        empty_day=row["empty_day"],
        filters=_filters_from_json(row["filters"]),
        origin=row["origin"],
        paused=bool(row["paused"]),
        pause_reason=row["pause_reason"],
        created_at=datetime.fromisoformat(row["created_at"].replace("Z", "+00:00")),
    )


async def save_feed(db: Database, feed: Feed) -> Feed:
    """Insert or update the feed of ``feed.channel_id``; returns it as stored."""
    values = (
        feed.guild_id,
        feed.channel_id,
        feed.name,
        feed.post_time,
        feed.timezone,
        json.dumps(list(feed.sources)),
        feed.layout,
        int(feed.thread),
        feed.empty_day,
        _filters_to_json(feed.filters),
        feed.origin,
    )
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO feeds (guild_id, channel_id, name, post_time, timezone, sources, layout,"
            " thread, empty_day, filters, origin) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (channel_id) DO UPDATE SET guild_id = excluded.guild_id,"
            " name = excluded.name, post_time = excluded.post_time, timezone = excluded.timezone,"
            " sources = excluded.sources, layout = excluded.layout, thread = excluded.thread,"
            " empty_day = excluded.empty_day, filters = excluded.filters,"
            " origin = excluded.origin, updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            values,
        )
    stored = await get_feed_by_channel(db, feed.channel_id)
    assert stored is not None
    return stored


async def get_feed(db: Database, feed_id: int) -> Feed | None:
    row = await db.fetchone("SELECT * FROM feeds WHERE id = ?", (feed_id,))
    return _feed_from_row(row) if row else None


async def get_feed_by_channel(db: Database, channel_id: int) -> Feed | None:
    row = await db.fetchone("SELECT * FROM feeds WHERE channel_id = ?", (channel_id,))
    return _feed_from_row(row) if row else None


async def list_feeds(db: Database, guild_id: int | None = None) -> list[Feed]:
    """Feeds of one guild (or all of them), in creation order."""
    if guild_id is None:
        rows = await db.fetchall("SELECT * FROM feeds ORDER BY id")
    else:
        rows = await db.fetchall("SELECT * FROM feeds WHERE guild_id = ? ORDER BY id", (guild_id,))
    return [_feed_from_row(row) for row in rows]


async def delete_feed(db: Database, guild_id: int, channel_id: int) -> bool:
    """Remove a guild's feed (its delivery history goes with it)."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "DELETE FROM feeds WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
        )
        return cursor.rowcount > 0


async def set_paused(db: Database, feed_id: int, paused: bool, reason: str | None = None) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE feeds SET paused = ?, pause_reason = ?,"
            " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') WHERE id = ?",
            (int(paused), reason if paused else None, feed_id),
        )


async def get_alert_channel(db: Database, guild_id: int) -> int | None:
    row = await db.fetchone(
        "SELECT alert_channel_id FROM guild_settings WHERE guild_id = ?", (guild_id,)
    )
    return row[0] if row else None


async def set_alert_channel(db: Database, guild_id: int, channel_id: int | None) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO guild_settings (guild_id, alert_channel_id) VALUES (?, ?)"
            " ON CONFLICT (guild_id) DO UPDATE SET alert_channel_id = excluded.alert_channel_id",
            (guild_id, channel_id),
        )


def with_changes(feed: Feed, **changes: object) -> Feed:
    """A copy of ``feed`` with some settings changed (filters by their own names)."""
    filter_names = set(DigestFilters.__dataclass_fields__)
    filter_changes = {k: v for k, v in changes.items() if k in filter_names}
    other = {k: v for k, v in changes.items() if k not in filter_names}
    return replace(feed, filters=replace(feed.filters, **filter_changes), **other)


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What was deleted because a guild, channel or role it depended on is gone."""

    feeds: tuple[Feed, ...] = ()
    subscriptions: int = 0  # including those of the deleted feeds (ON DELETE CASCADE)
    alert_channel: bool = False

    def __bool__(self) -> bool:
        return bool(self.feeds or self.subscriptions or self.alert_channel)


async def _count(conn: aiosqlite.Connection, sql: str, params: tuple) -> int:
    async with conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def forget_channel(db: Database, guild_id: int, channel_id: int) -> Forgotten:
    """A deleted channel: its feed (with the feed's subscriptions and role mappings) and the
    guild's alert setting when it pointed there."""
    feeds = [
        _feed_from_row(row)
        for row in await db.fetchall(
            "SELECT * FROM feeds WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
        )
    ]
    async with db.transaction() as conn:
        subs = await _count(
            conn,
            "SELECT count(*) FROM subscriptions WHERE feed_id IN "
            "(SELECT id FROM feeds WHERE guild_id = ? AND channel_id = ?)",
            (guild_id, channel_id),
        )
        await conn.execute(
            "DELETE FROM feeds WHERE guild_id = ? AND channel_id = ?", (guild_id, channel_id)
        )
        cursor = await conn.execute(
            "UPDATE guild_settings SET alert_channel_id = NULL "
            "WHERE guild_id = ? AND alert_channel_id = ?",
            (guild_id, channel_id),
        )
        alert = cursor.rowcount > 0
    return Forgotten(tuple(feeds), subs, alert)


async def forget_guild(db: Database, guild_id: int) -> Forgotten:
    """The bot left a guild: every feed, subscription and setting of it."""
    feeds = await list_feeds(db, guild_id)
    async with db.transaction() as conn:
        subs = await _count(
            conn, "SELECT count(*) FROM subscriptions WHERE guild_id = ?", (guild_id,)
        )
        await conn.execute("DELETE FROM subscriptions WHERE guild_id = ?", (guild_id,))
        await conn.execute("DELETE FROM feeds WHERE guild_id = ?", (guild_id,))
        cursor = await conn.execute("DELETE FROM guild_settings WHERE guild_id = ?", (guild_id,))
        alert = cursor.rowcount > 0
    return Forgotten(tuple(feeds), subs, alert)


@dataclass(frozen=True, slots=True)
class StoredRefs:
    """What the store holds that depends on one guild's channels and roles."""

    feeds: tuple[Feed, ...] = ()
    alert_channel: int | None = None
    roles: frozenset[int] = frozenset()  # roles with subscriptions (tag mentions)


async def stored_refs(db: Database) -> dict[int, StoredRefs]:
    """Every guild the store knows, with the channels and roles it depends on."""
    feeds: dict[int, list[Feed]] = {}
    for feed in await list_feeds(db):
        feeds.setdefault(feed.guild_id, []).append(feed)
    alerts = {
        row[0]: row[1]
        for row in await db.fetchall("SELECT guild_id, alert_channel_id FROM guild_settings")
    }
    roles: dict[int, set[int]] = {}
    for row in await db.fetchall(
        "SELECT DISTINCT guild_id, subscriber_type, subscriber_id FROM subscriptions"
    ):
        held = roles.setdefault(row[0], set())
        if row[1] == "role":
            held.add(row[2])
    return {
        guild_id: StoredRefs(
            tuple(feeds.get(guild_id, ())),
            alerts.get(guild_id),
            frozenset(roles.get(guild_id, ())),
        )
        for guild_id in {*feeds, *alerts, *roles}
    }
