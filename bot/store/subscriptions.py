"""Topic subscriptions (tag, keyword, author) and the status of opted-in DMs.

Every subscription query is scoped by ``guild_id``: one server never sees another's
subscriptions. Only :func:`forget_user` and the DM status (a user's DMs are not per server)
work across guilds.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, replace

import aiosqlite

from bot.digest.classify import LABELS, normalize_label
from bot.errors import InputError
from bot.search.engine import known_tags as stored_tags
from bot.search.engine import resolve_tag
from bot.search.query import parse_query
from bot.store.database import Database
from bot.subscriptions.matching import (
    TermTokens,
    Tokenizer,
    canonical_author,
    canonical_query,
    query_terms,
    subscription_query,
    terms_from_json,
    terms_to_json,
)

log = logging.getLogger(__name__)

MAX_PER_USER = 50  # subscriptions per subscriber (user or role) in one guild
MAX_VALUE_LENGTH = 200
KINDS: tuple[str, ...] = ("tag", "keyword", "author")
SUBSCRIBER_TYPES: tuple[str, ...] = ("user", "role")
MAX_ERROR_LENGTH = 500


@dataclass(frozen=True, slots=True)
class Subscription:
    """One subscriber's interest in a tag, a keyword query or an author."""

    guild_id: int
    subscriber_id: int
    kind: str  # "tag" | "keyword" | "author"
    value: str  # as typed
    norm: str  # canonical tag name / canonical query / author words, lowercased
    subscriber_type: str = "user"  # "user" | "role"
    terms: TermTokens = ()  # each query term's FTS text with its stemmed tokens
    feed_id: int | None = None  # None: any feed of the guild (users only)
    dm: bool = False
    id: int | None = None
    created_at: str | None = None

    @property
    def label(self) -> str:
        """How the subscription is shown: tag `Robotics`, keyword `diffusion "video models"`.

        Built from ``norm`` (canonical, no mentions or markdown beyond quotes), not ``value``.
        """
        return f"{self.kind} `{self.norm.replace('`', '')}`"


@dataclass(frozen=True, slots=True)
class DmStatus:
    """Why a user's DMs are not being sent."""

    user_id: int
    closed: bool
    closed_at: str | None
    last_error: str | None


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


def _who(subscriber_type: str) -> tuple[str, str]:
    return (
        ("you are", "you have") if subscriber_type == "user" else ("that role is", "that role has")
    )


def _known(tags: Sequence[str] | None) -> list[str]:
    return list(dict.fromkeys([*LABELS, *(tags or ())]))


def _resolve(known: list[str], text: str) -> str:
    return normalize_label(text) or resolve_tag(known, text)


def prepare_subscription(
    guild_id: int,
    subscriber_id: int,
    kind: str,
    value: str,
    *,
    subscriber_type: str = "user",
    feed_id: int | None = None,
    dm: bool = False,
    known_tags: Sequence[str] | None = None,
    tokenizer: Tokenizer | None = None,
) -> Subscription:
    """Validate and normalise a new subscription (no I/O); raises InputError with the reason.

    ``known_tags`` adds to the classifier's labels (pass the stored tags).
    """
    if subscriber_type not in SUBSCRIBER_TYPES:
        raise InputError(f"unknown subscriber type {subscriber_type!r}")
    if kind not in KINDS:
        raise InputError(f"unknown subscription kind {kind!r}; use one of {', '.join(KINDS)}")
    if subscriber_type == "role" and feed_id is None:
        raise InputError("a role subscription belongs to a feed: pick the feed's channel")
    if subscriber_type == "role" and dm:
        raise InputError("roles cannot receive direct messages")
    text = " ".join(value.split())
    if not text:
        raise InputError(f"type the {kind} to subscribe to")
    if len(text) > MAX_VALUE_LENGTH:
        raise InputError(
            f"that {kind} is too long ({len(text)} characters, {MAX_VALUE_LENGTH} max)"
        )
    terms: TermTokens = ()
    if kind == "tag":
        norm = _resolve(_known(known_tags), text)
    elif kind == "author":
        author = canonical_author(text)
        if author is None:
            raise InputError(f"{text!r} has no letters or digits to look for in author names")
        norm = author
    else:
        query = parse_query(text)
        if not query.has_text:
            raise InputError(
                f"{text!r} has no word to look for: a keyword subscription needs at least one "
                "word (exclusions and tag: filters alone match nothing)"
            )
        known = _known(known_tags)
        query = replace(
            query,
            tags=tuple(dict.fromkeys(_resolve(known, tag) for tag in query.tags)),
            excluded_tags=tuple(dict.fromkeys(_resolve(known, t) for t in query.excluded_tags)),
        )
        norm = canonical_query(query)
    query = subscription_query(kind, norm)
    if query is not None:
        local = tokenizer or Tokenizer()
        try:
            terms = query_terms(query, local)
        finally:
            if tokenizer is None:
                local.close()
        tokens = dict(terms)
        groups = [*query.groups, *((term,) for term in query.authors)]
        for group in groups:
            if not any(tokens[term.to_fts()] for term in group):
                words = " or ".join(repr(" ".join(term.words)) for term in group)
                raise InputError(f"{words} has no word the search can find; try other words")
    return Subscription(
        guild_id=guild_id,
        subscriber_id=subscriber_id,
        subscriber_type=subscriber_type,
        kind=kind,
        value=text,
        norm=norm,
        terms=terms,
        feed_id=feed_id,
        dm=dm,
    )


async def add_subscription(
    db: Database,
    guild_id: int,
    subscriber_id: int,
    kind: str,
    value: str,
    *,
    subscriber_type: str = "user",
    feed_id: int | None = None,
    dm: bool = False,
    known_tags: Sequence[str] | None = None,
) -> Subscription:
    """Store a new subscription; InputError for bad input, a duplicate or the limit.

    ``known_tags`` defaults to the classifier's labels plus the stored tags. Subscribing with
    ``dm`` re-enables DMs for a user whose DMs had failed.
    """
    if known_tags is None:
        known_tags = await stored_tags(db)
    sub = prepare_subscription(
        guild_id,
        subscriber_id,
        kind,
        value,
        subscriber_type=subscriber_type,
        feed_id=feed_id,
        dm=dm,
        known_tags=known_tags,
    )
    are, have = _who(subscriber_type)
    async with db.transaction() as conn:
        if feed_id is not None:
            async with conn.execute(
                "SELECT 1 FROM feeds WHERE id = ? AND guild_id = ?", (feed_id, guild_id)
            ) as cursor:
                if await cursor.fetchone() is None:
                    raise InputError("that feed does not exist in this server")
        async with conn.execute(
            "SELECT 1 FROM subscriptions WHERE guild_id = ? AND subscriber_type = ? "
            "AND subscriber_id = ? AND kind = ? AND norm = ? "
            "AND coalesce(feed_id, 0) = coalesce(?, 0)",
            (guild_id, subscriber_type, subscriber_id, kind, sub.norm, feed_id),
        ) as cursor:
            if await cursor.fetchone() is not None:
                raise InputError(f"{are} already subscribed to {sub.label}")
        async with conn.execute(
            "SELECT count(*) FROM subscriptions WHERE guild_id = ? AND subscriber_type = ? "
            "AND subscriber_id = ?",
            (guild_id, subscriber_type, subscriber_id),
        ) as cursor:
            (count,) = await cursor.fetchone()
        if count >= MAX_PER_USER:
            raise InputError(
                f"{have} {count} subscriptions in this server, the most allowed "
                f"({MAX_PER_USER}); remove one first"
            )
        try:
            async with conn.execute(
                "INSERT INTO subscriptions (guild_id, subscriber_id, subscriber_type, kind, value,"
                " norm, terms, feed_id, dm) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "RETURNING id, created_at",
                (
                    guild_id,
                    subscriber_id,
                    subscriber_type,
                    kind,
                    sub.value,
                    sub.norm,
                    terms_to_json(sub.terms),
                    feed_id,
                    int(dm),
                ),
            ) as cursor:
                row = await cursor.fetchone()
        except sqlite3.IntegrityError as exc:  # a concurrent writer got there first
            raise InputError(f"{are} already subscribed to {sub.label}") from exc
        if dm:
            await conn.execute("DELETE FROM dm_status WHERE user_id = ?", (subscriber_id,))
    log.info(
        "guild %s: %s %s subscribed to %s", guild_id, subscriber_type, subscriber_id, sub.label
    )
    return replace(sub, id=row[0], created_at=row[1])


def _lenient_norm(kind: str, value: str, known: list[str]) -> str:
    """The norm a stored subscription would have, without failing on tags no longer known."""
    text = " ".join(value.split())
    if kind == "tag":
        try:
            return _resolve(known, text)
        except InputError:
            return text
    if kind == "author":
        return canonical_author(text) or text.lower()
    query = parse_query(text)
    resolved = []
    for tags in (query.tags, query.excluded_tags):
        names = []
        for tag in tags:
            try:
                names.append(_resolve(known, tag))
            except InputError:
                names.append(tag)
        resolved.append(tuple(dict.fromkeys(names)))
    return canonical_query(replace(query, tags=resolved[0], excluded_tags=resolved[1]))


async def remove_subscription(
    db: Database,
    guild_id: int,
    subscriber_id: int,
    *,
    subscription_id: int | None = None,
    kind: str | None = None,
    value: str | None = None,
    subscriber_type: str = "user",
    feed_id: int | None = None,
) -> Subscription:
    """Delete one subscription, by id or by kind and value; InputError if there is none."""
    are, _ = _who(subscriber_type)
    scope = "guild_id = ? AND subscriber_type = ? AND subscriber_id = ?"
    params: list = [guild_id, subscriber_type, subscriber_id]
    if subscription_id is not None:
        where, params = f"{scope} AND id = ?", [*params, subscription_id]
        missing = f"{are} not subscribed to that (no subscription #{subscription_id})"
    elif kind is not None and value is not None:
        if kind not in KINDS:
            raise InputError(f"unknown subscription kind {kind!r}; use one of {', '.join(KINDS)}")
        norm = _lenient_norm(kind, value, _known(await stored_tags(db)))
        where = f"{scope} AND kind = ? AND norm = ? COLLATE NOCASE AND coalesce(feed_id, 0) = ?"
        params = [*params, kind, norm, feed_id or 0]
        missing = f"{are} not subscribed to {kind} `{norm.replace('`', '')}`"
    else:
        raise InputError("say which subscription to remove")
    async with (
        db.transaction() as conn,
        conn.execute(f"DELETE FROM subscriptions WHERE {where} RETURNING *", params) as cursor,
    ):
        rows = await cursor.fetchall()
    if not rows:
        raise InputError(missing)
    return _subscription_from_row(rows[0])


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
