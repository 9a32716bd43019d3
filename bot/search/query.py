"""The user query language, compiled to a safe FTS5 MATCH expression.

Syntax: plain words (all must match), ``"exact phrases"``, ``-excluded`` words or phrases,
``OR`` between two terms, ``word*`` prefixes, ``tag:NAME`` / ``tag:"Two Words"`` and
``author:NAME`` / ``author:"First Last"``. Anything else (stray quotes, brackets,
colons, FTS5 operators such as NEAR or ``^``) is read as plain words, and every word is
quoted before it reaches FTS5, so no input can produce an FTS5 syntax error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

_WORD = re.compile(r"\w+", re.UNICODE)
_FIELD = re.compile(r"(?i)(tag|author):")
MAX_TERMS = 32  # keeps pathological inputs (thousands of words) cheap

# Result orders of a search (bot.search; here so the CLI parser can name them cheaply).
SORTS: tuple[str, ...] = ("relevance", "date", "upvotes")


@dataclass(frozen=True, slots=True)
class Term:
    """One word or phrase, already reduced to FTS-safe word characters."""

    words: tuple[str, ...]
    prefix: bool = False
    column: str | None = None  # restrict to one FTS column (author: filters)

    def to_fts(self) -> str:
        quoted = '"' + " ".join(self.words) + '"'
        if self.prefix:
            quoted += "*"
        return f"{self.column} : {quoted}" if self.column else quoted


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed query: an AND of OR-groups, exclusions and field filters."""

    groups: tuple[tuple[Term, ...], ...] = ()
    excluded: tuple[Term, ...] = ()
    tags: tuple[str, ...] = ()
    excluded_tags: tuple[str, ...] = ()
    authors: tuple[Term, ...] = ()
    raw: str = field(default="", compare=False)

    @property
    def has_text(self) -> bool:
        return bool(self.groups or self.authors)

    @property
    def is_empty(self) -> bool:
        return not (self.groups or self.authors or self.excluded or self.tags or self.excluded_tags)

    def positive_fts(self) -> str | None:
        """The MATCH expression for the positive part, or None when there is none."""
        parts = []
        for group in self.groups:
            alternatives = [term.to_fts() for term in group]
            parts.append(
                alternatives[0] if len(alternatives) == 1 else "(" + " OR ".join(alternatives) + ")"
            )
        parts.extend(term.to_fts() for term in self.authors)
        return " AND ".join(parts) if parts else None

    def excluded_fts(self) -> str | None:
        if not self.excluded:
            return None
        return " OR ".join(term.to_fts() for term in self.excluded)

    def to_fts(self) -> str | None:
        """The whole expression, or None if the query has no positive text terms."""
        positive = self.positive_fts()
        if positive is None:
            return None
        excluded = self.excluded_fts()
        return f"({positive}) NOT ({excluded})" if excluded else positive


@dataclass
class _Token:
    text: str
    negated: bool = False
    quoted: bool = False
    field: str | None = None
    is_or: bool = False


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        negated = False
        if text[i] == "-" and i + 1 < n and not text[i + 1].isspace():
            negated, i = True, i + 1
        field_name = None
        match = _FIELD.match(text, i)
        if match:
            field_name, i = match.group(1).lower(), match.end()
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            end = n if end == -1 else end
            tokens.append(_Token(text[i + 1 : end], negated, True, field_name))
            i = end + 1
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] != '"':
            i += 1
        word = text[start:i]
        if word == "OR" and not negated and field_name is None:
            tokens.append(_Token(word, is_or=True))
        else:
            tokens.append(_Token(word, negated, False, field_name))
    return tokens


def _term(token: _Token) -> Term | None:
    words = tuple(word.lower() for word in _WORD.findall(token.text))
    if not words:
        return None
    prefix = not token.quoted and len(words) == 1 and token.text.endswith("*")
    column = "authors_text" if token.field == "author" else None
    return Term(words, prefix, column)


def parse_query(text: str) -> Query:
    """Parse user input; never raises for any string."""
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    tags: list[str] = []
    excluded_tags: list[str] = []
    authors: list[Term] = []
    join_next = False
    for token in _tokenize(text):
        if token.is_or:
            join_next = bool(groups)
            continue
        if token.field == "tag":
            value = " ".join(token.text.split())
            target = excluded_tags if token.negated else tags
            if value and value not in target:
                target.append(value)
            join_next = False
            continue
        term = _term(token)
        if term is None:
            continue
        if token.negated:
            excluded.append(term)
        elif token.field == "author":
            authors.append(term)
        elif join_next:
            groups[-1].append(term)
        else:
            groups.append([term])
        join_next = False
    return Query(
        groups=tuple(tuple(group) for group in groups[:MAX_TERMS]),
        excluded=tuple(excluded[:MAX_TERMS]),
        tags=tuple(tags[:MAX_TERMS]),
        excluded_tags=tuple(excluded_tags[:MAX_TERMS]),
        authors=tuple(authors[:MAX_TERMS]),
        raw=text,
    )


def author_term(name: str) -> Term | None:
    """A phrase term restricted to the authors column, or None if ``name`` has no words."""
    return _term(_Token(name, quoted=True, field="author"))


def with_filters(
    query: Query, *, tags: tuple[str, ...] = (), authors: tuple[str, ...] = ()
) -> Query:
    """Add tag and author filters given as separate options (not typed into the query)."""
    extra_authors = [term for term in map(author_term, authors) if term is not None]
    clean_tags = [" ".join(tag.split()) for tag in tags if tag.strip()]
    return replace(
        query,
        tags=tuple(dict.fromkeys([*query.tags, *clean_tags])),
        authors=(*query.authors, *extra_authors),
    )
