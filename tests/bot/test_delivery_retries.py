"""End to end: deliveries that survive long outages, hung requests and restarts mid-retry.

The real bot, discord.py and APScheduler against the Discord stand-in; retry delays are
configured short, and every wait is for a condition.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta

import pytest

from bot.store import feeds as feed_store
from bot.store import ledger
from tests.bot.conftest import make_config, sync_to
from tests.bot.test_digest_delivery import DAY, SEED_IDS, feed, posted_paper_ids
from tests.discord_standin import StandIn

MESSAGES = r"/channels/{}/messages$"


def fast_retries(tmp_path, retry_minutes=(0.01,), **delivery):
    """Short waits: in-request retries of 10 ms, scheduled retries after ``retry_minutes``."""
    values = {"send_retry_seconds": [0.01, 0.01], "retry_minutes": list(retry_minutes)}
    return make_config(tmp_path / "bot.db", delivery={**values, **delivery})


async def test_an_outage_longer_than_the_request_retries_is_retried_until_the_post_lands(
    standin: StandIn, start_bot, clock, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="bot.delivery.scheduler")
    channel = standin.text_channel.id
    config = fast_retries(tmp_path, retry_minutes=(0.02,))
    config.feeds = [feed(standin.guild.id, channel, layout="full")]
    # The channel's message route answers 503 until the outage ends.
    outage = standin.inject("POST", MESSAGES.format(channel), 503, count=None)
    clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        await sync_to(bot, standin.guild.id)
        first = await bot.digests.run_post(stored.id)
        assert first.status == "failed" and first.retry_at is not None
        assert first.retry_at == clock.now + timedelta(minutes=0.02)
        assert "503" in first.detail

        status = await standin.slash("digest status", user_id=standin.admin_user.id)
        text = (await status.wait_callback())["data"]["content"]
        assert "retrying, next attempt at <t:" in text

        post_now = await standin.slash(
            "digest post-now",
            {"channel": str(channel), "day": DAY.isoformat()},
            user_id=standin.admin_user.id,
        )
        (reply,) = await post_now.wait_followups(1)
        assert "Retrying automatically; next attempt at <t:" in reply.content
        assert "will be retried" not in reply.content

        # The scheduled retries keep going (past the three in-request tries) while it lasts.
        await standin.wait_until(lambda: outage.used >= 9, timeout=30, what="scheduled retries")
        standin.clear_faults()
        await standin.wait_until(
            lambda: len(posted_paper_ids(standin, channel)) == 10, timeout=30, what="the post"
        )

        async def done():
            delivery = await ledger.get_delivery(bot.db, stored.id, DAY)
            return delivery.status == "done"

        await wait_async(done)
        delivery = await ledger.get_delivery(bot.db, stored.id, DAY)
        assert delivery.attempts >= 4 and delivery.next_attempt_at is None
    assert sorted(posted_paper_ids(standin, channel)) == sorted(SEED_IDS), "once each"
    attempts = [r.getMessage() for r in caplog.records if "attempt" in r.getMessage()]
    assert any("attempt 1 failed" in line and "next attempt at" in line for line in attempts)
    assert any(line.startswith("delivered feed=") for line in attempts)
    standin.assert_clean(allow=[("POST", MESSAGES.format(channel))])


async def wait_async(predicate, limit: float = 30.0) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while not await predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


async def test_a_hung_send_times_out_and_is_resent_only_after_a_history_check(
    standin: StandIn, start_bot, clock, tmp_path, caplog
):
    caplog.set_level(logging.INFO, logger="bot.delivery.sender")
    channel = standin.text_channel.id
    config = fast_retries(tmp_path, request_timeout=0.3)
    config.feeds = [feed(standin.guild.id, channel)]
    # Hangs, then fails: nothing was posted, so the history check finds nothing.
    standin.inject("POST", MESSAGES.format(channel), 500, count=1, delay=1.0)
    clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        outcome = await bot.digests.run_post(stored.id)
    assert outcome.status == "done", outcome
    assert sorted(posted_paper_ids(standin, channel)) == sorted(SEED_IDS)
    assert len(standin.messages_in(channel)) == 2
    posts = standin.requests_to("POST", MESSAGES.format(channel))
    history = standin.requests_to("GET", MESSAGES.format(channel))
    assert len(posts) == 3 and len(history) == 1
    assert posts[0].started < history[0].started < posts[1].started, "looked before resending"
    assert any("timed out" in r.getMessage() for r in caplog.records)
    standin.assert_clean(allow=[("POST", MESSAGES.format(channel))])


@pytest.mark.parametrize("held", [1.0, math.inf], ids=["answer-after-the-timeout", "no-answer"])
async def test_a_hung_send_that_landed_is_adopted_from_history_not_posted_twice(
    standin: StandIn, start_bot, clock, tmp_path, caplog, held
):
    """Discord posts the message but its answer comes after the request timeout (or never),
    and the nonce window has passed: the resend must find the message in the history."""
    caplog.set_level(logging.INFO, logger="bot.delivery.sender")
    standin.nonce_ttl = 0.0  # Discord's nonce window is over: a resend would post again
    channel = standin.text_channel.id
    config = fast_retries(tmp_path, request_timeout=0.3)
    config.feeds = [feed(standin.guild.id, channel)]
    hung = standin.inject("POST", MESSAGES.format(channel), None, count=1, delay=held, land=True)
    clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        outcome = await bot.digests.run_post(stored.id)
        messages = await ledger.ledger_messages(
            bot.db, (await ledger.get_delivery(bot.db, stored.id, DAY)).id
        )
    assert hung.used == 1
    assert outcome.status == "done", outcome
    assert sorted(posted_paper_ids(standin, channel)) == sorted(SEED_IDS), "once each"
    posted = standin.messages_in(channel)
    assert len(posted) == 2
    assert [m.message_id for m in messages] == [m.id for m in posted], "the landed one adopted"
    posts = standin.requests_to("POST", MESSAGES.format(channel))
    history = standin.requests_to("GET", MESSAGES.format(channel))
    assert len(posts) == 2 and len(history) == 1  # the hung post, the history check, the next
    assert posts[0].started < history[0].started < posts[1].started
    assert standin.deduplicated_nonces == 0, "the nonce did not save it"
    lines = [r.getMessage() for r in caplog.records]
    assert any("timed out" in line for line in lines)
    assert any("already posted" in line and "not resending" in line for line in lines)
    standin.assert_clean()


async def test_a_restart_during_a_retry_wait_reschedules_the_retry_from_the_store(
    standin: StandIn, start_bot, clock, tmp_path
):
    channel = standin.text_channel.id
    config = fast_retries(tmp_path, retry_minutes=(0.05,))
    config.feeds = [feed(standin.guild.id, channel, layout="full")]
    # Four messages go out, then the outage starts: the fifth is left uncertain.
    standin.inject("POST", MESSAGES.format(channel), None, count=4)
    standin.inject("POST", MESSAGES.format(channel), 503, count=None)
    clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        first = await bot.digests.run_post(stored.id)
        assert first.status == "failed" and first.sent == 4
    # The process is gone while the retry waits; the outage ends meanwhile.
    standin.clear_faults()
    delivery = await ledger.get_delivery(bot.db, stored.id, DAY)
    assert delivery.status == "retrying" and delivery.next_attempt_at > clock.now
    job_id = f"delivery-retry:{stored.id}:{DAY.isoformat()}"
    async with start_bot(config=config) as bot:
        await standin.wait_until(
            lambda: (
                bot.digests.scheduler.get_job(job_id) is not None
                or len(posted_paper_ids(standin, channel)) == 10
            ),
            what="the retry job",
        )
        await standin.wait_until(
            lambda: len(posted_paper_ids(standin, channel)) == 10, timeout=30, what="the post"
        )
        await wait_async(
            lambda: _status_is(bot.db, stored.id, "done"),
        )
    assert sorted(posted_paper_ids(standin, channel)) == sorted(SEED_IDS), "once each"
    assert len(standin.messages_in(channel)) == 10
    standin.assert_clean(allow=[("POST", MESSAGES.format(channel))])


async def _status_is(db, feed_id: int, status: str) -> bool:
    delivery = await ledger.get_delivery(db, feed_id, DAY)
    return delivery is not None and delivery.status == status


async def test_a_restart_after_the_retry_time_retries_at_once_in_catch_up(
    standin: StandIn, start_bot, clock, tmp_path
):
    channel = standin.text_channel.id
    config = fast_retries(tmp_path, retry_minutes=(30,))
    config.feeds = [feed(standin.guild.id, channel)]
    standin.inject("POST", MESSAGES.format(channel), 503, count=None)
    clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        assert (await bot.digests.run_post(stored.id)).status == "failed"
    standin.clear_faults()
    clock.now = datetime(2025, 1, 15, 9, 45, tzinfo=UTC)  # down past the 09:30 retry
    async with start_bot(config=config) as bot:
        await standin.wait_until(
            lambda: len(posted_paper_ids(standin, channel)) == 10, timeout=30, what="the post"
        )
        await wait_async(lambda: _status_is(bot.db, stored.id, "done"))
    assert sorted(posted_paper_ids(standin, channel)) == sorted(SEED_IDS)
    standin.assert_clean(allow=[("POST", MESSAGES.format(channel))])


async def test_retries_stop_at_the_deadline_with_one_alert(
    standin: StandIn, start_bot, clock, tmp_path
):
    channel = standin.text_channel.id
    alerts = standin.other_channel.id
    config = fast_retries(tmp_path, retry_minutes=(30,), deadline_hours=1.0)
    config.feeds = [feed(standin.guild.id, channel)]
    standin.inject("POST", MESSAGES.format(channel), 503, count=None)
    clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        await feed_store.set_alert_channel(bot.db, standin.guild.id, alerts)
        outcomes = []
        for minute in (0, 30, 60):
            clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC) + timedelta(minutes=minute)
            outcomes.append(await bot.digests.retry_delivery(stored.id, DAY))
        assert [o.status for o in outcomes] == ["failed", "failed", "expired"]
        delivery = await ledger.get_delivery(bot.db, stored.id, DAY)
        assert delivery.status == "expired" and delivery.attempts == 3
        assert await ledger.unfinished_deliveries(bot.db) == []
    (alert,) = standin.messages_in(alerts)
    assert "could not be posted after 3 attempts" in alert.content
    assert standin.messages_in(channel) == []


async def test_a_feed_s_own_deadline_overrides_the_global_one(
    standin: StandIn, start_bot, clock, tmp_path
):
    """Two feeds in the same outage, retried every 30 minutes: one declares
    deadline_hours = 0.25 and gives up after its first attempt; the other keeps the global
    1 h and retries on."""
    short, long = standin.text_channel.id, standin.other_channel.id
    config = fast_retries(tmp_path, retry_minutes=(30,), deadline_hours=1.0)
    config.feeds = [
        feed(standin.guild.id, short, deadline_hours=0.25),
        feed(standin.guild.id, long),
    ]
    for channel in (short, long):
        standin.inject("POST", MESSAGES.format(channel), 503, count=None)
    start = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    clock.now = start
    async with start_bot(config=config) as bot:
        by_channel = {f.channel_id: f for f in await feed_store.list_feeds(bot.db)}
        assert bot.digests.deadline_hours(by_channel[short]) == 0.25
        assert bot.digests.deadline_hours(by_channel[long]) == 1.0
        first = [await bot.digests.retry_delivery(by_channel[c].id, DAY) for c in (short, long)]
        assert [o.status for o in first] == ["expired", "failed"]
        clock.now = start + timedelta(minutes=30)
        again = await bot.digests.retry_delivery(by_channel[long].id, DAY)
        assert again.status == "failed" and again.retry_at == start + timedelta(minutes=60)
        gave_up = await ledger.get_delivery(bot.db, by_channel[short].id, DAY)
        going = await ledger.get_delivery(bot.db, by_channel[long].id, DAY)
    assert gave_up.status == "expired" and gave_up.attempts == 1
    assert going.status == "retrying" and going.attempts == 2


async def test_catch_up_recovers_feeds_concurrently(
    standin: StandIn, start_bot, clock, tmp_path, store
):
    """Three full-layout feeds (10 messages each, 5 per 5 s per channel) resume at once:
    every feed's first message is sent before any feed's last one."""
    channels = [standin.add_text_channel(standin.guild.id, f"full-{n}").id for n in range(3)]
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, c, layout="full") for c in channels]
    clock.now = datetime(2025, 1, 15, 8, 59, 30, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        await store.conn.execute("UPDATE feeds SET created_at = '2025-01-01T00:00:00Z'")
        await store.conn.commit()
        assert await bot.digests.prepare_posts("09:00", "UTC") == 3
        assert standin.all_messages() == [], "planned ahead, nothing sent before 09:00"
    standin.enforce_limits = True  # 5 messages / 5 s per channel, 50 requests/s
    clock.now = datetime(2025, 1, 15, 9, 1, tzinfo=UTC)
    async with start_bot(config=config):
        await standin.wait_until(
            lambda: all(len(posted_paper_ids(standin, c)) == 10 for c in channels),
            timeout=60,
            what="every feed",
        )
    posts = [r for r in standin.requests if r.method == "POST" and r.status == 200]
    first_of = {c: min(r.started for r in posts if str(c) in r.path) for c in channels}
    last_of = {c: max(r.started for r in posts if str(c) in r.path) for c in channels}
    assert max(first_of.values()) < min(last_of.values())
    for c in channels:
        assert sorted(posted_paper_ids(standin, c)) == sorted(SEED_IDS)
    standin.assert_clean()


async def test_digests_are_planned_a_minute_ahead_and_rendered_once_per_distinct_feed(
    standin: StandIn, start_bot, clock, tmp_path, monkeypatch
):
    import bot.delivery.sender as delivery_module

    channels = [standin.add_text_channel(standin.guild.id, f"same-{n}").id for n in range(3)]
    full = standin.add_text_channel(standin.guild.id, "full").id
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, c) for c in channels]
    config.feeds.append(feed(standin.guild.id, full, layout="full"))
    renders = []
    real_render = delivery_module.digest_messages

    def counting_render(*args, **kwargs):
        renders.append(kwargs.get("layout"))
        return real_render(*args, **kwargs)

    monkeypatch.setattr(delivery_module, "digest_messages", counting_render)
    clock.now = datetime(2025, 1, 15, 8, 59, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        await sync_to(bot, standin.guild.id)
        job = bot.digests.scheduler.get_job("prepare:UTC:09:00")
        fires = job.trigger.get_next_fire_time(None, datetime(2025, 1, 15, 8, 0, tzinfo=UTC))
        assert fires == datetime(2025, 1, 15, 8, 59, tzinfo=UTC)
        assert await bot.digests.prepare_posts("09:00", "UTC") == 4
        assert sorted(renders) == ["compact", "full"], "one rendering per distinct feed"
        assert standin.all_messages() == []

        # Changing a feed before its post forgets its (unsent) plan; it is planned again.
        edit = await standin.slash(
            "digest edit",
            {"channel": str(channels[0]), "max_papers": 3},
            user_id=standin.admin_user.id,
        )
        await edit.wait_callback()
        feeds = {f.channel_id: f for f in await feed_store.list_feeds(bot.db)}
        assert await ledger.get_delivery(bot.db, feeds[channels[0]].id, DAY) is None

        clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
        for stored in feeds.values():
            assert (await bot.digests.run_post(stored.id)).status == "done"
    assert len(renders) == 3, "only the edited feed was rendered again"
    assert len(posted_paper_ids(standin, channels[0])) == 3
    for channel in (*channels[1:], full):
        assert sorted(posted_paper_ids(standin, channel)) == sorted(SEED_IDS)
    standin.assert_clean()
