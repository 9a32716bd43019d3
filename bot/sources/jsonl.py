"""JSON Lines: whole-paper backups (export and import) and the corpus record shape (import).

Backup record: every :class:`~bot.models.Paper` field under its own name (tuples as lists,
dates as ``YYYY-MM-DD``, summary sources by name) plus ``listings``, a list of
``{"day", "source", "rank", "upvotes"}`` (and ``"row"``, a digest row as written): one line per
paper, however many days it was listed.

Corpus record: ``id``, ``title``, ``authors``, ``abstract``, ``categories``, ``date`` (the arXiv
date), ``comment``, ``source`` and optionally ``hf`` {``upvotes``, ``ai_summary``,
``ai_keywords``, ``githubRepo``, ``hf_date``}; ``hf_date`` becomes an ``"hf"`` listing.
A line is read as a backup record when it has ``arxiv_id``, as a corpus record when it has ``id``.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
import typing
from collections.abc import Iterable, Iterator
from dataclasses import fields
from datetime import date
from enum import Enum
from pathlib import Path
from typing import Any

from bot.errors import InputError
from bot.models import (
    Entry,
    InvalidPaperId,
    Listing,
    Paper,
    SummarySource,
    merge_papers,
    split_arxiv_id,
)
from bot.sources.text import clean_text, clean_texts, dedupe, parse_iso_day, split_sentences

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
_PAPER_FIELDS = tuple(field.name for field in fields(Paper))
_PAPER_TYPES = typing.get_type_hints(Paper)


class _SkipRecord(Exception):
    """A record that is valid JSON but cannot become a Paper (non-strict mode skips it)."""


# --- export -------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.name
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value


def listing_to_record(listing: Listing) -> dict[str, Any]:
    record: dict[str, Any] = {
        "day": listing.day.isoformat(),
        "source": listing.source,
        "rank": listing.rank,
        "upvotes": listing.upvotes,
    }
    if listing.row is not None:
        record["row"] = listing.row  # a digest row as written: exports stay exact
    return record


def paper_to_record(paper: Paper, listings: Iterable[Listing] = ()) -> dict[str, Any]:
    """The backup record of one paper and its listings."""
    record = {name: _json_value(getattr(paper, name)) for name in _PAPER_FIELDS}
    record["listings"] = [listing_to_record(listing) for listing in listings]
    return record


def dump_jsonl(paper: Paper, listings: Iterable[Listing] = ()) -> str:
    """One paper and its listings as one backup line (without the newline)."""
    return json.dumps(paper_to_record(paper, listings), ensure_ascii=False)


def dump_jsonl_lines(items: Iterable[Entry | Paper]) -> Iterator[str]:
    """One backup line (ending in ``\\n``) per paper, in first-seen order.

    Entries of the same paper (one per listing) are folded into one record with all their
    listings; differing copies of a paper are combined with :func:`merge_papers`.
    """
    papers: dict[str, Paper] = {}
    listings: dict[str, dict[tuple[date, str], Listing]] = {}
    for item in items:
        paper, listing = (item.paper, item.listing) if isinstance(item, Entry) else (item, None)
        known = papers.get(paper.arxiv_id)
        papers[paper.arxiv_id] = (
            paper if known is None or known == paper else merge_papers(known, paper)
        )
        by_key = listings.setdefault(paper.arxiv_id, {})
        if listing is not None:
            by_key.setdefault((listing.day, listing.source), listing)
    for arxiv_id, paper in papers.items():
        yield dump_jsonl(paper, listings[arxiv_id].values()) + "\n"


def write_jsonl_file(path: str | Path, items: Iterable[Entry | Paper]) -> int:
    """Write a backup file (gzip-compressed when the name ends in ``.gz``); return its lines."""
    path = Path(path)
    count = 0
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="\n") as handle:
        for line in dump_jsonl_lines(items):
            handle.write(line)
            count += 1
    return count


# --- import -------------------------------------------------------------------------------


def _str_list(value: Any, name: str, *, clean: bool = True) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InputError(f"'{name}' must be a list of strings")
    if not clean:
        return tuple(value)
    return dedupe(clean_texts(value))


def _optional_int(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"'{name}' must be an integer or null, not {value!r}")
    return value


def _optional_str(value: Any, name: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"'{name}' must be a string or null")
    return value.strip() or None


def _day(value: Any, name: str) -> date | None:
    if value is None or value == "":
        return None
    day = parse_iso_day(value)
    if day is None:
        raise InputError(f"'{name}' must be a YYYY-MM-DD date, not {value!r}")
    return day


def _summary_source(value: Any, name: str) -> SummarySource:
    if value is None:
        return SummarySource.NONE
    try:
        if isinstance(value, str):
            return SummarySource[value.strip().upper()]
        if isinstance(value, int) and not isinstance(value, bool):
            return SummarySource(value)
    except (KeyError, ValueError):
        pass
    names = ", ".join(member.name for member in SummarySource)
    raise InputError(f"'{name}' must be one of {names}, not {value!r}")


def _convert_field(name: str, value: Any) -> Any:
    """Validate and convert one backup field; text is kept exactly as written."""
    kind = _PAPER_TYPES[name]
    if kind == tuple[str, ...]:
        return _str_list(value, name, clean=False)
    if kind is SummarySource:
        return _summary_source(value, name)
    if kind == date | None:
        return _day(value, name)
    if kind == int | None:
        return _optional_int(value, name)
    if kind == str | None:
        if value is not None and not isinstance(value, str):
            raise InputError(f"'{name}' must be a string or null")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise InputError(f"'{name}' must be a string")
        return value
    return value  # a field type this importer does not know: take the JSON value as it is


def _listing_from_record(value: Any, index: int) -> Listing:
    if not isinstance(value, dict):
        raise InputError(f"listings[{index}] must be an object")
    day = _day(value.get("day"), f"listings[{index}].day")
    source = value.get("source")
    if day is None or not isinstance(source, str) or not source.strip():
        raise InputError(f"listings[{index}] needs a 'day' and a 'source'")
    return Listing(
        day=day,
        source=source.strip(),
        rank=_optional_int(value.get("rank"), f"listings[{index}].rank"),
        upvotes=_optional_int(value.get("upvotes"), f"listings[{index}].upvotes"),
        row=_optional_row(value.get("row"), index),
    )


def _optional_row(value: Any, index: int) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise InputError(f"listings[{index}].row must be a string (a digest table row)")


def _arxiv_id(raw: Any, key: str) -> tuple[str, int | None]:
    if not isinstance(raw, str) or not raw.strip():
        raise InputError(f"the record has no '{key}'")
    try:
        return split_arxiv_id(raw)
    except InvalidPaperId as exc:
        raise _SkipRecord(f"'{key}' {raw!r} is not an arXiv id") from exc


def _backup_entries(record: dict[str, Any]) -> list[Entry]:
    arxiv_id, version = _arxiv_id(record.get("arxiv_id"), "arxiv_id")
    values: dict[str, Any] = {"arxiv_id": arxiv_id}
    for name in _PAPER_FIELDS:
        if name != "arxiv_id" and name in record:
            values[name] = _convert_field(name, record[name])
    if values.get("version") is None and version is not None:
        values["version"] = version
    if not str(values.get("title") or "").strip():
        raise InputError(f"paper {arxiv_id} has no 'title'")
    paper = Paper(**values)
    raw_listings = record.get("listings") or []
    if not isinstance(raw_listings, list):
        raise InputError("'listings' must be a list")
    listings = [_listing_from_record(item, i) for i, item in enumerate(raw_listings)]
    return [Entry(paper, listing) for listing in listings] or [Entry(paper)]


def _corpus_entries(record: dict[str, Any]) -> list[Entry]:
    arxiv_id, version = _arxiv_id(record.get("id"), "id")
    title = record.get("title")
    if not isinstance(title, str) or not (title := clean_text(title)):
        raise InputError(f"paper {arxiv_id} has no 'title'")
    values: dict[str, Any] = {
        "arxiv_id": arxiv_id,
        "title": title,
        "authors": _str_list(record.get("authors"), "authors"),
        "abstract": clean_text(_optional_str(record.get("abstract"), "abstract") or ""),
        "version": version,
        "published": _day(record.get("date"), "date"),
        "categories": _str_list(record.get("categories"), "categories"),
        "comment": _optional_str(record.get("comment"), "comment"),
    }
    hf = record.get("hf")
    listing: Listing | None = None
    if hf is not None:
        if not isinstance(hf, dict):
            raise InputError("'hf' must be an object")
        upvotes = _optional_int(hf.get("upvotes"), "hf.upvotes")
        values["upvotes"] = upvotes
        summary = _optional_str(hf.get("ai_summary"), "hf.ai_summary")
        if summary:
            values["bullets"] = split_sentences(clean_text(summary))
            values["bullets_source"] = SummarySource.HF
        values["keywords"] = _str_list(hf.get("ai_keywords"), "hf.ai_keywords")
        repo = _optional_str(hf.get("githubRepo"), "hf.githubRepo")
        if repo:
            values["github_urls"] = (repo,)
        hf_day = _day(hf.get("hf_date"), "hf.hf_date")
        if hf_day is not None:
            listing = Listing(hf_day, "hf", upvotes=upvotes)
    return [Entry(Paper(**values), listing)]


def record_to_entries(record: Any) -> list[Entry]:
    """Entries from one decoded line (backup or corpus shape); :class:`InputError` if invalid."""
    if not isinstance(record, dict):
        raise InputError("expected a JSON object")
    if "arxiv_id" in record:
        return _backup_entries(record)
    if "id" in record:
        return _corpus_entries(record)
    raise InputError("the record has neither 'arxiv_id' (backup) nor 'id' (corpus)")


def _entries_of_lines(
    numbered: Iterable[tuple[int, str | bytes]], label: str, *, strict: bool, skipped: list[int]
) -> Iterator[Entry]:
    """The entries of numbered lines; line numbers of skipped records go to ``skipped``."""
    for line_no, raw in numbered:
        if isinstance(raw, bytes):
            try:
                raw = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"{label}line {line_no}: not UTF-8 text") from exc
        text = raw.strip().lstrip("\ufeff")
        if not text:
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{label}line {line_no}: not valid JSON ({exc.msg})") from exc
        try:
            yield from record_to_entries(record)
        except _SkipRecord as exc:
            if strict:
                raise InputError(f"{label}line {line_no}: {exc}") from None
            skipped.append(line_no)
        except InputError as exc:
            raise InputError(f"{label}line {line_no}: {exc}") from None


def log_skipped(label: str, count: int, first: int) -> None:
    """One log line for the records of a file that were skipped (ids that are not arXiv's)."""
    log.info(
        "%sskipped %d record(s) without an arXiv id (first at line %d)", label, count, first
    )


def _iter_lines(lines: Iterable[str | bytes], label: str, *, strict: bool) -> Iterator[Entry]:
    skipped: list[int] = []
    yield from _entries_of_lines(enumerate(lines, start=1), label, strict=strict, skipped=skipped)
    if skipped:
        log_skipped(label, len(skipped), skipped[0])


def parse_jsonl(lines: Iterable[str | bytes], *, strict: bool = False) -> list[Entry]:
    """All entries of a JSON Lines stream, or :class:`InputError` naming the bad line.

    Records whose id is not an arXiv id (the corpus has ``s2:``/``openalex:`` ids) are skipped
    and counted in one log line; with ``strict`` they are an error.
    """
    return list(_iter_lines(lines, "", strict=strict))


def _open_text(path: Path) -> io.TextIOBase:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == GZIP_MAGIC:
        return typing.cast(io.TextIOBase, gzip.open(path, "rt", encoding="utf-8"))
    return typing.cast(io.TextIOBase, path.open("r", encoding="utf-8"))


def file_label(path: str | Path) -> str:
    """How errors about a file's lines start: ``"PATH: "``."""
    return f"{Path(path)}: "


def _open_file(path: Path) -> io.TextIOBase:
    try:
        return _open_text(path)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _unreadable(label: str, exc: BaseException) -> InputError:
    # gzip.BadGzipFile is an OSError; a truncated file ends in EOFError.
    return InputError(f"{label}unreadable ({type(exc).__name__}: {exc})")


_READ_ERRORS = (OSError, EOFError, UnicodeDecodeError)


def iter_jsonl_file(path: str | Path, *, strict: bool = False) -> Iterator[Entry]:
    """Stream the entries of a plain or gzipped JSON Lines file (detected by content).

    Errors name the file and line. Being a stream, entries before a bad line have already
    been yielded: import inside a transaction, or use :func:`read_jsonl_file`.
    """
    path = Path(path)
    label = file_label(path)
    with _open_file(path) as handle:
        try:
            yield from _iter_lines(handle, label, strict=strict)
        except _READ_ERRORS as exc:
            raise _unreadable(label, exc) from exc


def iter_line_chunks(path: str | Path, size: int) -> Iterator[tuple[int, list[str]]]:
    """A JSON Lines file's lines ``size`` at a time, each chunk with the number of its first
    line (from 1), for :func:`entries_of_chunk`. A read error comes after the lines read
    before it, where :func:`iter_jsonl_file` raises it."""
    path = Path(path)
    chunk: list[str] = []
    first = 1
    with _open_file(path) as handle:
        try:
            for line in typing.cast(Iterable[str], handle):
                chunk.append(line)
                if len(chunk) == size:
                    yield first, chunk
                    first, chunk = first + size, []
        except _READ_ERRORS as exc:
            error: InputError | None = _unreadable(file_label(path), exc)
        else:
            error = None
    if chunk:
        yield first, chunk
    if error is not None:
        raise error


def entries_of_chunk(first: int, lines: list[str], label: str, skipped: list[int]) -> list[Entry]:
    """The entries of a chunk from :func:`iter_line_chunks`, as :func:`iter_jsonl_file` (not
    strict) reads them; skipped records' line numbers go to ``skipped``."""
    return list(_entries_of_lines(enumerate(lines, first), label, strict=False, skipped=skipped))


def read_jsonl_file(path: str | Path, *, strict: bool = False) -> list[Entry]:
    """All entries of a JSON Lines file, or :class:`InputError` (nothing half-read)."""
    return list(iter_jsonl_file(path, strict=strict))
