"""Managing channel feeds for `/digest`: validating options, creating, editing, resuming,
posting now, previews and the status of a server's feeds.

It lives in ``bot.delivery`` because a feed is delivery configuration: every operation ends in
the scheduler (jobs re-synced, a digest delivered) or the delivery ledger, and the package
sits between the store below and the runtime and cogs above. Mistakes in the options raise
``InputError``; the command tree answers them. The replies' text is ``bot.delivery.feed_render``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.config import parse_hhmm
from bot.delivery.scheduler import digest_day_for, previous_post_time
from bot.delivery.sender import Outcome
from bot.digest.render import digest_messages
from bot.errors import InputError
from bot.labels import LABELS, normalize_label
from bot.models import DigestFilters, Paper
from bot.store import feeds as feed_store
from bot.store import ledger
from bot.store.database import Database
from bot.store.feeds import Feed
from bot.suggest import did_you_mean
from bot.text import sanitize

SOURCE_NAMES = ("hf", "arxiv", "digest")
CLEARED = "-"  # an edit option of exactly this clears a list filter


class FeedJobs(Protocol):
    """What the service needs of ``bot.delivery.scheduler.DigestScheduler``."""

    async def sync_feeds(self) -> None: ...

    async def ensure_fetched(self, source: str, day: date) -> str: ...

    async def deliver(self, feed: Feed, day: date) -> Outcome: ...

    def next_post(self, feed_id: int) -> datetime | None: ...


class PaperSelector(Protocol):
    async def select_papers(self, feed: Feed, day: date) -> list[Paper]: ...


# -- option validation ------------------------------------------------------------------------


def parse_tags(text: str | None) -> tuple[str, ...]:
    """Comma-separated labels; an unknown one raises an InputError with suggestions."""
    if not text:
        return ()
    tags = []
    for raw in text.split(","):
        if not raw.strip():
            continue
        label = normalize_label(raw)
        if label is None:
            hint = did_you_mean(raw.strip(), LABELS, cutoff=0.4)
            raise InputError(f"Unknown tag “{sanitize(raw.strip())}”{hint}. See `/tags`.")
        tags.append(label)
    return tuple(dict.fromkeys(tags))


def parse_keywords(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(dict.fromkeys(word.strip() for word in text.split(",") if word.strip()))


def parse_sources(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    sources = tuple(dict.fromkeys(s.strip().lower() for s in text.split(",") if s.strip()))
    unknown = [s for s in sources if s not in SOURCE_NAMES]
    if unknown or not sources:
        raise InputError(f"Sources are a comma-separated list of {', '.join(SOURCE_NAMES)}.")
    return sources


def check_time(text: str) -> str:
    try:
        at = parse_hhmm(text)
    except ValueError:
        raise InputError(f"“{sanitize(text)}” is not a time; use HH:MM, e.g. 09:30.") from None
    return f"{at.hour:02d}:{at.minute:02d}"


def check_zone(text: str) -> str:
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError(
            f"“{sanitize(text)}” is not a time zone; use an IANA name such as Europe/Berlin."
        ) from None
    return text


@dataclass(frozen=True, slots=True)
class FeedOptions:
    """The options of `/digest setup` or `/digest edit` as typed; None where left out."""

    name: str | None = None
    post_time: str | None = None
    timezone: str | None = None
    layout: str | None = None
    thread: bool | None = None
    sources: str | None = None
    include_tags: str | None = None
    exclude_tags: str | None = None
    include_keywords: str | None = None
    exclude_keywords: str | None = None
    min_upvotes: int | None = None
    max_papers: int | None = None
    empty_day: str | None = None

    @classmethod
    def pick(cls, values: Mapping[str, Any]) -> FeedOptions:
        """The options among ``values`` (a command's arguments), ignoring the other names."""
        return cls(**{name: values[name] for name in cls.__dataclass_fields__ if name in values})


LIST_FILTERS: Mapping[str, Callable[[str | None], tuple[str, ...]]] = {
    "include_tags": parse_tags,
    "exclude_tags": parse_tags,
    "include_keywords": parse_keywords,
    "exclude_keywords": parse_keywords,
}


def option_changes(options: FeedOptions) -> dict[str, Any]:
    """The validated settings ``options`` give, by Feed or DigestFilters field name (see
    ``bot.store.feeds.with_changes``); a list filter of ``-`` is cleared."""
    changes: dict[str, Any] = {}
    if options.post_time is not None:
        changes["post_time"] = check_time(options.post_time)
    if options.timezone is not None:
        changes["timezone"] = check_zone(options.timezone)
    for key in ("name", "layout", "thread", "empty_day", "min_upvotes", "max_papers"):
        if getattr(options, key) is not None:
            changes[key] = getattr(options, key)
    if options.sources is not None:
        changes["sources"] = parse_sources(options.sources)
    for key, parse in LIST_FILTERS.items():
        value = getattr(options, key)
        if value is not None:
            changes[key] = () if value.strip() == CLEARED else parse(value)
    return changes


def new_feed(guild_id: int, channel_id: int, options: FeedOptions) -> Feed:
    """The feed `/digest setup` creates: the defaults, overridden by the options given."""
    # max_papers 0: the configured digest.max_papers applies when the digest is selected.
    defaults = Feed(guild_id=guild_id, channel_id=channel_id, filters=DigestFilters(max_papers=0))
    return feed_store.with_changes(defaults, **option_changes(options))


def edited_feed(feed: Feed, options: FeedOptions) -> Feed:
    """``feed`` with the options of `/digest edit` applied; it then counts as set by command."""
    return feed_store.with_changes(feed, origin="command", **option_changes(options))


# -- operations -------------------------------------------------------------------------------


async def guild_feed(db: Database, guild_id: int | None, channel_id: int) -> Feed:
    """The feed of a channel of this guild, or an InputError saying how to create one."""
    feed = await feed_store.get_feed_by_channel(db, channel_id)
    if feed is None or feed.guild_id != guild_id:
        raise InputError(f"<#{channel_id}> has no digest. Create one with `/digest setup`.")
    return feed


async def set_up(
    db: Database,
    jobs: FeedJobs,
    guild_id: int,
    channel_id: int,
    options: FeedOptions,
    *,
    alert_channel_id: int | None = None,
) -> Feed:
    """Store a new feed (refusing a channel that has one) and schedule it."""
    if await feed_store.get_feed_by_channel(db, channel_id) is not None:
        raise InputError(f"<#{channel_id}> already has a digest; use `/digest edit`.")
    stored = await feed_store.save_feed(db, new_feed(guild_id, channel_id, options))
    if alert_channel_id is not None:
        await feed_store.set_alert_channel(db, guild_id, alert_channel_id)
    await jobs.sync_feeds()
    return stored


async def resume(db: Database, feed: Feed) -> Feed:
    """Unpause a paused feed (a no-op for an active one)."""
    if not feed.paused:
        return feed
    assert feed.id is not None
    await feed_store.set_paused(db, feed.id, False)
    return replace(feed, paused=False, pause_reason=None)


async def edit(db: Database, jobs: FeedJobs, feed: Feed, options: FeedOptions) -> Feed:
    """Apply `/digest edit`, resume the feed and re-plan a digest planned with the old
    settings (nothing sent yet). Returns the feed as stored, with ``paused`` cleared."""
    assert feed.id is not None
    updated = await feed_store.save_feed(db, edited_feed(feed, options))
    await ledger.discard_unsent_plans(db, feed.id)
    updated = await resume(db, updated)
    await jobs.sync_feeds()
    return updated


async def remove(db: Database, jobs: FeedJobs, feed: Feed) -> None:
    await feed_store.delete_feed(db, feed.guild_id, feed.channel_id)
    await jobs.sync_feeds()


def check_day(day: date, now: datetime) -> date:
    if day > now.astimezone(UTC).date() + timedelta(days=1):
        raise InputError("That day is in the future.")
    return day


def default_day(feed: Feed, now: datetime) -> date:
    """The day of the feed's latest post time (what `preview` and `post-now` show)."""
    return digest_day_for(previous_post_time(feed, now))


def day_or_default(feed: Feed, day: date | None, now: datetime) -> date:
    return check_day(day, now) if day is not None else default_day(feed, now)


@dataclass(frozen=True, slots=True)
class Preview:
    day: date
    papers: list[Paper]
    payloads: list[dict[str, Any]]


async def preview(selector: PaperSelector, feed: Feed, day: date) -> Preview:
    """The messages the feed would post for ``day`` (none when no paper passes its filters)."""
    papers = await selector.select_papers(feed, day)
    if not papers:
        return Preview(day, [], [])
    payloads = digest_messages(day, papers, layout=feed.layout, feed_name=feed.name or None)
    return Preview(day, papers, payloads)


async def post_now(db: Database, jobs: FeedJobs, feed: Feed, day: date) -> Outcome:
    """Resume the feed, fetch what its sources lack for ``day`` and deliver it now."""
    feed = await resume(db, feed)
    for source in feed.sources:
        await jobs.ensure_fetched(source, day)
    return await jobs.deliver(feed, day)


@dataclass(frozen=True, slots=True)
class FeedHealth:
    feed: Feed
    last: ledger.Delivery | None
    next_post: datetime | None
    channel_exists: bool


Fetch = tuple[date, str, int, str | None]  # day, status, papers, last error


@dataclass(frozen=True, slots=True)
class GuildStatus:
    """Everything `/digest status` shows, read with a fixed number of queries."""

    feeds: list[FeedHealth]
    fetches: dict[str, Fetch | None]  # every source the feeds use, sorted
    alert_channel_id: int | None


async def guild_status(
    db: Database, jobs: FeedJobs, guild_id: int, channel_exists: Callable[[int], bool]
) -> GuildStatus:
    feeds = await feed_store.list_feeds(db, guild_id)
    if not feeds:
        return GuildStatus([], {}, None)
    last = await ledger.latest_deliveries(db, guild_id)
    health = [
        FeedHealth(
            feed,
            last.get(feed.id) if feed.id is not None else None,
            jobs.next_post(feed.id) if feed.id is not None else None,
            channel_exists(feed.channel_id),
        )
        for feed in feeds
    ]
    sources = sorted({source for feed in feeds for source in feed.sources})
    fetched = await ledger.latest_fetches(db, [s for s in sources if s != "digest"])
    alert = await feed_store.get_alert_channel(db, guild_id)
    return GuildStatus(health, {source: fetched.get(source) for source in sources}, alert)
