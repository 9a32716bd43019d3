"""FTS5's bm25, computed in Python for a handful of candidate papers.

The same numbers as ``bm25(papers_fts, 10.0, 4.0, 3.0, 1.0, 4.0)`` (sqlite's fts5_aux.c): for
each phrase of the MATCH expression, in order,

    idf   = log((N - n + 0.5) / (n + 0.5)), or 1e-6 when that is not positive
    f     = sum over the phrase's instances of the weight of the column it is in
    score += idf * (f * (k1 + 1)) / (f + k1 * (1 - b + b * D / avgdl))

with N the rows in the index, n the rows matching the phrase alone, D the row's token count
(all columns) and avgdl the average of D. Tokens come from ``bot.search.tokens``, which yields
exactly FTS5's, so instance counts (and D) are FTS5's too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.search.query import Query, Term
from bot.search.tokens import Fts5Tokenizer

COLUMNS = ("title", "authors_text", "summary_text", "abstract", "tags_text")  # FTS5 order
WEIGHTS = (10.0, 4.0, 3.0, 1.0, 4.0)
# Spelled out rather than using the table's configured ``rank``: FTS5 evaluates an explicit
# bm25() call measurably faster.
BM25 = f"bm25(papers_fts, {', '.join(str(weight) for weight in WEIGHTS)})"
K1 = 1.2
B = 0.75


@dataclass(frozen=True, slots=True)
class Phrase:
    """One phrase of the MATCH expression, as FTS5 sees it."""

    tokens: tuple[str, ...]
    prefix: bool  # the last token matches any token it starts
    columns: tuple[int, ...]  # indexes into COLUMNS it may match in
    expression: str  # the phrase alone, as an FTS5 MATCH expression (for its row count)


@dataclass(frozen=True, slots=True)
class PhrasePlan:
    """A query's phrases: ``groups`` (AND of ORs, author filters last) and ``excluded``."""

    groups: tuple[tuple[Phrase, ...], ...]
    excluded: tuple[Phrase, ...]

    @property
    def scored(self) -> tuple[Phrase, ...]:
        """The phrases that can add to a matching row's score, in FTS5's phrase order.

        Excluded phrases come last in the expression and never occur in a matching row, so
        they add exactly 0.0 and are left out.
        """
        return tuple(phrase for group in self.groups for phrase in group)


def _phrase(term: Term, tokenizer: Fts5Tokenizer) -> Phrase | None:
    tokens = tuple(tokenizer.word_tokens(term.words))
    if not tokens or (term.prefix and len(tokens) != 1):
        return None  # FTS5 edge cases (empty or multi-token prefix phrases): not handled here
    if term.column is None:
        columns = tuple(range(len(COLUMNS)))
    elif term.column in COLUMNS:
        columns = (COLUMNS.index(term.column),)
    else:
        return None
    return Phrase(tokens, term.prefix, columns, term.to_fts())


def plan_phrases(query: Query, tokenizer: Fts5Tokenizer) -> PhrasePlan | None:
    """The phrases of ``query.to_fts()``, or None if one of them is an unhandled edge case."""
    groups: list[tuple[Phrase, ...]] = []
    for group in (*query.groups, *((author,) for author in query.authors)):
        phrases = [_phrase(term, tokenizer) for term in group]
        if any(phrase is None for phrase in phrases):
            return None
        groups.append(tuple(phrases))  # type: ignore[arg-type]
    excluded = [_phrase(term, tokenizer) for term in query.excluded]
    if not groups or any(phrase is None for phrase in excluded):
        return None
    return PhrasePlan(tuple(groups), tuple(excluded))  # type: ignore[arg-type]


def count_instances(tokens: Sequence[str], phrase: Phrase) -> int:
    """How many times ``phrase`` occurs in one column's tokens (overlapping ones included)."""
    words = phrase.tokens
    if len(words) == 1:
        if phrase.prefix:
            start = words[0]
            return sum(1 for token in tokens if token.startswith(start))
        return tokens.count(words[0])
    first, size, found = words[0], len(words), 0
    last = size - 1
    for index, token in enumerate(tokens):
        if token != first or index + size > len(tokens):
            continue
        for offset in range(1, size):
            other = tokens[index + offset]
            wanted = words[offset]
            if not (
                other == wanted or (offset == last and phrase.prefix and other.startswith(wanted))
            ):
                break
        else:
            found += 1
    return found


def idf(rows: int, hits: int) -> float:
    """FTS5's idf for a phrase matching ``hits`` of ``rows`` rows (1e-6 for common phrases)."""
    ratio = (rows - hits + 0.5) / (hits + 0.5)
    return math.log(ratio) if ratio > 1.0 else 1e-6  # log(ratio) > 0 exactly when ratio > 1


def bm25(
    columns: Sequence[Sequence[str]],
    phrases: Sequence[Phrase],
    idfs: Sequence[float],
    avgdl: float,
) -> float:
    """The (positive) bm25 score of one row given its tokens per column (the reference)."""
    freqs = [0.0] * len(phrases)
    for number, phrase in enumerate(phrases):
        for column in phrase.columns:
            if columns[column]:
                freqs[number] += WEIGHTS[column] * count_instances(columns[column], phrase)
    return _score(freqs, idfs, sum(len(tokens) for tokens in columns), avgdl)


def _score(freqs: Sequence[float], idfs: Sequence[float], size: int, avgdl: float) -> float:
    norm = K1 * (1 - B + B * float(size) / avgdl)
    score = 0.0
    for freq, weight in zip(freqs, idfs, strict=True):
        score += weight * ((freq * (K1 + 1.0)) / (freq + norm))
    return score


class RowScorer:
    """bm25 for many rows of one query, from their texts and FTS5's token counts (docsize).

    Texts are only partly tokenized when that is enough: in ASCII text, a word that stems to a
    token ``t`` always starts with ``t[:-1]`` (Porter strips suffixes and changes at most the
    last letter of what remains: checked on every word of the corpus), so for one-word phrases
    only the words with such a beginning are stemmed. Phrases of several words, and texts with
    other characters, are tokenized in full.
    """

    def __init__(
        self,
        phrases: Sequence[Phrase],
        idfs: Sequence[float],
        avgdl: float,
        tokenizer: Fts5Tokenizer,
    ) -> None:
        self.phrases = list(phrases)
        self.idfs = list(idfs)
        self.avgdl = avgdl
        self.tokenizer = tokenizer
        self.by_column = [
            [number for number, phrase in enumerate(phrases) if column in phrase.columns]
            for column in range(len(COLUMNS))
        ]
        starts = sorted(
            {
                phrase.tokens[0][:-1]
                for phrase in phrases
                if len(phrase.tokens) == 1 and phrase.tokens[0].isascii()
            }
        )
        self._words = re.compile(
            r"(?<![a-z0-9])(?=[a-z0-9])(?:" + "|".join(map(re.escape, starts)) + r")[a-z0-9]*"
        )

    def score(self, texts: Sequence[str | None], size: int) -> float:
        """The (positive) bm25 score of a row: its column texts and its total token count."""
        freqs = [0.0] * len(self.phrases)
        for column, text in enumerate(texts):
            wanted = self.by_column[column]
            if not text or not wanted:
                continue
            phrases = [self.phrases[number] for number in wanted]
            for number, count in zip(wanted, self._counts(text, phrases), strict=True):
                if count:
                    freqs[number] += WEIGHTS[column] * count
        return _score(freqs, self.idfs, size, self.avgdl)

    def _counts(self, text: str, phrases: Sequence[Phrase]) -> list[int]:
        if text.isascii() and all(len(phrase.tokens) == 1 for phrase in phrases):
            stems = self.tokenizer.stems(self._words.findall(text.lower()))
            counts = []
            for phrase in phrases:
                token = phrase.tokens[0]
                if phrase.prefix:
                    counts.append(sum(1 for stem in stems if stem.startswith(token)))
                else:
                    counts.append(stems.count(token))
            return counts
        tokens = self.tokenizer.tokens(text)
        return [count_instances(tokens, phrase) for phrase in phrases]


def docsize(blob: bytes | None) -> int:
    """A row's total token count from its FTS5 ``<table>_docsize`` record."""
    total, position = 0, 0
    while blob and position < len(blob):
        value, position = read_varint(blob, position)
        total += value
    return total


def read_varint(data: bytes, position: int) -> tuple[int, int]:
    """SQLite's varint (as FTS5 stores its statistics): (value, next position)."""
    value = 0
    for index in range(8):
        byte = data[position + index]
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            return value, position + index + 1
    return (value << 8) | data[position + 8], position + 9


@dataclass(frozen=True, slots=True)
class IndexStats:
    rows: int  # N
    tokens: int  # total tokens in all columns

    @property
    def avgdl(self) -> float:
        return float(self.tokens) / float(self.rows) if self.rows else 1.0

    @classmethod
    def from_record(cls, blob: bytes | None) -> IndexStats:
        """Decode the FTS5 ``averages`` record (``<table>_data`` row 1)."""
        if not blob:
            return cls(0, 0)
        rows, position = read_varint(blob, 0)
        total = 0
        for _ in COLUMNS:
            if position >= len(blob):
                break
            value, position = read_varint(blob, position)
            total += value
        return cls(rows, total)
