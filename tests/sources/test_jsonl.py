from __future__ import annotations

import gzip
import json
import logging
from datetime import date
from itertools import islice
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import InputError
from bot.models import Entry, Listing, Paper, SummarySource
from bot.sources.jsonl import (
    dump_jsonl,
    dump_jsonl_lines,
    iter_jsonl_file,
    paper_to_record,
    parse_jsonl,
    read_jsonl_file,
    write_jsonl_file,
)
from tests.sources.helpers import SOURCE_FIXTURES

CORPUS = SOURCE_FIXTURES / "corpus" / "papers_corpus_20.jsonl"
CORPUS_GZ = SOURCE_FIXTURES / "corpus" / "papers_corpus_20.jsonl.gz"

FULL = Paper(
    arxiv_id="2501.06425",
    title="Tensor Product Attention Is All You Need",
    authors=("Yifan Zhang", "Yifeng Liu"),
    abstract="Scaling language models ...",
    version=2,
    published=date(2025, 1, 11),
    categories=("cs.CL", "cs.LG"),
    bullets=("TPA shrinks the KV cache.",),
    bullets_source=SummarySource.LLM,
    tags=("Natural Language Processing",),
    tags_source=SummarySource.DIGEST,
    keywords=("tensor decomposition",),
    github_urls=("https://github.com/tensorgi/T6",),
    hf_urls=("https://huggingface.co/tensorgi/T6",),
    project_url="https://tensorgi.github.io/T6",
    comment="31 pages",
    upvotes=15,
    github_stars=300,
)


def test_corpus_lines_import_with_hf_listing_and_skip_non_arxiv_ids(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO):
        entries = read_jsonl_file(CORPUS)
    assert len(entries) == 19  # 21 lines, an s2: and an openalex: id skipped
    assert "skipped 2 record(s) without an arXiv id (first at line 9)" in caplog.text
    first = entries[0].paper
    assert first.arxiv_id == "2503.11731"
    assert first.categories == ("cs.CV", "cs.RO")
    assert first.published == date(2025, 3, 18)
    assert first.authors[0] == "Xianming Zeng"
    assert entries[0].listing is None
    with_hf = [e for e in entries if e.listing is not None]
    assert len(with_hf) == 5
    caparena = next(e for e in with_hf if e.paper.arxiv_id == "2503.12329")
    assert caparena.listing == Listing(date(2025, 3, 19), "hf", upvotes=17)
    assert caparena.paper.upvotes == 17
    assert caparena.paper.github_urls == ("https://github.com/njucckevin/CapArena",)
    assert "CapArena" in caparena.paper.keywords
    assert caparena.paper.bullets == ()  # its ai_summary is null
    ids = [e.paper.arxiv_id for e in entries]
    assert "2605.00640" in ids  # "arxiv:2605.00640"
    versioned = next(e.paper for e in entries if e.paper.arxiv_id == "2605.00746")
    assert versioned.version == 1


def test_gzipped_and_plain_files_give_the_same_entries() -> None:
    assert read_jsonl_file(CORPUS_GZ) == read_jsonl_file(CORPUS)


def test_strict_mode_rejects_a_non_arxiv_id_naming_the_line() -> None:
    with pytest.raises(InputError, match=r"papers_corpus_20.jsonl: line 9: 'id' 's2:ff7d"):
        read_jsonl_file(CORPUS, strict=True)


def test_corpus_ai_summary_becomes_hf_bullets() -> None:
    record = {
        "id": "2505.15277",
        "title": "Web-Shepherd",
        "authors": ["A"],
        "abstract": "x",
        "categories": ["cs.CL"],
        "date": "2025-05-21",
        "comment": None,
        "source": "s",
        "hf": {
            "upvotes": 66,
            "ai_summary": "One sentence. Two sentences.",
            "ai_keywords": None,
            "githubRepo": None,
            "hf_date": "2025-05-22",
        },
    }
    [entry] = parse_jsonl([json.dumps(record)])
    assert entry.paper.bullets == ("One sentence.", "Two sentences.")
    assert entry.paper.bullets_source is SummarySource.HF
    assert entry.listing == Listing(date(2025, 5, 22), "hf", upvotes=66)


def test_backup_keeps_every_field_and_all_listings_of_a_paper() -> None:
    listings = [
        Listing(date(2025, 1, 14), "hf", rank=2, upvotes=15),
        Listing(date(2025, 1, 14), "digest", rank=2),
        Listing(date(2025, 1, 15), "hf", rank=7, upvotes=20),
    ]
    lines = list(dump_jsonl_lines([Entry(FULL, listing) for listing in listings]))
    assert len(lines) == 1 and lines[0].endswith("\n")
    record = json.loads(lines[0])
    assert record["bullets_source"] == "LLM"
    assert record["published"] == "2025-01-11"
    assert len(record["listings"]) == 3
    assert parse_jsonl(lines) == [Entry(FULL, listing) for listing in listings]


def test_dump_jsonl_writes_one_paper_with_its_listings_as_one_line() -> None:
    listing = Listing(date(2025, 1, 14), "hf", rank=2, upvotes=15)
    line = dump_jsonl(FULL, [listing])
    assert "\n" not in line
    assert parse_jsonl([line]) == [Entry(FULL, listing)]


def test_backup_of_a_paper_without_listings_round_trips() -> None:
    assert parse_jsonl(dump_jsonl_lines([FULL])) == [Entry(FULL)]


def test_differing_copies_of_a_paper_are_merged_into_one_record() -> None:
    hf = Paper("2501.06425", "T", upvotes=15, keywords=("k",))
    digest = Paper("2501.06425", "T", tags=("Multimodal",), tags_source=SummarySource.DIGEST)
    [line] = dump_jsonl_lines([hf, digest])
    [entry] = parse_jsonl([line])
    assert entry.paper.upvotes == 15
    assert entry.paper.tags == ("Multimodal",)


def test_write_and_read_a_gzipped_backup(tmp_path: Path) -> None:
    path = tmp_path / "backup.jsonl.gz"
    entries = [
        Entry(FULL, Listing(date(2025, 1, 14), "hf", rank=1)),
        Entry(Paper("2501.00001", "x")),
    ]
    assert write_jsonl_file(path, entries) == 2
    assert path.read_bytes()[:2] == b"\x1f\x8b"
    assert read_jsonl_file(path) == entries


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "2501.00001", "title": "ok"}', "", "{not json"], r"^line 3: not valid JSON"),
        (["[1, 2]"], r"^line 1: expected a JSON object"),
        (['{"title": "x"}'], r"^line 1: the record has neither 'arxiv_id'"),
        (['{"id": "2501.00001"}'], r"^line 1: paper 2501.00001 has no 'title'"),
        (['{"arxiv_id": "2501.00001", "title": "x", "upvotes": "many"}'], r"'upvotes' must be"),
        (['{"arxiv_id": "2501.00001", "title": "x", "tags_source": "GPT"}'], r"'tags_source'"),
        (['{"arxiv_id": "2501.00001", "title": "x", "listings": [{"day": "x"}]}'], "listings"),
    ],
)
def test_bad_lines_raise_input_error_with_the_line_number(lines: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_jsonl(lines)


def test_the_file_iterator_streams_and_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    good = [json.dumps({"id": f"2501.{i:05d}", "title": f"T{i}"}) for i in range(4)]
    path.write_text("\n".join([*good, "{broken", *good]) + "\n", encoding="utf-8")
    assert [e.paper.arxiv_id for e in islice(iter_jsonl_file(path), 4)] == [
        "2501.00000",
        "2501.00001",
        "2501.00002",
        "2501.00003",
    ]
    with pytest.raises(InputError, match=rf"^{path}: line 5: not valid JSON"):
        read_jsonl_file(path)


def test_a_truncated_gzip_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(gzip.compress(CORPUS.read_bytes())[:300])
    with pytest.raises(InputError, match="unreadable"):
        read_jsonl_file(path)


def test_paper_to_record_names_every_paper_field() -> None:
    record = paper_to_record(FULL)
    assert set(record) == set(Paper.__dataclass_fields__) | {"listings"}


_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)


@settings(max_examples=60, deadline=None)
@given(
    st.builds(
        Paper,
        arxiv_id=st.from_regex(r"2[0-9]{3}\.[0-9]{5}", fullmatch=True),
        title=_text.filter(str.strip),
        authors=st.lists(_text).map(tuple),
        abstract=_text,
        version=st.none() | st.integers(1, 9),
        published=st.none() | st.dates(),
        bullets=st.lists(_text).map(tuple),
        bullets_source=st.sampled_from(SummarySource),
        comment=st.none() | _text,
        upvotes=st.none() | st.integers(0, 10_000),
    )
)
def test_backup_round_trip_is_exact_for_any_paper(paper: Paper) -> None:
    assert parse_jsonl(dump_jsonl_lines([paper])) == [Entry(paper)]
