"""Text helpers shared by the renderers: cleaning, Discord-safe escaping, truncation.

Paper text (titles, abstracts, author names, bullets) is untrusted: it may contain mentions,
markdown or masked links. :func:`sanitize` makes such text inert in Discord while keeping it
readable; :func:`truncate` shortens at a word boundary with an ellipsis.
"""

from __future__ import annotations

import re

ELLIPSIS = "…"
ZWSP = "\u200b"  # zero-width space: breaks a mention without changing how it reads

# C0/C1 control characters except tab and newline, plus lone surrogates (not valid UTF-8).
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_HORIZONTAL_SPACES_RE = re.compile(r"[^\S\n]+")

# @everyone / @here ping even inside words; Discord matches them case-sensitively, we do not.
_MASS_MENTION_RE = re.compile(r"@(?=everyone|here)", re.IGNORECASE)
# <@id>, <@!id>, <@&id> (users, roles) and <#id> (channels): break every "<@" and "<#".
_ANGLE_MENTION_RE = re.compile(r"<(?=[@#])")

# A bare URL is left as is (escaping inside it would break the link); it may not contain
# brackets, so a masked link "[x](url)" still gets its brackets escaped.
_BARE_URL = r"https?://[^\s<>\[\]()\\`\"']+"
_MARKDOWN_CHARS = "\\*_~`|[]"
_MARKDOWN_RE = re.compile(rf"(?P<url>{_BARE_URL})|(?P<char>[{re.escape(_MARKDOWN_CHARS)}])")
# Block syntax only matters at the start of a line: headings, quotes, lists, subtext.
_LINE_START_RE = re.compile(r"^(\s*)(?:([#>+\-])|(\d+)\.(?=\s))", re.MULTILINE)

# A URL we are willing to put behind a masked link or an embed url.
SAFE_URL_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(?::\d+)?(?:/[^\s<>\[\]()\\`\"'|]*)?$")
MAX_URL_LENGTH = 512


def clean(text: str) -> str:
    """Drop control characters, normalise line endings and trim."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL_RE.sub("", text).strip()


def is_one_line(text: str) -> bool:
    """Whether ``text`` is printable with single spaces inside and none at its ends, so that
    :func:`one_line` (and any collapsing of whitespace) leaves it as it is."""
    # str.isprintable is False for control characters and for every whitespace but the space.
    return text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " "


def one_line(text: str) -> str:
    """:func:`clean` and collapse every run of whitespace (newlines too) to one space."""
    if is_one_line(text):
        return text
    # str.split() splits on exactly what the regex \s matches (str.isspace): one C pass.
    return " ".join(clean(text).split())


def tidy_lines(text: str) -> str:
    """:func:`clean`, collapse spaces within lines and drop blank lines."""
    lines = (_HORIZONTAL_SPACES_RE.sub(" ", line).strip() for line in clean(text).split("\n"))
    return "\n".join(line for line in lines if line)


def neutralize_mentions(text: str) -> str:
    """Make ``@everyone``, ``@here``, ``<@id>``, ``<@&id>`` and ``<#id>`` inert."""
    text = _MASS_MENTION_RE.sub("@" + ZWSP, text)
    return _ANGLE_MENTION_RE.sub("<" + ZWSP, text)


def _escape_match(match: re.Match[str]) -> str:
    url = match.group("url")
    return url if url is not None else "\\" + match.group("char")


def _escape_line_start(match: re.Match[str]) -> str:
    indent, symbol, number = match.groups()
    return f"{indent}\\{symbol}" if symbol else f"{indent}{number}\\."


def escape_markdown(text: str) -> str:
    """Backslash-escape Discord markdown (bare URLs are kept intact so they stay links)."""
    return _LINE_START_RE.sub(_escape_line_start, _MARKDOWN_RE.sub(_escape_match, text))


def sanitize(text: str, *, markdown: bool = True, multiline: bool = False) -> str:
    """Make untrusted text safe to show in Discord.

    Cleans it (one line unless ``multiline``), escapes markdown when ``markdown`` (use False for
    places Discord shows verbatim: embed author name, footer) and always neutralises mentions.
    """
    if markdown and not multiline and _is_plain(text):
        return text  # nothing to clean, escape or neutralise (most titles and names)
    text = tidy_lines(text) if multiline else one_line(text)
    if markdown:
        text = escape_markdown(text)
    return neutralize_mentions(text)


# Printable ASCII with none of the characters that escaping or mentions change.
_PLAIN_RE = re.compile(r"[ !\"#$%&'()+,\-./0-9:;=>?A-Z^a-z{}]*")


def _is_plain(text: str) -> bool:
    """Whether one-line ``sanitize`` leaves ``text`` as it is: printable ASCII without markdown
    or mention characters, single spaces inside only, and no block syntax at the start."""
    if _PLAIN_RE.fullmatch(text) is None or "  " in text or text != text.strip():
        return False
    return not text or (text[0] not in "#>+-" and not text[0].isdigit())


def _drop_dangling_escape(text: str) -> str:
    trailing = len(text) - len(text.rstrip("\\"))
    return text[:-1] if trailing % 2 else text


def truncate(text: str, limit: int, *, ellipsis: str = ELLIPSIS) -> str:
    """Shorten ``text`` to at most ``limit`` characters, at a word boundary, ending in ``ellipsis``.

    Falls back to a hard cut when the last word boundary would lose more than 40% of the room.
    """
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    if limit <= len(ellipsis):
        return ellipsis[:limit]
    cut = text[: limit - len(ellipsis)]
    boundary = max(cut.rfind(" "), cut.rfind("\n"))
    if text[len(cut)].isspace():
        boundary = len(cut)
    if boundary >= 0.6 * len(cut):
        cut = cut[:boundary]
    cut = _drop_dangling_escape(cut.rstrip(" \n\t,;:-–—" + ZWSP))
    return cut + ellipsis


def is_safe_url(url: str) -> bool:
    """True for a plain http(s) URL that cannot break out of a masked link."""
    return (
        len(url) <= MAX_URL_LENGTH
        and SAFE_URL_RE.match(url) is not None
        and not has_unsafe_mention(url)
    )


def has_unsafe_mention(text: str) -> bool:
    """True if ``text`` still contains a live-looking mention (see :func:`neutralize_mentions`)."""
    return bool(_MASS_MENTION_RE.search(text) or _ANGLE_MENTION_RE.search(text))
