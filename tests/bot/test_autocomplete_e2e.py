"""End to end: every autocompleted option offers only values its command then accepts.

For each option, the test asks the bot for choices (several typed prefixes, through the
stand-in) and then runs the command with every value offered, asserting it is accepted.
"""

from __future__ import annotations

from zoneinfo import available_timezones

import pytest

from bot.labels import LABELS
from bot.llm.client import LLMClient
from bot.models import Entry, Paper
from bot.store import feeds as feed_store
from bot.store import subscriptions as sub_store
from bot.store.feeds import Feed
from bot.store.papers import upsert_entries
from cogs.digest import check_zone
from tests.bot.conftest import make_config, sync_to
from tests.discord_standin import StandIn
from tests.llm_server import FakeLLMServer
from tests.llm_server.responders import citing_responder

TYPED = ("", "de", "robtics", "orig", "Robotics, vis")
UNLABELLED = "Origami Folding"  # a stored tag outside the classifier's vocabulary
REFUSALS = ("unknown tag", "not a time zone", "pick a subscription", "not yours")


@pytest.fixture
async def extra_tag(store):
    """A stored paper carrying a tag no vocabulary label names."""
    paper = Paper(arxiv_id="2501.99999", title="Folding paper robots", tags=(UNLABELLED,))
    await upsert_entries(store, [Entry(paper)])
    return store


async def offered(standin: StandIn, command: str, options: dict, focused: str, **kw) -> list[str]:
    """Every value the bot offers for ``focused`` across the typed prefixes."""
    values: list[str] = []
    for typed in TYPED:
        handle = await standin.autocomplete(command, {**options, focused: typed}, focused, **kw)
        await handle.wait_callback()
        assert len(handle.choices) <= 25
        values += [choice["value"] for choice in handle.choices]
    assert values, f"nothing offered for /{command} {focused}"
    return list(dict.fromkeys(values))


async def content_of(handle) -> str:
    reply = await handle.wait_callback()
    data = reply.get("data") or {}
    if data.get("embeds"):
        return data["embeds"][0].get("title", "") + " [embed]"
    return data.get("content") or ""


def assert_accepted(text: str, value: str) -> None:
    lowered = text.lower()
    assert not any(refusal in lowered for refusal in REFUSALS), (value, text)


async def test_search_tag_offers_only_tags_search_accepts(standin: StandIn, start_bot, extra_tag):
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        values = await offered(standin, "search", {"query": "model"}, "tag")
        assert UNLABELLED in values and "Robotics" in values
        unused = [v for v in values if v in LABELS and v != "Robotics"]
        for value in values:
            handle = await standin.slash("search", {"query": "model", "tag": value})
            assert_accepted(await content_of(handle), value)
        stored = {tag for tag, _ in await bot.get_cog("SearchCog").known_tags()}
        empty = next(v for v in unused if v not in stored)
        handle = await standin.slash("search", {"query": "model", "tag": empty})
        assert f"No papers carry the tag `{empty}` yet" in await content_of(handle)
    standin.assert_clean()


async def test_subscribe_tag_and_role_offer_only_tags_they_accept(
    standin: StandIn, start_bot, extra_tag, tmp_path
):
    readers = standin.add_role(standin.guild.id, "readers", mentionable=True)
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        await feed_store.save_feed(
            bot.db, Feed(guild_id=standin.guild.id, channel_id=standin.text_channel.id)
        )
        bob = standin.plain_user.id
        values = await offered(standin, "subscribe tag", {}, "tag", user_id=bob)
        assert UNLABELLED in values
        for value in values:
            handle = await standin.slash("subscribe tag", {"tag": value}, user_id=bob)
            text = await content_of(handle)
            assert_accepted(text, value)
            assert "Subscribed to" in text or "already subscribed" in text, (value, text)
            await sub_store.clear_subscriptions(bot.db, standin.guild.id, bob)
        admin = standin.admin_user.id
        role_options = {"role": str(readers.id), "channel": str(standin.text_channel.id)}
        values = await offered(standin, "subscribe role", role_options, "tag", user_id=admin)
        for value in values:
            handle = await standin.slash(
                "subscribe role", {**role_options, "tag": value}, user_id=admin
            )
            text = await content_of(handle)
            assert_accepted(text, value)
            assert "will be mentioned" in text, (value, text)
            await sub_store.forget_role(bot.db, standin.guild.id, readers.id)
    standin.assert_clean()


async def test_digest_filters_and_time_zones_offer_only_values_the_digest_accepts(
    standin: StandIn, start_bot, extra_tag
):
    admin = standin.admin_user.id
    channel = str(standin.text_channel.id)
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        for option in ("include_tags", "exclude_tags"):
            values = await offered(
                standin, "digest setup", {"channel": channel}, option, user_id=admin
            )
            assert UNLABELLED not in values  # digest filters take vocabulary labels only
            assert any(", " in value for value in values)  # the comma list keeps earlier items
            for value in values:
                handle = await standin.slash(
                    "digest setup", {"channel": channel, option: value}, user_id=admin
                )
                text = await content_of(handle)
                assert_accepted(text, value)
                assert text.startswith("Done."), (value, text)
                await feed_store.delete_feed(bot.db, standin.guild.id, standin.text_channel.id)
        await standin.slash("digest setup", {"channel": channel}, user_id=admin)
        for option in ("include_tags", "exclude_tags", "timezone"):
            values = await offered(
                standin, "digest edit", {"channel": channel}, option, user_id=admin
            )
            for value in values:
                handle = await standin.slash(
                    "digest edit", {"channel": channel, option: value}, user_id=admin
                )
                assert_accepted(await content_of(handle), value)
    standin.assert_clean()


def test_every_time_zone_offered_is_accepted():
    for zone in available_timezones():
        assert check_zone(zone) == zone


async def test_unsubscribe_offers_exactly_the_subscriptions_it_removes(standin: StandIn, start_bot):
    bob = standin.plain_user.id
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        for kind, options in (
            ("tag", {"tag": "Robotics"}),
            ("keyword", {"query": "diffusion"}),
            ("author", {"name": "Ada Lovelace"}),
        ):
            await (await standin.slash(f"subscribe {kind}", options, user_id=bob)).wait_callback()
        handle = await standin.autocomplete(
            "unsubscribe", {"subscription": ""}, "subscription", user_id=bob
        )
        await handle.wait_callback()
        values = [choice["value"] for choice in handle.choices]
        assert len(values) == 3
        for value in values:
            text = await content_of(
                await standin.slash("unsubscribe", {"subscription": value}, user_id=bob)
            )
            assert text.startswith("Unsubscribed from"), (value, text)
        assert await sub_store.list_subscriptions(bot.db, standin.guild.id, bob) == []
    standin.assert_clean()


async def test_ask_tag_offers_only_labels_ask_accepts(
    standin: StandIn, start_bot, extra_tag, tmp_path
):
    async with FakeLLMServer(api_key="sk-test-autocomplete-0123") as server:
        server.responder = citing_responder("An answer [1].")
        config = make_config(tmp_path / "bot.db")
        config.llm.base_url = server.base_url
        config.llm.model = "fake-chat"
        config.llm.daily_token_budget = 0
        config.openai_api_key = "sk-test-autocomplete-0123"
        async with (
            LLMClient.from_config(config) as llm,
            start_bot(config=config, llm=llm, embedder=None) as bot,
        ):
            await sync_to(bot, standin.guild.id)
            bot.get_cog("AskCog").cooldowns.seconds = 0
            values = await offered(standin, "ask", {"question": "What is new?"}, "tag")
            assert UNLABELLED not in values
            for value in values:
                handle = await standin.slash("ask", {"question": "What is new?", "tag": value})
                reply = await handle.wait_callback()
                assert reply["type"] == 5, (value, reply)  # deferred: the tag was accepted
                await handle.wait_original(timeout=10)
    standin.assert_clean()
