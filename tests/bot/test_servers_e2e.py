"""End to end: a deleted channel or role, or removal from a server, forgets what depended on it.

The stand-in dispatches the real gateway events (CHANNEL_DELETE, GUILD_ROLE_DELETE,
GUILD_DELETE) to the real discord.py client.
"""

from __future__ import annotations

import asyncio
import logging

from bot.config import FeedConfig
from bot.store import feeds as feed_store
from bot.store import subscriptions as sub_store
from bot.store.feeds import Feed
from bot.subscriptions import service as sub_service
from tests.bot.conftest import make_config, sync_to
from tests.discord_standin import StandIn


async def eventually(check, limit: float = 5.0) -> None:
    """Wait until the async predicate ``check()`` holds."""
    deadline = asyncio.get_running_loop().time() + limit
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def forget_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "bot.runtime.forget"]


async def test_deleting_a_channel_forgets_its_feed_mappings_and_alert_setting(
    standin: StandIn, start_bot, caplog
):
    caplog.set_level(logging.INFO, logger="bot.runtime.forget")
    guild = standin.guild.id
    doomed = standin.add_text_channel(guild, "doomed")
    readers = standin.add_role(guild, "readers", mentionable=True)
    bob = standin.plain_user.id
    async with start_bot() as bot:
        feed = await feed_store.save_feed(bot.db, Feed(guild_id=guild, channel_id=doomed.id))
        kept = await feed_store.save_feed(
            bot.db, Feed(guild_id=guild, channel_id=standin.text_channel.id)
        )
        await bot.digests.sync_feeds()
        await feed_store.set_alert_channel(bot.db, guild, doomed.id)
        for feed_id in (feed.id, kept.id):
            await sub_service.add_subscription(
                bot.db,
                guild,
                readers.id,
                "tag",
                "Robotics",
                subscriber_type="role",
                feed_id=feed_id,
            )
        await sub_service.add_subscription(bot.db, guild, bob, "tag", "Robotics", feed_id=feed.id)
        await sub_service.add_subscription(bot.db, guild, bob, "keyword", "diffusion")
        assert bot.digests.next_post(feed.id) is not None

        assert await standin.delete_channel(doomed.id) == 1

        async def gone() -> bool:
            return await feed_store.get_feed(bot.db, feed.id) is None

        await eventually(gone)
        remaining = await sub_store.all_for_guild(bot.db, guild)
        assert await feed_store.get_alert_channel(bot.db, guild) is None
        assert bot.digests.next_post(feed.id) is None
        assert bot.digests.next_post(kept.id) is not None
    assert sorted((s.subscriber_id, s.feed_id) for s in remaining) == sorted(
        [(readers.id, kept.id), (bob, None)]
    )
    (line,) = forget_lines(caplog)
    assert f"channel {doomed.id} was deleted" in line and "2 subscription(s)" in line
    standin.assert_clean()


async def test_deleting_a_role_forgets_its_mentions_only(standin: StandIn, start_bot, caplog):
    caplog.set_level(logging.INFO, logger="bot.runtime.forget")
    guild = standin.guild.id
    readers = standin.add_role(guild, "readers", mentionable=True)
    writers = standin.add_role(guild, "writers", mentionable=True)
    async with start_bot() as bot:
        feed = await feed_store.save_feed(
            bot.db, Feed(guild_id=guild, channel_id=standin.text_channel.id)
        )
        for role, tag in ((readers, "Robotics"), (readers, "Multimodal"), (writers, "Robotics")):
            await sub_service.add_subscription(
                bot.db, guild, role.id, "tag", tag, subscriber_type="role", feed_id=feed.id
            )

        assert await standin.delete_role(guild, readers.id) == 1

        async def forgotten() -> bool:
            subs = await sub_store.all_for_guild(bot.db, guild)
            return all(s.subscriber_id != readers.id for s in subs)

        await eventually(forgotten)
        remaining = await sub_store.all_for_guild(bot.db, guild)
        assert await feed_store.get_feed(bot.db, feed.id) is not None
    assert [(s.subscriber_id, s.norm) for s in remaining] == [(writers.id, "Robotics")]
    (line,) = forget_lines(caplog)
    assert f"role {readers.id} was deleted" in line and "2 role mention(s)" in line
    standin.assert_clean()


async def test_removal_from_a_server_forgets_that_server_only(standin: StandIn, start_bot, caplog):
    caplog.set_level(logging.INFO, logger="bot.runtime.forget")
    other = standin.add_guild("Other Lab")
    other_channel = standin.add_text_channel(other.id, "papers")
    home = standin.guild.id
    bob = standin.plain_user.id
    standin.add_member(other.id, bob)
    async with start_bot() as bot:
        for guild_id, channel_id in ((home, standin.text_channel.id), (other.id, other_channel.id)):
            await feed_store.save_feed(bot.db, Feed(guild_id=guild_id, channel_id=channel_id))
            await sub_service.add_subscription(bot.db, guild_id, bob, "tag", "Robotics")
        await feed_store.set_alert_channel(bot.db, other.id, other_channel.id)
        await bot.digests.sync_feeds()

        assert await standin.remove_bot_from(other.id) == 1

        async def forgotten() -> bool:
            return await feed_store.list_feeds(bot.db, other.id) == []

        await eventually(forgotten)
        assert await sub_store.all_for_guild(bot.db, other.id) == []
        assert await feed_store.get_alert_channel(bot.db, other.id) is None
        assert len(await feed_store.list_feeds(bot.db, home)) == 1
        assert len(await sub_store.all_for_guild(bot.db, home)) == 1
    (line,) = forget_lines(caplog)
    assert f"left guild {other.id}" in line and "1 feed(s) and 1 subscription(s)" in line
    standin.assert_clean()


async def test_digest_status_lists_a_feed_whose_channel_is_gone(
    standin: StandIn, start_bot, tmp_path
):
    """A channel deleted while the bot was offline: no event arrives, the feed stays listed."""
    guild = standin.guild.id
    vanished = standin.add_text_channel(guild, "vanished")
    standin.world.remove_channel(vanished.id)  # before the bot connects: no CHANNEL_DELETE
    config = make_config(tmp_path / "bot.db")
    config.feeds = [FeedConfig(guild_id=guild, channel_id=vanished.id, sources=["digest"])]
    async with start_bot(config=config) as bot:
        await feed_store.save_feed(bot.db, Feed(guild_id=guild, channel_id=standin.text_channel.id))
        await sync_to(bot, guild)
        status = await standin.slash("digest status", user_id=standin.admin_user.id)
        lines = (await status.wait_callback())["data"]["content"].splitlines()
    (gone,) = [line for line in lines if f"<#{vanished.id}>" in line]
    assert "channel gone" in gone and "config.toml" in gone
    (alive,) = [line for line in lines if f"<#{standin.text_channel.id}>" in line]
    assert "channel gone" not in alive and "active" in alive
    standin.assert_clean()


async def test_what_vanished_while_the_bot_was_offline_is_forgotten_on_start(
    standin: StandIn, start_bot, tmp_path, caplog
):
    """Stopped bot; meanwhile a channel, an alert channel and a role are deleted, the bot is
    removed from one server and another is in an outage. On start: the first three and the
    removed server are forgotten (one line each), the server in an outage keeps everything,
    and a feed declared in config.toml whose channel is gone is listed by /digest status."""
    caplog.set_level(logging.INFO, logger="bot.runtime.forget")
    home = standin.guild.id
    doomed = standin.add_text_channel(home, "doomed")
    alerts = standin.add_text_channel(home, "alerts")
    declared = standin.add_text_channel(home, "declared")
    readers = standin.add_role(home, "readers", mentionable=True)
    writers = standin.add_role(home, "writers", mentionable=True)
    left = standin.add_guild("Left Lab")
    left_channel = standin.add_text_channel(left.id, "papers")
    down = standin.add_guild("Down Lab")
    down_channel = standin.add_text_channel(down.id, "papers")
    down_role = standin.add_role(down.id, "fans", mentionable=True)
    bob = standin.plain_user.id
    for guild_id in (left.id, down.id):
        standin.add_member(guild_id, bob)
    config = make_config(tmp_path / "bot.db")
    config.feeds = [FeedConfig(guild_id=home, channel_id=declared.id, sources=["digest"])]

    async with start_bot(config=config) as bot:
        db = bot.db
        gone = await feed_store.save_feed(db, Feed(guild_id=home, channel_id=doomed.id))
        kept = await feed_store.save_feed(
            db, Feed(guild_id=home, channel_id=standin.text_channel.id)
        )
        await feed_store.save_feed(db, Feed(guild_id=left.id, channel_id=left_channel.id))
        down_feed = await feed_store.save_feed(
            db, Feed(guild_id=down.id, channel_id=down_channel.id)
        )
        await feed_store.set_alert_channel(db, home, alerts.id)
        await feed_store.set_alert_channel(db, down.id, down_channel.id)
        for role, feed_id in ((readers, kept.id), (writers, kept.id), (writers, gone.id)):
            await sub_service.add_subscription(
                db, home, role.id, "tag", "Robotics", subscriber_type="role", feed_id=feed_id
            )
        await sub_service.add_subscription(
            db,
            down.id,
            down_role.id,
            "tag",
            "Robotics",
            subscriber_type="role",
            feed_id=down_feed.id,
        )
        for guild_id in (home, left.id, down.id):
            await sub_service.add_subscription(db, guild_id, bob, "keyword", "diffusion")
        await bot.digests.sync_feeds()
    assert not forget_lines(caplog), "nothing is gone yet"

    # While the bot is stopped: no events reach it.
    standin.world.remove_channel(doomed.id)
    standin.world.remove_channel(alerts.id)
    standin.world.remove_channel(declared.id)
    standin.world.remove_role(home, readers.id)
    standin.world.remove_guild(left.id)
    standin.world.remove_role(down.id, down_role.id)  # unseen: the server is unavailable
    standin.unavailable_guilds.add(down.id)

    async with start_bot(config=config) as bot:
        assert bot.get_guild(down.id) is not None and bot.get_guild(down.id).unavailable

        async def forgotten() -> bool:
            return (
                await feed_store.get_feed(bot.db, gone.id) is None
                and await feed_store.list_feeds(bot.db, left.id) == []
                and await feed_store.get_alert_channel(bot.db, home) is None
                and all(
                    s.subscriber_id != readers.id
                    for s in await sub_store.all_for_guild(bot.db, home)
                )
            )

        await eventually(forgotten)
        assert bot.digests.next_post(gone.id) is None
        assert bot.digests.next_post(kept.id) is not None
        home_subs = await sub_store.all_for_guild(bot.db, home)
        assert sorted((s.subscriber_id, s.feed_id) for s in home_subs) == sorted(
            [(writers.id, kept.id), (bob, None)]
        )
        assert await sub_store.all_for_guild(bot.db, left.id) == []
        # The server in an outage keeps its feed, alert setting and role mention.
        assert await feed_store.get_feed(bot.db, down_feed.id) is not None
        assert await feed_store.get_alert_channel(bot.db, down.id) == down_channel.id
        assert len(await sub_store.all_for_guild(bot.db, down.id)) == 2
        (declared_feed,) = [
            f for f in await feed_store.list_feeds(bot.db, home) if f.channel_id == declared.id
        ]

        await sync_to(bot, home)
        status = await standin.slash("digest status", user_id=standin.admin_user.id)
        lines = (await status.wait_callback())["data"]["content"].splitlines()
        (listed,) = [line for line in lines if f"<#{declared.id}>" in line]
        assert "channel gone" in listed and "config.toml" in listed
        assert not [line for line in lines if f"<#{doomed.id}>" in line]
        assert "No alert channel set." in lines
        before = len(forget_lines(caplog))
        await bot.reconcile_guilds()  # again (as on a later READY): nothing more to say
        assert len(forget_lines(caplog)) == before
        assert await feed_store.get_feed(bot.db, declared_feed.id) is not None

    lines = forget_lines(caplog)
    assert len([line for line in lines if f"channel {doomed.id} was deleted" in line]) == 1
    assert len([line for line in lines if f"channel {alerts.id} was deleted" in line]) == 1
    assert len([line for line in lines if f"role {readers.id} was deleted" in line]) == 1
    assert len([line for line in lines if f"left guild {left.id}" in line]) == 1
    assert len([line for line in lines if f"channel {declared.id} is gone" in line]) == 1
    assert not [line for line in lines if str(down.id) in line], "an outage forgets nothing"
    assert len(lines) == 5, lines
    standin.assert_clean()


async def test_a_server_back_from_an_outage_is_reconciled_on_the_next_ready(
    standin: StandIn, start_bot, caplog
):
    """An unavailable server is skipped at start; once a new session sees it again, what
    vanished meanwhile is forgotten."""
    caplog.set_level(logging.INFO, logger="bot.runtime.forget")
    down = standin.add_guild("Down Lab")
    channel = standin.add_text_channel(down.id, "papers")
    async with start_bot() as bot:
        stored = await feed_store.save_feed(bot.db, Feed(guild_id=down.id, channel_id=channel.id))
    standin.world.remove_channel(channel.id)
    standin.unavailable_guilds.add(down.id)
    async with start_bot() as bot:
        await bot.reconcile_guilds()
        assert await feed_store.get_feed(bot.db, stored.id) is not None
        standin.unavailable_guilds.discard(down.id)
        await standin.invalidate_sessions()  # a new session: READY, GUILD_CREATE, on_ready

        async def gone() -> bool:
            return await feed_store.get_feed(bot.db, stored.id) is None

        await eventually(gone, limit=30)  # discord.py waits 5 s between two IDENTIFYs
    (line,) = forget_lines(caplog)
    assert f"channel {channel.id} was deleted" in line
    standin.assert_clean()
