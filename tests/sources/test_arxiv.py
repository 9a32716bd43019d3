from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from bot.errors import InputError, SourceError
from bot.models import Listing
from bot.pacing import WindowLimiter
from bot.sources.arxiv import (
    build_query_url,
    build_search_query,
    fetch_arxiv_day,
    parse_atom,
    parse_atom_page,
)
from bot.sources.http import RetryPolicy
from tests.sources.helpers import SOURCE_FIXTURES, FakeSleep, Reply, ScriptedServer

ARXIV = SOURCE_FIXTURES / "arxiv"
DAY = date(2025, 1, 14)


def _fixture(name: str) -> bytes:
    return (ARXIV / name).read_bytes()


def _feed(ids: list[str], total: int, start: int = 0) -> str:
    entries = "".join(
        f"""
  <entry>
    <id>http://arxiv.org/abs/{paper_id}v1</id>
    <title>Paper
      {paper_id}</title>
    <summary>Abstract of {paper_id}.</summary>
    <published>2025-01-14T10:00:00Z</published>
    <author><name>A. Author</name></author>
    <arxiv:primary_category term="cs.CL"/>
    <category term="cs.CL" scheme="http://arxiv.org/schemas/atom"/>
  </entry>"""
        for paper_id in ids
    )
    return f"""<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/"
      xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">
  <title>arXiv Query</title>
  <opensearch:itemsPerPage>{len(ids)}</opensearch:itemsPerPage>
  <opensearch:totalResults>{total}</opensearch:totalResults>
  <opensearch:startIndex>{start}</opensearch:startIndex>{entries}
</feed>
"""


def test_legacy_layout_parses_versioned_and_old_style_ids() -> None:
    entries = parse_atom(_fixture("legacy2016_3_entries.xml"))
    papers = [entry.paper for entry in entries]
    assert [(p.arxiv_id, p.version) for p in papers] == [
        ("1201.4869", 1),
        ("cond-mat/0412498", 1),
        ("cond-mat/0603029", 1),
    ]
    assert all(entry.listing is None for entry in entries)
    first = papers[0]
    assert first.title == "A Luttinger Liquid Core Inside Helium-4 Filled Nanopores"
    assert first.authors == ("Adrian Del Maestro",)
    assert first.published == date(2012, 1, 23)
    assert first.categories == ("cond-mat.mes-hall", "cond-mat.other")
    assert first.comment == "26 pages, 10 figures"
    assert first.abstract.startswith("As helium-4 is cooled below 2.17 K it undergoes a phase")
    assert "\n" not in first.abstract and "  " not in first.abstract


def test_hard_wrapped_titles_are_collapsed() -> None:
    third = parse_atom(_fixture("legacy2016_3_entries.xml"))[2].paper
    assert third.title == (
        "From stripe to checkerboard order on the square lattice in the presence of quenched "
        "disorder"
    )


def test_new_layout_parses_primary_category_first_and_repairs_mojibake_names() -> None:
    papers = [entry.paper for entry in parse_atom(_fixture("v2026_3_entries.xml"))]
    assert [p.arxiv_id for p in papers] == ["2202.12139", "2405.13786", "cs/0503050"]
    assert papers[0].categories == ("cs.SE", "cs.LG")
    assert papers[0].comment == (
        "Artificial Intelligence in Software Testing 2022 workshop @ ICST 2022"
    )
    assert papers[1].authors[0] == "Aurora Ramírez"
    assert "José Raúl Romero" in papers[1].authors


def test_primary_category_comes_first_even_when_listed_later() -> None:
    feed = _feed(["2501.00001"], 1).replace(
        '<category term="cs.CL"', '<category term="cs.AI" scheme="x"/><category term="cs.CL"'
    )
    feed = feed.replace('term="cs.CL"/>', 'term="cs.LG"/>')
    [entry] = parse_atom(feed)
    assert entry.paper.categories == ("cs.LG", "cs.AI", "cs.CL")


def test_with_a_day_entries_get_arxiv_listings_ranked_from_the_offset() -> None:
    page = parse_atom_page(_feed(["2501.00003", "2501.00004"], 10, start=2), DAY, rank_offset=2)
    assert [entry.listing for entry in page.entries] == [
        Listing(DAY, "arxiv", rank=3),
        Listing(DAY, "arxiv", rank=4),
    ]
    assert (page.total_results, page.start_index, page.items_per_page) == (10, 2, 2)


def test_error_feed_raises_with_arxivs_message() -> None:
    with pytest.raises(InputError, match=r"^arXiv API error: incorrect id format for abc$"):
        parse_atom(_fixture("v2026_error.xml"))


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("<feed", "not well-formed XML (line 1"),
        ("<html><body>busy</body></html>", "the root element is <html>, not an Atom <feed>"),
        (
            _feed(["2501.00001"], 1).replace("http://arxiv.org/abs/2501.00001v1", "urn:x"),
            "entry 0 has id 'urn:x', not an arXiv id",
        ),
    ],
)
def test_malformed_feeds_raise_input_error(data: str, expected: str) -> None:
    with pytest.raises(InputError) as caught:
        parse_atom(data)
    assert expected in str(caught.value)


def test_query_url_searches_the_categories_on_that_day_sorted_by_submission() -> None:
    url = build_query_url(["cs.CL", "cs.LG"], DAY, start=200, max_results=100)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://export.arxiv.org/api/query"
    assert parse_qs(parts.query) == {
        "search_query": [
            "(cat:cs.CL OR cat:cs.LG) AND submittedDate:[202501140000 TO 202501142359]"
        ],
        "start": ["200"],
        "max_results": ["100"],
        "sortBy": ["submittedDate"],
        "sortOrder": ["ascending"],
    }
    assert " " not in url


def test_query_rejects_an_empty_or_odd_category() -> None:
    with pytest.raises(InputError, match="at least one category"):
        build_search_query([], DAY)
    with pytest.raises(InputError, match="not an arXiv category"):
        build_search_query(["cs.CL) OR (all:x"], DAY)


# --- fetcher against a local server -------------------------------------------------------


async def test_fetch_arxiv_day_pages_through_results_at_one_request_per_3_seconds(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    ids = [f"2501.0000{i}" for i in range(1, 6)]
    server.script(
        "/api/query",
        Reply(body=_feed(ids[0:2], 5, 0), content_type="application/atom+xml"),
        Reply(body=_feed(ids[2:4], 5, 2), content_type="application/atom+xml"),
        Reply(body=_feed(ids[4:5], 5, 4), content_type="application/atom+xml"),
    )
    limiter = WindowLimiter(1, 3.0, clock=fake_sleep.clock, sleep=fake_sleep)
    entries = await fetch_arxiv_day(
        session,
        ["cs.CL", "cs.LG"],
        DAY,
        base_url=server.url(),
        limiter=limiter,
        max_results=2,
        policy=RetryPolicy(sleep=fake_sleep),
    )
    assert [e.paper.arxiv_id for e in entries] == ids
    assert [e.listing for e in entries] == [Listing(DAY, "arxiv", rank=r) for r in range(1, 6)]
    assert [request.query["start"] for request in server.requests] == ["0", "2", "4"]
    assert server.requests[0].query["search_query"] == (
        "(cat:cs.CL OR cat:cs.LG) AND submittedDate:[202501140000 TO 202501142359]"
    )
    assert fake_sleep.calls == [3.0, 3.0]


async def test_fetch_arxiv_day_with_no_results_is_empty(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/api/query", Reply(body=_feed([], 0)))
    entries = await fetch_arxiv_day(
        session, ["cs.CL"], DAY, server.url(), policy=RetryPolicy(sleep=fake_sleep)
    )
    assert entries == []


async def test_fetch_arxiv_day_reports_the_error_feed_of_a_400(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/api/query", Reply(400, _fixture("v2026_error.xml")))
    with pytest.raises(
        SourceError, match=r"^arXiv API error: incorrect id format for abc \(HTTP 400"
    ):
        await fetch_arxiv_day(
            session, ["cs.CL"], DAY, server.url(), policy=RetryPolicy(sleep=fake_sleep)
        )
    assert server.hits("/api/query") == 1


async def test_fetch_arxiv_day_asks_again_for_a_spurious_empty_page_then_gives_up(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script(
        "/api/query", Reply(body=_feed(["2501.00001"], 3, 0)), Reply(body=_feed([], 3, 1))
    )
    with pytest.raises(SourceError, match="not using a partial day"):
        await fetch_arxiv_day(
            session,
            ["cs.CL"],
            DAY,
            server.url(),
            max_results=1,
            empty_page_retries=2,
            policy=RetryPolicy(sleep=fake_sleep),
        )
    assert server.hits("/api/query") == 4  # page 1, then the empty page 2 three times


async def test_fetch_arxiv_day_recovers_from_one_spurious_empty_page(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script(
        "/api/query",
        Reply(body=_feed(["2501.00001"], 2, 0)),
        Reply(body=_feed([], 2, 1)),
        Reply(body=_feed(["2501.00002"], 2, 1)),
    )
    entries = await fetch_arxiv_day(
        session, ["cs.CL"], DAY, server.url(), max_results=1, policy=RetryPolicy(sleep=fake_sleep)
    )
    assert [e.paper.arxiv_id for e in entries] == ["2501.00001", "2501.00002"]


async def test_fetch_arxiv_day_raises_on_a_malformed_page_instead_of_returning_part(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/api/query", Reply(body=_feed(["2501.00001"], 2, 0)), Reply(body="<feed"))
    with pytest.raises(SourceError, match=r"unusable response from .*not well-formed XML"):
        await fetch_arxiv_day(
            session,
            ["cs.CL"],
            DAY,
            server.url(),
            max_results=1,
            policy=RetryPolicy(sleep=fake_sleep),
        )
