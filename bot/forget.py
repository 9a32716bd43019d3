"""Forget what depended on a guild, channel or role that is gone (one log line each)."""

from __future__ import annotations

import logging

from bot.db import feeds as feed_store
from bot.db import subscriptions as sub_store
from bot.db.database import Database
from bot.db.feeds import Forgotten

log = logging.getLogger(__name__)


def _declared(forgotten: Forgotten) -> str:
    labels = [feed.label for feed in forgotten.feeds if feed.origin == "config"]
    if not labels:
        return ""
    return f" ({', '.join(labels)} still declared in config.toml: remove it there too)"


async def guild_removed(db: Database, guild_id: int) -> Forgotten:
    """The bot was removed from a guild: its feeds, subscriptions and settings go."""
    forgotten = await feed_store.forget_guild(db, guild_id)
    if forgotten:
        log.info(
            "left guild %s: forgot %d feed(s) and %d subscription(s)%s",
            guild_id,
            len(forgotten.feeds),
            forgotten.subscriptions,
            _declared(forgotten),
        )
    return forgotten


async def channel_deleted(db: Database, guild_id: int, channel_id: int) -> Forgotten:
    """A channel was deleted: its feed, that feed's subscriptions and role mappings, and
    the guild's alert channel setting if it pointed there."""
    forgotten = await feed_store.forget_channel(db, guild_id, channel_id)
    if forgotten:
        log.info(
            "guild %s: channel %s was deleted: forgot %d feed(s), %d subscription(s)%s%s",
            guild_id,
            channel_id,
            len(forgotten.feeds),
            forgotten.subscriptions,
            " and the alert channel" if forgotten.alert_channel else "",
            _declared(forgotten),
        )
    return forgotten


async def role_deleted(db: Database, guild_id: int, role_id: int) -> int:
    """A role was deleted: the tags it was mentioned for; returns how many."""
    removed = await sub_store.forget_role(db, guild_id, role_id)
    if removed:
        log.info(
            "guild %s: role %s was deleted: forgot its %d role mention(s)",
            guild_id,
            role_id,
            removed,
        )
    return removed
