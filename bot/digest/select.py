"""Choose and order a day's papers for one channel (pure: no I/O, no Discord)."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from bot.digest.classify import classify
from bot.labels import label_family, normalize_label
from bot.models import DigestFilters, Paper


def effective_tags(paper: Paper) -> tuple[str, ...]:
    """The paper's tags, or the keyword classifier's when it has none."""
    if paper.tags:
        return paper.tags
    return classify(paper.title, paper.abstract, paper.categories, paper.keywords)


def tag_key(tag: str) -> str:
    """How tags are compared: the vocabulary label if it is one, casefolded."""
    return (normalize_label(tag) or " ".join(tag.split())).casefold()


def paper_tag_keys(paper: Paper) -> set[str]:
    """A paper's tags and their taxonomy groups, so "Computer Vision" matches "Text-to-Image"."""
    keys: set[str] = set()
    for tag in effective_tags(paper):
        label = normalize_label(tag)
        family = label_family(label) if label else (tag,)
        keys.update(tag_key(member) for member in family)
    return keys


@lru_cache(maxsize=256)
def _phrase_re(phrase: str) -> re.Pattern[str] | None:
    """A case-insensitive whole-word pattern for a keyword or phrase (any whitespace between).

    Each word also matches its plural ("reward model" finds "reward models").
    """
    words = phrase.split()
    if not words:
        return None
    body = r"\s+".join(re.escape(word) + r"(?:e?s)?" for word in words)
    return re.compile(rf"(?<!\w){body}(?!\w)", re.IGNORECASE)


def _searchable_text(paper: Paper) -> str:
    return "\n".join((paper.title, paper.abstract, *paper.bullets, *paper.keywords))


def matches_keywords(paper: Paper, phrases: Iterable[str]) -> bool:
    """True if any phrase occurs (whole words, any case) in title, abstract, bullets, keywords."""
    patterns = [pattern for phrase in phrases if (pattern := _phrase_re(phrase)) is not None]
    if not patterns:
        return False
    text = _searchable_text(paper)
    return any(pattern.search(text) for pattern in patterns)


def _has_terms(terms: Sequence[str]) -> bool:
    return any(term.strip() for term in terms)


def passes_filters(paper: Paper, filters: DigestFilters) -> bool:
    """Apply one channel's tag, keyword and upvote rules to one paper (max_papers aside)."""
    if (paper.upvotes or 0) < filters.min_upvotes:
        return False
    if _has_terms(filters.include_tags) or _has_terms(filters.exclude_tags):
        keys = paper_tag_keys(paper)
        include = {tag_key(tag) for tag in filters.include_tags if tag.strip()}
        exclude = {tag_key(tag) for tag in filters.exclude_tags if tag.strip()}
        if include and not keys & include:
            return False
        if keys & exclude:
            return False
    if _has_terms(filters.include_keywords) and not matches_keywords(
        paper, filters.include_keywords
    ):
        return False
    return not matches_keywords(paper, filters.exclude_keywords)


def order_papers(papers: Sequence[Paper], ranks: Mapping[str, int] | None = None) -> list[Paper]:
    """Upvotes (None counts as 0) descending, then listing rank, then input order."""
    ranks = ranks or {}

    def key(item: tuple[int, Paper]) -> tuple[int, int, int]:
        index, paper = item
        return (-(paper.upvotes or 0), ranks.get(paper.arxiv_id, index + 1), index)

    return [paper for _, paper in sorted(enumerate(papers), key=key)]


def select_for_channel(
    papers: Sequence[Paper], filters: DigestFilters, ranks: Mapping[str, int] | None = None
) -> list[Paper]:
    """The papers one channel gets: filtered, ordered (see :func:`order_papers`), capped.

    ``papers`` come in listing order; ``ranks`` (arXiv id -> 1-based rank) overrides it.
    A paper listed twice is kept once. ``max_papers`` <= 0 selects nothing.
    """
    unique: dict[str, Paper] = {}
    for paper in papers:
        unique.setdefault(paper.arxiv_id, paper)
    ordered = order_papers(list(unique.values()), ranks)
    chosen = [paper for paper in ordered if passes_filters(paper, filters)]
    return chosen[: max(filters.max_papers, 0)]


def top_tags(papers: Iterable[Paper], n: int = 3) -> list[tuple[str, int]]:
    """The ``n`` most frequent tags as ``(tag, count)``; ties go to the tag seen first."""
    counts: Counter[str] = Counter()
    for paper in papers:
        counts.update(dict.fromkeys(effective_tags(paper), 1))
    return counts.most_common(max(n, 0))
