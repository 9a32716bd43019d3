"""Hugging Face Daily Papers: parse ``/api/daily_papers`` and ``/api/papers/{id}``, and fetch them.

The parsers are pure; :func:`fetch_hf_day` and :func:`fetch_hf_paper_details` do the network
part and turn every failure (including an unusable response) into :class:`SourceError`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date
from typing import Any

import aiohttp

from bot.errors import InputError, SourceError
from bot.models import Entry, InvalidPaperId, Listing, Paper, SummarySource, split_arxiv_id
from bot.sources.http import DEFAULT_POLICY, HTTPStatusError, RetryPolicy, fetch_with_policy
from bot.sources.text import clean_text, collapse_ws, dedupe, parse_iso_day, split_sentences

log = logging.getLogger(__name__)

HF_BASE_URL = "https://huggingface.co"
SOURCE = "hf"


def _load_json(data: bytes | str, label: str) -> Any:
    if isinstance(data, bytes | bytearray):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"{label}: not UTF-8 text (byte {exc.start})") from exc
    data = data.lstrip("\ufeff")
    if not data.strip():
        raise InputError(f"{label}: empty response, expected JSON")
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        # An error at the very end of the text: the file was cut short (a partial download).
        cut = "truncated: " if exc.pos >= len(data.rstrip()) else ""
        prefix = f"{label}: " if label else ""
        raise InputError(
            f"{prefix}not valid JSON ({cut}{exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc


def _describe(value: object) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "a boolean", list: "a list"}
    if value is None:
        return "null"
    return names.get(type(value), type(value).__name__)


def _string_entry_hint(text: str) -> str:
    stripped = text.lstrip()
    if stripped.startswith(("{'", "[{'")) or "': " in stripped[:200]:
        return " (file looks like Python repr, not JSON)"
    if stripped.startswith(('{"', '[{"')):
        return " (entries look like JSON encoded twice)"
    return ""


def _entry_list(payload: Any, label: str) -> list[Any]:
    if isinstance(payload, list):
        return payload
    if isinstance(payload, dict):
        # Some archives wrap the API response: {"status": ..., "date": ..., "data": [...]}.
        wrapped = payload.get("data")
        if isinstance(wrapped, list):
            return wrapped
        error = payload.get("error")
        if isinstance(error, str) and error.strip():
            raise InputError(f"{label}: the response is an error: {collapse_ws(error)[:200]}")
        keys = ", ".join(sorted(map(str, payload))[:8]) or "none"
        raise InputError(f"{label}: expected a JSON array of papers, got an object (keys: {keys})")
    raise InputError(f"{label}: expected a JSON array of papers, got {_describe(payload)}")


def _as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _as_str(value: object) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def _authors(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    names: list[str] = []
    for author in value:
        if isinstance(author, str):
            names.append(clean_text(author))
        elif isinstance(author, dict):
            name = author.get("name")
            if not isinstance(name, str) or not name.strip():
                user = author.get("user")
                name = user.get("fullname") if isinstance(user, dict) else None
            if isinstance(name, str):
                names.append(clean_text(name))
    return dedupe(names)


def _keywords(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return dedupe([clean_text(item) for item in value if isinstance(item, str)])


def _url(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    url = value.strip()
    return url or None


def _hf_fields(paper: Mapping[str, Any]) -> dict[str, Any]:
    """The optional enrichment fields shared by daily_papers and /api/papers/{id}."""
    fields: dict[str, Any] = {}
    summary = paper.get("ai_summary")
    if isinstance(summary, str) and summary.strip():
        fields["bullets"] = split_sentences(clean_text(summary))
        fields["bullets_source"] = SummarySource.HF
    keywords = _keywords(paper.get("ai_keywords"))
    if keywords:
        fields["keywords"] = keywords
    repo = _url(paper.get("githubRepo"))
    if repo:
        fields["github_urls"] = (repo,)
    stars = _as_int(paper.get("githubStars"))
    if stars is not None:
        fields["github_stars"] = stars
    project = _url(paper.get("projectPage"))
    if project:
        fields["project_url"] = project
    upvotes = _as_int(paper.get("upvotes"))
    if upvotes is not None:
        fields["upvotes"] = upvotes
    return fields


def _parse_item(item: object, index: int, label: str) -> Paper:
    where = f"{label}: entry {index}"
    if isinstance(item, str):
        raise InputError(f"{where} is a string, not an object{_string_entry_hint(item)}")
    if not isinstance(item, dict):
        raise InputError(f"{where} is {_describe(item)}, not an object")
    paper = item.get("paper")
    if paper is None and "id" in item:
        paper = item  # a bare paper object, as /api/papers/{id} returns
    if not isinstance(paper, dict):
        raise InputError(f"{where} has no 'paper' object")
    raw_id = paper.get("id")
    if not isinstance(raw_id, str) or not raw_id.strip():
        raise InputError(f"{where} has no paper id")
    try:
        arxiv_id, version = split_arxiv_id(raw_id)
    except InvalidPaperId as exc:
        raise InputError(f"{where}: paper id {raw_id!r} is not an arXiv id") from exc
    title = _as_str(paper.get("title")) or _as_str(item.get("title"))
    if not title:
        raise InputError(f"{where} ({arxiv_id}) has no title")
    abstract = _as_str(paper.get("summary")) or _as_str(item.get("summary"))
    return Paper(
        arxiv_id=arxiv_id,
        title=title,
        authors=_authors(paper.get("authors")),
        abstract=abstract,
        version=version,
        published=parse_iso_day(paper.get("publishedAt")),
        **_hf_fields(paper),
    )


def parse_daily_papers(data: bytes | str, day: date) -> list[Entry]:
    """Parse a ``GET /api/daily_papers?date=DAY`` response into that day's listing.

    Entries are ranked 1.. by upvotes, highest first (ties keep the response's order).
    All or nothing: any malformed entry raises :class:`InputError` naming it.
    """
    label = f"hf_daily {day.isoformat()}"
    items = _entry_list(_load_json(data, label), label)
    papers = [_parse_item(item, index, label) for index, item in enumerate(items)]
    order = sorted(range(len(papers)), key=lambda i: -(papers[i].upvotes or 0))
    return [
        Entry(papers[i], Listing(day, SOURCE, rank=rank, upvotes=papers[i].upvotes))
        for rank, i in enumerate(order, start=1)
    ]


def check_json(data: bytes | str, label: str) -> None:
    """Raise :class:`InputError` (truncated or invalid, with line and column) unless JSON."""
    _load_json(data, label)


def listing_day_hint(data: bytes | str) -> date | None:
    """Guess the listing day of a saved daily_papers response that has no date in its name.

    The archive wrapper's ``date`` wins; then the most common ``paper.submittedOnDailyAt`` day;
    then the latest top-level ``publishedAt`` day. None when the data has none of them.
    """
    try:
        payload = _load_json(data, "hf_daily")
    except InputError:
        return None
    if isinstance(payload, dict):
        wrapped_day = parse_iso_day(payload.get("date"))
        if wrapped_day is not None:
            return wrapped_day
        payload = payload.get("data")
    if not isinstance(payload, list):
        return None
    submitted: dict[date, int] = {}
    published: list[date] = []
    for item in payload:
        if not isinstance(item, dict):
            continue
        paper = item.get("paper") if isinstance(item.get("paper"), dict) else {}
        day = parse_iso_day(paper.get("submittedOnDailyAt"))
        if day is not None:
            submitted[day] = submitted.get(day, 0) + 1
        day = parse_iso_day(item.get("publishedAt"))
        if day is not None:
            published.append(day)
    if submitted:
        return max(submitted, key=lambda d: (submitted[d], d))
    return max(published) if published else None


_REPO_KINDS = (("models", ""), ("datasets", "datasets/"), ("spaces", "spaces/"))


def _repo_urls(payload: Mapping[str, Any], max_per_kind: int) -> list[str]:
    urls: list[str] = []
    for key, prefix in _REPO_KINDS:
        items = payload.get(key)
        if not isinstance(items, list):
            continue
        count = 0
        for item in items:
            repo_id = (item.get("id") or item.get("repoId")) if isinstance(item, dict) else item
            if not isinstance(repo_id, str) or not repo_id.strip() or " " in repo_id.strip():
                continue
            urls.append(f"{HF_BASE_URL}/{prefix}{repo_id.strip().strip('/')}")
            count += 1
            if count >= max_per_kind:
                break
    return urls


def _as_mapping(data: bytes | str | Mapping[str, Any] | None, label: str) -> Mapping[str, Any]:
    if data is None:
        return {}
    payload = data if isinstance(data, Mapping) else _load_json(data, label)
    if isinstance(payload, Mapping) and isinstance(payload.get("paper"), Mapping):
        # {"paper": {...}, ...}: keep the outer keys (linked repos may sit there).
        merged = dict(payload["paper"])
        merged.update({k: v for k, v in payload.items() if k != "paper"})
        payload = merged
    if not isinstance(payload, Mapping):
        raise InputError(f"{label}: expected a JSON object, got {_describe(payload)}")
    return payload


def parse_paper_details(
    paper_data: bytes | str | Mapping[str, Any] | None,
    repos_data: bytes | str | Mapping[str, Any] | None = None,
    *,
    arxiv_id: str | None = None,
    max_per_kind: int = 10,
) -> Paper:
    """Parse ``/api/papers/{id}`` (and optionally ``/api/arxiv/{id}/repos``) into a partial Paper.

    The result is meant for :func:`bot.models.merge_papers`: fields the responses lack stay
    empty. Linked models, datasets and Spaces (lists of ``{"id": ...}`` or of plain ids under
    ``models``/``datasets``/``spaces``, in either response) become Hugging Face URLs, at most
    ``max_per_kind`` of each kind, in the response's order.
    """
    label = f"hf paper {arxiv_id or '?'}"
    paper = _as_mapping(paper_data, label)
    repos = _as_mapping(repos_data, f"{label} repos")
    raw_id = paper.get("id") if isinstance(paper.get("id"), str) else arxiv_id
    if not raw_id:
        raise InputError(f"{label}: no paper id in the response and none given")
    try:
        paper_id, version = split_arxiv_id(raw_id)
    except InvalidPaperId as exc:
        raise InputError(f"{label}: paper id {raw_id!r} is not an arXiv id") from exc
    fields = _hf_fields(paper)
    hf_urls = dedupe(_repo_urls(paper, max_per_kind) + _repo_urls(repos, max_per_kind))
    return Paper(
        arxiv_id=paper_id,
        title=_as_str(paper.get("title")),
        authors=_authors(paper.get("authors")),
        abstract=_as_str(paper.get("summary")),
        version=version,
        published=parse_iso_day(paper.get("publishedAt")),
        hf_urls=hf_urls,
        **fields,
    )


async def fetch_hf_day(
    session: aiohttp.ClientSession,
    day: date,
    base_url: str = HF_BASE_URL,
    *,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> list[Entry]:
    """Fetch and parse one day of Daily Papers; an empty day gives an empty list."""
    url = f"{base_url.rstrip('/')}/api/daily_papers"
    try:
        body = await fetch_with_policy(session, url, policy, params={"date": day.isoformat()})
    except HTTPStatusError as exc:
        if exc.status == 400:
            raise SourceError(
                f"Hugging Face has no daily papers listing for {day.isoformat()} "
                f"(HTTP 400 from {exc.url})"
            ) from exc
        raise
    try:
        entries = parse_daily_papers(body, day)
    except InputError as exc:
        raise SourceError(f"unusable response from {url}: {exc}") from exc
    log.info("hf_daily %s: %d papers", day.isoformat(), len(entries))
    return entries


async def fetch_hf_paper_details(
    session: aiohttp.ClientSession,
    arxiv_id: str,
    base_url: str = HF_BASE_URL,
    *,
    include_repos: bool = True,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> Paper:
    """Fetch ``/api/papers/{id}`` and (``include_repos``) ``/api/arxiv/{id}/repos`` as one Paper.

    A paper Hugging Face does not know raises :class:`SourceError`; a failing repos lookup
    only loses the linked repos (logged).
    """
    try:
        paper_id, _ = split_arxiv_id(arxiv_id)
    except InvalidPaperId as exc:
        raise InputError(str(exc)) from exc
    base = base_url.rstrip("/")
    try:
        paper_body = await fetch_with_policy(session, f"{base}/api/papers/{paper_id}", policy)
    except HTTPStatusError as exc:
        if exc.status == 404:
            raise SourceError(f"Hugging Face has no page for paper {paper_id}") from exc
        raise
    repos_body: bytes | None = None
    if include_repos:
        try:
            repos_body = await fetch_with_policy(
                session, f"{base}/api/arxiv/{paper_id}/repos", policy
            )
        except SourceError as exc:
            log.warning("linked repos of %s unavailable: %s", paper_id, exc)
        if repos_body is not None:
            try:
                _as_mapping(repos_body, f"hf paper {paper_id} repos")
            except InputError as exc:
                log.warning("ignoring linked repos of %s: %s", paper_id, exc)
                repos_body = None
    try:
        return parse_paper_details(paper_body, repos_body, arxiv_id=paper_id)
    except InputError as exc:
        raise SourceError(f"unusable response from Hugging Face for {paper_id}: {exc}") from exc
