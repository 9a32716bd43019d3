"""End to end: /search with paging buttons, /paper by every id form, /tags, autocomplete."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.search.engine import SearchEngine
from standin import StandIn
from tests.e2e.conftest import sync_to


def result_ids(embed: dict) -> list[str]:
    import re

    return re.findall(r"arxiv\.org/abs/([\d.]+)", embed.get("description", ""))


def buttons(message) -> dict[str, dict]:
    found = {}
    for row in message.components:
        for component in row.get("components", []):
            found[component["label"]] = component
    return found


async def test_search_pages_with_buttons_only_for_the_invoker(standin: StandIn, start_bot):
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        private = await standin.slash("search", {"query": "language OR models OR llms"})
        assert (await private.wait_callback())["type"] == 4 and private.ephemeral
        # A public result, so that someone else can see (and try) its buttons.
        handle = await standin.slash(
            "search", {"query": "language OR models OR llms", "public": True}
        )
        reply = await handle.wait_callback()
        assert not handle.ephemeral
        first_page = result_ids(reply["data"]["embeds"][0])
        assert len(first_page) == 5
        assert reply["data"]["allowed_mentions"]["parse"] == []
        message = await handle.wait_original()
        controls = buttons(message)
        assert controls["◀ Previous"]["disabled"] is True

        stranger = await standin.click(
            message.id, controls["Next ▶"]["custom_id"], user_id=standin.admin_user.id
        )
        refusal = await stranger.wait_callback()
        assert stranger.ephemeral and "Only the person who searched" in refusal["data"]["content"]

        click = await standin.click(message.id, controls["Next ▶"]["custom_id"])
        update = await click.wait_callback()
        assert update["type"] == 7  # the same message, edited
        second_page = result_ids(update["data"]["embeds"][0])
        assert second_page and set(second_page).isdisjoint(first_page)

        bot.search_sessions._items.clear()  # as after a restart or the TTL
        previous = buttons(standin.message(message.id))["◀ Previous"]
        assert previous["disabled"] is False
        expired = await standin.click(message.id, previous["custom_id"])
        gone = await expired.wait_callback()
        assert gone["type"] == 7 and "expired" in gone["data"]["content"]
        assert gone["data"]["components"] == []
    standin.assert_clean()


async def test_search_without_results_suggests_tags_and_broader_queries(
    standin: StandIn, start_bot
):
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        handle = await standin.slash("search", {"query": '"question answering" zebra'})
        text = (await handle.wait_callback())["data"]["content"]
        assert "No papers match" in text and "Question Answering" in text
        assert "fewer words" in text
        unknown = await standin.slash("search", {"query": "attention", "tag": "astrology"})
        answer = (await unknown.wait_callback())["data"]["content"]
        assert unknown.ephemeral and "unknown tag 'astrology'" in answer
    standin.assert_clean()


async def test_search_filters_and_public_option(standin: StandIn, start_bot):
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        handle = await standin.slash(
            "search", {"query": "video", "tag": "Text-to-Video", "public": True}
        )
        reply = await handle.wait_callback()
        assert not handle.ephemeral
        assert result_ids(reply["data"]["embeds"][0]) == ["2501.06173"]
        bad_date = await standin.slash("search", {"query": "video", "since": "last week"})
        assert "must be a date" in (await bad_date.wait_callback())["data"]["content"]
    standin.assert_clean()


@pytest.mark.parametrize(
    "form",
    [
        "2501.06425",
        "arXiv:2501.06425v2",
        "https://arxiv.org/abs/2501.06425",
        "https://arxiv.org/pdf/2501.06425v1",
        "https://huggingface.co/papers/2501.06425",
    ],
)
async def test_paper_card_accepts_every_id_form(standin: StandIn, start_bot, form):
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        handle = await standin.slash("paper", {"paper": form})
        embed = (await handle.wait_callback())["data"]["embeds"][0]
        assert embed["url"] == "https://arxiv.org/abs/2501.06425"
        assert "Tensor Product Attention" in embed["title"]
        assert any(field["name"] == "Links" for field in embed["fields"])
    standin.assert_clean()


async def test_paper_unknown_or_malformed_is_polite(standin: StandIn, start_bot):
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        missing = await standin.slash("paper", {"paper": "2412.99999"})
        assert "not in my store" in (await missing.wait_callback())["data"]["content"]
        junk = await standin.slash("paper", {"paper": "hello there"})
        assert "not an arXiv id" in (await junk.wait_callback())["data"]["content"]
        assert missing.ephemeral and junk.ephemeral
    standin.assert_clean()


async def test_tags_lists_counts_and_autocomplete_is_prefix_first(standin: StandIn, start_bot):
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        tags = await standin.slash("tags")
        listing = (await tags.wait_callback())["data"]["embeds"][0]["description"]
        assert "Natural Language Processing" in listing
        complete = await standin.autocomplete("search", {"query": "x", "tag": "mu"}, "tag")
        await complete.wait_callback()
        names = [choice["value"] for choice in complete.choices]
        assert 0 < len(names) <= 25 and names[0] == "Multimodal"
        fuzzy = await standin.autocomplete("search", {"query": "x", "tag": "robtics"}, "tag")
        await fuzzy.wait_callback()
        assert "Robotics" in [choice["value"] for choice in fuzzy.choices]
    standin.assert_clean()


async def test_generated_queries_never_produce_an_error_reply(standin: StandIn, start_bot):
    replies = []
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)

        @settings(
            max_examples=40,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture],
        )
        @given(
            st.text(
                alphabet=st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]),
                min_size=1,
                max_size=60,
            ).filter(str.strip)
        )
        def check(query: str) -> None:
            replies.append(query)

        check()
        for query in replies:
            handle = await standin.slash("search", {"query": query})
            reply = await handle.wait_callback()
            content = reply["data"].get("content") or ""
            assert "Something went wrong" not in content, query
            assert reply["data"].get("embeds") or "No papers match" in content, query
    standin.assert_clean()


async def test_a_burst_of_searches_is_answered_in_parallel_reads_with_the_same_results(
    standin: StandIn, start_bot
):
    """50 /search at once: every one answered (within Discord's 3 s, which the stand-in
    enforces), each with what the same search gives alone, read on several connections."""
    words = ["language", "models", "attention", "video", "reward", "diffusion", "agents"]
    queries = [f"{a} OR {b}" for a in words for b in words if a != b][:50]
    async with start_bot() as bot:
        await sync_to(bot, standin.guild.id)
        handles = await asyncio.gather(*(standin.slash("search", {"query": q}) for q in queries))
        replies = await asyncio.gather(*(h.wait_callback(timeout=10) for h in handles))
        expected = {}
        for query in queries:
            alone = await bot.search_engine.search(bot.db, query, limit=5)
            expected[query] = [hit.paper.arxiv_id for hit in alone.hits]
        readers = len(bot.db.read._opened)
    for query, reply in zip(queries, replies, strict=True):
        embeds = reply["data"].get("embeds") or []
        got = result_ids(embeds[0]) if embeds else []
        assert got == expected[query], query
    assert readers > 1  # the reads did not queue behind one connection
    standin.assert_clean()


async def test_the_bot_searches_with_the_engine_it_is_given_and_closes_it(
    standin: StandIn, start_bot
):
    engine = SearchEngine()
    async with start_bot(search=engine) as bot:
        assert bot.search_engine is engine
        await sync_to(bot, standin.guild.id)
        handle = await standin.slash("search", {"query": "attention"})
        reply = await handle.wait_callback(timeout=10)
        assert "Something went wrong" not in (reply["data"].get("content") or "")
        assert not engine.indexes.closed
    assert engine.indexes.closed  # closed with the bot: its worker threads are stopped
