"""The record types that flow through paperbot.

A :class:`Paper` is keyed by its arXiv id without version. Every source produces
:class:`Entry` objects (a paper plus, optionally, the day's listing it came from);
the store merges papers with :func:`merge_papers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date
from enum import IntEnum

# New-style ids (0704.0001 .. 2501.06425, 4 or 5 digits after the dot) and old-style
# ids (quant-ph/0210005, math.GT/0309136), each optionally followed by a version.
_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{7}"
_FULL_ID_RE = re.compile(rf"^(?:arxiv:)?(?P<id>{_NEW_ID}|{_OLD_ID})(?:v(?P<version>\d+))?$", re.I)


class InvalidPaperId(ValueError):
    """Raised when a string is not an arXiv id (or a URL containing one)."""


def split_arxiv_id(text: str) -> tuple[str, int | None]:
    """Return ``(id_without_version, version)`` for an id, ``arXiv:`` id, or arXiv/HF URL.

    >>> split_arxiv_id("arXiv:2501.06425v2")
    ('2501.06425', 2)
    """
    candidate = text.strip()
    match = _FULL_ID_RE.match(candidate)
    if match is None:
        url = re.match(
            r"^(?:https?://)?(?:www\.|export\.)?(?:arxiv\.org/(?:abs|pdf|html)/|"
            r"(?:huggingface\.co|hf\.co)/papers/)(?P<rest>[^?#]+?)(?:\.pdf)?/?(?:[?#].*)?$",
            candidate,
            re.I,
        )
        if url is None:
            raise InvalidPaperId(f"not an arXiv id or paper URL: {text!r}")
        match = _FULL_ID_RE.match(url.group("rest"))
        if match is None:
            raise InvalidPaperId(f"not an arXiv id or paper URL: {text!r}")
    version = match.group("version")
    return match.group("id"), int(version) if version else None


class SummarySource(IntEnum):
    """Where a paper's bullets / tags came from; a higher value is richer and wins a merge."""

    NONE = 0
    ABSTRACT = 1  # derived from the abstract's leading sentences / keyword mapping
    HF = 2  # Hugging Face ai_summary
    DIGEST = 3  # an imported markdown digest (written by an LLM or a person)
    LLM = 4  # this project's LLM module


@dataclass(frozen=True, slots=True)
class Paper:
    """One paper. Tuples keep it hashable and immutable."""

    arxiv_id: str
    title: str
    authors: tuple[str, ...] = ()
    abstract: str = ""
    version: int | None = None
    published: date | None = None  # arXiv submission date
    categories: tuple[str, ...] = ()  # arXiv categories, primary first
    bullets: tuple[str, ...] = ()  # short summary bullets
    bullets_source: SummarySource = SummarySource.NONE
    tags: tuple[str, ...] = ()  # labels from bot.classify.LABELS
    tags_source: SummarySource = SummarySource.NONE
    keywords: tuple[str, ...] = ()  # e.g. HF ai_keywords
    github_urls: tuple[str, ...] = ()
    hf_urls: tuple[str, ...] = ()  # Hugging Face models / datasets / Spaces
    project_url: str | None = None
    comment: str | None = None
    upvotes: int | None = None  # the highest upvote count seen
    github_stars: int | None = None

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv_id}"

    @property
    def hf_paper_url(self) -> str:
        return f"https://huggingface.co/papers/{self.arxiv_id}"


@dataclass(frozen=True, slots=True)
class Listing:
    """A paper's appearance in one day's listing of one source."""

    day: date
    source: str  # "hf", "arxiv", "digest", "jsonl"
    rank: int | None = None  # 1-based position in that day's listing
    upvotes: int | None = None
    # A markdown digest's table row exactly as written (lines joined by "\n"), so that the
    # export reproduces it; None for every other source.
    row: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """What a source yields: a paper and, when known, the listing it came from."""

    paper: Paper
    listing: Listing | None = None


@dataclass(frozen=True, slots=True)
class DigestFilters:
    """Per-channel selection rules for a day's digest."""

    include_tags: tuple[str, ...] = ()
    exclude_tags: tuple[str, ...] = ()
    include_keywords: tuple[str, ...] = ()
    exclude_keywords: tuple[str, ...] = ()
    min_upvotes: int = 0
    max_papers: int = 25


def _richer_text(old: str, new: str) -> str:
    return new if len(new.strip()) > len(old.strip()) else old


def _union(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[str, ...]:
    seen = dict.fromkeys(old)
    seen.update(dict.fromkeys(new))
    return tuple(seen)


def _max_optional(old: int | None, new: int | None) -> int | None:
    if old is None:
        return new
    if new is None:
        return old
    return max(old, new)


def merge_papers(old: Paper, new: Paper) -> Paper:
    """Merge a newly ingested record into the stored one.

    A later source fills missing fields and never erases a richer one; a newer arXiv
    version replaces the versioned metadata (title, authors, abstract).
    """
    if old.arxiv_id != new.arxiv_id:
        raise ValueError(f"cannot merge {old.arxiv_id} with {new.arxiv_id}")
    newer_version = new.version is not None and (old.version is None or new.version > old.version)
    if newer_version:
        title = new.title or old.title
        authors = new.authors or old.authors
        abstract = new.abstract or old.abstract
    else:
        title = old.title or new.title
        authors = old.authors if len(old.authors) >= len(new.authors) else new.authors
        abstract = _richer_text(old.abstract, new.abstract)
    bullets, bullets_source = old.bullets, old.bullets_source
    if new.bullets and (new.bullets_source > old.bullets_source or not old.bullets):
        bullets, bullets_source = new.bullets, new.bullets_source
    tags, tags_source = old.tags, old.tags_source
    if new.tags and (new.tags_source > old.tags_source or not old.tags):
        tags, tags_source = new.tags, new.tags_source
    return replace(
        old,
        title=title,
        authors=authors,
        abstract=abstract,
        version=_max_optional(old.version, new.version),
        published=old.published or new.published,
        categories=old.categories or new.categories,
        bullets=bullets,
        bullets_source=bullets_source,
        tags=tags,
        tags_source=tags_source,
        keywords=old.keywords or new.keywords,
        github_urls=_union(old.github_urls, new.github_urls),
        hf_urls=_union(old.hf_urls, new.hf_urls),
        project_url=old.project_url or new.project_url,
        comment=old.comment or new.comment,
        upvotes=_max_optional(old.upvotes, new.upvotes),
        github_stars=_max_optional(old.github_stars, new.github_stars),
    )


def search_texts(paper: Paper) -> tuple[str, str, str]:
    """The authors, summary and tags texts the store's FTS5 columns hold for ``paper`` (the
    subscription matcher indexes a day with the very same texts)."""
    return ", ".join(paper.authors), " ".join(paper.bullets), ", ".join(paper.tags)


TermTokens = tuple[tuple[str, tuple[str, ...]], ...]  # (term FTS text, its stemmed tokens)


@dataclass(frozen=True, slots=True)
class Subscription:
    """One subscriber's interest in a tag, a keyword query or an author."""

    guild_id: int
    subscriber_id: int
    kind: str  # "tag" | "keyword" | "author"
    value: str  # as typed
    norm: str  # canonical tag name / canonical query / author words, lowercased
    subscriber_type: str = "user"  # "user" | "role"
    terms: TermTokens = ()  # each query term's FTS text with its stemmed tokens
    feed_id: int | None = None  # None: any feed of the guild (users only)
    dm: bool = False
    id: int | None = None
    created_at: str | None = None

    @property
    def label(self) -> str:
        """How the subscription is shown: tag `Robotics`, keyword `diffusion "video models"`.

        Built from ``norm`` (canonical, no mentions or markdown beyond quotes), not ``value``.
        """
        return f"{self.kind} `{self.norm.replace('`', '')}`"


@dataclass(frozen=True, slots=True)
class DmStatus:
    """Why a user's DMs are not being sent."""

    user_id: int
    closed: bool
    closed_at: str | None
    last_error: str | None
