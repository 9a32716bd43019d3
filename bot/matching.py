"""Subscriptions -> who is mentioned for which paper (an indexed matcher, not a scan).

A day's papers go into an in-memory SQLite FTS5 table with the store's columns and tokenizer
(:class:`DayIndex`), so keyword and author subscriptions match exactly as ``/search`` does.
:class:`SubscriptionIndex` avoids looking at every subscription:

* tag subscriptions sit in a dict keyed by the tag (casefolded); each paper's tags, with their
  taxonomy groups (the digest's channel-filter rule), are looked up in it;
* keyword and author subscriptions are grouped by distinct query. Each query is registered under
  one *anchor* token per alternative of one of its required groups (tokens stemmed by the FTS5
  tokenizer when the subscription was made and stored with it, see :func:`query_terms`). Only
  queries with an anchor among the day's terms (from ``fts5vocab``) are candidates, and a
  candidate with a required word absent that day is dropped without touching FTS5;
* each distinct phrase of the remaining queries is run once as ``MATCH`` against the day table,
  and each query is combined from its phrases' papers with the set algebra FTS5 itself uses for
  ``AND`` / ``OR`` / ``NOT`` (queries share phrases, so this runs far fewer statements than one
  ``MATCH`` per query);
* a query that is one author phrase (every author subscription) is looked up by its tokens in
  the day's author n-grams, read from FTS5's own tokens and positions of the authors column.

:func:`reference_match` is the plain per-subscription loop with one ``MATCH`` of the whole
expression per subscription; tests check that both agree.

Everything here is CPU-bound and synchronous (in-memory SQLite, no I/O): call it from a worker
thread (``asyncio.to_thread``) inside the bot. A :class:`DayIndex` is not thread-safe; use it
from one thread at a time. A built :class:`SubscriptionIndex` is read-only.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from bisect import bisect_left
from collections.abc import ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from dataclasses import dataclass, field
from functools import reduce
from itertools import chain, repeat
from operator import and_, or_
from typing import TYPE_CHECKING, NamedTuple

from bot.classify import label_family, normalize_label
from bot.db.papers import _search_texts  # the store's FTS column texts: keep them identical
from bot.digest import effective_tags
from bot.models import Paper
from bot.query import Query, Term, author_term, parse_query

if TYPE_CHECKING:
    from types import TracebackType

    from bot.db.subscriptions import Subscription

log = logging.getLogger(__name__)

TOKENIZE = "porter unicode61 remove_diacritics 2"  # as in migrations/001_papers.sql
FTS_COLUMNS = ("title", "authors_text", "summary_text", "abstract", "tags_text")
PREFIX_MARK = "*"  # a stored token ending in "*" is a prefix (``word*`` in a query)
MAX_AUTHOR_NGRAM = 6  # author phrases up to this many tokens skip MATCH (see DayIndex)

_WORD = re.compile(r"\w+")  # as in bot.query
TermTokens = tuple[tuple[str, tuple[str, ...]], ...]  # (term FTS text, its stemmed tokens)


class SubscriberKey(NamedTuple):
    """Who receives a match, and how (``feed_id`` None: any feed of the guild)."""

    guild_id: int
    subscriber_type: str  # "user" | "role"
    subscriber_id: int
    feed_id: int | None
    dm: bool


@dataclass(slots=True)
class MatchStats:
    """What one :meth:`SubscriptionIndex.match` did (for tests and the benchmark)."""

    candidates: int = 0  # distinct queries with an anchor token present that day
    # FTS text of each query evaluated (a candidate with every required word present that day)
    evaluated_queries: list[str] = field(default_factory=list)
    match_calls: int = 0  # MATCH statements run against the day table
    tag_sources: int = 0  # distinct subscribed tags present that day
    author_phrases: int = 0  # author queries matched by n-gram lookup (no MATCH needed)


# --------------------------------------------------------------------------------------------
# Tokens and canonical queries (used when a subscription is made)


class Tokenizer:
    """The FTS5 tokenizer of the store, through a scratch table and ``fts5vocab``."""

    def __init__(self) -> None:
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        self._conn.execute(
            f"CREATE VIRTUAL TABLE scratch USING fts5 (body, tokenize = '{TOKENIZE}')"
        )
        self._conn.execute("CREATE VIRTUAL TABLE scratch_terms USING fts5vocab (scratch, instance)")

    def tokens(self, text: str) -> tuple[str, ...]:
        """The tokens FTS5 indexes for ``text``, in order (stemmed, folded, no diacritics)."""
        with self._conn:
            self._conn.execute("INSERT INTO scratch (rowid, body) VALUES (1, ?)", (text,))
            rows = self._conn.execute("SELECT term FROM scratch_terms ORDER BY offset").fetchall()
            self._conn.execute("DELETE FROM scratch")
        return tuple(row[0] for row in rows)

    def term_tokens(self, term: Term) -> tuple[str, ...]:
        """A query term's tokens; a prefix term's last token gets :data:`PREFIX_MARK`."""
        tokens = self.tokens(" ".join(term.words))
        if term.prefix and tokens:
            tokens = (*tokens[:-1], tokens[-1] + PREFIX_MARK)
        return tokens

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Tokenizer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _term_text(term: Term) -> str:
    # Only "İ" lowercases to a non-word character (a combining dot, which FTS5 drops anyway);
    # dropping it here keeps the canonical text stable when parsed again.
    body = " ".join("".join(_WORD.findall(word)) for word in term.words)
    text = f'"{body}"' if len(term.words) > 1 else body
    if term.prefix:
        text += "*"
    return f"author:{text}" if term.column == "authors_text" else text


def canonical_query(query: Query) -> str:
    """The query in the user syntax, normalised: ``parse_query(canonical_query(q)) == q``
    (except for an "İ", whose lowercase dot is dropped).

    Two spellings of one query (case, spacing, ``"word"`` vs ``word``) get the same text, so it
    serves as the subscription's ``norm`` for duplicate detection and grouping.
    """
    parts = [" OR ".join(_term_text(term) for term in group) for group in query.groups]
    parts += [_term_text(term) for term in query.authors]
    parts += ["-" + _term_text(term) for term in query.excluded]
    parts += [f'tag:"{tag}"' for tag in query.tags]
    parts += [f'-tag:"{tag}"' for tag in query.excluded_tags]
    return " ".join(parts)


def canonical_author(name: str) -> str | None:
    """An author subscription's norm: the name's words, lowercased (None without words)."""
    term = author_term(name)
    if term is None:
        return None
    return " ".join("".join(_WORD.findall(word)) for word in term.words)


def subscription_query(kind: str, norm: str) -> Query | None:
    """The query a keyword or author subscription runs (None for a tag subscription)."""
    if kind == "keyword":
        return parse_query(norm)
    if kind == "author":
        term = author_term(norm)
        return Query(authors=(term,)) if term is not None else Query()
    return None


def _all_terms(query: Query) -> list[Term]:
    return [*(t for group in query.groups for t in group), *query.authors, *query.excluded]


def query_terms(query: Query, tokenizer: Tokenizer) -> TermTokens:
    """Every term of ``query`` (FTS text) with its stemmed tokens: stored as ``terms``."""
    found: dict[str, tuple[str, ...]] = {}
    for term in _all_terms(query):
        fts = term.to_fts()
        if fts not in found:
            found[fts] = tokenizer.term_tokens(term)
    return tuple(found.items())


def terms_to_json(terms: TermTokens) -> str:
    return json.dumps({fts: list(tokens) for fts, tokens in terms}, ensure_ascii=False)


def terms_from_json(text: str | None) -> TermTokens:
    data = json.loads(text) if text else {}
    if not isinstance(data, dict):
        return ()
    return tuple((str(fts), tuple(tokens)) for fts, tokens in data.items())


def tag_key(tag: str) -> str:
    """How tags are compared: the vocabulary label if it is one, casefolded."""
    return (normalize_label(tag) or " ".join(tag.split())).casefold()


def paper_tag_keys(paper: Paper) -> set[str]:
    """A paper's tags and their taxonomy groups ("Text-to-Image" also counts as its group)."""
    keys: set[str] = set()
    for tag in effective_tags(paper):
        label = normalize_label(tag)
        keys.update(tag_key(member) for member in (label_family(label) if label else (tag,)))
    return keys


# --------------------------------------------------------------------------------------------
# The day's papers


def _fts_row(rowid: int, paper: Paper) -> tuple[int, str, str, str, str, str]:
    authors_text, summary_text, tags_text = _search_texts(paper)
    return (rowid, paper.title, authors_text, summary_text, paper.abstract, tags_text)


@dataclass(frozen=True, slots=True)
class _Term:
    """One phrase of a query, with the tokens FTS5 makes of it."""

    fts: str
    tokens: tuple[str, ...]  # empty: the term can never match (FTS5 finds no word in it)
    # A phrase on the authors column without a prefix: looked up in DayIndex.author_ngrams.
    author_phrase: bool = False


class DayIndex:
    """The day's papers in an in-memory FTS5 table, plus their terms and tags as bit masks.

    Bit ``i`` of a mask stands for ``papers[i]``. Build one per day and reuse it for every guild
    and feed: phrase results are cached on it.
    """

    def __init__(self, papers: Iterable[Paper]) -> None:
        unique: dict[str, Paper] = {}
        for paper in papers:
            unique.setdefault(paper.arxiv_id, paper)
        self.papers: tuple[Paper, ...] = tuple(unique.values())
        self.all_mask = (1 << len(self.papers)) - 1
        self._conn = sqlite3.connect(":memory:", check_same_thread=False)
        columns = ", ".join(FTS_COLUMNS)
        self._conn.execute(
            f"CREATE VIRTUAL TABLE day USING fts5 ({columns}, tokenize = '{TOKENIZE}')"
        )
        self._conn.execute("CREATE VIRTUAL TABLE day_terms USING fts5vocab (day, row)")
        with self._conn:
            self._conn.executemany(
                f"INSERT INTO day (rowid, {columns}) VALUES (?, ?, ?, ?, ?, ?)",
                [_fts_row(i + 1, paper) for i, paper in enumerate(self.papers)],
            )
        self.vocab: frozenset[str] = frozenset(
            row[0] for row in self._conn.execute("SELECT term FROM day_terms")
        )
        self._sorted_vocab: list[str] | None = None
        self.author_ngrams = self._author_ngrams()
        self.tag_masks: dict[str, int] = {}  # tag key (with groups) -> papers, for tag subs
        self.stored_tag_masks: dict[str, int] = {}  # stored tags, for tag: in queries (search)
        for i, paper in enumerate(self.papers):
            for key in paper_tag_keys(paper):
                self.tag_masks[key] = self.tag_masks.get(key, 0) | (1 << i)
            for tag in paper.tags:
                folded = tag.casefold()
                self.stored_tag_masks[folded] = self.stored_tag_masks.get(folded, 0) | (1 << i)
        self.phrase_masks: dict[str, int] = {}  # term FTS text -> papers (filled on demand)
        self._papers_for: dict[int, tuple[Paper, ...]] = {}
        self._tables: list[list[tuple[Paper, ...]]] | None = None

    def _author_ngrams(self) -> dict[tuple[str, ...], int]:
        """Every run of up to MAX_AUTHOR_NGRAM consecutive tokens of the authors column.

        A phrase matches a column exactly when its tokens occur there consecutively, so an
        author phrase's papers are one dict lookup instead of one MATCH each (author
        subscriptions are many and mostly distinct). The tokens and their positions come from
        FTS5 itself: a one-column table with the same tokenizer, read through ``fts5vocab``.
        """
        self._conn.execute(
            f"CREATE VIRTUAL TABLE day_authors USING fts5 (authors_text, tokenize = '{TOKENIZE}')"
        )
        self._conn.execute(
            "CREATE VIRTUAL TABLE day_author_terms USING fts5vocab (day_authors, instance)"
        )
        with self._conn:
            self._conn.executemany(
                "INSERT INTO day_authors (rowid, authors_text) VALUES (?, ?)",
                [(i + 1, _search_texts(paper)[0]) for i, paper in enumerate(self.papers)],
            )
        positions: dict[int, dict[int, str]] = {}
        for term, doc, offset in self._conn.execute(
            "SELECT term, doc, offset FROM day_author_terms"
        ):
            positions.setdefault(doc, {})[offset] = term
        ngrams: dict[tuple[str, ...], int] = {}
        for doc, by_offset in positions.items():
            bit = 1 << (doc - 1)
            offsets = sorted(by_offset)
            tokens = [by_offset[offset] for offset in offsets]
            for start in range(len(tokens)):
                for end in range(start + 1, min(start + MAX_AUTHOR_NGRAM, len(tokens)) + 1):
                    if offsets[end - 1] - offsets[start] != end - 1 - start:
                        break  # not consecutive positions (cannot happen; be safe)
                    gram = tuple(tokens[start:end])
                    ngrams[gram] = ngrams.get(gram, 0) | bit
        return ngrams

    def has_token(self, token: str) -> bool:
        """True if the day has ``token`` (a prefix token: any term starting with it)."""
        if not token.endswith(PREFIX_MARK):
            return token in self.vocab
        prefix = token[: -len(PREFIX_MARK)]
        if self._sorted_vocab is None:
            self._sorted_vocab = sorted(self.vocab)
        at = bisect_left(self._sorted_vocab, prefix)
        return at < len(self._sorted_vocab) and self._sorted_vocab[at].startswith(prefix)

    def phrase_mask(self, term: _Term, stats: MatchStats | None = None) -> int:
        """The papers one query term matches; ``MATCH`` runs only if all its tokens occur."""
        mask = self.phrase_masks.get(term.fts)
        if mask is not None:
            return mask
        if term.author_phrase:
            mask = self.author_ngrams.get(term.tokens, 0)
        elif term.tokens and all(map(self.has_token, term.tokens)):
            mask = self.expression_mask(term.fts)
            if stats is not None:
                stats.match_calls += 1
        else:
            mask = 0
        self.phrase_masks[term.fts] = mask
        return mask

    def expression_mask(self, fts: str) -> int:
        """The papers an FTS5 expression matches (one MATCH against the day table)."""
        mask = 0
        for (rowid,) in self._conn.execute("SELECT rowid FROM day WHERE day MATCH ?", (fts,)):
            mask |= 1 << (rowid - 1)
        return mask

    def _byte_tables(self) -> list[list[tuple[Paper, ...]]]:
        """For each byte of a mask and each of its 256 values, the papers it stands for."""
        tables = []
        for start in range(0, len(self.papers), 8):
            table: list[tuple[Paper, ...]] = [()] * 256
            for value in range(1, 256):
                low = value & -value
                index = start + low.bit_length() - 1
                # The lowest bit is the earliest paper: put it before the rest, in order.
                head = (self.papers[index],) if index < len(self.papers) else ()
                table[value] = head + table[value ^ low]
            tables.append(table)
        return tables

    def papers_for(self, mask: int) -> tuple[Paper, ...]:
        """The papers of ``mask`` in day order (cached: many subscribers share a mask)."""
        found = self._papers_for.get(mask)
        if found is None:
            tables = self._tables
            if tables is None:
                tables = self._tables = self._byte_tables()
            data = mask.to_bytes(len(tables), "little")
            parts = [table[value] for table, value in zip(tables, data, strict=True) if value]
            found = parts[0] if len(parts) == 1 else tuple(chain.from_iterable(parts))
            self._papers_for[mask] = found
        return found

    def close(self) -> None:
        """Close the in-memory database (masks already computed stay usable)."""
        self._conn.close()

    def __enter__(self) -> DayIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------------------------
# The subscription index


@dataclass(eq=False, slots=True)
class _Source:
    """Subscribers sharing one tag or one query."""

    order: int
    label: str
    # Subscribers as small ints (positions in SubscriptionIndex.keys): an int hashes at once,
    # a 5-field key tuple hashes every field each time, which dominated matching.
    ids: list[int] = field(default_factory=list)
    by_guild: dict[int, list[int]] = field(default_factory=dict)

    def add(self, key_id: int, guild_id: int) -> None:
        self.ids.append(key_id)
        self.by_guild.setdefault(guild_id, []).append(key_id)


@dataclass(eq=False, slots=True)
class _QuerySource(_Source):
    """A distinct keyword or author query: ANDed groups of ORed terms, minus exclusions."""

    groups: tuple[tuple[_Term, ...], ...] = ()
    excluded: tuple[_Term, ...] = ()
    tags: tuple[str, ...] = ()  # casefolded stored tags required (tag: in a keyword query)
    excluded_tags: tuple[str, ...] = ()
    # Precomputed: the whole-word tokens every match needs, the groups that need a closer look
    # (alternatives, prefixes), every term, and for a plain AND of terms their FTS texts.
    required: frozenset[str] = frozenset()
    checks: tuple[tuple[_Term, ...], ...] = ()
    check_sets: tuple[tuple[frozenset[str], ...], ...] | None = None  # checks without prefixes
    or_sets: tuple[frozenset[str], ...] | None = None  # check_sets when there is one group
    term_fts: tuple[str, ...] = ()  # every distinct term's FTS text
    and_fts: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        required: set[str] = set()
        checks = []
        for group in self.groups:
            if len(group) == 1 and not any(t.endswith(PREFIX_MARK) for t in group[0].tokens):
                required.update(group[0].tokens)
            else:
                checks.append(group)
        self.required = frozenset(required)
        self.checks = tuple(checks)
        if not any(t.endswith(PREFIX_MARK) for g in checks for term in g for t in term.tokens):
            self.check_sets = tuple(
                tuple(frozenset(term.tokens) for term in group if term.tokens) for group in checks
            )
            if len(self.check_sets) == 1:
                self.or_sets = self.check_sets[0]
        every = [term for group in self.groups for term in group] + list(self.excluded)
        self.term_fts = tuple(dict.fromkeys(term.fts for term in every))
        plain = not (self.excluded or self.tags or self.excluded_tags)
        if plain and all(len(group) == 1 for group in self.groups):
            self.and_fts = tuple(group[0].fts for group in self.groups)

    def possible(self, day: DayIndex) -> bool:
        """Whether every group has a term whose tokens all occur today (no SQL)."""
        vocab = day.vocab
        if not self.required <= vocab:
            return False
        if self.check_sets is not None:
            return all(any(map(vocab.issuperset, group)) for group in self.check_sets)
        has_token = day.has_token
        return all(
            any(term.tokens and all(map(has_token, term.tokens)) for term in group)
            for group in self.checks
        )

    def evaluate(self, day: DayIndex, masks: Mapping[str, int]) -> int:
        """The papers this query matches: FTS5's AND / OR / NOT over its phrases' papers."""
        mask = day.all_mask
        for tag in self.tags:
            mask &= day.stored_tag_masks.get(tag, 0)
        for group in self.groups:
            alternatives = 0
            for term in group:
                alternatives |= masks[term.fts]
            mask &= alternatives
        for tag in self.excluded_tags:
            mask &= ~day.stored_tag_masks.get(tag, 0)
        for term in self.excluded:
            mask &= ~masks[term.fts]
        return mask


def _anchor_token(term: _Term) -> str:
    """The token to index a term under: its longest whole word (longer words are rarer)."""
    whole = [token for token in term.tokens if not token.endswith(PREFIX_MARK)]
    return max(whole or term.tokens, key=len)


def _group_cost(group: tuple[_Term, ...]) -> tuple[int, int, int]:
    prefixes = sum(1 for term in group if _anchor_token(term).endswith(PREFIX_MARK))
    shortest = min(len(_anchor_token(term)) for term in group)
    return (len(group), prefixes, -shortest)


class MatchResult(Mapping[SubscriberKey, tuple[Paper, ...]]):
    """Subscriber -> their matching papers (day order, no duplicates), read-only.

    Papers are looked up when a value is read (and cached per distinct set of papers), so
    building the result costs one entry per subscriber; reading all values once costs about as
    much again. Equal to any mapping with the same items (e.g. a dict).
    """

    __slots__ = ("_by_guild", "_day", "_found", "_key_ids", "_keys")

    def __init__(
        self,
        found: dict[int, int],
        keys: Sequence[SubscriberKey],
        key_ids: Mapping[SubscriberKey, int],
        day: DayIndex,
    ) -> None:
        self._found = found  # subscriber id -> mask
        self._keys = keys
        self._key_ids = key_ids
        self._day = day
        self._by_guild: dict[int, list[int]] | None = None

    def __getitem__(self, key: SubscriberKey) -> tuple[Paper, ...]:
        key_id = self._key_ids.get(key)
        if key_id is None or key_id not in self._found:
            raise KeyError(key)
        return self._day.papers_for(self._found[key_id])

    def __iter__(self) -> Iterator[SubscriberKey]:
        return map(self._keys.__getitem__, self._found)

    def __len__(self) -> int:
        return len(self._found)

    def items(self) -> ItemsView[SubscriberKey, tuple[Paper, ...]]:
        return _Items(self)

    def values(self) -> ValuesView[tuple[Paper, ...]]:
        return _Values(self)

    def __contains__(self, key: object) -> bool:
        key_id = self._key_ids.get(key)  # type: ignore[call-overload]
        return key_id is not None and key_id in self._found

    def for_guild(self, guild_id: int) -> dict[SubscriberKey, tuple[Paper, ...]]:
        """The matches of one guild as a plain dict (the first call groups all guilds once)."""
        keys = self._keys
        if self._by_guild is None:
            self._by_guild = {}
            for key_id in self._found:
                self._by_guild.setdefault(keys[key_id].guild_id, []).append(key_id)
        found, papers_for = self._found, self._day.papers_for
        return {keys[i]: papers_for(found[i]) for i in self._by_guild.get(guild_id, ())}

    def __repr__(self) -> str:
        return f"<MatchResult of {len(self)} subscribers>"


class _Items(ItemsView[SubscriberKey, tuple[Paper, ...]]):
    """Items without a key lookup per item (the keys come straight from the id list)."""

    _mapping: MatchResult

    def __iter__(self) -> Iterator[tuple[SubscriberKey, tuple[Paper, ...]]]:
        result = self._mapping
        keys, papers_for = result._keys, result._day.papers_for
        for key_id, mask in result._found.items():
            yield keys[key_id], papers_for(mask)


class _Values(ValuesView[tuple[Paper, ...]]):
    _mapping: MatchResult

    def __iter__(self) -> Iterator[tuple[Paper, ...]]:
        result = self._mapping
        return map(result._day.papers_for, result._found.values())


class SubscriptionIndex:
    """Subscriptions organised for matching a day's papers; build once, match many days."""

    def __init__(self) -> None:
        self._tags: dict[str, _Source] = {}
        self._queries: dict[tuple[str, tuple[str, ...], tuple[str, ...]], _QuerySource] = {}
        self._anchors: dict[str, list[_QuerySource]] = {}
        self._prefix_anchors: dict[str, list[_QuerySource]] = {}
        self._anchor_tokens: frozenset[str] = frozenset()
        # Queries that are one author phrase, by tokens: matched straight from the day's n-grams.
        self._author_phrases: dict[tuple[str, ...], list[_QuerySource]] = {}
        self._terms: dict[str, _Term] = {}
        self.keys: list[SubscriberKey] = []  # every subscriber, by id
        self._key_ids: dict[SubscriberKey, int] = {}
        self._order = 0
        self.size = 0  # subscriptions indexed
        self.skipped = 0  # subscriptions that can never match (kept out of the index)

    @classmethod
    def build(cls, subscriptions: Iterable[Subscription]) -> SubscriptionIndex:
        """Index subscriptions (any mix of guilds, feeds, users and roles)."""
        index = cls()
        tokenizer: Tokenizer | None = None
        sources: dict[tuple[str, str], _Source | None] = {}
        try:
            for sub in subscriptions:
                ident = (sub.kind, sub.norm)
                if ident in sources:
                    source = sources[ident]
                else:
                    if tokenizer is None and sub.kind != "tag" and not sub.terms:
                        tokenizer = Tokenizer()
                    source = sources[ident] = index._source_for(sub, tokenizer)
                if source is None:
                    index.skipped += 1
                    continue
                key = SubscriberKey(
                    sub.guild_id, sub.subscriber_type, sub.subscriber_id, sub.feed_id, sub.dm
                )
                key_id = index._key_ids.get(key)
                if key_id is None:
                    key_id = index._key_ids[key] = len(index.keys)
                    index.keys.append(key)
                source.add(key_id, sub.guild_id)
                index.size += 1
        finally:
            if tokenizer is not None:
                tokenizer.close()
        index._anchor_tokens = frozenset(index._anchors)
        log.debug(
            "indexed %d subscriptions: %d tags, %d queries, %d anchors",
            index.size,
            len(index._tags),
            len(index._queries),
            len(index._anchors) + len(index._prefix_anchors),
        )
        return index

    def _next_order(self) -> int:
        self._order += 1
        return self._order

    def _term(self, term: Term, known: Mapping[str, Sequence[str]], tokenizer: Tokenizer | None):
        fts = term.to_fts()
        found = self._terms.get(fts)
        if found is None:
            tokens = known.get(fts)
            if tokens is None:
                local = tokenizer or Tokenizer()
                try:
                    tokens = local.term_tokens(term)
                finally:
                    if tokenizer is None:
                        local.close()
            tokens = tuple(tokens)
            author_phrase = (
                term.column == "authors_text"
                and 0 < len(tokens) <= MAX_AUTHOR_NGRAM
                and not any(token.endswith(PREFIX_MARK) for token in tokens)
            )
            found = self._terms[fts] = _Term(fts, tokens, author_phrase)
        return found

    def _source_for(self, sub: Subscription, tokenizer: Tokenizer | None) -> _Source | None:
        if sub.kind == "tag":
            key = tag_key(sub.norm)
            if not key:
                return None
            if key not in self._tags:
                self._tags[key] = _Source(self._next_order(), f"tag:{sub.norm}")
            return self._tags[key]
        query = subscription_query(sub.kind, sub.norm)
        if query is None or not query.has_text:
            log.warning("subscription %s has no searchable words: %r", sub.id, sub.norm)
            return None
        known = dict(sub.terms)
        groups = tuple(tuple(self._term(t, known, tokenizer) for t in g) for g in query.groups)
        groups += tuple((self._term(t, known, tokenizer),) for t in query.authors)
        tags = tuple(tag.casefold() for tag in query.tags)
        excluded_tags = tuple(tag.casefold() for tag in query.excluded_tags)
        ident = (query.to_fts() or "", tags, excluded_tags)
        source = self._queries.get(ident)
        if source is not None:
            return source
        usable = [tuple(t for t in group if t.tokens) for group in groups]
        if not all(usable):
            return None  # a group has no word FTS5 can find: the query never matches
        source = _QuerySource(
            self._next_order(),
            ident[0],
            groups=groups,
            excluded=tuple(self._term(t, known, tokenizer) for t in query.excluded),
            tags=tags,
            excluded_tags=excluded_tags,
        )
        self._queries[ident] = source
        if source.and_fts is not None and len(groups) == 1 and groups[0][0].author_phrase:
            self._author_phrases.setdefault(groups[0][0].tokens, []).append(source)
            return source
        for anchor in dict.fromkeys(_anchor_token(t) for t in min(usable, key=_group_cost)):
            if anchor.endswith(PREFIX_MARK):
                self._prefix_anchors.setdefault(anchor[: -len(PREFIX_MARK)], []).append(source)
            else:
                self._anchors.setdefault(anchor, []).append(source)
        return source

    def _candidates(self, day: DayIndex) -> list[_QuerySource]:
        """Queries with an anchor among the day's terms, once each, in a stable order."""
        lists = [self._anchors[token] for token in sorted(self._anchor_tokens & day.vocab)]
        lists += [
            sources
            for prefix, sources in self._prefix_anchors.items()
            if day.has_token(prefix + PREFIX_MARK)
        ]
        return list(dict.fromkeys(chain.from_iterable(lists)))

    def match(
        self,
        papers: DayIndex | Iterable[Paper],
        *,
        guild_id: int | None = None,
        feed_id: int | None = None,
        stats: MatchStats | None = None,
    ) -> MatchResult:
        """For each subscriber with a match, their matching papers (day order, no duplicates).

        ``guild_id`` restricts to one guild; ``feed_id`` keeps the subscriptions of that feed and
        those for any feed (``feed_id`` None on the subscription). Pass a :class:`DayIndex` to
        reuse one day's table for several calls.
        """
        if not isinstance(papers, DayIndex):
            with DayIndex(papers) as day:
                return self.match(day, guild_id=guild_id, feed_id=feed_id, stats=stats)
        day = papers
        # Matched sources and their papers, as two lists (fewer objects for the GC to track).
        sources: list[_Source] = []
        source_masks: list[int] = []
        for key, mask in day.tag_masks.items():
            source = self._tags.get(key)
            if source is not None:
                sources.append(source)
                source_masks.append(mask)
        tag_sources = len(sources)
        for gram in sorted(self._author_phrases.keys() & day.author_ngrams.keys()):
            found_sources = self._author_phrases[gram]
            sources.extend(found_sources)
            source_masks.extend(repeat(day.author_ngrams[gram], len(found_sources)))
        author_phrases = len(sources) - tag_sources

        candidates = self._candidates(day)
        vocab = day.vocab
        possible = [source for source in candidates if source.required <= vocab]
        if guild_id is not None:
            possible = [source for source in possible if guild_id in source.by_guild]
        possible = [
            source
            for source in possible
            if not source.checks
            or (
                any(map(vocab.issuperset, source.or_sets))  # the common "a OR b", inlined
                if source.or_sets is not None
                else source.possible(day)
            )
        ]
        # Each distinct phrase once (MATCH only when all its tokens occur), then the queries.
        masks = day.phrase_masks
        needed = set(chain.from_iterable(source.term_fts for source in possible))
        for fts in needed.difference(masks):
            day.phrase_mask(self._terms[fts], stats)
        get = masks.__getitem__
        for source in possible:
            if source.and_fts is not None:
                mask = reduce(and_, map(get, source.and_fts))
            else:
                mask = source.evaluate(day, masks)
            if mask:
                sources.append(source)
                source_masks.append(mask)
        if stats is not None:
            stats.tag_sources += tag_sources
            stats.author_phrases += author_phrases
            stats.candidates += len(candidates)
            stats.evaluated_queries.extend(source.label for source in possible)

        found: dict[int, int] = {}  # subscriber id -> papers
        get_found = found.get
        all_keys = self.keys
        for source, mask in zip(sources, source_masks, strict=True):
            ids: Sequence[int]
            ids = source.ids if guild_id is None else source.by_guild.get(guild_id, ())
            if feed_id is not None:
                ids = [i for i in ids if all_keys[i].feed_id in (None, feed_id)]
            # found[i] |= mask for every subscriber, in C loops (the hot spot at 100k).
            found.update(
                zip(ids, map(or_, map(get_found, ids, repeat(0)), repeat(mask)), strict=True)
            )
        return MatchResult(found, all_keys, self._key_ids, day)


def match_feed(
    index: SubscriptionIndex,
    feed_id: int,
    guild_id: int,
    papers: DayIndex | Iterable[Paper],
    *,
    stats: MatchStats | None = None,
) -> MatchResult:
    """Matches for one feed's digest: the guild's role subscriptions for this feed and its
    user subscriptions for this feed or any feed (``papers``: the papers the feed posts)."""
    return index.match(papers, guild_id=guild_id, feed_id=feed_id, stats=stats)


def reference_match(
    subscriptions: Iterable[Subscription], papers: DayIndex | Sequence[Paper]
) -> dict[SubscriberKey, tuple[Paper, ...]]:
    """The obvious loop: every subscription against the day, one full ``MATCH`` per query.

    The executable specification of :meth:`SubscriptionIndex.match` (tests, benchmark); keys
    come out in a different order.
    """
    if not isinstance(papers, DayIndex):
        with DayIndex(papers) as day:
            return reference_match(subscriptions, day)
    day = papers
    found: dict[SubscriberKey, int] = {}
    paper_keys = [paper_tag_keys(paper) for paper in day.papers]
    stored_tags = [{tag.casefold() for tag in paper.tags} for paper in day.papers]
    for sub in subscriptions:
        key = SubscriberKey(
            sub.guild_id, sub.subscriber_type, sub.subscriber_id, sub.feed_id, sub.dm
        )
        mask = 0
        if sub.kind == "tag":
            wanted = tag_key(sub.norm)
            for i, keys in enumerate(paper_keys):
                if wanted in keys:
                    mask |= 1 << i
        else:
            query = subscription_query(sub.kind, sub.norm)
            fts = query.to_fts() if query is not None else None
            if query is not None and fts is not None:
                mask = day.expression_mask(fts)
                for i, stored in enumerate(stored_tags):
                    if any(tag.casefold() not in stored for tag in query.tags) or any(
                        tag.casefold() in stored for tag in query.excluded_tags
                    ):
                        mask &= ~(1 << i)
        if mask:
            found[key] = found.get(key, 0) | mask
    return {key: day.papers_for(mask) for key, mask in found.items()}


def merge_matches(
    *results: Mapping[SubscriberKey, Sequence[Paper]],
) -> dict[SubscriberKey, tuple[Paper, ...]]:
    """Combine match results (e.g. of several feeds), keeping first-seen paper order."""
    merged: dict[SubscriberKey, dict[str, Paper]] = {}
    for result in results:
        for key, papers in result.items():
            bucket = merged.setdefault(key, {})
            for paper in papers:
                bucket.setdefault(paper.arxiv_id, paper)
    return {key: tuple(bucket.values()) for key, bucket in merged.items()}
