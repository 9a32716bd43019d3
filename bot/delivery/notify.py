"""Who a feed's digest mentions: subscriptions matched against the papers being posted.

The result is planned into the delivery ledger with the digest itself, so mentions and DMs
are sent exactly once, like the digest.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

import discord

from bot.delivery.mentions import dm_matches, dm_messages, mention_messages
from bot.models import Paper, Subscription
from bot.store import subscriptions as sub_store
from bot.store.database import Database
from bot.store.feeds import Feed
from bot.subscriptions.matching import DayIndex, SubscriptionIndex, match_feed

log = logging.getLogger(__name__)

MEMBER_CHECKS_AT_ONCE = 5
MEMBER_CHECK_TTL = 6 * 3600  # seconds a confirmed membership is trusted (large servers)


def _match(subs: list[Subscription], feed: Feed, papers: Sequence[Paper]):
    """Synchronous SQLite (in memory): run in a worker thread."""
    with DayIndex(papers) as day:
        return dict(match_feed(SubscriptionIndex.build(subs), feed.id, feed.guild_id, day))


class SubscriptionPlanner:
    """Builds the mention messages (and private DMs) for one feed's day."""

    def __init__(self, client: discord.Client, db: Database) -> None:
        self.client = client
        self.db = db
        # (guild, user) -> when membership was last confirmed: without the members intent each
        # check is a request, so a server with thousands of subscribers is not re-asked daily.
        self._confirmed: dict[tuple[int, int], float] = {}

    async def __call__(
        self, feed: Feed, day: date, papers: Sequence[Paper]
    ) -> list[dict[str, Any]]:
        subs = await sub_store.all_for_guild(self.db, feed.guild_id)
        if not subs or not papers:
            return []
        matches = await asyncio.to_thread(_match, subs, feed, papers)
        if not matches:
            return []
        users = {key.subscriber_id for key in matches if key.subscriber_type == "user"}
        present = await self._members_present(feed.guild_id, users)
        roles = self._roles_present(feed.guild_id)
        payloads = [
            {**payload, "kind": "mentions"}
            for payload in mention_messages(
                matches,
                members_present=present,
                roles_present=roles,
                header=f"📬 Papers for your subscriptions ({day.isoformat()}):",
            )
        ]
        for user_id, user_papers in dm_matches(matches).items():
            if user_id not in present or await sub_store.dm_closed(self.db, user_id):
                continue
            for payload in dm_messages(
                user_papers, header=f"📬 Papers for your subscriptions ({day.isoformat()}):"
            ):
                payloads.append({**payload, "kind": "dm", "dm_user_id": user_id})
        return payloads

    def _roles_present(self, guild_id: int) -> set[int] | None:
        guild = self.client.get_guild(guild_id)
        return {role.id for role in guild.roles} if guild is not None else None

    async def _members_present(self, guild_id: int, user_ids: set[int]) -> set[int]:
        """Users still in the guild; those who left lose their subscriptions there.

        Without the privileged members intent the member list is not cached, so each
        subscriber is looked up (a few at a time); a 404 means they left.
        """
        guild = self.client.get_guild(guild_id)
        if guild is None:
            return set(user_ids)
        gate = asyncio.Semaphore(MEMBER_CHECKS_AT_ONCE)
        present: set[int] = set()

        async def check(user_id: int) -> None:
            confirmed = self._confirmed.get((guild_id, user_id))
            if guild.get_member(user_id) is not None or (
                confirmed is not None and time.monotonic() - confirmed < MEMBER_CHECK_TTL
            ):
                present.add(user_id)
                return
            async with gate:
                try:
                    await guild.fetch_member(user_id)
                except discord.NotFound:
                    removed = await sub_store.clear_subscriptions(self.db, guild_id, user_id)
                    log.info(
                        "user %s left guild %s: %d subscriptions removed",
                        user_id,
                        guild_id,
                        removed,
                    )
                    return
                except discord.HTTPException as exc:
                    log.warning("could not check member %s: %s; mentioning anyway", user_id, exc)
                else:
                    self._confirmed[(guild_id, user_id)] = time.monotonic()
            present.add(user_id)

        await asyncio.gather(*(check(user_id) for user_id in user_ids))
        return present
