"""Forget what depended on a guild, channel or role that is gone (one log line each).

Gateway events report removals while the bot is online (``cogs.servers``); what went away
while it was offline is found by :func:`reconcile` once the guilds are known.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import discord

from bot.store import feeds as feed_store
from bot.store import subscriptions as sub_store
from bot.store.database import Database
from bot.store.feeds import Forgotten

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


@dataclass(frozen=True, slots=True)
class GuildView:
    """A guild as Discord reports it: unavailable (an outage) or with its channels and roles."""

    available: bool
    channels: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()


def discord_view(guilds: Iterable[discord.Guild]) -> dict[int, GuildView]:
    """The guilds a connected client is in (after READY and the GUILD_CREATEs)."""
    view = {}
    for guild in guilds:
        if guild.unavailable:
            view[guild.id] = GuildView(False)
        else:
            channels = {channel.id for channel in guild.channels}
            channels.update(thread.id for thread in guild.threads)
            view[guild.id] = GuildView(
                True, frozenset(channels), frozenset(role.id for role in guild.roles)
            )
    return view


@dataclass
class Reconciled:
    """What :func:`reconcile` forgot, and the declared feeds it had to keep."""

    guilds: int = 0
    channels: int = 0
    roles: int = 0
    declared_gone: tuple[int, ...] = ()  # feed ids declared in config.toml whose channel is gone

    def __bool__(self) -> bool:
        return bool(self.guilds or self.channels or self.roles)


_warned: set[tuple[int, int]] = set()  # (feed id, channel id) already logged by this process


async def reconcile(db: Database, guilds: Mapping[int, GuildView]) -> Reconciled:
    """Forget what the store holds for guilds, channels and roles Discord no longer reports.

    A guild Discord lists as unavailable (an outage) is left alone entirely. A feed declared
    in config.toml whose channel is gone is kept (the file would bring it back on every
    start) and logged once; ``/digest status`` lists it as gone.
    """
    done = Reconciled()
    declared: list[int] = []
    for guild_id, refs in (await feed_store.stored_refs(db)).items():
        seen = guilds.get(guild_id)
        if seen is None:
            if await guild_removed(db, guild_id):
                done.guilds += 1
            continue
        if not seen.available:
            continue
        gone = {feed.channel_id for feed in refs.feeds if feed.channel_id not in seen.channels}
        if refs.alert_channel is not None and refs.alert_channel not in seen.channels:
            gone.add(refs.alert_channel)
        for channel_id in sorted(gone):
            kept = [f for f in refs.feeds if f.channel_id == channel_id and f.origin == "config"]
            if kept:
                declared += [feed.id for feed in kept if feed.id is not None]
                _warn_declared(kept, channel_id)
                continue
            if await channel_deleted(db, guild_id, channel_id):
                done.channels += 1
        for role_id in sorted(refs.roles - seen.roles):
            if await role_deleted(db, guild_id, role_id):
                done.roles += 1
    done.declared_gone = tuple(declared)
    return done


def _warn_declared(feeds: list[feed_store.Feed], channel_id: int) -> None:
    for feed in feeds:
        if feed.id is None or (feed.id, channel_id) in _warned:
            continue
        _warned.add((feed.id, channel_id))
        log.warning(
            "feed %s: channel %s is gone, but the feed is declared in config.toml: "
            "remove it there (nothing can be posted meanwhile)",
            feed.label,
            channel_id,
        )
