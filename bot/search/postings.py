"""Exact bm25 from per-word postings held in numpy arrays: FTS5's ranking without FTS5's work.

For a query of single words (AND of ORs, with exclusions), FTS5 computes bm25 for every row
that matches, visiting each row's position lists: 2-35 ms for common words at 90k papers, and
most of a burst of searches. Here each stored word has a sorted array of the rows it occurs in
and, for each, its weighted frequency (the column weights of ``bot.search.bm25`` times the
instances per column); with each row's token count, the same formula runs vectorised over the
matching rows, in the same floating-point operations and order as sqlite's fts5_aux.c, so the
scores are FTS5's bit for bit (tests compare them on every query of a fixture store).

The arrays are built from the store by ``build`` (a child process: tokenising every paper is
CPU-bound, about 10-30 s at 90k papers) and saved beside the database (``<db>.postings/``),
so a restart loads them in well under a second (memory-mapped). They describe one snapshot of
the store, identified by its (max paper id, change-log sequence, FTS5 row and token counts);
a query answered here first checks that the store still has exactly that snapshot, and
otherwise FTS5 answers while a new build runs (``bot.search.exact``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import sys
import time
from collections.abc import Sequence
from itertools import chain
from pathlib import Path

import numpy as np

from bot.search.bm25 import COLUMNS, K1, WEIGHTS, B, IndexStats, PhrasePlan, idf
from bot.search.snapshots import (
    SNAPSHOT_SQL,
    Snapshot,
    folder_for,
    read_uid,
    remove_others,
    saved_folder,
    snapshot_of,
)
from bot.search.tokens import Fts5Tokenizer

_ASCII_WORD = re.compile(r"[a-z0-9]+")  # unicode61's tokens in ASCII text (bot.search.tokens)

FORMAT = 1
_BATCH = 2000
_INT_WEIGHTS = tuple(int(weight) for weight in WEIGHTS)
assert _INT_WEIGHTS == WEIGHTS, "weighted frequencies are stored as integers"


class Postings:
    """The postings of one snapshot, read-only (safe to share between threads)."""

    def __init__(
        self,
        snapshot: Snapshot,
        terms: dict[str, int],
        offsets: np.ndarray,
        docs: np.ndarray,
        freqs: np.ndarray,
        sizes: np.ndarray,
    ) -> None:
        self.snapshot = snapshot
        self.terms = terms
        self.offsets = offsets
        self.docs = docs
        self.freqs = freqs
        self.sizes = sizes
        self.avgdl = IndexStats(snapshot.rows, snapshot.tokens).avgdl
        self._empty = np.zeros(0, dtype=docs.dtype)
        # Papers added after the saved snapshot: word -> (their ids, weighted frequencies).
        self.added: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.added_papers = 0

    def with_added(
        self, rows: Sequence[tuple], snapshot: Snapshot, tokenizer: Fts5Tokenizer
    ) -> Postings | None:
        """These postings and the papers added since (``rows``: id, title, authors_text,
        summary_text, abstract, tags_text, all with ids above this snapshot's), describing the
        store at ``snapshot``; None when the counts do not come to FTS5's (something else
        changed). New ids are larger than every saved one, so each word's papers stay sorted
        with the added ones appended."""
        sizes = np.zeros(snapshot.max_id + 1, dtype=np.int32)
        sizes[: self.sizes.size] = self.sizes
        collector = _Collector(tokenizer)
        if rows:
            collector.add(list(rows), sizes)
        totals = (self.snapshot.rows + collector.rows, self.snapshot.tokens + collector.tokens)
        if totals != (snapshot.rows, snapshot.tokens):
            return None
        view = Postings(snapshot, self.terms, self.offsets, self.docs, self.freqs, sizes)
        view.added_papers = collector.rows
        if collector.parts[0]:
            words, docs, freqs = collector.by_word()
            starts = np.flatnonzero(np.diff(words, prepend=-1))
            ends = np.append(starts[1:], words.size)
            names = sorted(collector.terms, key=collector.terms.__getitem__)
            view.added = {
                names[int(words[start])]: (docs[start:end], freqs[start:end])
                for start, end in zip(starts, ends, strict=True)
            }
        return view

    # -- queries ----------------------------------------------------------------------------

    @staticmethod
    def answers(plan: PhrasePlan) -> bool:
        """Whether every phrase of ``plan`` is one word searched in every column."""
        every = tuple(range(len(COLUMNS)))
        return all(
            len(phrase.tokens) == 1 and not phrase.prefix and phrase.columns == every
            for phrase in (*plan.scored, *plan.excluded)
        )

    def rank(self, plan: PhrasePlan, limit: int, offset: int) -> tuple[list[int], list[float]]:
        """Paper ids ``offset`` to ``offset + limit`` in FTS5's bm25 order (ties by id, as FTS5
        returns them), and their (positive) scores. ``plan`` must be one ``answers`` accepts."""
        words = {phrase.tokens[0] for phrase in (*plan.scored, *plan.excluded)}
        lists = {word: self._postings(word) for word in words}  # looked up once a search

        def union(group) -> np.ndarray:
            arrays = [lists[phrase.tokens[0]][0] for phrase in group]
            return arrays[0] if len(arrays) == 1 else np.unique(np.concatenate(arrays))

        # The papers matching so far, and for one-word groups where each of them sits in that
        # word's postings (None: the postings are the matches themselves), so that scoring looks
        # up no word that the matching has looked up already.
        matched: np.ndarray | None = None
        where: dict[str, np.ndarray | None] = {}

        def keep(mask: np.ndarray) -> None:
            nonlocal matched, where
            assert matched is not None
            matched = matched[mask]
            where = {w: np.flatnonzero(mask) if at is None else at[mask] for w, at in where.items()}

        groups = sorted(plan.groups, key=lambda g: sum(lists[p.tokens[0]][0].size for p in g))
        for group in groups:
            word = group[0].tokens[0]
            if matched is None:
                matched = union(group)
                if len(group) == 1:
                    where[word] = None
            elif len(group) == 1 and word not in where:
                at, present = _locate(lists[word][0], matched)
                keep(present)
                where[word] = at[present]
            else:
                keep(_contains(union(group), matched))
            if not matched.size:
                return [], []
        assert matched is not None
        for phrase in plan.excluded:
            keep(~_contains(lists[phrase.tokens[0]][0], matched))
        if not matched.size:
            return [], []
        norm = K1 * (1 - B + B * self.sizes[matched].astype(np.float64) / self.avgdl)
        scores = np.zeros(matched.size, dtype=np.float64)
        for phrase in plan.scored:  # FTS5's phrase order: the same sums, bit for bit
            word = phrase.tokens[0]
            docs, freqs = lists[word]
            weight = idf(self.snapshot.rows, int(docs.size))
            if word in where:
                at = where[word]
                freq = (freqs if at is None else freqs[at]).astype(np.float64)
            else:
                freq = np.zeros(matched.size, dtype=np.float64)
                at, present = _locate(docs, matched)
                freq[present] = freqs[at[present]]
            scores += weight * ((freq * (K1 + 1.0)) / (freq + norm))
        wanted = offset + limit
        if wanted < scores.size:
            cut = np.partition(scores, scores.size - wanted)[scores.size - wanted]
            keep = np.flatnonzero(scores >= cut)  # ties at the cut stay in until sorted by id
            matched, scores = matched[keep], scores[keep]
        order = np.lexsort((matched, -scores))[offset:wanted]
        return matched[order].tolist(), scores[order].tolist()

    def _postings(self, term: str) -> tuple[np.ndarray, np.ndarray]:
        number = self.terms.get(term)
        if number is None:
            docs, freqs = self._empty, self._empty
        else:
            start, end = int(self.offsets[number]), int(self.offsets[number + 1])
            docs, freqs = self.docs[start:end], self.freqs[start:end]
        added = self.added.get(term)
        if added is not None:
            docs, freqs = np.concatenate((docs, added[0])), np.concatenate((freqs, added[1]))
        return docs, freqs

    # -- files --------------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: Path) -> Postings:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ValueError(f"{folder}: postings format {meta.get('format')!r}")
        names = (folder / "terms.txt").read_text(encoding="utf-8").split("\n")
        arrays = {
            # Memory-mapped (shared page cache), as plain arrays: memmap's slicing is slower.
            name: np.load(folder / f"{name}.npy", mmap_mode="r").view(np.ndarray)
            for name in ("offsets", "docs", "freqs", "sizes")
        }
        if len(arrays["offsets"]) != len(names) + 1:
            raise ValueError(f"{folder}: terms and offsets disagree")
        return cls(snapshot_of(folder), dict(zip(names, range(len(names)), strict=True)), **arrays)


def load_stems(folder: Path) -> dict[str, str]:
    """The tokens of every lower-case ASCII word the build saw (``Fts5Tokenizer.preload``)."""
    path = folder / "words.txt"
    if not path.exists():
        return {}
    return dict(line.split(" ", 1) for line in path.read_text(encoding="utf-8").splitlines())


def _locate(sorted_docs: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``docs``: a position in ``sorted_docs``, and whether it is there."""
    if not sorted_docs.size:
        return np.zeros(docs.size, dtype=np.intp), np.zeros(docs.size, dtype=bool)
    at = np.minimum(np.searchsorted(sorted_docs, docs), sorted_docs.size - 1)
    return at, sorted_docs[at] == docs


def _contains(sorted_docs: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """For each of ``docs``, whether it is in ``sorted_docs``."""
    return _locate(sorted_docs, docs)[1]


# -- building (in a child process) --------------------------------------------------------------


def build(db_path: str, *, nice: int = 10) -> str:
    """Build the postings of the store's current snapshot into ``<db>.postings/``; returns the
    new folder. Meant for a child process (``nice`` lowers its priority below the bot's)."""
    if nice:
        os.nice(nice)
    started = time.monotonic()
    root = folder_for(db_path)
    root.mkdir(exist_ok=True)
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")  # one snapshot for the marks and the rows
        snapshot = Snapshot.from_row(conn.execute(SNAPSHOT_SQL).fetchone())
        uid = read_uid(conn)
        if uid is None:
            raise RuntimeError(f"{db_path} has no search_meta uid (migration 005)")
        target = saved_folder(db_path, uid, snapshot)
        if target.is_dir():  # built already (by another process)
            return str(target)
        collected = _collect(conn, snapshot.max_id)
        terms, offsets, docs, freqs, sizes, rows, tokens, stems = collected
        conn.execute("COMMIT")
    finally:
        conn.close()
    if (rows, tokens) != (snapshot.rows, snapshot.tokens):
        raise RuntimeError(
            f"{db_path}: FTS5 counts {snapshot.rows} rows and {snapshot.tokens} tokens, "
            f"the tokenizer {rows} and {tokens}"
        )
    temporary = root / f".building-{os.getpid()}"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir()
    (temporary / "terms.txt").write_text("\n".join(terms), encoding="utf-8")
    (temporary / "words.txt").write_text(
        "\n".join(f"{word} {stem}" for word, stem in stems.items()), encoding="utf-8"
    )
    for name, values in (("offsets", offsets), ("docs", docs), ("freqs", freqs), ("sizes", sizes)):
        np.save(temporary / f"{name}.npy", values)
    meta = {"format": FORMAT, "uid": uid, "seconds": round(time.monotonic() - started, 2)}
    (temporary / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    try:
        os.replace(temporary, target)
    except OSError:  # another process published the same snapshot meanwhile: keep theirs
        if not target.is_dir():
            raise
        shutil.rmtree(temporary, ignore_errors=True)
    remove_others(root, keep=target.name)
    return str(target)


class _Collector:
    """Turns papers into (word, paper, weighted frequency) triples, a batch at a time.

    Words are numbered as they are first seen; ASCII text (nearly all of it) is split with one
    regex and each distinct lower-case word is stemmed once (``Fts5Tokenizer.stems``), so the
    per-token work is a dict lookup; the counting is done by numpy, per batch.
    """

    def __init__(self, tokenizer: Fts5Tokenizer) -> None:
        self.tokenizer = tokenizer
        self.terms: dict[str, int] = {}  # token -> its number
        self.words: dict[str, int] = {}  # lower-case ASCII word -> its token's number
        # Per batch, in paper order: word numbers, paper ids, weighted frequencies.
        self.parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
        self.rows = 0
        self.tokens = 0

    def _term(self, token: str) -> int:
        number = self.terms.get(token)
        if number is None:
            number = self.terms[token] = len(self.terms)
        return number

    def _numbered(self, texts: list[str]) -> list[list[int]]:
        """Each text's tokens, as numbers (one SQLite round trip for the batch's new words)."""
        known = self.words
        # Only counts matter here, not positions, and FTS5 tokenizes whitespace-separated chunks
        # independently: the ASCII chunks of a text are split together, the others by SQLite.
        odd: dict[int, list[str]] = {}
        for number, text in enumerate(texts):
            if not text.isascii():
                chunks = text.split()
                odd[number] = [chunk for chunk in chunks if not chunk.isascii()]
                texts[number] = " ".join(chunk for chunk in chunks if chunk.isascii())
        split = [_ASCII_WORD.findall(text.lower()) for text in texts]
        unseen = set().union(*split).difference(known)  # C-level set work, not per token
        if unseen:
            ordered = sorted(unseen)
            for word, token in zip(ordered, self.tokenizer.stems(ordered), strict=True):
                known[word] = self._term(token)
        found: list[list[int]] = [[known[word] for word in words] for words in split]
        if odd:
            chunks = sorted({chunk for found_chunks in odd.values() for chunk in found_chunks})
            tokens_of = dict(zip(chunks, self.tokenizer.tokens_many(chunks), strict=True))
            for number, found_chunks in odd.items():
                found[number] += [
                    self._term(token) for chunk in found_chunks for token in tokens_of[chunk]
                ]
        return found

    def add(self, batch: list, sizes: np.ndarray) -> None:
        width = len(COLUMNS)
        found = self._numbered([value or "" for row in batch for value in row[1:]])
        lengths = np.fromiter(map(len, found), dtype=np.int64, count=len(found))
        total = int(lengths.sum())
        self.rows += len(batch)
        self.tokens += total
        doc_of_text = np.repeat(np.fromiter((row[0] for row in batch), np.int64), width)
        np.add.at(sizes, doc_of_text, lengths)
        if not total:
            return
        ids = np.fromiter(chain.from_iterable(found), dtype=np.int64, count=total)
        keys = (np.repeat(doc_of_text, lengths) << 32) | ids
        weights = np.repeat(np.tile(np.asarray(_INT_WEIGHTS, dtype=np.int64), len(batch)), lengths)
        unique, inverse = np.unique(keys, return_inverse=True)
        freqs = np.bincount(inverse, weights=weights)
        words, papers, counts = self.parts
        words.append((unique & 0xFFFFFFFF).astype(np.int32))
        papers.append((unique >> 32).astype(np.int32))  # ascending
        counts.append(freqs.astype(np.uint16 if freqs.max() < 2**16 else np.uint32))

    def by_word(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All (word, paper, frequency) triples ordered by word, papers ascending within each
        (a stable sort of triples in paper order). Frees the batches as it goes: the corpus's
        arrays are the build's largest memory."""
        words, papers, counts = self.parts
        if not words:
            empty = np.zeros(0, dtype=np.int32)
            return empty, empty, np.zeros(0, dtype=np.uint16)
        word_array = np.concatenate(words)
        words.clear()
        order = np.argsort(word_array, kind="stable")
        word_array = word_array[order]
        paper_array = np.concatenate(papers)
        papers.clear()
        paper_array = paper_array[order]
        count_array = np.concatenate(counts)
        counts.clear()
        return word_array, paper_array, count_array[order]


def _collect(conn: sqlite3.Connection, max_id: int):
    tokenizer = Fts5Tokenizer()
    sizes = np.zeros(max_id + 1, dtype=np.int32)
    collector = _Collector(tokenizer)
    cursor = conn.execute(
        "SELECT id, title, authors_text, summary_text, abstract, tags_text FROM papers "
        "WHERE id <= ? ORDER BY id",
        (max_id,),
    )
    try:
        while batch := cursor.fetchmany(_BATCH):
            collector.add(batch, sizes)
    finally:
        tokenizer.close()
    del tokenizer, collector.tokenizer  # its word caches: the collector has its own
    names = sorted(collector.terms, key=collector.terms.__getitem__)
    stems = {word: names[number] for word, number in collector.words.items()}
    term_array, docs, freqs = collector.by_word()
    offsets = np.zeros(len(names) + 1, dtype=np.int64)
    np.cumsum(np.bincount(term_array, minlength=len(names)), out=offsets[1:])
    return names, offsets, docs, freqs, sizes, collector.rows, collector.tokens, stems


def main(argv: list[str]) -> int:
    """``python -m bot.search.postings DB``: build, print the folder (one line on failure)."""
    if len(argv) != 1:
        print("usage: python -m bot.search.postings DATABASE", file=sys.stderr)
        return 2
    try:
        print(build(argv[0]))
    except (OSError, sqlite3.Error, RuntimeError, ValueError) as exc:
        print(f"cannot build search postings: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
