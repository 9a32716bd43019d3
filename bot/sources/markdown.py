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
from datetime import date

from bot.errors import InputError
from bot.models import Entry, InvalidPaperId, Listing, Paper, SummarySource, split_arxiv_id
from bot.sources.text import clean_text, collapse_ws, dedupe, fix_mojibake, split_sentences

log = logging.getLogger(__name__)

SOURCE = "digest"
COLUMNS = ("Title", "Authors", "Summary", "Classification", "GitHub URLs", "HuggingFace URLs")
HEADER = "| " + " | ".join(COLUMNS) + " |"
SEPARATOR = "|-------|---------|---------|----------------|-------------|-----------------|"
EMPTY = "N/A"

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


def _split_row(line: str) -> list[str]:
    """Split a table row on unescaped ``|``; ``\\|`` becomes ``|`` inside the cell."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    cells: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body) and body[i + 1] == "|":
            current.append("|")
            i += 2
            continue
        if char == "|":
            cells.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    tail = "".join(current)
    if tail.strip():  # a row without its closing pipe
        cells.append(tail)
    return [cell.strip() for cell in cells]


def _normalise_url(url: str) -> str:
    url = url.strip()
    if url.lower().startswith("www.") or (
        "://" not in url and _SCHEMELESS_RE.match(url) is not None
    ):
        url = "https://" + url
    return url


def parse_links(cell: str) -> tuple[str, ...]:
    """``[Link](url), [Link](url)`` (or bare URLs) → URLs; ``N/A`` or empty → ()."""
    text = cell.strip()
    if not text or text.upper() == EMPTY:
        return ()
    urls = [match["url"] for match in _LINK_RE.finditer(text)]
    if not urls:
        urls = [url.rstrip(".,;") for url in _BARE_URL_RE.findall(text)]
    if not urls:
        # e.g. a bare "github.com/org/repo"
        urls = [part for part in re.split(r"[\s,]+", text) if _SCHEMELESS_RE.match(part)]
    return dedupe([_normalise_url(url) for url in urls])


def parse_bullets(cell: str) -> tuple[str, ...]:
    """`` - a - b`` (or ``• a • b``) → ``("a", "b")``; prose without markers → its sentences."""
    text = collapse_ws(fix_mojibake(cell))
    if not text or text.upper() == EMPTY:
        return ()
    if _BULLET_MARK_RE.search(text) is None:
        return split_sentences(text)
    return dedupe([part.strip() for part in _BULLET_MARK_RE.split(text)])


def _parse_tags(cell: str, line_no: int) -> tuple[str, ...]:
    text = cell.strip()
    if not text or text.upper() == EMPTY:
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


def _parse_row(cells: list[str], line_no: int, day: date, rank: int) -> Entry:
    if len(cells) != len(COLUMNS):
        raise InputError(
            f"line {line_no}: expected {len(COLUMNS)} cells ({' | '.join(COLUMNS)}), "
            f"found {len(cells)} (is a '|' inside a cell not escaped as '\\|'?)"
        )
    title_cell, authors_cell, summary_cell, tags_cell, github_cell, hf_cell = cells
    match = _TITLE_CELL_RE.match(title_cell)
    if match is None:
        raise InputError(
            f"line {line_no}: the Title cell is not [title](https://arxiv.org/abs/ID): "
            f"{title_cell[:80]!r}"
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
    authors_text = clean_text(authors_cell)
    authors = (
        ()
        if authors_text.upper() == EMPTY
        else dedupe([author.strip() for author in authors_text.split(",")])
    )
    bullets = parse_bullets(summary_cell)
    tags = _parse_tags(tags_cell, line_no)
    paper = Paper(
        arxiv_id=arxiv_id,
        title=title,
        authors=authors,
        version=version,
        bullets=bullets,
        bullets_source=SummarySource.DIGEST if bullets else SummarySource.NONE,
        tags=tags,
        tags_source=SummarySource.DIGEST if tags else SummarySource.NONE,
        github_urls=parse_links(github_cell),
        hf_urls=parse_links(hf_cell),
    )
    return Entry(paper, Listing(day, SOURCE, rank=rank))


def _same_columns(cells: list[str]) -> bool:
    return [collapse_ws(cell).lower() for cell in cells] == [name.lower() for name in COLUMNS]


def parse_markdown_days(text: str) -> list[tuple[date, list[Entry]]]:
    """Every ``## Papers for YYYY-MM-DD`` section of ``text`` with its rows, in document order.

    Sections with no rows (a header-only table, or no table at all) are kept, with an empty
    list. Everything outside those tables is ignored. A malformed table raises
    :class:`InputError` naming the line.
    """
    sections: list[tuple[date, list[Entry]]] = []
    rows: list[Entry] = []
    day: date | None = None
    state = "outside"  # "header" (expect the header row), "separator", "rows", "outside"
    for line_no, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.lstrip("\ufeff")
        stripped = line.strip()
        heading = _DAY_HEADING_RE.match(line)
        if heading is not None:
            try:
                day = date.fromisoformat(heading[1])
            except ValueError as exc:
                raise InputError(f"line {line_no}: {heading[1]!r} is not a valid date") from exc
            rows = []
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
            if len(cells) != len(COLUMNS) or not all(
                _SEPARATOR_CELL_RE.match(cell) for cell in cells
            ):
                raise InputError(
                    f"line {line_no}: expected the table's |---|---| separator row "
                    f"under the header for {day.isoformat()}"
                )
            state = "rows"
        elif state == "rows":
            if not is_row:
                state = "outside"  # the table ended; ignore the rest of the section
                continue
            rows.append(_parse_row(_split_row(stripped), line_no, day, len(rows) + 1))
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


def render_row(paper: Paper) -> str:
    """One table row for ``paper`` (no trailing newline)."""
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
    return "| " + " | ".join(_escape(cell) for cell in cells) + " |"


def render_markdown_day(day: date, papers: Sequence[Paper]) -> str:
    """One day's section, byte for byte in the seed digest's layout (ends with a newline)."""
    lines = ["", "", f"## Papers for {day.isoformat()}", "", HEADER, SEPARATOR]
    lines.extend(render_row(paper) for paper in papers)
    return "\n".join(lines) + "\n"


def render_markdown(days: Sequence[tuple[date, Sequence[Paper]]]) -> str:
    """Several days' sections, in the order given (a README lists the newest first)."""
    return "".join(render_markdown_day(day, papers) for day, papers in days)


def render_markdown_sections(sections: Sequence[tuple[date, Sequence[Entry]]]) -> str:
    """Export what :func:`parse_markdown_days` returned (empty days included)."""
    return render_markdown([(day, [entry.paper for entry in rows]) for day, rows in sections])
