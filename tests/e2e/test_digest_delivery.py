"""End to end: scheduled digests through the real discord.py client and the Discord stand-in."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import discord
import pytest
from discord.ext import commands

from bot.config import FeedConfig
from bot.store import feeds as feed_store
from bot.store import ledger
from bot.store.papers import papers_for_day
from standin import StandIn
from tests.e2e.conftest import make_config, sync_to
from tests.waiting import wait_until

DAY = date(2025, 1, 14)
SEED_IDS = {
    "2501.07301",
    "2501.06425",
    "2501.06252",
    "2501.06173",
    "2501.07572",
    "2501.06458",
    "2501.06282",
    "2501.06842",
    "2501.07171",
    "2501.06590",
}


def posted_paper_ids(standin: StandIn, channel_id: int) -> list[str]:
    """arXiv ids of the paper embeds posted in a channel, in order (duplicates kept)."""
    ids = []
    for message in standin.messages_in(channel_id):
        for embed in message.embeds:
            url = embed.get("url") or ""
            if "arxiv.org/abs/" in url:
                ids.append(url.rsplit("/", 1)[-1])
    return ids


def assert_nobody_pinged(standin: StandIn, channel_id: int) -> None:
    for message in standin.messages_in(channel_id):
        assert message.allowed_mentions is not None, "every send passes allowed_mentions"
        assert message.allowed_mentions.get("parse") == []
        assert not message.pings["everyone"] and not message.pings["users"]
        assert not message.pings["roles"]


def feed(guild_id: int, channel_id: int, **options) -> FeedConfig:
    options.setdefault("sources", ["digest"])
    return FeedConfig(guild_id=guild_id, channel_id=channel_id, **options)


async def test_bot_identifies_without_privileged_intents_and_syncs_on_purpose(
    standin: StandIn, start_bot, tmp_path
):
    config = make_config(tmp_path / "bot.db", discord={"command_guild_ids": [standin.guild.id]})
    async with start_bot(config=config) as bot:
        assert standin.requested_privileged_intents() == []
        assert bot.intents.guilds and not bot.intents.message_content
        assert not standin.requests_to("PUT", r"/commands$"), "no sync unless asked"
        await bot.sync_commands()
        synced = standin.requests_to("PUT", rf"/guilds/{standin.guild.id}/commands$")
        assert len(synced) == 1
        assert "digest" in {command["name"] for command in synced[0].json}
    standin.assert_clean()


async def test_scheduled_digests_reach_two_guilds_with_their_own_times_and_filters(
    standin: StandIn, start_bot, clock, tmp_path
):
    second = standin.add_guild("Reading Group")
    second_papers = standin.add_text_channel(second.id, "papers")
    second_video = standin.add_text_channel(second.id, "video")
    first_video = standin.add_text_channel(standin.guild.id, "video")
    config = make_config(tmp_path / "bot.db")
    config.feeds = [
        feed(
            standin.guild.id,
            standin.text_channel.id,
            post_time="09:00",
            timezone="Europe/Berlin",
            name="all",
        ),
        feed(
            standin.guild.id,
            first_video.id,
            post_time="07:30",
            timezone="America/New_York",
            include_tags=["Text-to-Video"],
            layout="full",
        ),
        feed(
            second.id,
            second_papers.id,
            post_time="08:15",
            timezone="Asia/Tokyo",
            exclude_tags=["Multimodal"],
            max_papers=3,
        ),
        feed(
            second.id,
            second_video.id,
            post_time="18:00",
            timezone="UTC",
            include_keywords=["reward model", "medical"],
        ),
    ]
    async with start_bot(config=config) as bot:
        feeds = {f.channel_id: f for f in await feed_store.list_feeds(bot.db)}
        local_times = {
            standin.text_channel.id: ("Europe/Berlin", 9, 0),
            first_video.id: ("America/New_York", 7, 30),
            second_papers.id: ("Asia/Tokyo", 8, 15),
            second_video.id: ("UTC", 18, 0),
        }
        now = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
        expected_next = {
            standin.text_channel.id: datetime(2025, 1, 16, 8, 0, tzinfo=UTC),
            first_video.id: datetime(2025, 1, 15, 12, 30, tzinfo=UTC),
            second_papers.id: datetime(2025, 1, 15, 23, 15, tzinfo=UTC),
            second_video.id: datetime(2025, 1, 15, 18, 0, tzinfo=UTC),
        }
        for channel_id, expected in expected_next.items():
            trigger = bot.digests.scheduler.get_job(f"post:{feeds[channel_id].id}").trigger
            assert trigger.get_next_fire_time(None, now) == expected

        # Each feed's job fires at its local 15 January time: that posts the 14th's digest.
        fire_times = {
            channel_id: datetime(2025, 1, 15, hour, minute, tzinfo=ZoneInfo(zone))
            for channel_id, (zone, hour, minute) in local_times.items()
        }
        for channel_id, fire_time in fire_times.items():
            clock.now = fire_time.astimezone(UTC)
            outcome = await bot.digests.run_post(feeds[channel_id].id)
            assert outcome.status == "done", outcome

        assert sorted(posted_paper_ids(standin, standin.text_channel.id)) == sorted(SEED_IDS)
        assert posted_paper_ids(standin, first_video.id) == ["2501.06173"]
        tokyo = posted_paper_ids(standin, second_papers.id)
        assert len(tokyo) == 3 and "2501.06173" not in tokyo
        assert set(posted_paper_ids(standin, second_video.id)) == {"2501.07301", "2501.06458"}
        for channel_id in local_times:
            assert_nobody_pinged(standin, channel_id)
        # compact: header + 10 papers fit in 2 messages; full: one message per paper
        assert len(standin.messages_in(standin.text_channel.id)) == 2
        header = standin.messages_in(standin.text_channel.id)[0].embeds[0]
        assert "2025-01-14" in header["title"] and "10" in header["description"]

        # Running the jobs again (a misfire, a restart) posts nothing more.
        before = len(standin.all_messages())
        for channel_id, fire_time in fire_times.items():
            clock.now = fire_time.astimezone(UTC)
            assert (await bot.digests.run_post(feeds[channel_id].id)).status == "skipped"
        assert len(standin.all_messages()) == before
    standin.assert_clean()


async def test_the_real_scheduler_fires_the_post_job(standin: StandIn, start_bot, clock, tmp_path):
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, standin.text_channel.id, post_time="09:00")]
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
        job = bot.digests.scheduler.get_job(f"post:{stored.id}")
        job.modify(next_run_time=datetime.now(UTC))  # fire now, through APScheduler itself
        await wait_until(lambda: len(posted_paper_ids(standin, standin.text_channel.id)) == 10)
        assert job.trigger.fields[5].expressions[0].first == 9  # hour field of the cron trigger
    standin.assert_clean()


class SimulatedCrash(BaseException):
    """Stands for the process dying: no except clause in the bot catches it."""


@pytest.mark.parametrize("crash_point", ["after_discord_accepted", "before_request"])
async def test_restart_in_the_middle_of_a_delivery_posts_no_duplicate_and_no_gap(
    standin: StandIn, start_bot, clock, tmp_path, monkeypatch, crash_point
):
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, standin.text_channel.id, layout="full")]
    channel = standin.text_channel.id
    real_mark_sent = ledger.mark_sent
    real_send = discord.abc.Messageable.send
    calls = {"n": 0}

    async def crashing_mark_sent(db, delivery_id, seq, message_id):
        if seq == 4:
            raise SimulatedCrash
        await real_mark_sent(db, delivery_id, seq, message_id)

    async def crashing_send(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 5:
            raise SimulatedCrash
        return await real_send(self, *args, **kwargs)

    clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        if crash_point == "after_discord_accepted":
            monkeypatch.setattr(ledger, "mark_sent", crashing_mark_sent)
        else:
            monkeypatch.setattr(discord.abc.Messageable, "send", crashing_send)
        with pytest.raises(SimulatedCrash):
            await bot.digests.run_post(stored.id)
        monkeypatch.undo()
    posted_before_restart = len(standin.messages_in(channel))
    assert posted_before_restart == (5 if crash_point == "after_discord_accepted" else 4)

    # A new process: catch-up on ready resumes the interrupted delivery.
    async with start_bot(config=config) as bot:
        await wait_until(lambda: len(posted_paper_ids(standin, channel)) >= 10)

        async def finished():
            delivery = await ledger.get_delivery(bot.db, stored.id, DAY)
            return delivery is not None and delivery.status == "done"

        await wait_until(finished, what="the resumed delivery to be done")
    ids = posted_paper_ids(standin, channel)
    assert sorted(ids) == sorted(SEED_IDS), "every paper exactly once"
    assert len(standin.messages_in(channel)) == 10
    standin.assert_clean()


async def test_rate_limits_and_server_errors_are_retried_and_everything_arrives_once(
    standin: StandIn, start_bot, clock, tmp_path
):
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, standin.text_channel.id, layout="full")]
    channel = standin.text_channel.id
    standin.inject("POST", rf"/channels/{channel}/messages$", 429, count=2, retry_after=0.05)
    standin.inject("POST", rf"/channels/{channel}/messages$", 500, count=1)
    standin.inject("POST", rf"/channels/{channel}/messages$", 503, count=1)
    clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        outcome = await bot.digests.run_post(stored.id)
    assert outcome.status == "done"
    assert sorted(posted_paper_ids(standin, channel)) == sorted(SEED_IDS)
    statuses = [r.status for r in standin.requests_to("POST", rf"/channels/{channel}/messages$")]
    assert statuses.count(429) == 2 and 500 in statuses and 503 in statuses
    standin.assert_clean(allow=[("POST", rf"/channels/{channel}/messages$")])


async def test_missing_permission_pauses_the_feed_and_alerts_once(
    standin: StandIn, start_bot, clock, tmp_path
):
    alerts = standin.other_channel.id
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, standin.text_channel.id, name="daily")]
    standin.inject("POST", rf"/channels/{standin.text_channel.id}/messages$", 403, count=5)
    clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        await feed_store.set_alert_channel(bot.db, standin.guild.id, alerts)
        await sync_to(bot, standin.guild.id)
        first = await bot.digests.run_post(stored.id)
        second = await bot.digests.run_post(stored.id)
        paused = await feed_store.get_feed(bot.db, stored.id)
        status = await standin.slash("digest status", user_id=standin.admin_user.id)
        reply = await status.wait_callback()
    assert first.status == "paused" and second.status == "paused"
    assert paused.paused and "missing permission" in paused.pause_reason
    alert_messages = standin.messages_in(alerts)
    assert len(alert_messages) == 1 and "paused" in alert_messages[0].content
    assert alert_messages[0].allowed_mentions["parse"] == []
    assert "paused" in reply["data"]["content"]
    assert "Fetches: digest: imported by hand" in reply["data"]["content"]
    assert standin.messages_in(standin.text_channel.id) == []
    standin.assert_clean(allow=[50013])


async def test_a_day_without_papers_posts_a_note_or_nothing(
    standin: StandIn, start_bot, clock, tmp_path
):
    quiet = standin.add_text_channel(standin.guild.id, "quiet")
    config = make_config(tmp_path / "bot.db")
    config.feeds = [
        feed(standin.guild.id, standin.text_channel.id, empty_day="note"),
        feed(standin.guild.id, quiet.id, empty_day="skip"),
    ]
    clock.now = datetime(2025, 1, 20, 9, 0, tzinfo=UTC)  # nothing stored for the 19th
    async with start_bot(config=config) as bot:
        for stored in await feed_store.list_feeds(bot.db):
            assert (await bot.digests.run_post(stored.id)).status == "done"
    (note,) = standin.messages_in(standin.text_channel.id)
    assert "No new papers for 2025-01-19" in note.content
    assert standin.messages_in(quiet.id) == []


async def test_thread_feed_opens_a_thread_and_posts_inside_it(
    standin: StandIn, start_bot, clock, tmp_path
):
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, standin.text_channel.id, thread=True)]
    clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        assert (await bot.digests.run_post(stored.id)).status == "done"
    (header,) = standin.messages_in(standin.text_channel.id)
    (thread,) = standin.threads_in(standin.text_channel.id)
    assert "Papers for 2025-01-14" in header.embeds[0]["title"]
    assert sorted(posted_paper_ids(standin, thread.id)) == sorted(SEED_IDS)
    standin.assert_clean()


async def test_forum_feed_makes_one_post_a_day(standin: StandIn, start_bot, clock, tmp_path):
    forum = standin.forum_channel.id
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, forum)]
    clock.now = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)
    async with start_bot(config=config) as bot:
        (stored,) = await feed_store.list_feeds(bot.db)
        assert (await bot.digests.run_post(stored.id)).status == "done"
        assert (await bot.digests.run_post(stored.id)).status == "skipped"
    (post,) = standin.threads_in(forum)
    assert post.name == "Papers for 2025-01-14"
    assert sorted(posted_paper_ids(standin, post.id)) == sorted(SEED_IDS)
    standin.assert_clean()


async def test_catch_up_posts_a_missed_digest_but_a_new_feed_does_not_flood(
    standin: StandIn, start_bot, clock, tmp_path, store
):
    missed = standin.add_text_channel(standin.guild.id, "missed")
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, missed.id, post_time="09:00")]
    # The feed existed before the 09:00 post of the 15th, and the bot was down then.
    clock.now = datetime(2025, 1, 15, 8, 0, tzinfo=UTC)
    from bot.runtime.client import sync_config_feeds

    await sync_config_feeds(store, config)
    await store.conn.execute("UPDATE feeds SET created_at = '2025-01-01T00:00:00Z'")
    clock.now = datetime(2025, 1, 15, 11, 0, tzinfo=UTC)  # two hours late: within the window
    config.feeds.append(feed(standin.guild.id, standin.text_channel.id, post_time="09:00"))
    async with start_bot(config=config) as bot:
        await wait_until(lambda: len(posted_paper_ids(standin, missed.id)) == 10)
        await wait_until(lambda: bot.caught_up.is_set(), what="the catch-up to finish")
    # The feed added just now (created after the 09:00 post) did not post old days.
    assert standin.messages_in(standin.text_channel.id) == []
    listed = await papers_for_day(store, DAY)
    assert len(listed) == 10


async def test_non_admin_cannot_set_up_a_digest_and_admin_can(standin: StandIn, start_bot):
    async with start_bot(sync_on_start=False) as bot:
        await sync_to(bot, standin.guild.id)
        options = {
            "channel": str(standin.text_channel.id),
            "post_time": "08:30",
            "timezone": "Europe/Paris",
            "include_tags": "computer vision, nlp",
        }
        refused = await standin.slash(
            "digest setup", options, user_id=standin.plain_user.id, check_visibility=False
        )
        answer = await refused.wait_callback()
        assert refused.ephemeral and "Manage Server" in answer["data"]["content"]
        assert await feed_store.list_feeds(bot.db) == []

        accepted = await standin.slash("digest setup", options, user_id=standin.admin_user.id)
        reply = await accepted.wait_callback()
        assert accepted.ephemeral and "Done" in reply["data"]["content"]
        (created,) = await feed_store.list_feeds(bot.db)
        assert created.timezone == "Europe/Paris" and created.post_time == "08:30"
        assert created.filters.include_tags == ("Computer Vision", "Natural Language Processing")
        assert bot.digests.scheduler.get_job(f"post:{created.id}") is not None

        bad = await standin.slash(
            "digest edit",
            {"channel": str(standin.text_channel.id), "include_tags": "astrology"},
            user_id=standin.admin_user.id,
        )
        text = (await bad.wait_callback())["data"]["content"]
        assert "Unknown tag" in text and bad.ephemeral

        listing = await standin.slash("digest list", user_id=standin.admin_user.id)
        assert "08:30 Europe/Paris" in (await listing.wait_callback())["data"]["content"]

        removed = await standin.slash(
            "digest remove",
            {"channel": str(standin.text_channel.id)},
            user_id=standin.admin_user.id,
        )
        await removed.wait_callback()
        assert await feed_store.list_feeds(bot.db) == []
        assert bot.digests.scheduler.get_job(f"post:{created.id}") is None
    standin.assert_clean()


async def test_preview_and_post_now_for_admins(standin: StandIn, start_bot, tmp_path):
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, standin.text_channel.id, layout="compact")]
    async with start_bot(config=config) as bot:
        await sync_to(bot, standin.guild.id)
        channel = str(standin.text_channel.id)
        preview = await standin.slash(
            "digest preview",
            {"channel": channel, "day": "2025-01-14"},
            user_id=standin.admin_user.id,
        )
        shown = await preview.wait_callback()
        assert preview.ephemeral and len(shown["data"]["embeds"]) == 10
        assert standin.messages_in(standin.text_channel.id) == []

        post = await standin.slash(
            "digest post-now",
            {"channel": channel, "day": "2025-01-14"},
            user_id=standin.admin_user.id,
        )
        await post.wait_callback()
        (followup,) = await post.wait_followups(1)
        assert "Posted" in followup.content
        assert sorted(posted_paper_ids(standin, standin.text_channel.id)) == sorted(SEED_IDS)
    standin.assert_clean()


async def test_owner_syncs_by_mention_and_others_are_ignored(standin: StandIn, start_bot, tmp_path):
    config = make_config(
        tmp_path / "bot.db",
        discord={"command_guild_ids": [standin.guild.id], "owner_ids": [standin.admin_user.id]},
    )
    mention = f"<@{standin.bot_user.id}> sync"
    path = rf"/guilds/{standin.guild.id}/commands$"
    async with start_bot(config=config) as bot:
        refused = asyncio.ensure_future(bot.wait_for("command_error", timeout=30))
        await standin.post_user_message(
            standin.text_channel.id, standin.plain_user.id, mention, mentions=[standin.bot_user.id]
        )
        _ctx, error = await refused
        assert isinstance(error, commands.NotOwner)
        assert standin.requests_to("PUT", path) == [], "only an owner may sync"
        await standin.post_user_message(
            standin.text_channel.id, standin.admin_user.id, mention, mentions=[standin.bot_user.id]
        )
        await wait_until(lambda: standin.requests_to("PUT", path))
        await wait_until(
            lambda: any("Synced" in m.content for m in standin.messages_in(standin.text_channel.id))
        )
    standin.assert_clean()


async def test_tag_list_options_autocomplete_the_last_item(standin: StandIn, start_bot):
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        options = {"channel": str(standin.text_channel.id), "include_tags": "Robotics, comp"}
        handle = await standin.autocomplete(
            "digest setup", options, "include_tags", user_id=standin.admin_user.id
        )
        await handle.wait_callback()
        values = [choice["value"] for choice in handle.choices]
        assert values and values[0] == "Robotics, Computer Vision"
        assert all(value.startswith("Robotics, ") for value in values)
    standin.assert_clean()
