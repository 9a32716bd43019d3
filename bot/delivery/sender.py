"""Posting a feed's digest for a day, exactly once, through the delivery ledger."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any

import aiohttp
import discord

from bot.config import Config
from bot.digest.render import digest_header, digest_messages, message, no_mentions
from bot.digest.select import select_for_channel
from bot.models import Paper
from bot.pacing import WindowLimiter
from bot.store import feeds as feed_store
from bot.store import ledger
from bot.store import subscriptions as sub_store
from bot.store.database import Database
from bot.store.feeds import Feed
from bot.store.ledger import LedgerMessage, PlannedMessage
from bot.store.papers import papers_for_day
from bot.text import sanitize, truncate

log = logging.getLogger(__name__)

# Builds the extra messages that mention subscribers; set by the subscriptions feature.
MentionPlanner = Callable[[Feed, date, Sequence[Paper]], Awaitable[list[dict[str, Any]]]]

# A rendered plan is reused by every feed with the same (day, sources, filters, layout, ...)
# for this long, so a thousand feeds posting at one minute render the day once.
PLAN_CACHE_SECONDS = 120.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery attempt did."""

    status: str  # done, failed, paused, skipped, waiting, expired
    sent: int = 0
    total: int = 0
    detail: str = ""
    attempt: int = 0
    retry_at: datetime | None = None


def allowed_mentions_from(payload: dict[str, Any]) -> discord.AllowedMentions:
    """The payload's explicit allowed_mentions; anything unspecified pings nobody."""
    spec = payload.get("allowed_mentions") or {}
    return discord.AllowedMentions(
        everyone=False,
        users=[discord.Object(int(uid)) for uid in spec.get("users", [])] or False,
        roles=[discord.Object(int(rid)) for rid in spec.get("roles", [])] or False,
        replied_user=False,
    )


def ask_button_rows(paper_ids: Sequence[str], titles: dict[str, str]) -> list[dict[str, Any]]:
    """One "Ask" button per paper (at most 25: five rows of five), as component JSON."""
    buttons = [
        {
            "type": 2,
            "style": 1,
            "label": truncate(f"Ask: {titles.get(paper_id, paper_id)}", 40),
            "custom_id": f"paperbot:ask:{paper_id}",
        }
        for paper_id in paper_ids[:25]
    ]
    return [{"type": 1, "components": buttons[i : i + 5]} for i in range(0, len(buttons), 5)]


def view_from_components(rows: Sequence[dict[str, Any]]) -> discord.ui.View | None:
    """A view carrying stored button JSON; clicks are handled by the cogs' dynamic items."""
    if not rows:
        return None
    view = discord.ui.View(timeout=None)
    for row_index, row in enumerate(rows):
        for button in row.get("components", []):
            view.add_item(
                discord.ui.Button(
                    label=button.get("label"),
                    custom_id=button.get("custom_id"),
                    style=discord.ButtonStyle(button.get("style", 1)),
                    row=row_index,
                )
            )
    view.stop()  # nothing to dispatch here: the dynamic items answer the clicks
    return view


def send_kwargs(payload: dict[str, Any]) -> dict[str, Any]:
    """discord.py keyword arguments for a stored message payload."""
    kwargs: dict[str, Any] = {
        "content": payload.get("content") or None,
        "embeds": [discord.Embed.from_dict(embed) for embed in payload.get("embeds", [])],
        "allowed_mentions": allowed_mentions_from(payload),
    }
    view = view_from_components(payload.get("components", []))
    if view is not None:
        kwargs["view"] = view
    return kwargs


def _paper_ids_per_message(
    payloads: Sequence[dict[str, Any]], papers: Sequence[Paper], header_embeds: int
) -> list[tuple[str, ...]]:
    """Each rendered paper is one embed, in order; the header embed comes first."""
    ids, cursor, skip = [], 0, header_embeds
    for payload in payloads:
        count = len(payload.get("embeds", []))
        taken = min(skip, count)
        skip -= taken
        ids.append(tuple(p.arxiv_id for p in papers[cursor : cursor + count - taken]))
        cursor += count - taken
    return ids


def describe_error(exc: BaseException) -> str:
    """A short, log-safe description of a failed request."""
    if isinstance(exc, TimeoutError):
        return "TimeoutError: no answer from Discord in time"
    return f"{type(exc).__name__}: {getattr(exc, 'text', '') or exc}"


def _signature(content: str | None, embeds: Sequence[dict[str, Any]]) -> tuple:
    return (
        (content or "").strip(),
        tuple((embed.get("title") or "", embed.get("url") or "") for embed in embeds),
    )


class Deliverer:
    """Plans a feed's digest into the ledger and sends what is still unsent."""

    def __init__(
        self,
        client: discord.Client,
        db: Database,
        config: Config,
        *,
        mention_planner: MentionPlanner | None = None,
        ask_buttons: bool = False,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.db = db
        self.config = config
        self.mention_planner = mention_planner
        self.ask_buttons = ask_buttons
        self._sleep = sleep
        self.clock = clock
        self._locks: dict[int, asyncio.Lock] = {}
        self._plans: dict[tuple, tuple[float, list[Paper], list[PlannedMessage]]] = {}
        self._plan_locks: dict[tuple, asyncio.Lock] = {}
        # Discord's global limit (~50 requests/s): when many feeds post at the same minute,
        # pace them instead of letting discord.py exhaust its 429 retries. (A window of 2 s
        # for a fractional rate was measured to let 60 through in one second: 1,628 429s.)
        self.pacer = WindowLimiter(max(1, int(config.discord.messages_per_second)), 1.0)

    @property
    def request_timeout(self) -> float:
        return self.config.delivery.request_timeout

    async def _bounded(self, awaitable: Awaitable[Any]) -> Any:
        """One Discord request with the configured timeout (a hang raises TimeoutError)."""
        async with asyncio.timeout(self.request_timeout):
            return await awaitable

    # -- planning ---------------------------------------------------------------------------

    async def select_papers(self, feed: Feed, day: date) -> list[Paper]:
        listed = await papers_for_day(self.db, day, feed.sources)
        filters = feed.filters
        if filters.max_papers <= 0:
            filters = replace(filters, max_papers=self.config.digest.max_papers)
        return select_for_channel([item.paper for item in listed], filters)

    def forget_rendered(self) -> None:
        """Drop cached renderings (new papers were stored)."""
        self._plans.clear()

    async def _rendered(self, feed: Feed, day: date) -> tuple[list[Paper], list[PlannedMessage]]:
        """The feed's papers and messages without mentions, shared by identical feeds."""
        split_header = feed.thread or self._is_forum(feed)
        empty_day = feed.empty_day or self.config.digest.empty_day
        selection = (day, feed.sources, feed.filters, self.config.digest.max_papers)
        lock = self._plan_locks.setdefault(selection, asyncio.Lock())
        async with lock:
            cached = self._plans.get(selection)
            if cached is None or cached[0] <= time.monotonic():
                if len(self._plans) > 512:
                    self._plans.clear()
                papers = await self.select_papers(feed, day)
                cached = (time.monotonic() + PLAN_CACHE_SECONDS, papers, [])
                self._plans[selection] = cached
        self._plan_locks.pop(selection, None)
        papers = cached[1]
        if not papers:  # the note names the feed: not shared
            return papers, self._render(feed, day, papers, split_header, empty_day)
        shape = (*selection, feed.layout, split_header, feed.name, self.ask_buttons)
        rendered = self._plans.get(shape)
        if rendered is None or rendered[0] <= time.monotonic():
            planned = self._render(feed, day, papers, split_header, empty_day)
            rendered = (time.monotonic() + PLAN_CACHE_SECONDS, papers, planned)
            self._plans[shape] = rendered
        return papers, rendered[2]

    async def build_plan(self, feed: Feed, day: date) -> list[PlannedMessage]:
        papers, planned = await self._rendered(feed, day)
        planned = list(planned)
        if papers and self.mention_planner is not None:
            for payload in await self.mention_planner(feed, day, papers):
                kind = payload.pop("kind", "mentions")
                planned.append(PlannedMessage(len(planned), kind, payload))
        return planned

    async def plan_many(self, feeds: Sequence[Feed], day: date) -> int:
        """Plan ``day`` for many feeds ahead of their post time, in one transaction."""
        plans = []
        for feed in feeds:
            assert feed.id is not None
            if await ledger.get_delivery(self.db, feed.id, day) is None:
                plans.append((feed.id, await self.build_plan(feed, day)))
        return await ledger.plan_deliveries(self.db, day, plans)

    def _render(
        self,
        feed: Feed,
        day: date,
        papers: Sequence[Paper],
        split_header: bool,
        empty_day: str,
    ) -> list[PlannedMessage]:
        if not papers:
            if empty_day == "skip":
                return []
            note = f"No new papers for {day.isoformat()} in {sanitize(feed.label)}."
            return [PlannedMessage(0, "note", message([], content=note))]
        planned: list[PlannedMessage] = []
        if split_header:
            planned.append(PlannedMessage(0, "header", digest_header(day, papers, feed.name)))
        payloads = digest_messages(
            day, papers, layout=feed.layout, header=not split_header, feed_name=feed.name or None
        )
        header_embeds = 0 if split_header else 1
        titles = {paper.arxiv_id: paper.title for paper in papers}
        for payload, ids in zip(
            payloads, _paper_ids_per_message(payloads, papers, header_embeds), strict=True
        ):
            if self.ask_buttons and ids:
                payload = {**payload, "components": ask_button_rows(ids, titles)}
            planned.append(PlannedMessage(len(planned), "papers", payload, ids))
        return planned

    def _is_forum(self, feed: Feed) -> bool:
        channel = self.client.get_channel(feed.channel_id)
        return isinstance(channel, discord.ForumChannel)

    # -- sending ----------------------------------------------------------------------------

    async def deliver(self, feed: Feed, day: date) -> Outcome:
        """Post (or finish posting) ``feed``'s digest for ``day``; safe to call repeatedly."""
        assert feed.id is not None
        lock = self._locks.setdefault(feed.id, asyncio.Lock())
        async with lock:
            if feed.paused:
                return Outcome("paused", detail=feed.pause_reason or "paused")
            delivery = await ledger.get_delivery(self.db, feed.id, day)
            if delivery is None:
                plan = await self.build_plan(feed, day)
                delivery = await ledger.plan_delivery(self.db, feed.id, day, plan)
            if delivery.status == "done":
                return Outcome("skipped", detail="already delivered")
            attempt = await ledger.start_attempt(self.db, delivery.id, self.clock())
            outcome = await self._send_all(feed, delivery)
            return replace(outcome, attempt=attempt)

    async def _send_all(self, feed: Feed, delivery: ledger.Delivery) -> Outcome:
        messages = await ledger.ledger_messages(self.db, delivery.id)
        sent_before = sum(1 for m in messages if m.status == "sent")
        try:
            channel = await self._channel(feed.channel_id)
            target: discord.abc.Messageable | None = None
            thread_id = delivery.thread_id
            for item in messages:
                if item.kind == "dm":
                    if item.status not in ("sent", "skipped"):
                        await self._send_dm(item)
                    continue
                if item.status == "sent":
                    if item.seq == 0 and thread_id is None and feed.thread:
                        thread_id = await self._open_thread(channel, delivery, item.message_id)
                    continue
                if item.seq == 0 and isinstance(channel, discord.ForumChannel):
                    thread_id = await self._forum_post(channel, delivery, item)
                    continue
                if target is None or (thread_id and getattr(target, "id", None) != thread_id):
                    target = await self._channel(thread_id) if thread_id else channel
                message_id = await self._send_once(target, item, messages)
                if item.seq == 0 and feed.thread and not isinstance(channel, discord.ForumChannel):
                    thread_id = await self._open_thread(channel, delivery, message_id)
                    target = None
        except discord.Forbidden as exc:
            return await self._pause(
                feed,
                delivery,
                f"missing permission in <#{feed.channel_id}> ({exc.text or exc.status})",
            )
        except discord.NotFound as exc:
            return await self._pause(
                feed, delivery, f"channel {feed.channel_id} not found ({exc.text or exc.status})"
            )
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            # The caller (the scheduler) records the retry and logs the attempt.
            detail = describe_error(exc)
            sent = sum(
                1 for m in await ledger.ledger_messages(self.db, delivery.id) if m.status == "sent"
            )
            return Outcome("failed", sent - sent_before, len(messages), detail)
        await ledger.finish_delivery(self.db, delivery.id, "done")
        return Outcome("done", len(messages) - sent_before, len(messages))

    async def _send_dm(self, item: LedgerMessage) -> None:
        """A subscriber's private list. A closed DM is recorded (shown in /subscriptions) and
        never retried for this message; it does not pause the feed."""
        user_id = int(item.payload["dm_user_id"])
        try:
            user = self.client.get_user(user_id) or await self._bounded(
                self.client.fetch_user(user_id)
            )
            channel = user.dm_channel or await self._bounded(user.create_dm())
            await self._send_once(channel, item, ())
        except discord.Forbidden as exc:
            await sub_store.record_dm_closed(self.db, user_id, exc.text or "DMs closed")
            await ledger.mark_skipped(self.db, item.delivery_id, item.seq)
            log.info("DM to user %s not delivered (closed); recorded", user_id)
        except discord.NotFound:
            await ledger.mark_skipped(self.db, item.delivery_id, item.seq)

    async def _channel(self, channel_id: int) -> Any:
        channel = self.client.get_channel(channel_id)
        if channel is None:
            channel = await self._bounded(self.client.fetch_channel(channel_id))
        return channel

    async def _send_once(
        self, target: Any, item: LedgerMessage, messages: Sequence[LedgerMessage]
    ) -> int:
        """Send one planned message exactly once.

        A message left in *sending* (a crash, a timeout, a 5xx: Discord may have posted it) is
        first looked up in the channel's history and adopted if found; only then is it sent.
        """
        uncertain = item.status == "sending"
        waits = list(self.config.delivery.send_retry_seconds)
        for attempt in range(len(waits) + 1):
            if uncertain:
                found = await self._find_sent(target, item, messages)
                if found is not None:
                    await ledger.mark_sent(self.db, item.delivery_id, item.seq, found)
                    log.info(
                        "delivery %s message %d was already posted (id %s); not resending",
                        item.delivery_id,
                        item.seq,
                        found,
                    )
                    return found
            await ledger.mark_sending(self.db, item.delivery_id, item.seq)
            try:
                await self.pacer.wait()
                sent = await self._bounded(
                    target.send(**send_kwargs(item.payload), nonce=item.nonce)
                )
                break
            except discord.HTTPException as exc:
                # 429s are discord.py's: it waits out Retry-After and tries again itself, so
                # one that reaches here has used up its tries; the scheduler retries later.
                if exc.status < 500 or attempt == len(waits):
                    raise
                reason = f"HTTP {exc.status}"
                uncertain = True
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt == len(waits):
                    raise
                reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
                uncertain = True
            log.warning(
                "send to %s failed (%s); retrying in %.2f s", target.id, reason, waits[attempt]
            )
            await self._sleep(waits[attempt])
        await ledger.mark_sent(self.db, item.delivery_id, item.seq, sent.id)
        return sent.id

    async def _find_sent(
        self, target: Any, item: LedgerMessage, messages: Sequence[LedgerMessage]
    ) -> int | None:
        """Look for a message the bot posted before a crash that matches ``item``."""
        previous = [m.message_id for m in messages if m.seq < item.seq and m.message_id]
        after = discord.Object(previous[-1]) if previous else None
        wanted = _signature(item.payload.get("content"), item.payload.get("embeds", []))
        me = self.client.user

        async def scan() -> int | None:
            await self.pacer.wait()
            async for posted in target.history(limit=50, after=after, oldest_first=True):
                if me is not None and posted.author.id != me.id:
                    continue
                got = _signature(posted.content, [e.to_dict() for e in posted.embeds])
                if got == wanted:
                    return posted.id
            return None

        return await self._bounded(scan())

    async def _open_thread(
        self, channel: Any, delivery: ledger.Delivery, message_id: int | None
    ) -> int | None:
        if message_id is None or not isinstance(channel, discord.TextChannel):
            return None
        starter = channel.get_partial_message(message_id)
        name = f"Papers for {delivery.day.isoformat()}"
        try:
            await self.pacer.wait()
            thread = await self._bounded(
                starter.create_thread(name=name, auto_archive_duration=1440)
            )
        except discord.HTTPException as exc:
            if exc.code != 160004:  # a thread already exists for this message
                raise
            fetched = await self._bounded(channel.fetch_message(message_id))
            if fetched.thread is None:
                raise
            thread = fetched.thread
        await ledger.set_thread(self.db, delivery.id, thread.id)
        return thread.id

    async def _forum_post(
        self, forum: discord.ForumChannel, delivery: ledger.Delivery, item: LedgerMessage
    ) -> int:
        """A forum feed gets one post a day; the header is its starter message."""
        name = f"Papers for {delivery.day.isoformat()}"
        if item.status == "sending":
            for thread in forum.threads:
                if thread.name == name and thread.owner_id == getattr(self.client.user, "id", 0):
                    await ledger.set_thread(self.db, delivery.id, thread.id)
                    await ledger.mark_sent(self.db, delivery.id, item.seq, thread.id)
                    return thread.id
        await ledger.mark_sending(self.db, delivery.id, item.seq)
        await self.pacer.wait()
        created = await self._bounded(forum.create_thread(name=name, **send_kwargs(item.payload)))
        await ledger.set_thread(self.db, delivery.id, created.thread.id)
        await ledger.mark_sent(self.db, delivery.id, item.seq, created.message.id)
        return created.thread.id

    async def _pause(self, feed: Feed, delivery: ledger.Delivery, reason: str) -> Outcome:
        assert feed.id is not None
        await ledger.finish_delivery(self.db, delivery.id, "failed", reason)
        await feed_store.set_paused(self.db, feed.id, True, reason)
        log.warning("feed %s (%s) paused: %s", feed.id, feed.label, reason)
        await self.alert(
            feed.guild_id,
            f"⚠️ The paper digest for {sanitize(feed.label)} is "
            f"paused: {reason}. Fix the channel permissions, then run "
            "`/digest edit` (or `/digest post-now`) to resume.",
        )
        return Outcome("paused", detail=reason)

    async def alert(self, guild_id: int, text: str) -> bool:
        """One message to the guild's alert channel, if it has one; never raises."""
        channel_id = await feed_store.get_alert_channel(self.db, guild_id)
        if channel_id is None:
            return False
        try:
            channel = await self._channel(channel_id)
            await self.pacer.wait()
            await self._bounded(channel.send(text, allowed_mentions=discord.AllowedMentions.none()))
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not post an alert to channel %s: %s", channel_id, exc)
            return False
        return True


__all__ = [
    "Deliverer",
    "Outcome",
    "allowed_mentions_from",
    "describe_error",
    "no_mentions",
    "send_kwargs",
]
