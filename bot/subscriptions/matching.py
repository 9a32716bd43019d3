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
  candidate with a group none of whose terms has all its tokens that day is dropped without
  touching FTS5 (two set operations against the day's present terms);
* each distinct phrase of the remaining queries is run once as ``MATCH`` against the day table
  (when first needed), and each query is combined from its phrases' papers with the set algebra
  FTS5 itself uses for ``AND`` / ``OR`` / ``NOT`` (queries share phrases, so this runs far fewer
  statements than one ``MATCH`` per query);
* a query that is one author phrase (every author subscription) is found by reading the day's
  author tokens (FTS5's own tokens and positions of the authors column) for phrases starting at
  each token;
* subscribers are small ints kept in arrays; the papers of every matched query or tag are ORed
  into a list indexed by subscriber, so a match makes no object per subscriber.

:func:`reference_match` is the plain per-subscription loop with one ``MATCH`` of the whole
expression per subscription; tests check that both agree.

Everything here is CPU-bound and synchronous (in-memory SQLite, no I/O): call it from a worker
thread (``asyncio.to_thread``) inside the bot. A :class:`DayIndex` is not thread-safe; use it
from one thread at a time. A built :class:`SubscriptionIndex` is read-only.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import sys
from array import array
from bisect import bisect_left
from collections.abc import Callable, ItemsView, Iterable, Iterator, Mapping, Sequence, ValuesView
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from functools import reduce
from itertools import chain, compress
from operator import and_, or_
from typing import TYPE_CHECKING, NamedTuple

from bot.digest.select import paper_tag_keys, tag_key
from bot.models import Paper, Subscription, TermTokens, search_texts
from bot.search.query import Query, Term, author_term, parse_query
from bot.search.tokens import TOKENIZE, UsesTokenizer

if TYPE_CHECKING:
    from types import TracebackType


log = logging.getLogger(__name__)

FTS_COLUMNS = ("title", "authors_text", "summary_text", "abstract", "tags_text")
PREFIX_MARK = "*"  # a stored token ending in "*" is a prefix (``word*`` in a query)
MAX_AUTHOR_NGRAM = 6  # author phrases up to this many tokens skip MATCH (see DayIndex)
SQL_MASK_BITS = 63  # papers whose mask SQLite can sum in a (signed 64-bit) integer

_WORD = re.compile(r"\w+")  # as in bot.query


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


class Tokenizer(UsesTokenizer):
    """The store's FTS5 tokenizer: ``fts5`` (e.g. the search engine's, with its word cache),
    or one of its own, closed with it."""

    def tokens(self, text: str) -> tuple[str, ...]:
        """The tokens FTS5 indexes for ``text``, in order (stemmed, folded, no diacritics)."""
        return tuple(self.fts5.tokens(text))

    def term_tokens(self, term: Term) -> tuple[str, ...]:
        """A query term's tokens; a prefix term's last token gets :data:`PREFIX_MARK`."""
        tokens = self.tokens(" ".join(term.words))
        if term.prefix and tokens:
            tokens = (*tokens[:-1], tokens[-1] + PREFIX_MARK)
        return tokens


def borrow(tokenizer: Tokenizer | None) -> AbstractContextManager[Tokenizer]:
    """``tokenizer`` itself (left open), or a new one closed at the end of the ``with``."""
    return nullcontext(tokenizer) if tokenizer is not None else Tokenizer()


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


# --------------------------------------------------------------------------------------------
# The day's papers


def _fts_row(rowid: int, paper: Paper) -> tuple[int, str, str, str, str, str]:
    authors_text, summary_text, tags_text = search_texts(paper)
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
        self._sorted_vocab = self._read_vocab()  # for prefix tokens
        self.vocab = frozenset(self._sorted_vocab)
        self.author_runs = self._author_runs()
        self._author_ngrams: dict[tuple[str, ...], int] | None = None
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

    def _read_vocab(self) -> list[str]:
        """Every term of the day table, sorted. Read as one string (no FTS5 token has a space);
        ``fts5vocab`` lists terms in order, so sorting them costs one pass."""
        (terms,) = self._conn.execute("SELECT group_concat(term, ' ') FROM day_terms").fetchone()
        return sorted(terms.split(" ")) if terms else []

    def _author_runs(self) -> tuple[tuple[int, tuple[str, ...]], ...]:
        """Each paper's authors column as FTS5 tokenizes it: (the paper's bit, its tokens).

        A phrase matches a column exactly when its tokens occur there consecutively, so author
        phrases are found in these tokens instead of one MATCH each (author subscriptions are
        many and mostly distinct). The tokens and their positions come from FTS5 itself: a
        one-column table with the same tokenizer, read through ``fts5vocab``.
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
                [(i + 1, search_texts(paper)[0]) for i, paper in enumerate(self.papers)],
            )
        runs: list[tuple[int, list[str]]] = []
        tokens: list[str] = []
        previous = (0, 0)
        for doc, offset, term in self._conn.execute(
            "SELECT doc, offset, term FROM day_author_terms ORDER BY doc, offset"
        ):
            # A new paper, or a gap in the positions (cannot happen; be safe): a new run.
            if (doc, offset - 1) != previous:
                tokens = []
                runs.append((1 << (doc - 1), tokens))
            tokens.append(term)
            previous = (doc, offset)
        return tuple((bit, tuple(tokens)) for bit, tokens in runs)

    @property
    def author_ngrams(self) -> dict[tuple[str, ...], int]:
        """Every run of up to MAX_AUTHOR_NGRAM consecutive author tokens -> its papers (made on
        first use: :meth:`SubscriptionIndex.match` looks in ``author_runs`` instead)."""
        if self._author_ngrams is None:
            ngrams: dict[tuple[str, ...], int] = {}
            for bit, tokens in self.author_runs:
                for start in range(len(tokens)):
                    for end in range(start + 1, min(start + MAX_AUTHOR_NGRAM, len(tokens)) + 1):
                        gram = tokens[start:end]
                        ngrams[gram] = ngrams.get(gram, 0) | bit
            self._author_ngrams = ngrams
        return self._author_ngrams

    def has_token(self, token: str) -> bool:
        """True if the day has ``token`` (a prefix token: any term starting with it)."""
        if not token.endswith(PREFIX_MARK):
            return token in self.vocab
        prefix = token[: -len(PREFIX_MARK)]
        at = bisect_left(self._sorted_vocab, prefix)
        return at < len(self._sorted_vocab) and self._sorted_vocab[at].startswith(prefix)

    def has_tokens(self, tokens: Sequence[str]) -> bool:
        """True if the day has every one of ``tokens`` (and there is one)."""
        if self.vocab.issuperset(tokens):  # whole words only: one set operation
            return bool(tokens)
        return bool(tokens) and all(map(self.has_token, tokens))

    def phrase_mask(self, term: _Term, stats: MatchStats | None = None) -> int:
        """The papers one query term matches; ``MATCH`` runs only if all its tokens occur."""
        mask = self.phrase_masks.get(term.fts)
        if mask is not None:
            return mask
        if term.author_phrase:
            mask = self.author_ngrams.get(term.tokens, 0)
        elif self.has_tokens(term.tokens):
            mask = self.expression_mask(term.fts)
            if stats is not None:
                stats.match_calls += 1
        else:
            mask = 0
        self.phrase_masks[term.fts] = mask
        return mask

    def expression_mask(self, fts: str) -> int:
        """The papers an FTS5 expression matches (one MATCH against the day table)."""
        if len(self.papers) <= SQL_MASK_BITS:  # the mask fits an SQLite integer: one row back
            (mask,) = self._conn.execute(
                "SELECT sum(1 << (rowid - 1)) FROM day WHERE day MATCH ?", (fts,)
            ).fetchone()
            return mask or 0
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


def _id_array() -> array[int]:
    return array("i")


@dataclass(eq=False, slots=True)
class _Source:
    """Subscribers sharing one tag or one query."""

    order: int
    label: str
    # Subscribers as ints (positions in SubscriptionIndex.keys) packed in arrays: matching reads
    # tens of thousands of them, and an array is one block of memory where a list points to an
    # int object per subscriber, scattered over the heap (cache misses dominated matching).
    ids: array[int] = field(default_factory=_id_array)
    by_guild: dict[int, array[int]] = field(default_factory=dict)

    def add(self, key_id: int, guild_id: int) -> None:
        self.ids.append(key_id)
        guild_ids = self.by_guild.get(guild_id)
        if guild_ids is None:
            guild_ids = self.by_guild[guild_id] = _id_array()
        guild_ids.append(key_id)


# Keys of the per-match mask table (see _TermMasks) besides the terms' own FTS texts, which
# start with a quote or a column name: the papers without a term, with a stored tag (casefolded),
# without a stored tag.
NOT_KEY, TAG_KEY, NOT_TAG_KEY = "-", "tag:", "-tag:"


@dataclass(eq=False, slots=True)
class _QuerySource(_Source):
    """A distinct keyword or author query: ANDed groups of ORed terms, minus exclusions."""

    groups: tuple[tuple[_Term, ...], ...] = ()
    excluded: tuple[_Term, ...] = ()
    tags: tuple[str, ...] = ()  # casefolded stored tags required (tag: in a keyword query)
    excluded_tags: tuple[str, ...] = ()
    # The query as mask-table keys: it matches the AND of ``factors`` (one-term groups,
    # exclusions, tag filters) and of each group of ``any_of`` (alternatives) ORed.
    factors: tuple[str, ...] = ()
    any_of: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        # Interned: queries share filter keys, and the mask table then finds them by identity.
        self.factors = (
            *(group[0].fts for group in self.groups if len(group) == 1),
            *(sys.intern(NOT_KEY + term.fts) for term in self.excluded),
            *(sys.intern(TAG_KEY + tag) for tag in self.tags),
            *(sys.intern(NOT_TAG_KEY + tag) for tag in self.excluded_tags),
        )
        self.any_of = tuple(
            tuple(term.fts for term in group) for group in self.groups if len(group) > 1
        )

    @property
    def author_phrase(self) -> _Term | None:
        """The query's term if it is one author phrase and nothing else (else None)."""
        if len(self.factors) == 1 and not self.any_of:
            (term,) = self.groups[0]
            return term if term.author_phrase else None
        return None

    def papers(self, get: Callable[[str], int], all_mask: int) -> int:
        """The papers this query matches (``get``: a :class:`_TermMasks` lookup): FTS5's AND /
        OR / NOT over its terms' papers, in C loops (thousands of queries are evaluated a day)."""
        mask = reduce(and_, map(get, self.factors), all_mask)
        for group in self.any_of:
            mask &= reduce(or_, map(get, group))
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

    Subscribers come in the order of the subscriptions the index was built from. Papers are
    looked up when a value is read (and cached per distinct set of papers), so building the
    result costs a list of subscriber ids; reading all values once costs one lookup each. Equal
    to any mapping with the same items (e.g. a dict).
    """

    __slots__ = ("_by_guild", "_day", "_hits", "_key_ids", "_keys", "_masks")

    def __init__(
        self,
        masks: Sequence[int],
        hits: Sequence[int],
        keys: Sequence[SubscriberKey],
        key_ids: Mapping[SubscriberKey, int],
        day: DayIndex,
    ) -> None:
        self._masks = masks  # subscriber id -> papers (0 for every subscriber not in hits)
        self._hits = hits  # the ids of the subscribers with papers, ascending
        self._keys = keys
        self._key_ids = key_ids
        self._day = day
        self._by_guild: dict[int, list[int]] | None = None

    def _mask(self, key: object) -> int:
        key_id = self._key_ids.get(key)  # type: ignore[call-overload]
        return 0 if key_id is None else self._masks[key_id]

    def __getitem__(self, key: SubscriberKey) -> tuple[Paper, ...]:
        mask = self._mask(key)
        if not mask:
            raise KeyError(key)
        return self._day.papers_for(mask)

    def __iter__(self) -> Iterator[SubscriberKey]:
        return map(self._keys.__getitem__, self._hits)

    def __len__(self) -> int:
        return len(self._hits)

    def items(self) -> ItemsView[SubscriberKey, tuple[Paper, ...]]:
        return _Items(self)

    def values(self) -> ValuesView[tuple[Paper, ...]]:
        return _Values(self)

    def __contains__(self, key: object) -> bool:
        return bool(self._mask(key))

    def for_guild(self, guild_id: int) -> dict[SubscriberKey, tuple[Paper, ...]]:
        """The matches of one guild as a plain dict (the first call groups all guilds once)."""
        keys = self._keys
        if self._by_guild is None:
            self._by_guild = {}
            for key_id in self._hits:
                self._by_guild.setdefault(keys[key_id].guild_id, []).append(key_id)
        masks, papers_for = self._masks, self._day.papers_for
        return {keys[i]: papers_for(masks[i]) for i in self._by_guild.get(guild_id, ())}

    def __repr__(self) -> str:
        return f"<MatchResult of {len(self)} subscribers>"


class _Items(ItemsView[SubscriberKey, tuple[Paper, ...]]):
    """Items without a key lookup per item (the keys come straight from the id list)."""

    _mapping: MatchResult

    def __iter__(self) -> Iterator[tuple[SubscriberKey, tuple[Paper, ...]]]:
        result = self._mapping
        keys, masks, papers_for = result._keys, result._masks, result._day.papers_for
        for key_id in result._hits:
            yield keys[key_id], papers_for(masks[key_id])


class _Values(ValuesView[tuple[Paper, ...]]):
    _mapping: MatchResult

    def __iter__(self) -> Iterator[tuple[Paper, ...]]:
        result = self._mapping
        return map(result._day.papers_for, map(result._masks.__getitem__, result._hits))


class SubscriptionIndex:
    """Subscriptions organised for matching a day's papers; build once, match many days."""

    def __init__(self) -> None:
        self._tags: dict[str, _Source] = {}
        self._queries: dict[tuple[str, tuple[str, ...], tuple[str, ...]], _QuerySource] = {}
        self._anchors: dict[str, list[_QuerySource]] = {}
        self._prefix_anchors: dict[str, list[_QuerySource]] = {}
        self._anchor_tokens: frozenset[str] = frozenset()
        # Queries that are one author phrase, by tokens: found in the day's author tokens.
        self._author_phrases: dict[tuple[str, ...], list[_QuerySource]] = {}
        self._author_starts: dict[str, set[int]] = {}  # first token -> those phrases' lengths
        self._terms: dict[str, _Term] = {}
        # For _present, the terms of the anchored queries (FTS text -> tokens): those of whole
        # words by their first token, those with a prefix token; and the queries' mask-table keys
        # that never make a query impossible (exclusions, tag filters).
        self._terms_by_token: dict[str, dict[str, tuple[str, ...]]] = {}
        self._prefix_terms: dict[str, tuple[str, ...]] = {}
        self._filter_keys: set[str] = set()
        self.keys: list[SubscriberKey] = []  # every subscriber, by id
        self._key_ids: dict[SubscriberKey, int] = {}
        self._key_feeds: list[int | None] = []  # each subscriber's feed_id, by id
        self._guild_keys: dict[int, array[int]] = {}  # each guild's subscribers, by id
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
                source.add(index._key_id(sub), sub.guild_id)
                index.size += 1
        finally:
            if tokenizer is not None:
                tokenizer.close()
        index._anchor_tokens = frozenset(index._anchors)
        index._lay_out_queries()
        log.debug(
            "indexed %d subscriptions: %d tags, %d queries, %d anchors",
            index.size,
            len(index._tags),
            len(index._queries),
            len(index._anchors) + len(index._prefix_anchors),
        )
        return index

    def _lay_out_queries(self) -> None:
        """Make the anchored queries again, one after another in the order matching visits them.

        Matching reads thousands of them a day. Made anew together (with their tuples and
        subscriber arrays), they sit side by side in memory rather than scattered among
        everything the build allocated, which saves about a tenth of a match in cache misses.
        """
        lists = [self._anchors[token] for token in sorted(self._anchors)]
        lists += self._prefix_anchors.values()
        fresh = {
            source: replace(source, ids=array("i", source.ids))
            for source in dict.fromkeys(chain.from_iterable(lists))
        }
        for anchors in (self._anchors, self._prefix_anchors):
            for token, sources in anchors.items():
                anchors[token] = [fresh[source] for source in sources]
        for ident, source in self._queries.items():
            self._queries[ident] = fresh.get(source, source)

    def _key_id(self, sub: Subscription) -> int:
        """The subscriber's id (a new one for a subscriber not seen yet)."""
        key = SubscriberKey(
            sub.guild_id, sub.subscriber_type, sub.subscriber_id, sub.feed_id, sub.dm
        )
        key_id = self._key_ids.get(key)
        if key_id is None:
            key_id = self._key_ids[key] = len(self.keys)
            self.keys.append(key)
            self._key_feeds.append(key.feed_id)
            self._guild_keys.setdefault(key.guild_id, _id_array()).append(key_id)
        return key_id

    def _next_order(self) -> int:
        self._order += 1
        return self._order

    def _term(self, term: Term, known: Mapping[str, Sequence[str]], tokenizer: Tokenizer | None):
        fts = term.to_fts()
        found = self._terms.get(fts)
        if found is None:
            tokens = known.get(fts)
            if tokens is None:
                with borrow(tokenizer) as local:
                    tokens = local.term_tokens(term)
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
        phrase = source.author_phrase
        if phrase is not None:
            self._author_phrases.setdefault(phrase.tokens, []).append(source)
            self._author_starts.setdefault(phrase.tokens[0], set()).add(len(phrase.tokens))
            return source
        for anchor in dict.fromkeys(_anchor_token(t) for t in min(usable, key=_group_cost)):
            if anchor.endswith(PREFIX_MARK):
                self._prefix_anchors.setdefault(anchor[: -len(PREFIX_MARK)], []).append(source)
            else:
                self._anchors.setdefault(anchor, []).append(source)
        for term in chain.from_iterable(groups):
            if any(token.endswith(PREFIX_MARK) for token in term.tokens):
                self._prefix_terms[term.fts] = term.tokens
            elif term.tokens:  # a term without tokens is never present
                self._terms_by_token.setdefault(term.tokens[0], {})[term.fts] = term.tokens
        self._filter_keys.update(key for key in source.factors if key not in self._terms)
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

    def _present(self, day: DayIndex) -> set[str]:
        """The mask-table keys that can have papers today: every filter key, and each term of
        the anchored queries whose tokens all occur (a query with a group without one of these
        cannot match, and is dropped before any of its terms runs a MATCH)."""
        present = set(self._filter_keys)
        has_all = day.vocab.issuperset
        # Looked up from the day's words (the smaller side): the work follows the day's size.
        for token in self._terms_by_token.keys() & day.vocab:
            terms = self._terms_by_token[token]
            present.update(fts for fts, tokens in terms.items() if has_all(tokens))
        present.update(fts for fts, tokens in self._prefix_terms.items() if day.has_tokens(tokens))
        return present

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
        found = self._combine(list(self._matched_sources(day, guild_id, stats)), guild_id)
        hits = self._hits(found, guild_id)
        if feed_id is not None:
            hits = self._drop_other_feeds(found, hits, feed_id)
        return MatchResult(found, hits, self.keys, self._key_ids, day)

    def _combine(self, matched: list[tuple[_Source, int]], guild_id: int | None) -> list[int]:
        """Subscriber id -> the papers of all their matched sources (0: none).

        A list indexed by id, filled in one plain loop: cheaper than a dict, or than C-level
        ``map`` chains, which make a new int for every (source, subscriber) pair.
        """
        found = [0] * len(self.keys)
        for source, mask in matched:
            ids = source.ids if guild_id is None else source.by_guild.get(guild_id, ())
            for key_id in ids:
                # Most subscribers match one source: store its mask, or a new int is made.
                if found[key_id]:
                    found[key_id] |= mask
                else:
                    found[key_id] = mask
        return found

    def _hits(self, found: list[int], guild_id: int | None) -> Sequence[int]:
        """The ids of the subscribers in ``found`` with papers, ascending."""
        if guild_id is None:
            return list(compress(range(len(found)), found))
        scope = self._guild_keys.get(guild_id, ())
        return list(compress(scope, map(found.__getitem__, scope)))

    def _drop_other_feeds(self, found: list[int], hits: Sequence[int], feed_id: int) -> list[int]:
        """``hits`` without the subscribers of another feed (their masks in ``found`` zeroed)."""
        feeds = self._key_feeds
        kept = []
        for key_id in hits:
            if feeds[key_id] in (None, feed_id):
                kept.append(key_id)
            else:
                found[key_id] = 0
        return kept

    def _matched_sources(
        self, day: DayIndex, guild_id: int | None, stats: MatchStats | None
    ) -> Iterator[tuple[_Source, int]]:
        """Every tag, author and keyword source with a paper today, with its papers."""
        tag_sources = 0
        for key, mask in day.tag_masks.items():
            source = self._tags.get(key)
            if source is not None:
                tag_sources += 1
                yield source, mask
        author_phrases = 0
        for gram, mask in self._author_matches(day).items():
            for source in self._author_phrases[gram]:
                author_phrases += 1
                yield source, mask
        candidates = self._candidates(day)
        if stats is not None:
            stats.tag_sources += tag_sources
            stats.author_phrases += author_phrases
            stats.candidates += len(candidates)
        if guild_id is not None:
            candidates = [source for source in candidates if guild_id in source.by_guild]
        yield from self._query_matches(day, candidates, stats)

    def _author_matches(self, day: DayIndex) -> dict[tuple[str, ...], int]:
        """The author phrases found today (as consecutive tokens of an authors column) -> their
        papers. Looks up each token of the day's authors, not every n-gram of them."""
        found: dict[tuple[str, ...], int] = {}
        starts, phrases = self._author_starts, self._author_phrases
        for bit, tokens in day.author_runs:
            for at, token in enumerate(tokens):
                for size in starts.get(token, ()):
                    gram = tokens[at : at + size]
                    if len(gram) == size and gram in phrases:
                        found[gram] = found.get(gram, 0) | bit
        return found

    def _query_matches(
        self, day: DayIndex, candidates: Iterable[_QuerySource], stats: MatchStats | None
    ) -> Iterator[tuple[_Source, int]]:
        """The candidate queries with papers today. Each possible one (every group has a term
        whose tokens all occur) is evaluated; its terms' papers are computed on first use."""
        present = self._present(day)
        issuperset, isdisjoint = present.issuperset, present.isdisjoint
        get = _TermMasks(day, self._terms, stats).__getitem__
        all_mask = day.all_mask
        for source in candidates:  # thousands a day at 100k subscriptions: kept lean
            any_of = source.any_of
            if not issuperset(source.factors) or (any_of and any(map(isdisjoint, any_of))):
                continue
            if stats is not None:
                stats.evaluated_queries.append(source.label)
            mask = source.papers(get, all_mask)
            if mask:
                yield source, mask


class _TermMasks(dict[str, int]):
    """Mask-table key -> papers for one match, each computed when first needed.

    A key is a term's FTS text (its papers come from the day, see :meth:`DayIndex.phrase_mask`),
    or one of those after :data:`NOT_KEY`, or a casefolded stored tag after :data:`TAG_KEY` or
    :data:`NOT_TAG_KEY`.
    """

    def __init__(self, day: DayIndex, terms: Mapping[str, _Term], stats: MatchStats | None) -> None:
        super().__init__()
        self._day, self._terms, self._stats = day, terms, stats

    def __missing__(self, key: str) -> int:
        day = self._day
        term = self._terms.get(key)
        if term is not None:
            mask = day.phrase_mask(term, self._stats)
        elif key.startswith(NOT_TAG_KEY):
            mask = day.all_mask & ~day.stored_tag_masks.get(key[len(NOT_TAG_KEY) :], 0)
        elif key.startswith(TAG_KEY):
            mask = day.stored_tag_masks.get(key[len(TAG_KEY) :], 0)
        else:  # NOT_KEY
            mask = day.all_mask & ~self[key[len(NOT_KEY) :]]
        self[key] = mask
        return mask


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
