"""arXiv API (``export.arxiv.org/api/query``): parse Atom feeds and fetch a day's submissions."""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from urllib.parse import quote, urlencode

import aiohttp
from yarl import URL

from bot.errors import InputError, SourceError
from bot.models import Entry, InvalidPaperId, Listing, Paper, split_arxiv_id
from bot.pacing import WindowLimiter
from bot.sources.http import (
    DEFAULT_POLICY,
    HTTPStatusError,
    RetryPolicy,
    fetch_with_policy,
)
from bot.sources.text import clean_text, dedupe, parse_iso_day

log = logging.getLogger(__name__)

ARXIV_BASE_URL = "http://export.arxiv.org"
SOURCE = "arxiv"
MIN_REQUEST_INTERVAL = 3.0  # arXiv's API terms: no more than one request every three seconds
DEFAULT_PAGE_SIZE = 200

_ATOM = "{http://www.w3.org/2005/Atom}"
_ARXIV = "{http://arxiv.org/schemas/atom}"
_OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"


@dataclass(frozen=True, slots=True)
class AtomPage:
    """One parsed API response: its entries and the paging counters from OpenSearch."""

    entries: tuple[Entry, ...]
    total_results: int | None
    start_index: int
    items_per_page: int | None


def _int_child(root: ET.Element, tag: str) -> int | None:
    node = root.find(tag)
    if node is None or node.text is None:
        return None
    try:
        return int(node.text.strip())
    except ValueError:
        return None


def _text(node: ET.Element | None) -> str:
    return clean_text("".join(node.itertext())) if node is not None else ""


def _is_error_entry(entry: ET.Element) -> bool:
    entry_id = _text(entry.find(f"{_ATOM}id"))
    return _text(entry.find(f"{_ATOM}title")) == "Error" and "/api/errors" in entry_id


def _parse_entry(entry: ET.Element, index: int) -> Paper:
    raw_id = _text(entry.find(f"{_ATOM}id"))
    if not raw_id:
        raise InputError(f"arXiv feed: entry {index} has no <id>")
    try:
        arxiv_id, version = split_arxiv_id(raw_id)
    except InvalidPaperId as exc:
        raise InputError(f"arXiv feed: entry {index} has id {raw_id!r}, not an arXiv id") from exc
    title = _text(entry.find(f"{_ATOM}title"))
    if not title:
        raise InputError(f"arXiv feed: entry {index} ({arxiv_id}) has no title")
    authors = dedupe([_text(a.find(f"{_ATOM}name")) for a in entry.findall(f"{_ATOM}author")])
    primary = entry.find(f"{_ARXIV}primary_category")
    categories = [primary.get("term", "").strip()] if primary is not None else []
    categories += [c.get("term", "").strip() for c in entry.findall(f"{_ATOM}category")]
    comment = _text(entry.find(f"{_ARXIV}comment")) or None
    published = parse_iso_day(_text(entry.find(f"{_ATOM}published")))
    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        authors=authors,
        abstract=_text(entry.find(f"{_ATOM}summary")),
        version=version,
        published=published,
        categories=dedupe(categories),
        comment=comment,
    )


def parse_atom_page(
    data: bytes | str, day: date | None = None, *, rank_offset: int = 0
) -> AtomPage:
    """Parse an arXiv API Atom response, with its paging counters.

    With ``day``, every entry gets ``Listing(day, "arxiv", rank=rank_offset + position)``
    (position 1-based); without it, entries have no listing (e.g. an id lookup).
    An error feed (one entry titled "Error") raises :class:`InputError` with arXiv's message.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line, column = exc.position
        raise InputError(
            f"arXiv feed: not well-formed XML (line {line}, column {column + 1})"
        ) from exc
    if root.tag != f"{_ATOM}feed":
        raise InputError(f"arXiv feed: the root element is <{root.tag}>, not an Atom <feed>")
    elements = root.findall(f"{_ATOM}entry")
    for element in elements:
        if _is_error_entry(element):
            message = _text(element.find(f"{_ATOM}summary")) or "no details given"
            raise InputError(f"arXiv API error: {message}")
    papers = [_parse_entry(element, index) for index, element in enumerate(elements)]
    entries = tuple(
        Entry(paper, Listing(day, SOURCE, rank=rank_offset + position) if day else None)
        for position, paper in enumerate(papers, start=1)
    )
    return AtomPage(
        entries=entries,
        total_results=_int_child(root, f"{_OPENSEARCH}totalResults"),
        start_index=_int_child(root, f"{_OPENSEARCH}startIndex") or 0,
        items_per_page=_int_child(root, f"{_OPENSEARCH}itemsPerPage"),
    )


def parse_atom(data: bytes | str, day: date | None = None) -> list[Entry]:
    """Parse an arXiv API Atom feed into entries (see :func:`parse_atom_page`)."""
    return list(parse_atom_page(data, day).entries)


def build_search_query(categories: Sequence[str], day: date) -> str:
    """``(cat:A OR cat:B) AND submittedDate:[DAY0000 TO DAY2359]``."""
    if not categories:
        raise InputError("arXiv query: give at least one category (e.g. cs.CL)")
    for category in categories:
        if not category or any(ch.isspace() or ch in '():[]"' for ch in category):
            raise InputError(f"arXiv query: {category!r} is not an arXiv category")
    cats = " OR ".join(f"cat:{category}" for category in categories)
    stamp = day.strftime("%Y%m%d")
    return f"({cats}) AND submittedDate:[{stamp}0000 TO {stamp}2359]"


def build_query_url(
    categories: Sequence[str],
    day: date,
    start: int = 0,
    max_results: int = DEFAULT_PAGE_SIZE,
    *,
    base_url: str = ARXIV_BASE_URL,
) -> str:
    """The API URL for one page of a day's submissions in ``categories``, oldest first."""
    params = {
        "search_query": build_search_query(categories, day),
        "start": str(start),
        "max_results": str(max_results),
        "sortBy": "submittedDate",
        "sortOrder": "ascending",
    }
    return f"{base_url.rstrip('/')}/api/query?{urlencode(params, quote_via=quote, safe=':')}"


def _api_error_from_body(body: str) -> str | None:
    try:
        parse_atom_page(body)
    except InputError as exc:
        if str(exc).startswith("arXiv API error:"):
            return str(exc)
    return None


async def fetch_arxiv_day(
    session: aiohttp.ClientSession,
    categories: Sequence[str],
    day: date,
    base_url: str = ARXIV_BASE_URL,
    *,
    limiter: WindowLimiter | None = None,
    max_results: int = DEFAULT_PAGE_SIZE,
    max_pages: int = 50,
    empty_page_retries: int = 2,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> list[Entry]:
    """Fetch every submission of ``day`` in ``categories``, ``max_results`` a page, ranked.

    Pass one shared ``limiter`` for all arXiv calls (a fresh one only spaces this call's own
    requests). arXiv sometimes answers a page with no entries although more exist: such a
    page is asked again up to ``empty_page_retries`` times, then :class:`SourceError` is
    raised rather than returning a partial day.
    """
    limiter = limiter or WindowLimiter(1, MIN_REQUEST_INTERVAL, sleep=policy.sleep)
    entries: list[Entry] = []
    seen: set[str] = set()
    start = 0
    total = 0
    empty_pages = 0
    for _ in range(max_pages):
        url = build_query_url(categories, day, start, max_results, base_url=base_url)
        try:
            body = await fetch_with_policy(session, URL(url, encoded=True), policy, limiter=limiter)
        except HTTPStatusError as exc:
            api_error = _api_error_from_body(exc.body)
            if api_error:
                raise SourceError(f"{api_error} (HTTP {exc.status} from {url})") from exc
            raise
        try:
            page = parse_atom_page(body, day, rank_offset=start)
        except InputError as exc:
            raise SourceError(f"unusable response from {url}: {exc}") from exc
        total = page.total_results if page.total_results is not None else 0
        if not page.entries:
            if start < total and empty_pages < empty_page_retries:
                empty_pages += 1
                log.warning("arXiv returned an empty page at %d of %d; asking again", start, total)
                continue
            if start < total:
                raise SourceError(
                    f"arXiv returned no entries at {start} of {total} for {day.isoformat()} "
                    f"after {empty_pages + 1} tries; not using a partial day"
                )
            break
        empty_pages = 0
        for entry in page.entries:
            if entry.paper.arxiv_id not in seen:
                seen.add(entry.paper.arxiv_id)
                entries.append(entry)
        start += len(page.entries)
        if start >= total:
            break
    else:
        raise SourceError(
            f"arXiv listing for {day.isoformat()} still incomplete after {max_pages} pages "
            f"({start} of {total}); raise max_pages or max_results"
        )
    ranked = [
        Entry(entry.paper, Listing(day, SOURCE, rank=rank))
        for rank, entry in enumerate(entries, start=1)
    ]
    log.info("arXiv %s %s: %d papers", day.isoformat(), ",".join(categories), len(ranked))
    return ranked
