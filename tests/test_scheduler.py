"""Scheduling rules: local post times across DST, fetch retries, waiting for a listing, catch-up."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from aiohttp import web

from bot.config import Config
from bot.delivery.scheduler import DigestScheduler, digest_day_for, post_trigger, previous_post_time
from bot.delivery.sender import Outcome
from bot.sources.fetch import Fetcher
from bot.store import feeds as feed_store
from bot.store import ledger
from bot.store.feeds import Feed
from bot.store.papers import papers_for_day
from tests.conftest import FIXTURES

BERLIN = ZoneInfo("Europe/Berlin")


def test_post_trigger_follows_daylight_saving_changes():
    feed = Feed(guild_id=1, channel_id=2, post_time="09:00", timezone="Europe/Berlin")
    trigger = post_trigger(feed)
    before = trigger.get_next_fire_time(None, datetime(2025, 3, 29, 9, 30, tzinfo=UTC))
    after = trigger.get_next_fire_time(None, datetime(2025, 3, 30, 9, 30, tzinfo=UTC))
    assert before.astimezone(UTC) == datetime(2025, 3, 30, 7, 0, tzinfo=UTC)  # CEST: UTC+2
    assert after.astimezone(UTC) == datetime(2025, 3, 31, 7, 0, tzinfo=UTC)
    autumn = trigger.get_next_fire_time(None, datetime(2025, 10, 25, 12, 0, tzinfo=UTC))
    assert autumn.astimezone(UTC) == datetime(2025, 10, 26, 8, 0, tzinfo=UTC)  # CET again


def test_previous_post_time_and_the_day_it_covers():
    feed = Feed(guild_id=1, channel_id=2, post_time="08:15", timezone="Asia/Tokyo")
    now = datetime(2025, 1, 15, 0, 0, tzinfo=UTC)  # 09:00 in Tokyo on the 15th
    instant = previous_post_time(feed, now)
    assert instant == datetime(2025, 1, 15, 8, 15, tzinfo=ZoneInfo("Asia/Tokyo"))
    assert digest_day_for(instant) == date(2025, 1, 14)
    earlier = previous_post_time(feed, datetime(2025, 1, 14, 22, 0, tzinfo=UTC))  # 07:00 JST
    assert digest_day_for(earlier) == date(2025, 1, 13)


def test_a_skipped_wall_time_still_posts_that_day():
    feed = Feed(guild_id=1, channel_id=2, post_time="02:30", timezone="Europe/Berlin")
    instant = previous_post_time(feed, datetime(2025, 3, 30, 12, 0, tzinfo=UTC))
    assert instant.date() == date(2025, 3, 30)


class RecordingDeliverer:
    def __init__(self) -> None:
        self.calls: list[tuple[int, date]] = []

    async def deliver(self, feed: Feed, day: date) -> Outcome:
        self.calls.append((feed.id, day))
        return Outcome("done", 1, 1)

    def forget_rendered(self) -> None:
        """Nothing cached here."""


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def hf_server():
    """A local Hugging Face whose daily list is empty until ``state['ready']`` is set."""
    body = (FIXTURES / "sources" / "hf_daily" / "2025-12-11.json").read_bytes()
    state = {"ready": False, "requests": 0}

    async def daily(request: web.Request) -> web.Response:
        state["requests"] += 1
        return web.Response(body=body if state["ready"] else b"[]", content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/daily_papers", daily)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state["url"] = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    yield state
    await runner.cleanup()


async def make_scheduler(db, hf_server, clock):
    config = Config()
    config.sources.hf_base_url = hf_server["url"]
    config.sources.http_retries = 0
    session = aiohttp.ClientSession()
    deliverer = RecordingDeliverer()
    scheduler = DigestScheduler(db, config, Fetcher(session, config), deliverer, clock=clock)
    return scheduler, deliverer, session


async def test_fetch_retries_until_the_listing_appears(db, hf_server):
    clock = Clock(datetime(2025, 12, 12, 6, 0, tzinfo=UTC))
    scheduler, _, session = await make_scheduler(db, hf_server, clock)
    async with session:
        assert await scheduler.run_fetch("hf") == "empty"
        retry = scheduler.scheduler.get_job("fetch-retry:hf")
        assert retry is not None and tuple(retry.args) == ("hf", date(2025, 12, 11))
        hf_server["ready"] = True
        clock.now += timedelta(minutes=30)
        assert await scheduler.run_fetch(*retry.args) == "done"
        assert await ledger.fetch_status(db, "hf", date(2025, 12, 11)) == "done"
        assert await ledger.latest_fetch(db, "hf") == (date(2025, 12, 11), "done", 3, None)
        assert len(await papers_for_day(db, date(2025, 12, 11))) == 3
        requests = hf_server["requests"]
        assert await scheduler.ensure_fetched("hf", date(2025, 12, 11)) == "done"
        assert hf_server["requests"] == requests, "a fetched day is not fetched again"


async def test_fetch_gives_up_after_the_deadline(db, hf_server):
    clock = Clock(datetime(2025, 12, 12, 23, 0, tzinfo=UTC))  # past the 22:00 deadline
    scheduler, _, session = await make_scheduler(db, hf_server, clock)
    async with session:
        assert await scheduler.run_fetch("hf") == "empty"
        assert scheduler.scheduler.get_job("fetch-retry:hf") is None


async def test_a_post_waits_for_its_listing_then_posts_after_the_deadline(db, hf_server):
    clock = Clock(datetime(2025, 12, 12, 9, 0, tzinfo=UTC))
    scheduler, deliverer, session = await make_scheduler(db, hf_server, clock)
    feed = await feed_store.save_feed(db, Feed(guild_id=1, channel_id=2, post_time="09:00"))
    async with session:
        outcome = await scheduler.run_post(feed.id)
        assert outcome.status == "waiting" and deliverer.calls == []
        assert scheduler.scheduler.get_job(f"post-retry:{feed.id}") is not None
        clock.now = datetime(2025, 12, 12, 22, 30, tzinfo=UTC)
        await scheduler.run_post(feed.id, previous_post_time(feed, clock.now))
        assert deliverer.calls == [(feed.id, date(2025, 12, 11))]


async def test_catch_up_respects_the_window_and_the_feed_creation_time(db, hf_server):
    clock = Clock(datetime(2025, 12, 12, 9, 30, tzinfo=UTC))
    scheduler, deliverer, session = await make_scheduler(db, hf_server, clock)
    hf_server["ready"] = True
    old = await feed_store.save_feed(db, Feed(guild_id=1, channel_id=2, post_time="09:00"))
    late = await feed_store.save_feed(db, Feed(guild_id=1, channel_id=3, post_time="01:00"))
    await db.conn.execute("UPDATE feeds SET created_at = '2025-12-01T00:00:00Z'")
    young = await feed_store.save_feed(db, Feed(guild_id=1, channel_id=4, post_time="09:00"))
    await db.conn.execute(
        "UPDATE feeds SET created_at = '2025-12-12T09:10:00Z' WHERE id = ?", (young.id,)
    )
    scheduler.config.schedule.catchup_hours = 6
    async with session:
        await scheduler.catch_up()
    # old: missed by 30 minutes -> posted; late: 8.5 hours ago, outside the window;
    # young: created after its post time -> never floods old days.
    assert deliverer.calls == [(old.id, date(2025, 12, 11))]
    assert late.id not in {feed_id for feed_id, _ in deliverer.calls}


async def test_a_feed_added_later_gets_its_source_fetched_daily(db, hf_server):
    clock = Clock(datetime(2025, 12, 12, 5, 0, tzinfo=UTC))
    scheduler, _, session = await make_scheduler(db, hf_server, clock)
    async with session:
        await scheduler.sync_feeds()
        assert scheduler.scheduler.get_job("fetch:hf") is not None  # the default source
        assert scheduler.scheduler.get_job("fetch:arxiv") is None
        await feed_store.save_feed(db, Feed(guild_id=1, channel_id=9, sources=("arxiv",)))
        await scheduler.sync_feeds()
        job = scheduler.scheduler.get_job("fetch:arxiv")
        assert job is not None and job.trigger.fields[5].expressions[0].first == 6  # 06:00
