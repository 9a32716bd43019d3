"""/search, /paper and /tags: the embeds as plain dicts (no Discord, no store)."""

from __future__ import annotations

import time
from datetime import date

from bot.digest.render import EMBED_COLOR, MAX_EMBED_TOTAL, embed_size, paper_card
from bot.models import Paper
from bot.search.engine import SearchHit, SearchResult
from bot.search.query import Query
from bot.search.render import hit_line, no_results_text, results_embed, tags_embed
from bot.search.sessions import SearchSession, SearchSessions

PAPER = Paper(
    "2501.06425",
    "Tensor Product Attention Is All You Need",
    authors=("Yifan Zhang", "Yifeng Liu", "Huizhuo Yuan", "Zhen Qin"),
    published=date(2025, 1, 11),
    upvotes=87,
    tags=("Natural Language Processing", "Efficient ML"),
    abstract="Scaling language models to handle longer input sequences " * 10,
)


def session(text: str = "attention", **changes) -> SearchSession:
    values = dict(
        user_id=1,
        text=text,
        tags=(),
        authors=(),
        since=None,
        until=None,
        sort="relevance",
        created=time.monotonic(),
    )
    values.update(changes)
    return SearchSession(**values)


def test_a_hit_is_a_linked_title_over_its_authors_date_upvotes_and_tags() -> None:
    assert hit_line(3, PAPER) == (
        "**3. [Tensor Product Attention Is All You Need](https://arxiv.org/abs/2501.06425)**\n"
        "Yifan Zhang, Yifeng Liu, Huizhuo Yuan et al. · 2025-01-11 · ▲ 87 · "
        "Natural Language Processing, Efficient ML"
    )


def test_a_results_page_numbers_its_hits_and_says_whether_more_follow() -> None:
    result = SearchResult((SearchHit(PAPER, 1.0),) * 5, has_more=True, query=Query())
    embed = results_embed(result, 1, "attention")
    assert embed["title"] == "Search: attention" and embed["color"] == EMBED_COLOR
    assert embed["description"].startswith("**6. [Tensor")
    assert embed["footer"] == {"text": "Results 6–10+ · page 2"}


def test_no_results_names_unused_tags_or_suggests_near_tags_and_fewer_filters() -> None:
    empty = SearchResult((), has_more=False, query=Query())
    unused = SearchResult((), has_more=False, query=Query(), unused_tags=("Robotics",))
    assert no_results_text(unused, session(), []) == "No papers carry the tag `Robotics` yet."
    text = no_results_text(empty, session('"robot arms"'), ["Robotics", "Vision"])
    assert text == (
        "No papers match that search. Suggestions: tags that might fit: `Robotics`; "
        "try fewer words or filters; drop the quotes to match the words anywhere."
    )
    assert no_results_text(empty, session("zzzz"), []) == "No papers match that search."


def test_the_paper_card_adds_the_abstract_when_it_fits() -> None:
    card = paper_card(PAPER)
    assert card["fields"][-1]["name"] == "Abstract"
    assert embed_size(card) <= MAX_EMBED_TOTAL
    bare = paper_card(Paper("2501.00001", "No abstract"))
    assert all(field["name"] != "Abstract" for field in bare.get("fields", []))


def test_tags_list_counts_or_says_the_store_is_empty() -> None:
    assert tags_embed([("Robotics", 12)])["description"] == "`    12` Robotics"
    assert tags_embed([])["description"] == "No papers are stored yet."


def test_sessions_expire_and_are_forgotten_per_user() -> None:
    sessions = SearchSessions(ttl=60, capacity=2)
    old = sessions.add(session(created=time.monotonic() - 61))
    assert sessions.get(old) is None  # past the TTL
    fresh = SearchSessions(ttl=1e9, capacity=2)
    tokens = [fresh.add(session(user_id=user)) for user in (1, 2, 3)]
    assert fresh.get(tokens[0]) is None  # over capacity: the oldest goes
    fresh.forget_user(2)
    assert fresh.get(tokens[1]) is None and fresh.get(tokens[2]) is not None
