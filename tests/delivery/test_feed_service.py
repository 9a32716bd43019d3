"""The feeds service behind /digest, against a real store and a recording scheduler."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import pytest

from bot.delivery import feed_service
from bot.delivery.feed_service import FeedOptions
from bot.delivery.sender import Outcome
from bot.errors import InputError
from bot.store import feeds as feed_store
from bot.store import ledger
from bot.store.feeds import Feed

GUILD, CHANNEL = 1001, 9001
NOW = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)


@dataclass
class Jobs:
    """Records what the service asks of the scheduler."""

    synced: int = 0
    fetched: list[tuple[str, date]] = field(default_factory=list)
    delivered: list[tuple[Feed, date]] = field(default_factory=list)
    next_at: datetime | None = None

    async def sync_feeds(self) -> None:
        self.synced += 1

    async def ensure_fetched(self, source: str, day: date) -> str:
        self.fetched.append((source, day))
        return "done"

    async def deliver(self, feed: Feed, day: date) -> Outcome:
        self.delivered.append((feed, day))
        return Outcome("done", sent=1, total=1)

    def next_post(self, feed_id: int) -> datetime | None:
        return self.next_at


def test_a_new_feed_takes_the_defaults_for_options_left_out() -> None:
    feed = feed_service.new_feed(GUILD, CHANNEL, FeedOptions(include_tags="robotics"))
    assert (feed.post_time, feed.timezone, feed.sources, feed.layout) == (
        "09:00",
        "UTC",
        ("hf",),
        "compact",
    )
    assert feed.filters.include_tags == ("Robotics",)
    assert feed.filters.max_papers == 0  # the configured digest.max_papers applies


def test_an_edit_changes_only_what_was_given_and_a_dash_clears_a_list() -> None:
    feed = feed_service.new_feed(
        GUILD, CHANNEL, FeedOptions(include_keywords="diffusion, video", min_upvotes=5)
    )
    edited = feed_service.edited_feed(
        feed, FeedOptions(post_time="7:05", include_keywords="-", max_papers=3)
    )
    assert edited.post_time == "07:05"
    assert edited.filters.include_keywords == ()
    assert (edited.filters.min_upvotes, edited.filters.max_papers) == (5, 3)
    assert edited.origin == "command"


def test_pick_takes_the_options_from_a_commands_arguments() -> None:
    options = FeedOptions.pick({"self": object(), "channel": object(), "layout": "full"})
    assert options == FeedOptions(layout="full")


async def test_set_up_refuses_a_channel_that_has_a_digest(db) -> None:
    jobs = Jobs()
    feed = await feed_service.set_up(db, jobs, GUILD, CHANNEL, FeedOptions(), alert_channel_id=7)
    assert feed.id is not None and jobs.synced == 1
    assert await feed_store.get_alert_channel(db, GUILD) == 7
    with pytest.raises(InputError, match="already has a digest"):
        await feed_service.set_up(db, jobs, GUILD, CHANNEL, FeedOptions(timezone="Nowhere/City"))


async def test_a_feed_of_another_guild_is_not_found(db) -> None:
    await feed_service.set_up(db, Jobs(), GUILD, CHANNEL, FeedOptions())
    assert (await feed_service.guild_feed(db, GUILD, CHANNEL)).channel_id == CHANNEL
    with pytest.raises(InputError, match="has no digest"):
        await feed_service.guild_feed(db, 2002, CHANNEL)


async def test_edit_resumes_a_paused_feed_and_drops_the_unsent_plan(db) -> None:
    jobs = Jobs()
    feed = await feed_service.set_up(db, jobs, GUILD, CHANNEL, FeedOptions())
    assert feed.id is not None
    await feed_store.set_paused(db, feed.id, True, "missing permissions")
    await ledger.plan_delivery(db, feed.id, date(2025, 1, 14), [])
    paused = await feed_service.guild_feed(db, GUILD, CHANNEL)
    edited = await feed_service.edit(db, jobs, paused, FeedOptions(layout="full"))
    stored = await feed_service.guild_feed(db, GUILD, CHANNEL)
    assert not edited.paused and not stored.paused and stored.layout == "full"
    assert await ledger.get_delivery(db, feed.id, date(2025, 1, 14)) is None
    assert jobs.synced == 2


async def test_post_now_resumes_fetches_each_source_then_delivers(db) -> None:
    jobs = Jobs()
    feed = await feed_service.set_up(db, jobs, GUILD, CHANNEL, FeedOptions(sources="hf, arxiv"))
    assert feed.id is not None
    await feed_store.set_paused(db, feed.id, True, "gone")
    paused = await feed_service.guild_feed(db, GUILD, CHANNEL)
    day = date(2025, 1, 14)
    outcome = await feed_service.post_now(db, jobs, paused, day)
    assert outcome.status == "done"
    assert jobs.fetched == [("hf", day), ("arxiv", day)]
    assert not jobs.delivered[0][0].paused
    assert not (await feed_service.guild_feed(db, GUILD, CHANNEL)).paused


def test_the_day_defaults_to_the_latest_post_and_is_never_in_the_future() -> None:
    feed = feed_service.new_feed(GUILD, CHANNEL, FeedOptions(post_time="09:00"))
    # 09:00 on the 15th posts the listing of the 14th.
    assert feed_service.day_or_default(feed, None, NOW) == date(2025, 1, 14)
    assert feed_service.day_or_default(feed, date(2025, 1, 2), NOW) == date(2025, 1, 2)
    with pytest.raises(InputError, match="future"):
        feed_service.day_or_default(feed, date(2025, 1, 17), NOW)


async def test_status_reads_a_fixed_number_of_queries_whatever_the_number_of_feeds(
    db, monkeypatch
) -> None:
    jobs = Jobs(next_at=NOW)
    for n in range(6):
        feed = await feed_service.set_up(
            db, jobs, GUILD, CHANNEL + n, FeedOptions(sources="hf, arxiv, digest")
        )
        assert feed.id is not None
        for day in (date(2025, 1, 13), date(2025, 1, 14)):
            await ledger.plan_delivery(db, feed.id, day, [])
    await ledger.record_fetch(db, "hf", date(2025, 1, 13), "done", 40)
    await ledger.record_fetch(db, "hf", date(2025, 1, 14), "failed", 0, "HTTP 503")
    queries: list[str] = []
    for name in ("fetchall", "fetchone"):
        real = getattr(db, name)

        async def counted(sql, params=(), real=real):
            queries.append(sql)
            return await real(sql, params)

        monkeypatch.setattr(db, name, counted)
    status = await feed_service.guild_status(db, jobs, GUILD, lambda cid: cid != CHANNEL + 5)
    assert len(queries) == 4  # feeds, latest deliveries, latest fetches, alert channel
    assert [health.last.day for health in status.feeds if health.last] == [date(2025, 1, 14)] * 6
    assert [health.channel_exists for health in status.feeds] == [True] * 5 + [False]
    assert status.fetches["hf"] == (date(2025, 1, 14), "failed", 0, "HTTP 503")
    assert status.fetches["arxiv"] is None
    assert list(status.fetches) == ["arxiv", "digest", "hf"]


async def test_status_of_a_guild_without_feeds_is_empty(db) -> None:
    status = await feed_service.guild_status(db, Jobs(), GUILD, lambda cid: True)
    assert status.feeds == [] and status.alert_channel_id is None
