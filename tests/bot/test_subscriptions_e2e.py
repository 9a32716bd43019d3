"""End to end: subscriptions, and the digest mentioning exactly the right people once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from bot.config import FeedConfig
from bot.models import Entry, Listing
from bot.store import feeds as feed_store
from bot.store import subscriptions as sub_store
from bot.store.papers import get_paper, upsert_entries
from bot.subscriptions import service as sub_service
from tests.bot.conftest import make_config, sync_to
from tests.discord_standin import StandIn

DAY = date(2025, 1, 14)
POST_TIME = datetime(2025, 1, 15, 9, 0, tzinfo=UTC)


def feed(guild_id: int, channel_id: int, **options) -> FeedConfig:
    return FeedConfig(guild_id=guild_id, channel_id=channel_id, sources=["digest"], **options)


async def subscribe(standin: StandIn, sub: str, options: dict, user_id: int, **kw):
    handle = await standin.slash(f"subscribe {sub}", options, user_id=user_id, **kw)
    reply = await handle.wait_callback()
    assert handle.ephemeral
    return reply["data"]["content"]


def mention_messages(standin: StandIn, channel_id: int):
    return [m for m in standin.messages_in(channel_id) if m.content.startswith("📬")]


async def test_the_digest_mentions_each_subscriber_once_and_nobody_else(
    standin: StandIn, start_bot, clock, tmp_path
):
    readers = standin.add_role(standin.guild.id, "video-readers", mentionable=True)
    carol = standin.add_user("carol")
    standin.add_member(standin.guild.id, carol.id)
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, standin.text_channel.id)]
    clock.now = POST_TIME
    async with start_bot(config=config) as bot:
        await sync_to(bot, standin.guild.id)
        bob, alice = standin.plain_user.id, standin.admin_user.id
        assert "Subscribed" in await subscribe(standin, "tag", {"tag": "Text-to-Video"}, bob)
        await subscribe(standin, "keyword", {"query": '"reward models" OR medical'}, bob)
        await subscribe(standin, "author", {"name": "Huizhuo Yuan"}, alice)
        await subscribe(standin, "keyword", {"query": "quantum chromodynamics"}, carol.id)
        refused = await standin.slash(
            "subscribe role",
            {
                "role": str(readers.id),
                "tag": "Text-to-Video",
                "channel": str(standin.text_channel.id),
            },
            user_id=bob,
            check_visibility=False,
        )
        assert "Manage Server" in (await refused.wait_callback())["data"]["content"]
        ok = await subscribe(
            standin,
            "role",
            {
                "role": str(readers.id),
                "tag": "Text-to-Video",
                "channel": str(standin.text_channel.id),
            },
            alice,
        )
        assert "will be mentioned" in ok

        (stored_feed,) = await feed_store.list_feeds(bot.db)
        assert (await bot.digests.run_post(stored_feed.id)).status == "done"

    (message,) = mention_messages(standin, standin.text_channel.id)
    assert sorted(int(u) for u in message.allowed_mentions["users"]) == sorted([bob, alice])
    assert [int(r) for r in message.allowed_mentions["roles"]] == [readers.id]
    assert message.allowed_mentions["parse"] == []
    assert sorted(message.pings["users"]) == sorted([bob, alice])
    assert message.pings["roles"] == [readers.id] and not message.pings["everyone"]
    assert message.content.count(f"<@{bob}>") == 1 and message.content.count(f"<@{alice}>") == 1
    bob_line = next(line for line in message.content.splitlines() if f"<@{bob}>" in line)
    assert "2501.06173" in bob_line and "2501.07301" in bob_line and "2501.06458" in bob_line
    assert str(carol.id) not in message.content
    # every other message of the digest pings no one
    others = [m for m in standin.messages_in(standin.text_channel.id) if m is not message]
    assert all(not (m.pings["users"] or m.pings["roles"] or m.pings["everyone"]) for m in others)
    standin.assert_clean()


async def test_dm_opt_in_and_a_closed_dm_is_recorded_not_retried(
    standin: StandIn, start_bot, clock, tmp_path
):
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, standin.text_channel.id)]
    bob, alice = standin.plain_user.id, standin.admin_user.id
    standin.close_dms(alice)
    clock.now = POST_TIME
    async with start_bot(config=config) as bot:
        await sync_to(bot, standin.guild.id)
        await subscribe(standin, "tag", {"tag": "Text-to-Video", "dm": True}, bob)
        await subscribe(standin, "tag", {"tag": "Text-to-Video", "dm": True}, alice)
        (stored_feed,) = await feed_store.list_feeds(bot.db)
        assert (await bot.digests.run_post(stored_feed.id)).status == "done"
        assert await sub_store.dm_closed(bot.db, alice)
        listing = await standin.slash("subscriptions list", user_id=alice)
        text = (await listing.wait_callback())["data"]["content"]
        assert "DMs were closed" in text
        # The next day: nothing is attempted for the closed DM.
        paper = await get_paper(bot.db, "2501.06173")
        await upsert_entries(bot.db, [Entry(paper, Listing(date(2025, 1, 15), "digest", 1))])
        clock.now = datetime(2025, 1, 16, 9, 0, tzinfo=UTC)
        dm_posts_before = len(standin.requests_to("POST", r"/channels/\d+/messages$"))
        assert (await bot.digests.run_post(stored_feed.id)).status == "done"
        new_posts = standin.requests_to("POST", r"/channels/\d+/messages$")[dm_posts_before:]
    bob_dms = [
        m for m in standin.all_messages() if m.guild_id is None and "2501.06173" in m.content
    ]
    assert len(bob_dms) == 2  # one a day, for bob only
    assert all(not m.pings["users"] for m in bob_dms)
    assert all(r.status != 403 for r in new_posts)
    assert mention_messages(standin, standin.text_channel.id) == []  # DM subscribers: no mention
    standin.assert_clean(allow=[50007])


async def test_members_who_left_are_skipped_and_forgotten(
    standin: StandIn, start_bot, clock, tmp_path
):
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, standin.text_channel.id)]
    bob, alice = standin.plain_user.id, standin.admin_user.id
    clock.now = POST_TIME
    async with start_bot(config=config) as bot:
        await sync_to(bot, standin.guild.id)
        await subscribe(standin, "tag", {"tag": "Text-to-Video"}, bob)
        await subscribe(standin, "tag", {"tag": "Text-to-Video"}, alice)
        standin.remove_member(standin.guild.id, bob)
        (stored_feed,) = await feed_store.list_feeds(bot.db)
        await bot.digests.run_post(stored_feed.id)
        left = await sub_store.list_subscriptions(bot.db, standin.guild.id, bob)
    (message,) = mention_messages(standin, standin.text_channel.id)
    assert message.pings["users"] == [alice] and f"<@{bob}>" not in message.content
    assert left == []
    standin.assert_clean(allow=[10007])


async def test_one_server_never_sees_anothers_subscriptions(
    standin: StandIn, start_bot, clock, tmp_path
):
    other = standin.add_guild("Other Lab")
    other_channel = standin.add_text_channel(other.id, "papers")
    bob, alice = standin.plain_user.id, standin.admin_user.id
    standin.add_member(other.id, bob)
    config = make_config(tmp_path / "bot.db")
    config.feeds = [
        feed(standin.guild.id, standin.text_channel.id),
        feed(other.id, other_channel.id),
    ]
    clock.now = POST_TIME
    async with start_bot(config=config) as bot:
        await sync_to(bot, standin.guild.id, other.id)
        await subscribe(standin, "tag", {"tag": "Text-to-Video"}, alice)
        await subscribe(standin, "keyword", {"query": "attention"}, bob)
        listing = await standin.slash(
            "subscriptions list", user_id=bob, guild_id=other.id, channel_id=other_channel.id
        )
        text = (await listing.wait_callback())["data"]["content"]
        assert "no subscriptions here" in text
        for stored_feed in await feed_store.list_feeds(bot.db):
            await bot.digests.run_post(stored_feed.id)
    assert mention_messages(standin, other_channel.id) == []
    (first,) = mention_messages(standin, standin.text_channel.id)
    assert sorted(first.pings["users"]) == sorted([alice, bob])
    standin.assert_clean()


async def test_adversarial_paper_text_never_pings_or_breaks_the_layout(
    standin: StandIn, start_bot, clock, tmp_path, store
):
    evil_role = standin.add_role(standin.guild.id, "mods", mentionable=True)
    paper = await get_paper(store, "2501.06173")
    hostile = replace(
        paper,
        arxiv_id="2501.09999",
        title=(
            f"@everyone @here <@&{evil_role.id}> <@{standin.admin_user.id}> "
            "[click](http://evil.example) **bold** ```"
        ),
        bullets=("@everyone look <@&1> [x](https://evil.example) `code` > quote",),
        authors=("@here", f"<@{standin.admin_user.id}>"),
    )
    await upsert_entries(store, [Entry(hostile, Listing(DAY, "digest", 11))])
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, standin.text_channel.id, layout="full")]
    clock.now = POST_TIME
    async with start_bot(config=config) as bot:
        await sync_to(bot, standin.guild.id)
        await subscribe(standin, "keyword", {"query": "click"}, standin.plain_user.id)
        (stored_feed,) = await feed_store.list_feeds(bot.db)
        assert (await bot.digests.run_post(stored_feed.id)).status == "done"
        search = await standin.slash("search", {"query": "click", "public": True})
        await search.wait_callback()
        card = await standin.slash("paper", {"paper": "2501.09999", "public": True})
        await card.wait_callback()
    pinging = standin.pinging_messages()
    assert [m.pings["users"] for m in pinging] == [[standin.plain_user.id]]
    assert pinging[0].pings["roles"] == [] and not pinging[0].pings["everyone"]
    for message in standin.all_messages():
        texts = [message.content, *(str(v) for e in message.embeds for v in e.values())]
        for text in texts:
            assert "[click](http" not in text and "[x](http" not in text, "no live masked link"
    standin.assert_clean()


async def test_unsubscribe_clear_forgetme_and_the_limit(standin: StandIn, start_bot):
    bob = standin.plain_user.id
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        await subscribe(standin, "tag", {"tag": "Robotics"}, bob)
        await subscribe(standin, "author", {"name": "Ann Lee"}, bob)
        again = await standin.slash("subscribe tag", {"tag": "robotics"}, user_id=bob)
        assert "already subscribed" in (await again.wait_callback())["data"]["content"]
        unknown = await standin.slash("subscribe tag", {"tag": "astrology"}, user_id=bob)
        assert "unknown tag" in (await unknown.wait_callback())["data"]["content"]

        complete = await standin.autocomplete(
            "unsubscribe", {"subscription": "rob"}, "subscription", user_id=bob
        )
        await complete.wait_callback()
        (choice,) = complete.choices
        removed = await standin.slash("unsubscribe", {"subscription": choice["value"]}, user_id=bob)
        assert "Unsubscribed" in (await removed.wait_callback())["data"]["content"]
        remaining = await sub_store.list_subscriptions(bot.db, standin.guild.id, bob)
        assert [s.kind for s in remaining] == ["author"]

        for n in range(sub_service.MAX_PER_USER - 1):
            await sub_service.add_subscription(bot.db, standin.guild.id, bob, "keyword", f"w{n}x")
        over = await standin.slash("subscribe keyword", {"query": "one more"}, user_id=bob)
        assert str(sub_service.MAX_PER_USER) in (await over.wait_callback())["data"]["content"]

        forget = await standin.slash("forgetme", user_id=bob)
        assert "deleted" in (await forget.wait_callback())["data"]["content"]
        assert await sub_store.list_subscriptions(bot.db, standin.guild.id, bob) == []
    standin.assert_clean()


async def test_membership_checks_are_not_repeated_every_day(
    standin: StandIn, start_bot, clock, tmp_path
):
    config = make_config(tmp_path / "bot.db")
    config.feeds = [feed(standin.guild.id, standin.text_channel.id)]
    bob = standin.plain_user.id
    clock.now = POST_TIME
    async with start_bot(config=config) as bot:
        await sync_to(bot, standin.guild.id)
        await subscribe(standin, "tag", {"tag": "Text-to-Video"}, bob)
        (stored_feed,) = await feed_store.list_feeds(bot.db)
        await bot.digests.run_post(stored_feed.id)
        paper = await get_paper(bot.db, "2501.06173")
        await upsert_entries(bot.db, [Entry(paper, Listing(date(2025, 1, 15), "digest", 1))])
        clock.now = datetime(2025, 1, 16, 9, 0, tzinfo=UTC)
        await bot.digests.run_post(stored_feed.id)
    lookups = standin.requests_to("GET", rf"/guilds/{standin.guild.id}/members/{bob}$")
    assert len(lookups) == 1
    assert len(mention_messages(standin, standin.text_channel.id)) == 2  # mentioned both days
    standin.assert_clean()
