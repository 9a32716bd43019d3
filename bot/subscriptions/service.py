"""Adding and removing subscriptions: the rules, the stored tags, and the store together."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.errors import InputError
from bot.models import Subscription
from bot.search.engine import known_tags as stored_tags
from bot.store import subscriptions as sub_store
from bot.store.database import Database
from bot.subscriptions.rules import KINDS, lenient_norm, prepare_subscription, vocabulary

log = logging.getLogger(__name__)

MAX_PER_USER = 50  # subscriptions per subscriber (user or role) in one guild


def _who(subscriber_type: str) -> tuple[str, str]:
    return (
        ("you are", "you have") if subscriber_type == "user" else ("that role is", "that role has")
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
    try:
        added = await sub_store.insert_subscription(db, sub, limit=MAX_PER_USER)
    except sub_store.SubscriptionConflict as exc:
        if exc.reason == "no-feed":
            raise InputError("that feed does not exist in this server") from None
        if exc.reason == "limit":
            raise InputError(
                f"{have} {exc.count} subscriptions in this server, the most allowed "
                f"({MAX_PER_USER}); remove one first"
            ) from None
        raise InputError(f"{are} already subscribed to {sub.label}") from None
    log.info(
        "guild %s: %s %s subscribed to %s", guild_id, subscriber_type, subscriber_id, sub.label
    )
    return added


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
    norm = None
    if subscription_id is not None:
        missing = f"{are} not subscribed to that (no subscription #{subscription_id})"
    elif kind is not None and value is not None:
        if kind not in KINDS:
            raise InputError(f"unknown subscription kind {kind!r}; use one of {', '.join(KINDS)}")
        norm = lenient_norm(kind, value, vocabulary(await stored_tags(db)))
        missing = f"{are} not subscribed to {kind} `{norm.replace('`', '')}`"
    else:
        raise InputError("say which subscription to remove")
    removed = await sub_store.delete_subscription(
        db,
        guild_id,
        subscriber_id,
        subscriber_type=subscriber_type,
        subscription_id=subscription_id,
        kind=kind,
        norm=norm,
        feed_id=feed_id,
    )
    if removed is None:
        raise InputError(missing)
    return removed


async def removable_subscriptions(
    db: Database, guild_id: int, user_id: int, *, is_admin: bool
) -> list[Subscription]:
    """What a member may remove here: their own subscriptions, and role ones for admins."""
    subs = await sub_store.list_subscriptions(db, guild_id, user_id)
    if is_admin:
        subs += [
            s for s in await sub_store.all_for_guild(db, guild_id) if s.subscriber_type == "role"
        ]
    return subs
