from __future__ import annotations

import json
from datetime import date

import aiohttp
import pytest

from bot.errors import InputError, SourceError
from bot.models import Listing, SummarySource
from bot.sources.hf_daily import (
    fetch_hf_day,
    fetch_hf_paper_details,
    listing_day_hint,
    parse_daily_papers,
    parse_paper_details,
)
from bot.sources.http import RetryPolicy
from tests.sources.helpers import SOURCE_FIXTURES, FakeSleep, Reply, ScriptedServer

HF = SOURCE_FIXTURES / "hf_daily"


def _fixture(name: str) -> bytes:
    return (HF / name).read_bytes()


def _item(paper_id: str, upvotes: int | None, **extra: object) -> dict[str, object]:
    paper: dict[str, object] = {
        "id": paper_id,
        "title": f"Paper {paper_id}",
        "summary": "An abstract.",
        "authors": [{"name": "A. Author"}],
        "publishedAt": "2025-01-13T10:00:00.000Z",
        **extra,
    }
    if upvotes is not None:
        paper["upvotes"] = upvotes
    return {"paper": paper, "title": f"Paper {paper_id}", "publishedAt": "2025-01-14T00:00:00Z"}


def test_oldest_schema_maps_fields_and_collapses_title_line_breaks() -> None:
    entries = parse_daily_papers(_fixture("2024-05-27.json"), date(2024, 5, 27))
    assert [e.paper.arxiv_id for e in entries] == ["2405.15738", "2405.15574", "2405.15071"]
    first = entries[0].paper
    assert first.title == (
        "ConvLLaVA: Hierarchical Backbones as Visual Encoder for Large Multimodal Models"
    )
    assert first.authors[:3] == ("Chunjiang Ge", "Sijie Cheng", "Ziming Wang")
    assert first.abstract.startswith("High-resolution Large Multimodal Models (LMMs) encounter")
    assert "\n" not in first.abstract and "  " not in first.abstract
    assert first.published == date(2024, 5, 24)
    assert first.upvotes == 32
    assert first.bullets == () and first.bullets_source is SummarySource.NONE
    assert first.github_urls == () and first.project_url is None
    assert entries[0].listing == Listing(date(2024, 5, 27), "hf", rank=1, upvotes=32)


def test_every_schema_variant_parses() -> None:
    for name in ("2024-05-27.json", "2025-01-14.json", "2025-05-22.json", "2025-12-11.json"):
        day = date.fromisoformat(name.removesuffix(".json"))
        entries = parse_daily_papers(_fixture(name), day)
        assert len(entries) == 3, name
        assert [e.listing.rank for e in entries if e.listing] == [1, 2, 3]
        assert all(e.listing and e.listing.day == day for e in entries)


def test_ai_summary_keywords_repo_and_project_page_are_mapped() -> None:
    entries = parse_daily_papers(_fixture("2025-05-22.json"), date(2025, 5, 22))
    web_shepherd = entries[0].paper
    assert web_shepherd.bullets == (
        "The paper introduces Web-Shepherd, a process reward model for web navigation, which "
        "improves accuracy and cost-effectiveness in step-level trajectory assessment compared "
        "to existing multimodal large language models.",
    )
    assert web_shepherd.bullets_source is SummarySource.HF
    assert web_shepherd.keywords[:3] == (
        "multimodal large language model",
        "process reward model",
        "web navigation",
    )
    assert web_shepherd.github_urls == ("https://github.com/kyle8581/Web-Shepherd",)
    mmada = entries[2].paper
    assert mmada.project_url == "https://huggingface.co/spaces/Gen-Verse/MMaDA"


def test_github_stars_are_mapped_in_the_newest_schema() -> None:
    entries = parse_daily_papers(_fixture("2025-12-11.json"), date(2025, 12, 11))
    bico = entries[1].paper
    assert bico.github_urls == ("https://github.com/refkxh/bico",)
    assert bico.github_stars == 26
    assert bico.project_url == "https://refkxh.github.io/BiCo_Webpage/"


def test_ai_summary_with_several_sentences_becomes_several_bullets() -> None:
    summary = "TPA shrinks the KV cache, e.g. by 10x. It keeps quality.  It is fast!"
    data = json.dumps([_item("2501.06425", 3, ai_summary=summary)])
    [entry] = parse_daily_papers(data, date(2025, 1, 14))
    assert entry.paper.bullets == (
        "TPA shrinks the KV cache, e.g. by 10x.",
        "It keeps quality.",
        "It is fast!",
    )


def test_rank_follows_upvotes_descending_and_ties_keep_response_order() -> None:
    data = json.dumps(
        [
            _item("2501.00001", 5),
            _item("2501.00002", 9),
            _item("2501.00003", 5),
            _item("2501.00004", None),
        ]
    )
    entries = parse_daily_papers(data, date(2025, 1, 14))
    assert [(e.paper.arxiv_id, e.listing.rank if e.listing else None) for e in entries] == [
        ("2501.00002", 1),
        ("2501.00001", 2),
        ("2501.00003", 3),
        ("2501.00004", 4),
    ]
    assert entries[-1].paper.upvotes is None


def test_an_empty_day_is_an_empty_list() -> None:
    assert parse_daily_papers(b"[]", date(2025, 1, 11)) == []


def test_python_repr_file_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(InputError) as caught:
        parse_daily_papers(_fixture("2025-01-10_wrapped_python_repr.json"), date(2025, 1, 10))
    assert str(caught.value) == (
        "hf_daily 2025-01-10: entry 0 is a string, not an object "
        "(file looks like Python repr, not JSON)"
    )


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"<html>rate limited</html>", "hf_daily 2025-01-14: not valid JSON (Expecting value"),
        (b"", "hf_daily 2025-01-14: empty response"),
        (b'{"error": "Invalid date"}', "hf_daily 2025-01-14: the response is an error: Invalid"),
        (b'{"papers": []}', "expected a JSON array of papers, got an object (keys: papers)"),
        (b"42", "expected a JSON array of papers, got a number"),
        (b"[null]", "entry 0 is null, not an object"),
        (b'[{"title": "x"}]', "entry 0 has no 'paper' object"),
        (b'[{"paper": {"title": "x"}}]', "entry 0 has no paper id"),
        (b'[{"paper": {"id": "nope", "title": "x"}}]', "paper id 'nope' is not an arXiv id"),
        (b'[{"paper": {"id": "2501.00001", "title": " "}}]', "entry 0 (2501.00001) has no title"),
    ],
)
def test_malformed_input_raises_input_error_naming_the_problem(data: bytes, expected: str) -> None:
    with pytest.raises(InputError, match=None) as caught:
        parse_daily_papers(data, date(2025, 1, 14))
    assert expected in str(caught.value)


def test_one_bad_entry_rejects_the_whole_listing() -> None:
    good = _item("2501.00001", 5)
    bad = {"paper": {"id": "2501.00002"}}
    with pytest.raises(InputError, match="entry 1"):
        parse_daily_papers(json.dumps([good, bad]), date(2025, 1, 14))


def test_listing_day_hint_prefers_submitted_on_daily_then_published() -> None:
    assert listing_day_hint(_fixture("2025-05-22.json")) == date(2025, 5, 22)
    assert listing_day_hint(_fixture("2025-01-14.json")) == date(2025, 1, 14)
    assert listing_day_hint(_fixture("2025-01-10_wrapped_python_repr.json")) == date(2025, 1, 10)
    assert listing_day_hint(b"not json") is None


def test_paper_details_turn_linked_repos_into_hugging_face_urls() -> None:
    paper = {
        "id": "2501.06425",
        "title": "Tensor Product Attention\n  Is All You Need",
        "githubRepo": "https://github.com/tensorgi/T6",
        "upvotes": 40,
    }
    repos = {
        "models": [{"id": "tensorgi/T6-350M"}, {"id": "tensorgi/T6-770M"}],
        "datasets": [{"id": "org/data", "likes": 3}],
        "spaces": ["someone/demo"],
    }
    details = parse_paper_details(json.dumps(paper), json.dumps(repos))
    assert details.arxiv_id == "2501.06425"
    assert details.title == "Tensor Product Attention Is All You Need"
    assert details.hf_urls == (
        "https://huggingface.co/tensorgi/T6-350M",
        "https://huggingface.co/tensorgi/T6-770M",
        "https://huggingface.co/datasets/org/data",
        "https://huggingface.co/spaces/someone/demo",
    )
    assert details.github_urls == ("https://github.com/tensorgi/T6",)
    assert details.upvotes == 40


def test_paper_details_tolerate_missing_and_odd_repo_lists() -> None:
    details = parse_paper_details(
        {"models": "none", "datasets": [None, 3, {"name": "no id"}]}, None, arxiv_id="2501.06425"
    )
    assert details.arxiv_id == "2501.06425"
    assert details.hf_urls == ()
    assert details.title == ""


def test_paper_details_cap_each_kind_of_linked_repo() -> None:
    repos = {"models": [{"id": f"org/m{i}"} for i in range(30)]}
    details = parse_paper_details({"id": "2501.06425"}, repos, max_per_kind=5)
    assert len(details.hf_urls) == 5


# --- fetchers against a local server ------------------------------------------------------


def _policy(fake_sleep: FakeSleep, **overrides: float) -> RetryPolicy:
    return RetryPolicy(sleep=fake_sleep, **overrides)  # type: ignore[arg-type]


async def test_fetch_hf_day_asks_for_the_date_and_parses_the_listing(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/api/daily_papers", Reply(body=_fixture("2025-01-14.json")))
    entries = await fetch_hf_day(
        session, date(2025, 1, 14), base_url=server.url(), policy=_policy(fake_sleep)
    )
    assert [e.paper.arxiv_id for e in entries] == ["2501.07301", "2501.06425", "2501.06173"]
    assert server.requests[0].query == {"date": "2025-01-14"}


async def test_fetch_hf_day_turns_400_into_no_listing_for_that_date(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/api/daily_papers", Reply(400, '{"error": "Invalid date"}'))
    with pytest.raises(SourceError, match="no daily papers listing for 2031-02-03"):
        await fetch_hf_day(
            session, date(2031, 2, 3), base_url=server.url(), policy=_policy(fake_sleep)
        )
    assert server.hits("/api/daily_papers") == 1


async def test_fetch_hf_day_accepts_an_empty_listing(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/api/daily_papers", Reply(body=b"[]"))
    policy = _policy(fake_sleep)
    assert await fetch_hf_day(session, date(2025, 1, 11), server.url(), policy=policy) == []


async def test_fetch_hf_day_retries_a_server_error_then_succeeds(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/api/daily_papers", Reply(500, "oops"), Reply(body=_fixture("2025-05-22.json")))
    policy = _policy(fake_sleep)
    entries = await fetch_hf_day(session, date(2025, 5, 22), server.url(), policy=policy)
    assert len(entries) == 3
    assert server.hits("/api/daily_papers") == 2
    assert fake_sleep.calls == [1.0]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'[{"paper": {"id": "2501.00001", "title": "ok"}}, {"paper"', "not valid JSON"),
        (_fixture("2025-01-10_wrapped_python_repr.json"), "file looks like Python repr"),
    ],
)
async def test_fetch_hf_day_raises_on_a_malformed_response_without_retrying(
    server: ScriptedServer,
    session: aiohttp.ClientSession,
    fake_sleep: FakeSleep,
    body: bytes,
    expected: str,
) -> None:
    server.script("/api/daily_papers", Reply(body=body))
    with pytest.raises(SourceError, match=expected) as caught:
        await fetch_hf_day(session, date(2025, 1, 10), server.url(), policy=_policy(fake_sleep))
    assert "unusable response from" in str(caught.value)
    assert server.hits("/api/daily_papers") == 1


async def test_fetch_hf_paper_details_combines_paper_and_linked_repos(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/api/papers/2501.06425", Reply(body=json.dumps({"id": "2501.06425"})))
    server.script(
        "/api/arxiv/2501.06425/repos", Reply(body=json.dumps({"models": [{"id": "a/b"}]}))
    )
    details = await fetch_hf_paper_details(
        session, "arXiv:2501.06425v2", server.url(), policy=_policy(fake_sleep)
    )
    assert details.hf_urls == ("https://huggingface.co/a/b",)


async def test_fetch_hf_paper_details_reports_an_unknown_paper(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/api/papers/2501.06425", Reply(404, '{"error": "Paper not found"}'))
    with pytest.raises(SourceError, match=r"Hugging Face has no page for paper 2501\.06425"):
        await fetch_hf_paper_details(
            session, "2501.06425", server.url(), policy=_policy(fake_sleep)
        )


async def test_fetch_hf_paper_details_survives_a_failing_repos_lookup(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/api/papers/2501.06425", Reply(body=json.dumps({"id": "2501.06425"})))
    server.script("/api/arxiv/2501.06425/repos", Reply(500, "down"))
    details = await fetch_hf_paper_details(
        session, "2501.06425", server.url(), policy=_policy(fake_sleep, retries=1)
    )
    assert details.hf_urls == ()
    assert server.hits("/api/arxiv/2501.06425/repos") == 2
