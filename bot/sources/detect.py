"""Tell a file's format from its first bytes (and name) and load it with the right parser.

Formats: ``"hf"`` (a saved ``/api/daily_papers`` response), ``"markdown"`` (digest tables),
``"atom"`` (an arXiv API response), ``"jsonl"`` (backup or corpus lines, plain or gzipped).

The listing day of an ``"hf"`` file, in order of preference:

1. the ``day`` argument of :func:`load_file`;
2. a ``YYYY-MM-DD`` in the file name (``2025-01-14.json``);
3. the archive wrapper's ``date``, else the most common ``paper.submittedOnDailyAt`` day,
   else the latest top-level ``publishedAt`` day (see :func:`hf_daily.listing_day_hint`).

Otherwise :class:`InputError` asks for the day.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from bot.errors import InputError
from bot.models import Entry
from bot.sources import arxiv, hf_daily, jsonl, markdown

log = logging.getLogger(__name__)

FORMATS = ("hf", "markdown", "atom", "jsonl")
HEAD_SIZE = 64 * 1024

_NAME_DAY_RE = re.compile(r"(?<!\d)(\d{4}-\d{2}-\d{2})(?!\d)")
_MARKDOWN_HINTS = (b"Papers for ", b"| Title |")


def _first_line(text: bytes) -> bytes:
    return text.split(b"\n", 1)[0].strip()


def detect_format(path: str | Path, head: bytes) -> str:
    """One of :data:`FORMATS` for a file whose first bytes are ``head``; else InputError."""
    path = Path(path)
    if head.startswith(jsonl.GZIP_MAGIC):
        return "jsonl"
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    name = path.name.lower()
    if name.endswith((".md", ".markdown")):
        return "markdown"
    if text.startswith(b"<"):
        if b"<feed" in text or b"http://www.w3.org/2005/Atom" in text:
            return "atom"
    elif text.startswith(b"["):
        return "hf"
    elif text.startswith(b"{"):
        line = _first_line(text)
        try:
            record = json.loads(line)
        except ValueError:
            # A JSON object spread over lines: the archive's {"status": ..., "data": [...]}.
            return "jsonl" if name.endswith((".jsonl", ".ndjson")) else "hf"
        if isinstance(record, dict) and "data" in record and "id" not in record:
            return "hf"
        return "jsonl"
    if any(hint in head for hint in _MARKDOWN_HINTS):
        return "markdown"
    raise InputError(
        f"cannot tell the format of {path}: expected a Hugging Face daily_papers JSON array, "
        "a markdown digest (## Papers for YYYY-MM-DD), an arXiv Atom feed or JSON Lines"
    )


def _hf_day(path: Path, data: bytes) -> date:
    for candidate in reversed(_NAME_DAY_RE.findall(path.name)):
        try:
            return date.fromisoformat(candidate)
        except ValueError:
            continue
    hf_daily.check_json(data, "")  # a broken file is reported as such, not as dateless
    day = hf_daily.listing_day_hint(data)
    if day is None:
        raise InputError(
            f"{path}: cannot tell which day this Hugging Face listing is for; "
            "put YYYY-MM-DD in the file name or give the day explicitly"
        )
    log.info("%s: no date in the file name; using %s from its contents", path, day.isoformat())
    return day


def _decode_markdown(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning("%s is not UTF-8; reading it as cp1252", path)
        return data.decode("cp1252", errors="replace")


@dataclass(frozen=True)
class LoadedFile:
    """A file's records, and for a markdown digest every day it has a table for."""

    entries: list[Entry]
    digest_days: dict[date, int] = field(default_factory=dict)  # day -> rows (0: header only)


def is_streamed(path: Path) -> bool:
    """Whether ``path`` is read as a stream (JSON Lines) rather than parsed whole."""
    return _detect(path) == "jsonl"


def stream_file(path: str | Path) -> Iterator[Entry]:
    """A JSON Lines file's entries, read line by line: a corpus of 90k papers never sits in
    memory. Entries before a bad line are already yielded: store inside a transaction."""
    return jsonl.iter_jsonl_file(Path(path))


def _detect(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            head = handle.read(HEAD_SIZE)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from exc
    return detect_format(path, head)


def load_file(path: str | Path, *, day: date | None = None) -> list[Entry]:
    """Read ``path`` in whatever format it is in (see the module doc for the hf day rule).

    ``day`` sets the listing day of an hf or atom file (an atom file has no listing without it).
    """
    return load(path, day=day).entries


def load(path: str | Path, *, day: date | None = None) -> LoadedFile:
    """Like :func:`load_file`, and keep a markdown digest's days, empty ones included."""
    path = Path(path)
    kind = _detect(path)
    log.debug("%s: format %s", path, kind)
    if kind == "jsonl":
        return LoadedFile(jsonl.read_jsonl_file(path))
    data = path.read_bytes()
    try:
        if kind == "hf":
            return LoadedFile(hf_daily.parse_daily_papers(data, day or _hf_day(path, data)))
        if kind == "atom":
            return LoadedFile(arxiv.parse_atom(data, day))
        sections = markdown.parse_markdown_days(_decode_markdown(path, data))
        if not sections:  # prose about digests (a repository's README), not a digest
            raise InputError("no digest day in it (expected '## Papers for YYYY-MM-DD' sections)")
        return LoadedFile(
            [entry for _, rows in sections for entry in rows],
            {section_day: len(rows) for section_day, rows in sections},
        )
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
