"""Renderers and the Discord-safety text helpers: limits, escaping, layouts."""

from __future__ import annotations

import json
import math
import re
from datetime import date
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.digest.render import (
    COMPACT_TOTAL,
    EMBED_COLOR,
    MAX_EMBED_TOTAL,
    digest_header,
    digest_messages,
    embed_size,
    format_authors,
    message,
    paper_embed,
    render_text,
    validate_message,
)
from bot.models import Paper, SummarySource
from bot.text import (
    ZWSP,
    clean,
    escape_markdown,
    has_unsafe_mention,
    is_safe_url,
    neutralize_mentions,
    one_line,
    sanitize,
    truncate,
)

DAY = date(2025, 1, 14)
EVIL = "@everyone @here <@123> <@!456> <@&789> <#42> [x](http://evil) **b** __u__ ||s|| `c`"


def make_paper(arxiv_id: str = "2501.06425", **fields: Any) -> Paper:
    defaults: dict[str, Any] = {
        "title": "Tensor Product Attention Is All You Need",
        "authors": (
            "Huizhuo Yuan",
            "Yifeng Liu",
            "Shuang Wu",
            "Xun Zhou",
            "Quanquan Gu",
            "Andrew Yao",
        ),
        "abstract": "We propose TPA. It shrinks the KV cache. It works well.",
        "bullets": ("TPA factorises queries, keys and values.", "It cuts KV-cache memory."),
        "bullets_source": SummarySource.HF,
        "tags": ("Text Generation", "Natural Language Processing"),
        "upvotes": 42,
        "github_urls": ("https://github.com/tensorgi/T6",),
        "hf_urls": ("https://huggingface.co/Qwen/Qwen2.5-Math-PRM-7B",),
        "project_url": "https://tensorgi.github.io/T6",
    }
    defaults.update(fields)
    return Paper(arxiv_id, **defaults)


def all_strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in all_strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in all_strings(item)]
    return []


def markdown_strings(payload: dict[str, Any]) -> list[str]:
    """The texts Discord renders as markdown (author names and footers are shown verbatim)."""
    texts = [payload["content"]]
    for embed in payload["embeds"]:
        texts += [embed.get("title", ""), embed.get("description", "")]
        texts += [f[key] for f in embed.get("fields", []) for key in ("name", "value")]
    return texts


# --- bot.text -----------------------------------------------------------------------------


def test_neutralize_mentions_breaks_every_ping() -> None:
    text = neutralize_mentions("@everyone @Here <@1> <@!2> <@&3> <#4>")
    assert "@everyone" not in text and "@Here" not in text
    assert "<@" not in text and "<#" not in text
    assert text.replace(ZWSP, "") == "@everyone @Here <@1> <@!2> <@&3> <#4>"
    assert not has_unsafe_mention(text)


def test_escape_markdown_disarms_masked_links_but_keeps_bare_urls() -> None:
    escaped = escape_markdown("[click](http://evil) see https://github.com/a_b/c_d now")
    assert escaped.startswith("\\[click\\](http://evil)")
    assert "https://github.com/a_b/c_d" in escaped


def test_escape_markdown_escapes_inline_and_line_start_syntax() -> None:
    assert escape_markdown("**a** _b_ ~~c~~ `d` ||e||") == (
        "\\*\\*a\\*\\* \\_b\\_ \\~\\~c\\~\\~ \\`d\\` \\|\\|e\\|\\|"
    )
    assert escape_markdown("# Heading") == "\\# Heading"
    assert escape_markdown("> quote") == "\\> quote"
    assert escape_markdown("1. item") == "1\\. item"
    assert escape_markdown("a\\b") == "a\\\\b"


def test_sanitize_collapses_whitespace_and_drops_control_characters() -> None:
    assert sanitize("  A\n\tB\x00C\x1b[31m  ") == "A BC\\[31m"
    assert sanitize("line one\n\nline two", multiline=True) == "line one\nline two"


# Every kind of character that decides between the fast path and the cleaning one.
_MIXED_TEXT = st.text(
    st.sampled_from(["a", "B", "é", " ", "\n", "\r", "\t", "\x0b", "\x1f", "\x85",
                     "\x9f", "\xa0", "\u2028", "\u3000", "\ud800", "\u200b", "."]),
    max_size=40,
)  # fmt: skip


@given(st.one_of(st.text(max_size=60), _MIXED_TEXT))
def test_one_line_is_clean_then_collapsed_whatever_the_text(text: str) -> None:
    assert one_line(text) == " ".join(clean(text).split())


def test_sanitize_without_markdown_still_neutralises_mentions() -> None:
    assert sanitize("*@everyone*", markdown=False) == f"*@{ZWSP}everyone*"


def test_truncate_cuts_at_a_word_boundary_with_an_ellipsis() -> None:
    assert truncate("hello world again", 100) == "hello world again"
    assert truncate("hello world again", 14) == "hello world…"
    assert truncate("abcdefghijklmnop", 8) == "abcdefg…"
    assert truncate("anything", 1) == "…"
    assert truncate("anything", 0) == ""


def test_truncate_never_leaves_a_dangling_escape() -> None:
    assert truncate("abcdef\\*ghijkl", 8) == "abcdef…"


@given(st.text(max_size=300), st.integers(min_value=0, max_value=320))
def test_truncate_respects_the_limit(text: str, limit: int) -> None:
    result = truncate(text, limit)
    assert len(result) <= limit
    assert result == text or result.endswith("…") or limit == 0


def test_is_safe_url() -> None:
    assert is_safe_url("https://github.com/tensorgi/T6")
    assert is_safe_url("http://example.org/a?b=c#d")
    assert not is_safe_url("javascript:alert(1)")
    assert not is_safe_url("https://github.com/a/b)[x](http://evil")
    assert not is_safe_url("https://x.org/<@123>")
    assert not is_safe_url("https://user@evil.org/")
    assert not is_safe_url("https://x.org/" + "a" * 600)


# --- embeds -------------------------------------------------------------------------------


def test_format_authors_truncates_with_et_al() -> None:
    assert format_authors(["A", "B"]) == "A, B"
    assert format_authors([f"A{i}" for i in range(100)]) == "A0, A1, A2, A3, A4 et al."
    assert format_authors([" ", "B\nC"], limit=1) == "B C"


def test_paper_embed_full_layout() -> None:
    embed = paper_embed(make_paper())
    assert embed["title"] == "Tensor Product Attention Is All You Need"
    assert embed["url"] == "https://arxiv.org/abs/2501.06425"
    assert embed["color"] == EMBED_COLOR
    assert embed["author"]["name"].endswith("Quanquan Gu et al.")
    assert embed["description"].splitlines() == [
        "• TPA factorises queries, keys and values.",
        "• It cuts KV-cache memory.",
    ]
    fields = {field["name"]: field["value"] for field in embed["fields"]}
    assert fields["Tags"] == "Text Generation, Natural Language Processing"
    for link in (
        "[arXiv](https://arxiv.org/abs/2501.06425)",
        "[Hugging Face](https://huggingface.co/papers/2501.06425)",
        "[GitHub](https://github.com/tensorgi/T6)",
        "(https://huggingface.co/Qwen/Qwen2.5-Math-PRM-7B)",
        "[Project page](https://tensorgi.github.io/T6)",
    ):
        assert link in fields["Links"]
    assert embed["footer"]["text"].startswith("▲ 42")
    assert validate_message(message([embed])) == []


def test_paper_embed_uses_abstract_sentences_without_bullets() -> None:
    embed = paper_embed(make_paper(bullets=(), bullets_source=SummarySource.NONE))
    assert embed["description"].startswith("• We propose TPA.")


def test_paper_embed_drops_unsafe_links() -> None:
    paper = make_paper(github_urls=("javascript:alert(1)", "https://github.com/a/b)"))
    links = next(f["value"] for f in paper_embed(paper)["fields"] if f["name"] == "Links")
    assert "javascript" not in links and "github.com/a/b" not in links


def test_paper_embed_escapes_untrusted_title_and_text() -> None:
    paper = make_paper(title=EVIL, authors=("@everyone",), bullets=(EVIL,))
    embed = paper_embed(paper)
    dumped = json.dumps(embed, ensure_ascii=False)
    assert "@everyone" not in dumped and "@here" not in dumped and "<@" not in dumped
    assert "[x](http://evil)" not in dumped
    assert embed["title"].startswith(f"@{ZWSP}everyone")


def test_paper_embed_compact_is_small_and_complete() -> None:
    embed = paper_embed(make_paper(), compact=True)
    assert embed_size(embed) <= COMPACT_TOTAL
    assert embed["url"] == "https://arxiv.org/abs/2501.06425"
    assert "Huizhuo Yuan, Yifeng Liu, Shuang Wu et al." in embed["description"]
    assert "• TPA factorises" in embed["description"]
    assert "[GitHub](https://github.com/tensorgi/T6)" in embed["description"]
    assert "Text Generation" in embed["footer"]["text"]


def test_paper_embed_with_no_upvotes_or_title() -> None:
    embed = paper_embed(Paper("2501.06425", ""))
    assert embed["title"] == "arXiv:2501.06425"
    assert embed["footer"]["text"] == "arXiv:2501.06425"
    assert validate_message(message([embed])) == []


def test_digest_header_shows_date_count_and_top_tags() -> None:
    papers = [make_paper(f"2501.0000{i}") for i in range(3)]
    payload = digest_header(DAY, papers, feed_name="LLM _news_")
    embed = payload["embeds"][0]
    assert "2025-01-14" in embed["title"] and "LLM \\_news\\_" in embed["title"]
    assert "**3** papers" in embed["description"]
    assert "Text Generation (3)" in embed["description"]
    assert payload["allowed_mentions"] == {"parse": []}
    assert validate_message(payload) == []


# --- digest messages ----------------------------------------------------------------------


def test_full_layout_is_one_message_per_paper_with_the_header_first() -> None:
    papers = [make_paper(f"2501.0000{i}") for i in range(3)]
    messages = digest_messages(DAY, papers, "full")
    assert len(messages) == 3
    assert len(messages[0]["embeds"]) == 2
    assert "Papers for 2025-01-14" in messages[0]["embeds"][0]["title"]
    assert all(m["allowed_mentions"] == {"parse": []} for m in messages)


def test_compact_layout_packs_ten_embeds_a_message() -> None:
    papers = [make_paper(f"2501.{i:05d}") for i in range(25)]
    messages = digest_messages(DAY, papers, "compact")
    assert [len(m["embeds"]) for m in messages] == [10, 10, 6]
    assert all(validate_message(m) == [] for m in messages)


def test_digest_without_header_or_papers() -> None:
    assert digest_messages(DAY, [], header=False) == []
    only_header = digest_messages(DAY, [])
    assert len(only_header) == 1
    assert "No papers" in only_header[0]["embeds"][0]["description"]
    assert len(digest_messages(DAY, [make_paper()], header=False)[0]["embeds"]) == 1


def test_unknown_layout_is_rejected() -> None:
    with pytest.raises(ValueError, match="layout"):
        digest_messages(DAY, [], layout="fancy")  # type: ignore[arg-type]


def test_messages_are_json_serialisable() -> None:
    messages = digest_messages(DAY, [make_paper()], "compact")
    assert json.loads(json.dumps(messages)) == messages


# --- validate_message ---------------------------------------------------------------------


def test_validate_message_accepts_a_plain_message() -> None:
    assert validate_message(message([], content="hello")) == []


@pytest.mark.parametrize(
    ("payload", "problem"),
    [
        (message([], content="x" * 2001), "content has 2001"),
        (message([{"title": "t"}] * 11), "11 embeds"),
        (message([{"title": "t" * 257}]), "title has 257"),
        (message([{"description": "d" * 4097}]), "description has 4097"),
        (message([{"description": "d" * 4000}, {"description": "d" * 2001}]), "total 6001"),
        (message([{"fields": [{"name": "n", "value": "v"}] * 26}]), "26 fields"),
        (message([{"fields": [{"name": "n", "value": " "}]}]), "value is empty"),
        (message([{"fields": [{"name": "n" * 257, "value": "v"}]}]), "name has 257"),
        (message([{"fields": [{"name": "n", "value": "v" * 1025}]}]), "value has 1025"),
        (message([{"footer": {"text": "f" * 2049}}]), "footer.text has 2049"),
        (message([{"title": "t", "url": "javascript:x"}]), "url"),
        (message([{"title": "t", "color": -1}]), "color"),
        (message([{}]), "embeds[0] is empty"),
        (message(["not an embed"]), "embeds[0] is not an object"),  # type: ignore[list-item]
        (message([{"title": "t", "footer": "f"}]), "footer.text is not a string"),
        (message([]), "message is empty"),
        ({"content": "hi", "embeds": []}, "allowed_mentions"),
        ({**message([], "hi"), "allowed_mentions": {"parse": ["everyone"]}}, "parses"),
        (message([], content="hi @everyone"), "mention"),
        (message([{"title": "<@&123>"}]), "mention"),
    ],
)
def test_validate_message_reports_each_violation(payload: dict[str, Any], problem: str) -> None:
    problems = validate_message(payload)
    assert any(problem in p for p in problems), problems


# --- plain text ---------------------------------------------------------------------------


def test_render_text_is_readable_plain_text() -> None:
    text = render_text(DAY, [make_paper(title="A *starred* title")])
    assert text.startswith("Papers for 2025-01-14 (1 paper)\n")
    assert "1. A *starred* title" in text
    assert "   - TPA factorises queries, keys and values." in text
    assert "GitHub: https://github.com/tensorgi/T6" in text
    assert "▲ 42 · Text Generation, Natural Language Processing" in text
    assert "\\" not in text


def test_render_text_without_papers() -> None:
    assert "No papers." in render_text(DAY, [])


def test_render_text_wraps_long_lines() -> None:
    text = render_text(DAY, [make_paper(bullets=("word " * 200,))], width=80)
    assert max(len(line) for line in text.splitlines()) <= 80


# --- properties ---------------------------------------------------------------------------

_FRAGMENTS = [
    "@everyone", "@here", "<@123456789012345678>", "<@!1>", "<@&1>", "<#1>", "[x](http://evil)",
    "**", "__", "~~", "||", "`", "```", "\\", "# ", "> ", "- ", "1. ", "\n", "\t", "e.g.", "…",
    "https://github.com/a_b/c_d", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "👍🏽", "\u200b", "\x00", "<", "@", "]", "(",
]  # fmt: skip
_adversarial = st.lists(st.sampled_from(_FRAGMENTS) | st.text(max_size=12), max_size=40).map(
    "".join
)
_long = st.tuples(st.sampled_from(["word ", "x", "supercalifragilistic ", "@everyone "]),
                  st.integers(min_value=0, max_value=3000)).map(lambda t: t[0] * t[1])  # fmt: skip
_text = _adversarial | _long | st.text(max_size=200)
_urls = st.sampled_from(
    [
        "https://github.com/tensorgi/T6",
        "https://huggingface.co/datasets/a_b/c*d",
        "https://example.org/" + "a" * 400,
        "javascript:alert(1)",
        "https://x.org/[x](http://evil)",
        "https://x.org/@everyone",
        "",
    ]
) | st.text(max_size=40)


@st.composite
def papers(draw: st.DrawFn) -> list[Paper]:
    count = draw(st.integers(min_value=0, max_value=14))
    numbers = draw(st.lists(st.integers(10000, 99999), min_size=count, max_size=count, unique=True))
    return [
        Paper(
            f"2501.{number}",
            draw(_text),
            authors=tuple(draw(st.lists(_text, max_size=100))),
            abstract=draw(_text),
            bullets=tuple(draw(st.lists(_text, max_size=8))),
            tags=tuple(draw(st.lists(_text | st.sampled_from(["Robotics", "Audio"]), max_size=6))),
            github_urls=tuple(draw(st.lists(_urls, max_size=30))),
            hf_urls=tuple(draw(st.lists(_urls, max_size=30))),
            project_url=draw(st.none() | _urls),
            upvotes=draw(st.none() | st.integers(min_value=0, max_value=10**6)),
            github_stars=draw(st.none() | st.integers(min_value=0, max_value=10**6)),
        )
        for number in numbers
    ]


_UNESCAPED_LINK = re.compile(r"(?<!\\)\[x\\?\]\(http://evil")


@settings(max_examples=60, deadline=None)
@given(papers(), st.sampled_from(["full", "compact"]), st.booleans(), st.none() | _text)
def test_digest_messages_never_break_a_discord_rule(
    day_papers: list[Paper], layout: str, header: bool, feed_name: str | None
) -> None:
    messages = digest_messages(DAY, day_papers, layout, header, feed_name=feed_name)  # type: ignore[arg-type]
    for payload in messages:
        assert validate_message(payload) == []
        assert payload["allowed_mentions"] == {"parse": []}
        for text in all_strings(payload):
            assert "@everyone" not in text.casefold() and "@here" not in text.casefold()
            assert "<@" not in text and "<#" not in text
        for text in markdown_strings(payload):
            assert not _UNESCAPED_LINK.search(text)
    urls = [embed.get("url") for m in messages for embed in m["embeds"] if "url" in embed]
    assert urls == [paper.url for paper in day_papers]
    headers = sum(1 for m in messages for embed in m["embeds"] if "url" not in embed)
    assert headers == (1 if header else 0)
    if layout == "full":
        assert len(messages) in {len(day_papers), len(day_papers) + 1}
    else:
        assert len(messages) >= math.ceil((len(day_papers) + header) / 10)


@settings(max_examples=40, deadline=None)
@given(papers())
def test_every_single_embed_fits_alone(day_papers: list[Paper]) -> None:
    for paper in day_papers:
        full = paper_embed(paper)
        assert embed_size(full) <= MAX_EMBED_TOTAL
        assert validate_message(message([full])) == []
        assert embed_size(paper_embed(paper, compact=True)) <= COMPACT_TOTAL


@settings(max_examples=30, deadline=None)
@given(papers())
def test_render_text_never_fails(day_papers: list[Paper]) -> None:
    text = render_text(DAY, day_papers)
    assert "\x00" not in text
    assert text.count("\n\n") >= len(day_papers)


def _sanitized_the_long_way(text: str) -> str:
    return neutralize_mentions(escape_markdown(one_line(text)))


@settings(max_examples=3000, deadline=None)
@given(
    st.text(
        alphabet=st.characters(min_codepoint=0, max_codepoint=0x7F)
        | st.sampled_from(list("é @<#*_-1.\n\t\u00a0"))
    )
)
def test_sanitize_skips_work_only_for_text_it_would_not_change(text):
    assert sanitize(text) == _sanitized_the_long_way(text)
