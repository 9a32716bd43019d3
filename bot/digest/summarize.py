"""Summary bullets and tags without an LLM: sentence splitting and the keyword classifier."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import fields

from bot.digest.classify import classify
from bot.models import Paper, SummarySource
from bot.text import one_line, truncate

MAX_BULLET_CHARS = 300
ABSTRACT_BULLETS = 4

# Words that end with a period but do not end a sentence (compared lowercased, without the dot).
ABBREVIATIONS: frozenset[str] = frozenset(
    {
        "al", "approx", "cf", "e.g", "eg", "eq", "eqs", "etc", "fig", "figs", "i.e", "ie",
        "incl", "no", "nos", "resp", "sec", "secs", "sect", "tab", "viz", "vs", "w.r.t",
        "dr", "mr", "mrs", "ms", "prof", "st", "jr", "ref", "refs", "ch", "app", "def",
        "thm", "lemma", "prop", "vol", "pp", "ed", "eds", "u.s", "u.k", "e.u", "a.k.a",
    }
)  # fmt: skip

# A candidate boundary: terminal punctuation, optional closing quotes/brackets, whitespace, then
# something that can start a sentence (a capital, a digit, an opening quote/bracket, LaTeX).
_BOUNDARY_RE = re.compile(r"(?P<end>[.!?])[\"'”’)\]]*(?P<space>\s+)(?=[A-Z0-9\"'“‘(\[$\\])")
_LAST_WORD_RE = re.compile(r"(\S+)\.[\"'”’)\]]*$")
_AVAILABILITY_RE = re.compile(
    r"^(?:our |the |all )?(?:code|data|dataset|models?|project page|source code|demo|"
    r"weights|implementation|resources)\b.{0,80}\b(?:available|released|open[- ]sourced?|"
    r"publicly|can be found|at https?://)",
    re.IGNORECASE,
)


def _ends_with_abbreviation(chunk: str) -> bool:
    # A match holds no space, so it lies within the chunk's last word: search from there.
    match = _LAST_WORD_RE.search(chunk, chunk.rfind(" ") + 1)
    if match is None:
        return False
    word = match.group(1).lstrip("(\"'“‘[").lower()
    # A single capital is an initial ("J. Smith"); "e.g", "U.S" and the like are listed.
    return word in ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _iter_sentences(text: str) -> Iterator[str]:
    """The sentences of ``text`` one by one (see :func:`split_sentences`)."""
    text = one_line(text)
    start = 0
    for boundary in _BOUNDARY_RE.finditer(text):
        chunk = text[start : boundary.start("space")]
        if boundary.group("end") == "." and _ends_with_abbreviation(chunk):
            continue
        if sentence := chunk.strip():
            yield sentence
        start = boundary.end()
    if sentence := text[start:].strip():
        yield sentence


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences, keeping "e.g.", "et al.", "Fig. 2", "3.5", initials intact."""
    return list(_iter_sentences(text))


def bullets_from_text(
    text: str, max_bullets: int = 5, max_chars: int = MAX_BULLET_CHARS
) -> tuple[str, ...]:
    """The leading sentences of ``text`` as bullets, each cut to ``max_chars`` at a word."""
    if max_bullets <= 0:
        return ()
    # Split only as far as needed: the first informative sentences, else all of them.
    sentences: list[str] = []
    informative: list[str] = []
    for sentence in _iter_sentences(text):
        sentences.append(sentence)
        if not _AVAILABILITY_RE.match(sentence):
            informative.append(sentence)
            if len(informative) == max_bullets:
                break
    return tuple(truncate(s, max_chars) for s in (informative or sentences)[:max_bullets])


def fallback_bullets(paper: Paper) -> tuple[str, ...]:
    """Bullets from a summary source (HF ai_summary or richer) if any, else the abstract's lead."""
    if paper.bullets and paper.bullets_source >= SummarySource.HF:
        return paper.bullets
    return bullets_from_text(paper.abstract, max_bullets=ABSTRACT_BULLETS) or paper.bullets


def with_derived_fields(paper: Paper) -> Paper:
    """Fill missing bullets and tags from the abstract; existing ones are never replaced."""
    bullets, bullets_source = paper.bullets, paper.bullets_source
    tags, tags_source = paper.tags, paper.tags_source
    if not bullets and (derived := bullets_from_text(paper.abstract, ABSTRACT_BULLETS)):
        bullets, bullets_source = derived, SummarySource.ABSTRACT
    if not tags and (labels := classify(paper.title, paper.abstract, paper.categories,
                                        paper.keywords)):  # fmt: skip
        tags, tags_source = labels, SummarySource.ABSTRACT
    if bullets is paper.bullets and tags is paper.tags:
        return paper
    # dataclasses.replace() costs as much as a tenth of the derivation: every field named here.
    return Paper(
        paper.arxiv_id, paper.title, paper.authors, paper.abstract, paper.version,
        paper.published, paper.categories, bullets, bullets_source, tags, tags_source,
        paper.keywords, paper.github_urls, paper.hf_urls, paper.project_url, paper.comment,
        paper.upvotes, paper.github_stars,
    )  # fmt: skip


# with_derived_fields() names Paper's fields in order: a new field must be added there.
assert tuple(field.name for field in fields(Paper)) == (
    "arxiv_id", "title", "authors", "abstract", "version", "published", "categories", "bullets",
    "bullets_source", "tags", "tags_source", "keywords", "github_urls", "hf_urls", "project_url",
    "comment", "upvotes", "github_stars",
), "update with_derived_fields() for the new Paper field"  # fmt: skip
