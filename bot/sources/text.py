"""Small text helpers shared by the source parsers."""

from __future__ import annotations

import logging
import re
from datetime import date

import ftfy

from bot.text import is_one_line

log = logging.getLogger(__name__)

# Repair encoding damage only (UTF-8 read as Latin-1/cp1252, "TransformerÂ²"); leave quotes,
# ligatures, full-width characters, HTML entities and Unicode normalisation as they are, so
# that text which is not broken comes back byte for byte.
_FTFY_CONFIG = ftfy.TextFixerConfig(
    unescape_html=False,
    remove_terminal_escapes=False,
    fix_latin_ligatures=False,
    fix_character_width=False,
    uncurl_quotes=False,
    fix_line_breaks=False,
    fix_surrogates=True,
    remove_control_chars=False,
    normalization=None,
    explain=False,
)

# UTF-8 lead bytes (0xC2-0xF4) as Latin-1/cp1252 characters start every mojibake sequence
# ftfy can repair; text without them is left alone without calling ftfy (fast bulk parsing).
_MOJIBAKE_HINT_RE = re.compile("[\u00c2-\u00f4\ufffd]")


def collapse_ws(text: str) -> str:
    """Turn every run of whitespace (line breaks included) into one space and strip the ends."""
    if is_one_line(text):  # most abstracts
        return text
    return " ".join(text.split())


def fix_mojibake(text: str) -> str:
    """Repair UTF-8-read-as-Latin-1 damage (``TransformerÂ²`` → ``Transformer²``)."""
    if text.isascii() or not _MOJIBAKE_HINT_RE.search(text):  # isascii: one quick look
        return text
    return ftfy.fix_text(text, _FTFY_CONFIG)


def clean_text(text: str) -> str:
    """:func:`fix_mojibake` then :func:`collapse_ws`."""
    return collapse_ws(fix_mojibake(text))


def clean_texts(items: list[str]) -> list[str]:
    """:func:`clean_text` of each item; one look for mojibake covers them all (author lists)."""
    joined = "".join(items)
    if not joined.isascii() and _MOJIBAKE_HINT_RE.search(joined):  # a hint is one character
        return [clean_text(item) for item in items]
    return [collapse_ws(item) for item in items]


# Words after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    {"e.g", "i.e", "al", "etc", "vs", "cf", "fig", "figs", "eq", "eqs", "approx", "resp", "no",
     "dr", "mr", "ms", "prof", "sec", "ref", "refs", "vol", "ca", "viz", "inc", "ltd", "st"}
)  # fmt: skip
_SENTENCE_END_RE = re.compile(r"[.!?][\"')\]”’]*\s+(?=[\"'(\[“‘]?[A-Z0-9])")


def split_sentences(text: str) -> tuple[str, ...]:
    """Split prose into sentences; conservative around abbreviations and initials."""
    text = collapse_ws(text)
    if not text:
        return ()
    sentences: list[str] = []
    start = 0
    for match in _SENTENCE_END_RE.finditer(text):
        before = text[start : match.start()]
        last_word = before.rsplit(" ", 1)[-1].lower() if before else ""
        if text[match.start()] == "." and (
            last_word.rstrip(".") in _ABBREVIATIONS or (len(last_word) == 1 and last_word.isalpha())
        ):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    tail = text[start:].strip()
    if tail:
        sentences.append(tail)
    return tuple(sentences)


_DAY_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def parse_iso_day(value: object) -> date | None:
    """The date at the start of an ISO timestamp (``2025-01-14T08:00:00.000Z``), or None."""
    if not isinstance(value, str):
        return None
    match = _DAY_RE.match(value.strip())
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def dedupe(items: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Drop empty strings and repeats, keeping the first occurrence's position."""
    return tuple(dict.fromkeys(item for item in items if item))
