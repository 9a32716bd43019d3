"""APScheduler wiring: the daily fetch, one post job per feed, and catch-up after downtime.

Times: a feed posts at ``post_time`` in its own IANA time zone (APScheduler's CronTrigger
follows daylight-saving changes). The digest posted on local date L covers the listing day
L - 1, the last complete day of Hugging Face Daily Papers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger

from bot.config import Config, parse_hhmm
from bot.delivery.sender import Deliverer, Outcome
from bot.errors import PaperbotError
from bot.sources.fetch import Fetcher
from bot.sources.ingest import ingest
from bot.store import feeds as feed_store
from bot.store import ledger
from bot.store.database import Database
from bot.store.feeds import Feed

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Digests are planned this long before their post time, so the minute itself only sends.
PLAN_AHEAD_MINUTES = 1
DELIVERY_SLOTS = 64


def utc_now() -> datetime:
    return datetime.now(UTC)


def post_trigger(feed: Feed) -> CronTrigger:
    at = parse_hhmm(feed.post_time)
    return CronTrigger(hour=at.hour, minute=at.minute, timezone=ZoneInfo(feed.timezone))


def previous_post_time(feed: Feed, now: datetime) -> datetime:
    """The latest scheduled post instant at or before ``now`` (aware, in the feed's zone)."""
    zone = ZoneInfo(feed.timezone)
    at = parse_hhmm(feed.post_time)
    local_now = now.astimezone(zone)
    for back in range(3):
        day = local_now.date() - timedelta(days=back)
        candidate = datetime.combine(day, at, tzinfo=zone)
        # A wall time skipped by a DST jump normalises forward, as the trigger does.
        candidate = candidate.astimezone(UTC).astimezone(zone)
        if candidate <= local_now:
            return candidate
    raise AssertionError("unreachable: a post time exists every day")


def next_post_time(feed: Feed, now: datetime) -> datetime:
    """The earliest scheduled post instant strictly after ``now`` (aware, in the feed's zone)."""
    zone = ZoneInfo(feed.timezone)
    at = parse_hhmm(feed.post_time)
    local_now = now.astimezone(zone)
    for ahead in range(3):
        day = local_now.date() + timedelta(days=ahead)
        candidate = datetime.combine(day, at, tzinfo=zone).astimezone(UTC).astimezone(zone)
        if candidate > local_now:
            return candidate
    raise AssertionError("unreachable: a post time exists every day")


def prepare_trigger(post_time: str, timezone: str) -> CronTrigger:
    """A minute before ``post_time``: the digests due then are planned (rendered, stored)."""
    at = parse_hhmm(post_time)
    minutes = (at.hour * 60 + at.minute - PLAN_AHEAD_MINUTES) % (24 * 60)
    return CronTrigger(hour=minutes // 60, minute=minutes % 60, timezone=ZoneInfo(timezone))


def digest_day_for(post_instant: datetime) -> date:
    """The listing day a post at ``post_instant`` (feed-local) covers."""
    return post_instant.date() - timedelta(days=1)


class DigestScheduler:
    """Owns the AsyncIOScheduler and the jobs that fetch and post."""

    def __init__(
        self,
        db: Database,
        config: Config,
        fetcher: Fetcher | None,
        deliverer: Deliverer,
        *,
        scheduler: AsyncIOScheduler | None = None,
        clock: Clock = utc_now,
    ) -> None:
        self.db = db
        self.config = config
        self.fetcher = fetcher
        self.deliverer = deliverer
        self.scheduler = scheduler or AsyncIOScheduler(timezone=UTC)
        self.clock = clock
        self.wait_ready: Callable[[], Awaitable[object]] | None = None
        # Called with the ids of newly stored papers after each fetch (LLM enrichment).
        self.after_ingest: Callable[[list[str]], Awaitable[object]] | None = None
        self._fetch_locks: dict[tuple[str, date], asyncio.Lock] = {}
        self._running: set[asyncio.Task] = set()
        # Deliveries in flight at once. A thousand feeds due at one minute would otherwise
        # each queue their reads and writes on the one connection before any of them sends;
        # this many keep the pacer busy (and every channel's own limit) while the rest wait.
        self._slots = asyncio.Semaphore(DELIVERY_SLOTS)

    # -- lifecycle --------------------------------------------------------------------------

    def _job_defaults(self) -> dict:
        return {
            "replace_existing": True,
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": self.config.schedule.misfire_grace_seconds,
        }

    async def start(self) -> None:
        """Add every job and start the scheduler (call from a running event loop)."""
        await self.sync_feeds()
        self.scheduler.start()

    async def shutdown(self, grace: float = 30.0) -> None:
        """Stop scheduling, then let running fetches and deliveries finish their writes."""
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self._running:
            log.info("waiting for %d running job(s) to finish", len(self._running))
            await asyncio.wait(set(self._running), timeout=grace)

    def _track(self, func):
        """Wrap a coroutine job so shutdown can wait for it."""

        async def job(*args, **kwargs):
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                return await func(*args, **kwargs)
            except Exception:
                log.exception("scheduled job %s failed", func.__name__)
            finally:
                if task is not None:
                    self._running.discard(task)

        job.__name__ = func.__name__
        return job

    @staticmethod
    def _fetched_sources(feeds: list[Feed]) -> list[str]:
        wanted = {source for feed in feeds for source in feed.sources} or {"hf"}
        return sorted(wanted & {"hf", "arxiv"})

    def _sync_fetch_jobs(self, feeds: list[Feed]) -> None:
        """One daily fetch job per source that some feed reads (Hugging Face by default)."""
        if self.fetcher is None:
            return
        at = parse_hhmm(self.config.schedule.fetch_time)
        zone = ZoneInfo(self.config.schedule.fetch_timezone)
        for source in self._fetched_sources(feeds):
            if self.scheduler.get_job(f"fetch:{source}") is None:
                self.scheduler.add_job(
                    self._track(self.run_fetch),
                    CronTrigger(hour=at.hour, minute=at.minute, timezone=zone),
                    id=f"fetch:{source}",
                    name=f"daily fetch of {source}",
                    args=[source],
                    **self._job_defaults(),
                )

    async def sync_feeds(self) -> None:
        """Make the jobs match the feeds table (after /digest setup, edit or remove)."""
        feeds = await feed_store.list_feeds(self.db)
        self._sync_fetch_jobs(feeds)
        wanted = set()
        for feed in feeds:
            job_id = f"post:{feed.id}"
            wanted.add(job_id)
            self.scheduler.add_job(
                self._track(self.run_post),
                post_trigger(feed),
                id=job_id,
                name=f"daily post of feed {feed.id}",
                args=[feed.id],
                **self._job_defaults(),
            )
        for post_time, timezone in {(feed.post_time, feed.timezone) for feed in feeds}:
            job_id = f"prepare:{timezone}:{post_time}"
            wanted.add(job_id)
            if self.scheduler.get_job(job_id) is None:
                self.scheduler.add_job(
                    self._track(self.prepare_posts),
                    prepare_trigger(post_time, timezone),
                    id=job_id,
                    name=f"planning of the {post_time} {timezone} digests",
                    args=[post_time, timezone],
                    **self._job_defaults(),
                )
        for job in self.scheduler.get_jobs():
            if job.id.startswith(("post:", "prepare:")) and job.id not in wanted:
                job.remove()

    def next_post(self, feed_id: int) -> datetime | None:
        job = self.scheduler.get_job(f"post:{feed_id}")
        return getattr(job, "next_run_time", None) if job else None

    # -- fetching ---------------------------------------------------------------------------

    def _fetch_deadline(self, day: date) -> datetime:
        """When to stop waiting for ``day``'s listing: the deadline on the following day."""
        zone = ZoneInfo(self.config.schedule.fetch_timezone)
        deadline = parse_hhmm(self.config.schedule.fetch_deadline)
        return datetime.combine(day + timedelta(days=1), deadline, tzinfo=zone)

    async def run_fetch(self, source: str, day: date | None = None) -> str:
        """Fetch ``day`` (default: yesterday in the fetch zone); retry later until the deadline."""
        now = self.clock()
        if day is None:
            zone = ZoneInfo(self.config.schedule.fetch_timezone)
            day = now.astimezone(zone).date() - timedelta(days=1)
        status = await self.ensure_fetched(source, day)
        if status != "done" and now < self._fetch_deadline(day):
            retry_at = now + timedelta(minutes=self.config.schedule.fetch_retry_minutes)
            self.scheduler.add_job(
                self._track(self.run_fetch),
                DateTrigger(run_date=retry_at),
                id=f"fetch-retry:{source}",
                name=f"fetch retry of {source} {day}",
                args=[source, day],
                **self._job_defaults(),
            )
            log.info("fetch %s %s: %s; retrying at %s", source, day, status, retry_at.isoformat())
        return status

    async def ensure_fetched(self, source: str, day: date) -> str:
        """Fetch ``source``'s listing for ``day`` unless it is already stored."""
        if source == "digest" or self.fetcher is None:
            return "done"  # imported by hand; nothing to fetch
        lock = self._fetch_locks.setdefault((source, day), asyncio.Lock())
        async with lock:
            if await ledger.fetch_status(self.db, source, day) == "done":
                return "done"
            try:
                entries = await self.fetcher.fetch_day(source, day)
            except PaperbotError as exc:
                await ledger.record_fetch(self.db, source, day, "failed", error=str(exc))
                log.warning("fetch %s %s failed: %s", source, day, exc)
                return "failed"
            if not entries:
                await ledger.record_fetch(self.db, source, day, "empty")
                return "empty"
            result = await ingest(self.db, entries)
            self.deliverer.forget_rendered()
            await ledger.record_fetch(self.db, source, day, "done", papers=len(entries))
            log.info("fetched %s %s: %d papers (%d new)", source, day, len(entries), result.new)
            if self.after_ingest is not None and result.new_ids:
                await self.after_ingest(result.new_ids)
            return "done"

    # -- posting ----------------------------------------------------------------------------

    async def prepare_posts(self, post_time: str, timezone: str) -> int:
        """Plan the digests of every feed posting next at ``post_time`` in ``timezone``.

        Runs a minute early: at the post time each feed only sends. Feeds whose listing is not
        fetched yet are left to their post job (which waits for it); returns how many plans
        were stored.
        """
        if self.wait_ready is not None:
            await self.wait_ready()  # forum or text decides the plan's shape
        now = self.clock()
        feeds = [
            feed
            for feed in await feed_store.list_feeds(self.db)
            if feed.post_time == post_time and feed.timezone == timezone and not feed.paused
        ]
        if not feeds:
            return 0
        day = digest_day_for(next_post_time(feeds[0], now))
        fetched = {
            source: await self.ensure_fetched(source, day)
            for source in sorted({source for feed in feeds for source in feed.sources})
        }
        ready = [feed for feed in feeds if all(fetched[s] == "done" for s in feed.sources)]
        stored = await self.deliverer.plan_many(ready, day)
        log.info("planned %d digest(s) for %s %s (day %s)", stored, post_time, timezone, day)
        return stored

    async def run_post(self, feed_id: int, post_instant: datetime | None = None) -> Outcome:
        """The post job of one feed: make sure the day is fetched, then deliver."""
        if self.wait_ready is not None:
            await self.wait_ready()  # channels must be known (forum or text) before posting
        async with self._slots:
            return await self._run_post(feed_id, post_instant)

    async def _run_post(self, feed_id: int, post_instant: datetime | None) -> Outcome:
        feed = await feed_store.get_feed(self.db, feed_id)
        if feed is None:
            return Outcome("skipped", detail="feed removed")
        now = self.clock()
        instant = post_instant or previous_post_time(feed, now)
        day = digest_day_for(instant)
        if await ledger.get_delivery(self.db, feed_id, day) is not None:
            return await self._attempt(feed, day)  # planned ahead (or resumed): just send
        statuses = [await self.ensure_fetched(source, day) for source in feed.sources]
        waiting = any(status != "done" for status in statuses) and now < self._fetch_deadline(day)
        if waiting and await ledger.get_delivery(self.db, feed_id, day) is None:
            retry_at = now + timedelta(minutes=self.config.schedule.fetch_retry_minutes)
            self.scheduler.add_job(
                self._track(self.run_post),
                DateTrigger(run_date=retry_at),
                id=f"post-retry:{feed_id}",
                name=f"post retry of feed {feed_id}",
                args=[feed_id, instant],
                **self._job_defaults(),
            )
            log.info("feed %s: %s listing not ready; retrying at %s", feed_id, day, retry_at)
            return Outcome("waiting", detail=f"listing for {day} not available yet")
        return await self._attempt(feed, day)

    # -- retrying ---------------------------------------------------------------------------

    def deadline_hours(self, feed: Feed) -> float:
        """How long a failed delivery of ``feed`` is retried: its own ``deadline_hours`` in
        config.toml, else ``delivery.deadline_hours``."""
        for item in self.config.feeds:
            if item.channel_id == feed.channel_id and item.deadline_hours > 0:
                return item.deadline_hours
        return self.config.delivery.deadline_hours

    def _retry_delay(self, attempt: int) -> timedelta:
        minutes = self.config.delivery.retry_minutes
        return timedelta(minutes=minutes[min(max(attempt, 1), len(minutes)) - 1])

    def _schedule_retry_job(self, feed_id: int, day: date, at: datetime) -> None:
        # APScheduler runs on the wall clock and ``at`` is on the bot's clock (the same one
        # in production; tests run the bot on a settable clock).
        run_date = utc_now() + max(at - self.clock(), timedelta(0))
        self.scheduler.add_job(
            self._track(self.retry_delivery),
            DateTrigger(run_date=run_date),
            id=f"delivery-retry:{feed_id}:{day.isoformat()}",
            name=f"delivery retry of feed {feed_id} for {day}",
            args=[feed_id, day],
            **self._job_defaults(),
        )

    async def retry_delivery(self, feed_id: int, day: date) -> Outcome:
        """A scheduled retry of a failed delivery."""
        if self.wait_ready is not None:
            await self.wait_ready()
        async with self._slots:
            feed = await feed_store.get_feed(self.db, feed_id)
            if feed is None:
                return Outcome("skipped", detail="feed removed")
            return await self._attempt(feed, day)

    async def deliver(self, feed: Feed, day: date) -> Outcome:
        """One delivery attempt; a failure schedules the next one (kept in the store).

        Logs one line per attempt. Retries back off (``delivery.retry_minutes``, the last
        value repeating) until the delivery lands or the feed's deadline (``deadline_hours``
        of the feed in config.toml, else ``delivery.deadline_hours``) after its first attempt,
        when it is marked expired and the server's alert channel is told.
        """
        async with self._slots:
            return await self._attempt(feed, day)

    async def _attempt(self, feed: Feed, day: date) -> Outcome:
        assert feed.id is not None
        outcome = await self.deliverer.deliver(feed, day)
        if outcome.status == "done":
            log.info(
                "delivered feed=%s (%s) day=%s attempt %d: %d message(s) sent, %d in all",
                feed.id,
                feed.label,
                day,
                outcome.attempt,
                outcome.sent,
                outcome.total,
            )
        if outcome.status != "failed":
            return outcome
        delivery = await ledger.get_delivery(self.db, feed.id, day)
        assert delivery is not None
        now = self.clock()
        retry_at = now + self._retry_delay(outcome.attempt)
        started = delivery.first_attempt_at or now
        hours = self.deadline_hours(feed)
        deadline = started + timedelta(hours=hours)
        if retry_at > deadline:
            await ledger.finish_delivery(self.db, delivery.id, "expired", outcome.detail)
            log.error(
                "delivery feed=%s (%s) day=%s attempt %d failed (%s); giving up: retried for %s h",
                feed.id,
                feed.label,
                day,
                outcome.attempt,
                outcome.detail,
                hours,
            )
            await self.deliverer.alert(
                feed.guild_id,
                f"⚠️ The paper digest for {day.isoformat()} in <#{feed.channel_id}> could not be"
                f" posted after {outcome.attempt} attempts ({outcome.detail}). "
                "`/digest post-now` tries again.",
            )
            return replace(outcome, status="expired")
        await ledger.schedule_retry(self.db, delivery.id, retry_at, outcome.detail)
        self._schedule_retry_job(feed.id, day, retry_at)
        log.warning(
            "delivery feed=%s (%s) day=%s attempt %d failed (%s): %d of %d message(s) sent;"
            " next attempt at %s",
            feed.id,
            feed.label,
            day,
            outcome.attempt,
            outcome.detail,
            outcome.sent,
            outcome.total,
            retry_at.isoformat(timespec="seconds"),
        )
        return replace(outcome, retry_at=retry_at)

    # -- recovery ---------------------------------------------------------------------------

    def _is_due(self, feed: Feed, day: date, now: datetime) -> bool:
        """Whether ``day``'s digest of ``feed`` should already be out (not planned ahead)."""
        return day <= digest_day_for(previous_post_time(feed, now))

    async def catch_up(self) -> list[Outcome]:
        """After downtime: finish interrupted deliveries and post missed digests, concurrently.

        Every feed recovers at once under the shared pacer (discord.py keeps each channel's
        own limit). A delivery waiting for a scheduled retry gets its job back. Only the most
        recent post of each feed is considered, only within ``schedule.catchup_hours``, and
        never from before the feed existed: a new feed does not flood its channel with old days.
        """
        now = self.clock()
        window = timedelta(hours=self.config.schedule.catchup_hours)
        work: list[Awaitable[Outcome]] = []
        for delivery in await ledger.unfinished_deliveries(self.db):
            feed = await feed_store.get_feed(self.db, delivery.feed_id)
            if feed is None or feed.paused or not self._is_due(feed, delivery.day, now):
                continue
            if delivery.next_attempt_at is not None and delivery.next_attempt_at > now:
                self._schedule_retry_job(feed.id, delivery.day, delivery.next_attempt_at)
                log.info(
                    "feed %s (%s) day %s: retry rescheduled for %s",
                    feed.id,
                    feed.label,
                    delivery.day,
                    delivery.next_attempt_at.isoformat(timespec="seconds"),
                )
                continue
            work.append(self.deliver(feed, delivery.day))
        for feed in await feed_store.list_feeds(self.db):
            if feed.paused or feed.id is None:
                continue
            instant = previous_post_time(feed, now)
            if now - instant > window:
                continue
            if feed.created_at is not None and feed.created_at > instant:
                continue
            if await ledger.get_delivery(self.db, feed.id, digest_day_for(instant)) is not None:
                continue
            log.info("catching up feed %s (%s) for %s", feed.id, feed.label, instant.isoformat())
            work.append(self.run_post(feed.id, instant))
        results = await asyncio.gather(*work, return_exceptions=True)
        outcomes = []
        for result in results:
            if isinstance(result, BaseException):
                log.error("recovering a delivery failed", exc_info=result)
            else:
                outcomes.append(result)
        return outcomes
