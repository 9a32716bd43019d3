"""Tokenize text exactly as the papers_fts index does (``porter unicode61 remove_diacritics 2``).

The fast search path scores candidate papers in Python, so it needs the very tokens FTS5
stored. Rather than re-implementing unicode61 folding and SQLite's Porter stemmer (which has
its own quirks), SQLite itself is the reference: each distinct word is tokenized once by an
in-memory FTS5 table with the same tokenizer and the result is cached.

Why caching by word is exact: unicode61 never lets a token span whitespace, and Porter stems
each token on its own, so a text's tokens are the concatenation of its whitespace-separated
chunks' tokens. ASCII text needs no round trip for the splitting either: for ASCII, unicode61's
token characters are exactly ``[A-Za-z0-9]`` and folding is lower-casing; only the stem is looked
up. Chunks with other characters are tokenized whole by SQLite.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from typing import Self

TOKENIZE = "porter unicode61 remove_diacritics 2"  # as in migrations/001_papers.sql
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_MAX_CACHED = 2_000_000  # words and chunks; the cache is dropped (and refilled) past this
_BATCH = 5000


class Fts5Tokenizer:
    """Thread-safe; the word caches are shared by every caller of one instance (the search
    engine holds one, see ``bot.search.engine.SearchEngine``)."""

    def __init__(self, tokenize: str = TOKENIZE) -> None:
        self._tokenize = tokenize
        self._stems: dict[str, str] = {}  # lower-case ASCII word -> its token
        self._chunks: dict[str, tuple[str, ...]] = {}  # other chunks -> their tokens
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    # -- public API -----------------------------------------------------------------------

    def tokens(self, text: str) -> list[str]:
        """The tokens FTS5 stores for ``text``, in order (positions are list indexes)."""
        return self.tokens_many([text])[0]

    def tokens_many(self, texts: Sequence[str]) -> list[list[str]]:
        """``tokens`` for many texts, with one SQLite round trip for all unseen words."""
        for _ in range(3):  # another thread may drop the cache meanwhile: then fill again
            try:
                return self._tokens_many(texts)
            except KeyError:
                continue
        raise RuntimeError("the token cache keeps being dropped")

    def _tokens_many(self, texts: Sequence[str]) -> list[list[str]]:
        stems = self._stems
        findall = _ASCII_WORD.findall
        out: list[list[str]] = [[] for _ in texts]
        missing: list[tuple[int, list[str]]] = []  # ASCII texts with unseen words
        others: list[tuple[int, list[tuple[bool, str]]]] = []  # texts with other characters
        for number, text in enumerate(texts):
            if text.isascii():
                words = findall(text.lower())
                try:
                    out[number] = [stems[word] for word in words]
                except KeyError:
                    missing.append((number, words))
            else:
                others.append((number, self._split(text)))
        if not missing and not others:
            return out
        chunks = self._chunks
        new_words = {word for _, words in missing for word in words if word not in stems}
        new_chunks: set[str] = set()
        for _, parts in others:
            for is_word, part in parts:
                if is_word:
                    if part not in stems:
                        new_words.add(part)
                elif part not in chunks:
                    new_chunks.add(part)
        if new_words or new_chunks:
            self._resolve(new_words, new_chunks)
            stems, chunks = self._stems, self._chunks
        for number, words in missing:
            out[number] = [stems[word] for word in words]
        for number, parts in others:
            tokens: list[str] = []
            for is_word, part in parts:
                if is_word:
                    tokens.append(stems[part])
                else:
                    tokens.extend(chunks[part])
            out[number] = tokens
        return out

    def stems(self, words: Sequence[str]) -> list[str]:
        """The tokens of lower-case ASCII words (``[a-z0-9]+``, one token each)."""
        for _ in range(3):  # another thread may drop the cache meanwhile: then fill again
            stems = self._stems
            try:
                return [stems[word] for word in words]
            except KeyError:
                self._resolve({word for word in words if word not in stems}, set())
        raise RuntimeError("the token cache keeps being dropped")

    def known_stems(self) -> dict[str, str]:
        """The lower-case ASCII words seen so far, with their tokens."""
        return dict(self._stems)

    def preload(self, stems: dict[str, str]) -> None:
        """Add known tokens of lower-case ASCII words (from ``bot.search.postings``, which saw
        every stored word), so that searching for them needs no SQLite round trip."""
        with self._lock:
            if len(self._stems) + len(self._chunks) + len(stems) > _MAX_CACHED:
                return
            self._stems = {**stems, **self._stems}

    def word_tokens(self, words: Iterable[str]) -> list[str]:
        """The tokens of a query phrase given as words (each word tokenized on its own)."""
        return [token for word in words for token in self.tokens(word)]

    def close(self) -> None:
        """Close the in-memory SQLite table (a later lookup opens another); caches stay."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _split(text: str) -> list[tuple[bool, str]]:
        """(True, ascii_word) items, or (False, chunk) for chunks with non-ASCII characters."""
        if text.isascii():
            return [(True, word) for word in _ASCII_WORD.findall(text.lower())]
        parts: list[tuple[bool, str]] = []
        for chunk in text.split():
            if chunk.isascii():
                parts.extend((True, word) for word in _ASCII_WORD.findall(chunk.lower()))
            else:
                parts.append((False, chunk))
        return parts

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            conn.execute(f"CREATE VIRTUAL TABLE words USING fts5(w, tokenize = '{self._tokenize}')")
            conn.execute("CREATE VIRTUAL TABLE words_vocab USING fts5vocab(words, 'instance')")
            self._conn = conn
        return self._conn

    def _resolve(self, words: set[str], chunks: set[str]) -> None:
        with self._lock:
            if len(self._stems) + len(self._chunks) + len(words) + len(chunks) > _MAX_CACHED:
                self._stems, self._chunks = {}, {}
            pending = [w for w in words if w not in self._stems]
            pending += [c for c in chunks if c not in self._chunks]
            conn = self._connection()
            for start in range(0, len(pending), _BATCH):
                batch = pending[start : start + _BATCH]
                found: dict[int, list[tuple[int, str]]] = {}
                conn.execute("BEGIN")
                try:
                    conn.executemany(
                        "INSERT INTO words (rowid, w) VALUES (?, ?)", enumerate(batch, 1)
                    )
                    for term, doc, offset in conn.execute(
                        "SELECT term, doc, offset FROM words_vocab"
                    ):
                        found.setdefault(doc, []).append((offset, term))
                finally:
                    conn.execute("ROLLBACK")
                for number, text in enumerate(batch, 1):
                    tokens = tuple(term for _, term in sorted(found.get(number, ())))
                    if not text.isascii():
                        self._chunks[text] = tokens
                    elif len(tokens) == 1:
                        self._stems[text] = tokens[0]
                    else:  # unicode61 makes exactly one token of [a-z0-9]+
                        raise RuntimeError(f"FTS5 made {tokens!r} of the word {text!r}")


class UsesTokenizer:
    """Base for objects that use an :class:`Fts5Tokenizer`: the caller's (``fts5``, which stays
    the caller's to close) or one of their own, closed with them."""

    def __init__(self, fts5: Fts5Tokenizer | None = None) -> None:
        self._owns_tokenizer = fts5 is None
        self.fts5 = fts5 if fts5 is not None else Fts5Tokenizer()

    def close(self) -> None:
        if self._owns_tokenizer:
            self.fts5.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
