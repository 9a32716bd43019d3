"""Import and export of the markdown digest table (``## Papers for YYYY-MM-DD`` sections).

Format (one section per day; see the seed digest)::

    <blank>
    <blank>
    ## Papers for 2025-01-14
    <blank>
    | Title | Authors | Summary | Classification | GitHub URLs | HuggingFace URLs |
    |-------|---------|---------|----------------|-------------|-----------------|
    | [title](https://arxiv.org/abs/ID) | A, B | - bullet - bullet | ['Label'] | [Link](url) | N/A |

Normalisation on import: mojibake is repaired (ftfy, encoding damage only), whitespace runs
inside a cell collapse to one space, link URLs without a scheme get ``https://``. Export writes
exactly the layout above, so import → export → import is lossless for the fields the format
carries (id, title, authors, bullets, tags, GitHub and Hugging Face links).
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

from bot.errors import InputError
from bot.models import Entry, InvalidPaperId, Listing, Paper, SummarySource, split_arxiv_id
from bot.sources.text import clean_text, collapse_ws, dedupe, fix_mojibake, split_sentences

log = logging.getLogger(__name__)

SOURCE = "digest"
COLUMNS = ("Title", "Authors", "Summary", "Classification", "GitHub URLs", "HuggingFace URLs")
HEADER = "| " + " | ".join(COLUMNS) + " |"
SEPARATOR = "|-------|---------|---------|----------------|-------------|-----------------|"
EMPTY = "N/A"
# Cell values that mean "nothing here", in the spellings real digests use. Matched exactly, not
# case-folded, so that an author called "Na" stays an author.
EMPTY_MARKS = frozenset(
    {EMPTY, "n/a", "NA", "None", "NONE", "none", "-", "—", "Null", "NULL", "null", "[]"}
)

_DAY_HEADING_RE = re.compile(
    r"^ {0,3}#{1,6}[ \t]+Papers for[ \t]+(\d{4}-\d{2}-\d{2})[ \t#]*$", re.IGNORECASE
)
_HEADING_RE = re.compile(r"^ {0,3}#{1,6}(?:[ \t]|$)")
_SEPARATOR_CELL_RE = re.compile(r"^:?-+:?$")
_TITLE_CELL_RE = re.compile(r"^\[(?P<title>.*)\]\(\s*<?(?P<url>[^\s<>]+?)>?\s*\)$", re.S)
# A markdown link whose URL may hold one level of balanced parentheses.
_LINK_RE = re.compile(r"\[[^\]]*\]\(\s*<?(?P<url>(?:[^()\s<>]|\([^()\s]*\))+)>?\s*\)")
_BARE_URL_RE = re.compile(r"(?:https?://|www\.)[^\s,<>\]\[]+")
_SCHEMELESS_RE = re.compile(r"^[\w.-]+\.[a-z]{2,}(?:/|$)", re.I)
_BULLET_MARK_RE = re.compile(r"(?:^|\s)(?:-(?=\s)|•)")
_MAX_LIST_CELL = 10_000
_CELLS = len(COLUMNS)
# The target of a markdown link, with one level of balanced parentheses.
_LINK_TARGET_RE = re.compile(r"\]\((?P<target>(?:[^()]|\([^()]*\))*)\)")
_WRAP_RE = re.compile(r"[ \t]*\n\s*")


def _split_raw(text: str) -> list[str]:
    """Split row text on unescaped ``|``, keeping every part exactly as written.

    The first part is what precedes the opening pipe (usually nothing); the last is what
    follows the closing pipe (usually nothing), or the last cell when that pipe is missing.
    """
    parts: list[str] = []
    start = 0
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] == "|":
            i += 2
            continue
        if char == "|":
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _pipes(text: str) -> int:
    return len(_split_raw(text)) - 1


def _raw_cells(text: str) -> list[str]:
    """The cells of one row, as written (escapes and padding kept)."""
    parts = _split_raw(text)
    cells = parts[1:] if parts[0].strip() == "" else parts
    if len(cells) > 1 and cells[-1].strip() == "":
        cells = cells[:-1]  # what follows the closing pipe
    return cells


def _split_row(line: str) -> list[str]:
    """Split a table row on unescaped ``|``; ``\\|`` becomes ``|`` inside the cell."""
    return [_unescape(cell).strip() for cell in _raw_cells(line.strip())]


def _unescape(cell: str) -> str:
    return cell.replace("\\|", "|")


def _join_wrapped_targets(cell: str) -> str:
    """Remove line wraps inside link targets: ``(https://a.io/\\n  b/)`` → ``(https://a.io/b/)``."""
    if "\n" not in cell:
        return cell
    return _LINK_TARGET_RE.sub(lambda match: "](" + _WRAP_RE.sub("", match["target"]) + ")", cell)


def _normalise_url(url: str) -> str:
    url = url.strip()
    if url.lower().startswith("www.") or (
        "://" not in url and _SCHEMELESS_RE.match(url) is not None
    ):
        url = "https://" + url
    return url


def _is_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    host = parts.hostname or ""
    return parts.scheme in ("http", "https") and ("." in host or host == "localhost")


def _links(cell: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(urls, dropped)``: the cell's web links, and link targets that are not web URLs."""
    text = _join_wrapped_targets(cell).strip()
    if not text or text in EMPTY_MARKS:
        return (), ()
    found = [match["url"] for match in _LINK_RE.finditer(text)]
    if not found:
        found = [url.rstrip(".,;") for url in _BARE_URL_RE.findall(text)]
    if not found:
        # e.g. a bare "github.com/org/repo"
        found = [part for part in re.split(r"[\s,]+", text) if _SCHEMELESS_RE.match(part)]
    urls = [_normalise_url(url) for url in found]
    dropped = [url for url in urls if not _is_url(url)]
    if not found:
        dropped = [collapse_ws(text)]
    return dedupe([url for url in urls if _is_url(url)]), dedupe(dropped)


def parse_links(cell: str) -> tuple[str, ...]:
    """``[Link](url), [Link](url)`` (or bare URLs) → URLs; ``N/A``, empty or no URL → ()."""
    return _links(cell)[0]


def parse_bullets(cell: str) -> tuple[str, ...]:
    """`` - a - b`` (or ``• a • b``) → ``("a", "b")``; prose without markers → its sentences."""
    text = collapse_ws(fix_mojibake(cell))
    if not text or text in EMPTY_MARKS:
        return ()
    if _BULLET_MARK_RE.search(text) is None:
        return split_sentences(text)
    return dedupe([part.strip() for part in _BULLET_MARK_RE.split(text)])


def _parse_tags(cell: str, line_no: int) -> tuple[str, ...]:
    text = collapse_ws(cell)
    if not text or text in EMPTY_MARKS or text == "[]":
        return ()
    if text.startswith("["):
        value: object = None
        if len(text) <= _MAX_LIST_CELL:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                value = None
        if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
            return dedupe([clean_text(item) for item in value])
        raise InputError(
            f"line {line_no}: the Classification cell is not a list of labels "
            f"like ['Multimodal', 'Question Answering']: {text[:80]!r}"
        )
    # A plain "A, B" list.
    return dedupe([clean_text(part) for part in text.split(",")])


@dataclass(frozen=True, slots=True)
class _Row:
    """The fields one table row holds."""

    arxiv_id: str
    version: int | None
    title: str
    authors: tuple[str, ...]
    bullets: tuple[str, ...]
    tags: tuple[str, ...]
    github_urls: tuple[str, ...]
    hf_urls: tuple[str, ...]


def _parse_title(cell: str, line_no: int) -> tuple[str, int | None, str]:
    text = _join_wrapped_targets(cell).strip()
    match = _TITLE_CELL_RE.match(text)
    if match is None:
        raise InputError(
            f"line {line_no}: the Title cell is not [title](https://arxiv.org/abs/ID): "
            f"{collapse_ws(text)[:80]!r}"
        )
    try:
        arxiv_id, version = split_arxiv_id(match["url"])
    except InvalidPaperId as exc:
        raise InputError(
            f"line {line_no}: the Title cell links to {match['url']!r}, not an arXiv paper"
        ) from exc
    title = clean_text(match["title"])
    if not title:
        raise InputError(f"line {line_no}: the Title cell of {arxiv_id} has an empty title")
    return arxiv_id, version, title


def _parse_authors(cell: str) -> tuple[str, ...]:
    text = clean_text(cell)
    if text in EMPTY_MARKS:
        return ()
    return dedupe([author.strip() for author in text.split(",")])


def _read_row(text: str, line_no: int, *, notes: bool = True) -> _Row:
    """Parse one row's text (it may span lines); InputError names ``line_no``.

    ``notes``: log link cells that hold no web URL (off when the export re-reads a row).
    """
    raw = _raw_cells(text)
    if len(raw) != _CELLS:
        raise InputError(
            f"line {line_no}: expected {_CELLS} cells ({' | '.join(COLUMNS)}), "
            f"found {len(raw)} (is a '|' inside a cell not escaped as '\\|'?)"
        )
    title_cell, authors_cell, summary_cell, tags_cell, github_cell, hf_cell = (
        _unescape(cell) for cell in raw
    )
    arxiv_id, version, title = _parse_title(title_cell, line_no)
    links = {}
    for name, cell in (("GitHub URLs", github_cell), ("HuggingFace URLs", hf_cell)):
        urls, dropped = _links(cell)
        if dropped and notes:
            log.warning(
                "line %s: %s cell of %s: %s is not a web URL; not stored as a link",
                line_no,
                name,
                arxiv_id,
                ", ".join(repr(item[:80]) for item in dropped),
            )
        links[name] = urls
    return _Row(
        arxiv_id=arxiv_id,
        version=version,
        title=title,
        authors=_parse_authors(authors_cell),
        bullets=parse_bullets(summary_cell),
        tags=_parse_tags(tags_cell, line_no),
        github_urls=links["GitHub URLs"],
        hf_urls=links["HuggingFace URLs"],
    )


def _parse_row(text: str, line_no: int, day: date, rank: int) -> Entry:
    row = _read_row(text, line_no)
    paper = Paper(
        arxiv_id=row.arxiv_id,
        title=row.title,
        authors=row.authors,
        version=row.version,
        bullets=row.bullets,
        bullets_source=SummarySource.DIGEST if row.bullets else SummarySource.NONE,
        tags=row.tags,
        tags_source=SummarySource.DIGEST if row.tags else SummarySource.NONE,
        github_urls=row.github_urls,
        hf_urls=row.hf_urls,
    )
    return Entry(paper, Listing(day, SOURCE, rank=rank, row=fix_mojibake(text)))


def _same_columns(cells: list[str]) -> bool:
    return [collapse_ws(cell).lower() for cell in cells] == [name.lower() for name in COLUMNS]


def _continues(row: str, line: str) -> bool:
    """Whether ``line`` continues the table row ``row`` (a cell wrapped onto the next line).

    A row is complete at its 7th unescaped pipe. Before that, a line that does not start with
    ``|`` continues it; one that starts with ``|`` continues it only if the two together
    still hold at most 7 pipes (else it is the next row, and ``row`` lacks a closing pipe
    or is broken), and after the 6th pipe only if it is the closing pipe alone.
    """
    pipes = _pipes(row)
    if pipes > _CELLS or not line.strip() or _HEADING_RE.match(line):
        return False
    if line.lstrip().startswith("|"):
        if pipes == _CELLS:
            return line.strip() == "|"
        return pipes + _pipes(line) <= _CELLS + 1
    return True


def _lines(text: str) -> list[str]:
    """Lines without their ``\\n`` / ``\\r\\n`` ends (other Unicode breaks stay inside)."""
    lines = text.removeprefix("\ufeff").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def parse_markdown_days(text: str) -> list[tuple[date, list[Entry]]]:
    """Every ``## Papers for YYYY-MM-DD`` section of ``text`` with its rows, in document order.

    Sections with no rows (a header-only table, or no table at all) are kept, with an empty
    list. Everything outside those tables is ignored. A row may span several lines (a
    cell's text wrapped onto the next line); each row's text is kept in its listing's
    ``row``. A malformed table raises :class:`InputError` naming the line.
    """
    sections: list[tuple[date, list[Entry]]] = []
    rows: list[Entry] = []
    seen: dict[str, int] = {}  # arXiv id -> line of its row in the current table
    day: date | None = None
    state = "outside"  # "header" (expect the header row), "separator", "rows", "outside"
    lines = _lines(text)
    index = 0
    while index < len(lines):
        line = lines[index]
        line_no = index + 1
        index += 1
        stripped = line.strip()
        heading = _DAY_HEADING_RE.match(line)
        if heading is not None:
            try:
                day = date.fromisoformat(heading[1])
            except ValueError as exc:
                raise InputError(f"line {line_no}: {heading[1]!r} is not a valid date") from exc
            rows, seen = [], {}
            sections.append((day, rows))
            state = "header"
            continue
        if _HEADING_RE.match(line):
            day, state = None, "outside"
            continue
        if state == "outside" or day is None:
            continue
        is_row = stripped.startswith("|")
        if state == "header":
            if not is_row:
                continue  # prose between the heading and its table
            cells = _split_row(stripped)
            if not _same_columns(cells):
                raise InputError(
                    f"line {line_no}: the table for {day.isoformat()} has columns "
                    f"{' | '.join(cells)}; expected {' | '.join(COLUMNS)}"
                )
            state = "separator"
        elif state == "separator":
            cells = _split_row(stripped) if is_row else []
            if len(cells) != _CELLS or not all(_SEPARATOR_CELL_RE.match(cell) for cell in cells):
                raise InputError(
                    f"line {line_no}: expected the table's |---|---| separator row "
                    f"under the header for {day.isoformat()}"
                )
            state = "rows"
        elif state == "rows":
            if not is_row:
                state = "outside"  # the table ended; ignore the rest of the section
                continue
            row = line
            while index < len(lines) and _continues(row, lines[index]):
                row += "\n" + lines[index]
                index += 1
            entry = _parse_row(row, line_no, day, len(rows) + 1)
            first = seen.setdefault(entry.paper.arxiv_id, line_no)
            if first != line_no:
                log.warning(
                    "line %s: %s is listed again on %s (first on line %s); the store keeps "
                    "one row per paper and day, the later one",
                    line_no,
                    entry.paper.arxiv_id,
                    day.isoformat(),
                    first,
                )
            rows.append(entry)
    if state == "separator":
        raise InputError("the last table ends after its header, without a separator row")
    return sections


def parse_markdown(text: str) -> list[Entry]:
    """Every row of every ``## Papers for YYYY-MM-DD`` table in ``text``, in document order.

    Rows get ``Listing(day, "digest", rank=row number)``; days without rows yield nothing.
    """
    return [entry for _, rows in parse_markdown_days(text) for entry in rows]


# --- export -------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return collapse_ws(text).replace("|", "\\|")


def _render_url(url: str) -> str:
    url = re.sub(r"\s", "%20", url.strip())
    depth = 0
    balanced = True
    for char in url:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0 or depth > 1:
            balanced = False
            break
    if not balanced or depth != 0:
        url = url.replace("(", "%28").replace(")", "%29")
    return url


def _render_links(urls: Sequence[str]) -> str:
    links = [f"[Link]({_render_url(url)})" for url in urls if url.strip()]
    return ", ".join(links) if links else EMPTY


def _fresh_cells(paper: Paper) -> list[str]:
    """The six cells for ``paper`` in the seed's style (escaped, without padding)."""
    title = collapse_ws(paper.title) or paper.arxiv_id
    bullets = [collapse_ws(bullet) for bullet in paper.bullets]
    cells = [
        f"[{title}](https://arxiv.org/abs/{paper.arxiv_id})",
        ", ".join(collapse_ws(author) for author in paper.authors if author.strip()) or EMPTY,
        " ".join(f"- {bullet}" for bullet in bullets if bullet) or EMPTY,
        repr([collapse_ws(tag) for tag in paper.tags if tag.strip()]),
        _render_links(paper.github_urls),
        _render_links(paper.hf_urls),
    ]
    return [_escape(cell) for cell in cells]


def _kept_cells(paper: Paper, row: str) -> list[bool]:
    """Which cells of a digest ``row`` still say what the store holds for ``paper``.

    The summary and classification are kept while they come from a digest (a later LLM
    summary replaces them); the other cells while they parse to the stored values.
    """
    try:
        written = _read_row(row, 0, notes=False)
    except InputError:
        return [False] * _CELLS
    if written.arxiv_id != paper.arxiv_id:
        return [False] * _CELLS
    return [
        written.title == collapse_ws(paper.title),
        written.authors == paper.authors,
        paper.bullets_source is SummarySource.DIGEST or written.bullets == paper.bullets,
        paper.tags_source is SummarySource.DIGEST or written.tags == paper.tags,
        written.github_urls == paper.github_urls,
        written.hf_urls == paper.hf_urls,
    ]


def render_row(paper: Paper, row: str | None = None) -> str:
    """One table row for ``paper`` (no trailing newline).

    With ``row`` (the digest row the paper was imported from, see ``Listing.row``), every
    cell that still agrees with the stored paper is written exactly as it was, line wraps
    and spacing included; the others are rendered afresh.
    """
    fresh = _fresh_cells(paper)
    if row is None:
        return "| " + " | ".join(fresh) + " |"
    parts = _split_raw(row)
    if len(parts) - 1 not in (_CELLS, _CELLS + 1) or parts[0].strip():
        return render_row(paper)
    kept = _kept_cells(paper, row)
    if all(kept):
        return row
    cells = [
        raw if keep else f" {new} "
        for raw, keep, new in zip(parts[1 : _CELLS + 1], kept, fresh, strict=True)
    ]
    tail = parts[_CELLS + 1 :] or [""]
    return "|".join([parts[0], *cells, *tail])


def _item_row(item: Paper | Entry) -> str:
    if isinstance(item, Entry):
        return render_row(item.paper, item.listing.row if item.listing else None)
    return render_row(item)


def render_markdown_day(day: date, papers: Sequence[Paper | Entry]) -> str:
    """One day's section, byte for byte in the seed digest's layout (ends with a newline).

    Entries whose listing holds the digest row they came from reproduce it (see
    :func:`render_row`).
    """
    lines = ["", "", f"## Papers for {day.isoformat()}", "", HEADER, SEPARATOR]
    lines.extend(_item_row(item) for item in papers)
    return "\n".join(lines) + "\n"


def render_markdown(days: Sequence[tuple[date, Sequence[Paper | Entry]]]) -> str:
    """Several days' sections, in the order given (a README lists the newest first)."""
    return "".join(render_markdown_day(day, papers) for day, papers in days)


def render_markdown_sections(sections: Sequence[tuple[date, Sequence[Entry]]]) -> str:
    """Export what :func:`parse_markdown_days` returned (empty days included), exactly."""
    return render_markdown(sections)
