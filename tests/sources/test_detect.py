from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from bot.errors import InputError
from bot.models import Listing
from bot.sources.detect import detect_format, load_file
from bot.sources.markdown import HEADER, SEPARATOR
from tests.sources.helpers import FIXTURES, SOURCE_FIXTURES


@pytest.mark.parametrize(
    ("relative", "expected"),
    [
        ("hf_daily/2024-05-27.json", "hf"),
        ("hf_daily/2025-01-10_wrapped_python_repr.json", "hf"),
        ("arxiv/legacy2016_3_entries.xml", "atom"),
        ("arxiv/v2026_3_entries.xml", "atom"),
        ("arxiv/v2026_error.xml", "atom"),
        ("digests/2024-09-27.md", "markdown"),
        ("digests/2025-09-26.md", "markdown"),
        ("corpus/papers_corpus_20.jsonl", "jsonl"),
        ("corpus/papers_corpus_20.jsonl.gz", "jsonl"),
    ],
)
def test_every_fixture_format_is_detected(relative: str, expected: str) -> None:
    path = SOURCE_FIXTURES / relative
    assert detect_format(path, path.read_bytes()[:4096]) == expected


def test_the_seed_is_markdown_whatever_its_name() -> None:
    head = (FIXTURES / "seed_2025-01-14.md").read_bytes()[:4096]
    assert detect_format("000_fd1e32f4a6e15587.txt", head) == "markdown"


def test_content_beats_a_misleading_name() -> None:
    assert detect_format("papers.txt", b'{"id": "2501.00001", "title": "x"}\n') == "jsonl"
    assert detect_format("papers.json", b'\xef\xbb\xbf  [{"paper": {}}]') == "hf"
    assert detect_format("x.bin", b"\x1f\x8b\x08\x00") == "jsonl"


def test_an_unknown_format_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"^cannot tell the format of notes.txt"):
        detect_format("notes.txt", b"just some notes\n")
    with pytest.raises(InputError, match="cannot tell the format"):
        detect_format("page.html", b"<html><body></body></html>")


def test_load_file_takes_the_hf_day_from_the_file_name() -> None:
    entries = load_file(SOURCE_FIXTURES / "hf_daily" / "2025-12-11.json")
    assert {e.listing.day for e in entries if e.listing} == {date(2025, 12, 11)}


def test_load_file_takes_the_hf_day_from_the_contents_without_a_dated_name(
    tmp_path: Path,
) -> None:
    path = tmp_path / "listing.json"
    shutil.copy(SOURCE_FIXTURES / "hf_daily" / "2025-05-22.json", path)
    entries = load_file(path)
    assert entries[0].listing == Listing(date(2025, 5, 22), "hf", rank=1, upvotes=66)
    other_day = load_file(path, day=date(2025, 5, 23))[0].listing
    assert other_day is not None and other_day.day == date(2025, 5, 23)


def test_load_file_without_any_day_for_an_hf_listing_asks_for_one(tmp_path: Path) -> None:
    path = tmp_path / "listing.json"
    path.write_text('[{"paper": {"id": "2501.00001", "title": "x"}}]', encoding="utf-8")
    with pytest.raises(InputError, match="cannot tell which day"):
        load_file(path)


def test_load_file_dispatches_markdown_atom_and_jsonl() -> None:
    assert len(load_file(FIXTURES / "seed_2025-01-14.md")) == 10
    assert len(load_file(SOURCE_FIXTURES / "arxiv" / "v2026_3_entries.xml")) == 3
    assert len(load_file(SOURCE_FIXTURES / "corpus" / "papers_corpus_20.jsonl.gz")) == 19
    assert load_file(SOURCE_FIXTURES / "digests" / "2025-09-26.md") == []


def test_load_file_errors_name_the_file() -> None:
    path = SOURCE_FIXTURES / "hf_daily" / "2025-01-10_wrapped_python_repr.json"
    with pytest.raises(
        InputError, match=r"2025-01-10_wrapped_python_repr.json: hf_daily 2025-01-10"
    ):
        load_file(path)
    with pytest.raises(InputError, match=r"v2026_error.xml: arXiv API error: incorrect id format"):
        load_file(SOURCE_FIXTURES / "arxiv" / "v2026_error.xml")


def test_load_file_of_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_file(tmp_path / "nope.md")


def test_a_cp1252_markdown_file_is_still_read(tmp_path: Path) -> None:
    row = "| [Café](https://arxiv.org/abs/2501.00001) | N/A | N/A | [] | N/A | N/A |"
    path = tmp_path / "old.md"
    path.write_bytes(f"## Papers for 2025-01-14\n\n{HEADER}\n{SEPARATOR}\n{row}\n".encode("cp1252"))
    [entry] = load_file(path)
    assert entry.paper.title == "Café"
