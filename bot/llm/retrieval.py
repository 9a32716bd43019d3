"""Hybrid retrieval for /ask: bm25 (FTS5) fused with embedding similarity by reciprocal rank.

A question in plain language is not a keyword query: :func:`question_terms` keeps its
content words (stopwords out) and :func:`fts_or_query` ORs them over the title, summary,
abstract and tags, so a paper matching most of the words ranks first without having to
match all of them. With an embedder, the question's vector ranks papers by cosine
similarity too, and the two rankings are fused (RRF). Without one, it is bm25 alone.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from bot.errors import PaperbotError
from bot.labels import normalize_label
from bot.llm.embeddings import BaseEmbedder, Embedder, Vector, VectorIndex, ensure_embeddings
from bot.models import InvalidPaperId, Paper, split_arxiv_id
from bot.store.database import Database
from bot.store.papers import get_paper, paper_from_row

log = logging.getLogger(__name__)

RRF_K = 60
CANDIDATES = 50  # taken from each ranking before fusion
MAX_TERMS = 24
EMBED_ON_THE_FLY = 16  # bm25 candidates without a vector embedded during a query, at most
_FTS_COLUMNS = "{title summary_text abstract tags_text}"
_WORD_RE = re.compile(r"\w+", re.UNICODE)  # FTS5 unicode61 also splits at - and quotes

STOPWORDS: frozenset[str] = frozenset(
    _WORD_RE.findall(
        """
    a about above after again against all also am an and any anything are aren as at be because
    been before being below between both but by can cannot could did do does doing done don down
    during each either else even ever every few for from further get gets getting give given had
    has have having he her here hers herself him himself his how however i if in into is isn it
    its itself just least less let like made make makes many may me might more most much must my
    myself neither no nor not now of off on once one only onto or other others otherwise our ours
    ourselves out over own per please quite rather really said same say says see seem seems she
    should show shows since so some something such than that the their theirs them themselves then
    there these they this those though through thus to too toward towards under until up upon us
    use used uses using very via was we well were what whatever when where whether which while who
    whom whose why will with within without would yet you your yours yourself
    paper papers work works study studies approach approaches method methods propose proposed
    proposes present presents presented introduce introduced introduces anyone someone tell know
    find found explain describe recent recently new novel existing way ways thing things kind
    """
    )
)


@dataclass(frozen=True, slots=True)
class Retrieved:
    """One retrieved paper. ``score`` is the fused RRF score (higher is better); ranks are 1-based.

    ``similarity`` is the cosine to the question (None without an embedder);
    ``term_coverage`` the fraction of the question's content words found in the paper;
    ``weighted_coverage`` the same fraction with each word weighted by its rarity in the
    store (bm25's idf), so that a paper matching only "neural networks" scores low;
    ``relevant`` whether the two together are high enough to call the paper on topic.
    """

    paper: Paper
    score: float
    bm25_rank: int | None
    vector_rank: int | None
    similarity: float | None = None
    term_coverage: float = 0.0
    relevant: bool = True
    weighted_coverage: float = 0.0


def question_terms(question: str, limit: int = MAX_TERMS) -> list[str]:
    """The content words of a question, lowercased, in order, without stopwords or repeats."""
    terms: dict[str, None] = {}
    for word in _WORD_RE.findall(question.lower()):
        if word in STOPWORDS or (len(word) < 2 and not word.isdigit()):
            continue
        terms[word] = None
    return list(terms)[:limit]


def fts_or_query(terms: Sequence[str]) -> str | None:
    """An FTS5 expression matching any of ``terms`` in the text columns (None if no terms)."""
    quoted = ['"' + term.replace('"', "") + '"' for term in terms if term.strip('"')]
    if not quoted:
        return None
    return f"{_FTS_COLUMNS} : ({' OR '.join(quoted)})"


def _filters(
    tag: str | None, since: date | None, paper_rowid: int | None
) -> tuple[list[str], list]:
    clauses: list[str] = []
    params: list = []
    if paper_rowid is not None:
        clauses.append("p.id = ?")
        params.append(paper_rowid)
    if tag:
        clauses.append("p.id IN (SELECT paper_id FROM paper_tags WHERE tag = ?)")
        params.append(normalize_label(tag) or tag.strip())
    if since:
        clauses.append("p.sort_date >= ?")
        params.append(since.isoformat())
    return clauses, params


async def _bm25(
    db: Database, fts: str, clauses: list[str], params: list, limit: int
) -> list[tuple[int, Paper, float]]:
    """``(papers.id, paper, -bm25)`` best first."""
    if clauses:
        rows = await db.fetchall(
            "SELECT p.*, f.rank AS rank FROM papers_fts f JOIN papers p ON p.id = f.rowid "
            f"WHERE papers_fts MATCH ? AND {' AND '.join(clauses)} ORDER BY f.rank LIMIT ?",
            (fts, *params, limit),
        )
    else:
        # Top k inside FTS5 first, then the rows (DESIGN.md, "Search facts").
        rows = await db.fetchall(
            "SELECT p.*, top.rank AS rank FROM ("
            "  SELECT rowid, rank FROM papers_fts WHERE papers_fts MATCH ? ORDER BY rank LIMIT ?"
            ") AS top JOIN papers p ON p.id = top.rowid ORDER BY top.rank",
            (fts, limit),
        )
    return [(int(row["id"]), paper_from_row(row), -float(row["rank"])) for row in rows]


async def _allowed_ids(db: Database, clauses: list[str], params: list) -> set[int] | None:
    if not clauses:
        return None
    rows = await db.fetchall(f"SELECT p.id FROM papers p WHERE {' AND '.join(clauses)}", params)
    return {int(row[0]) for row in rows}


def _index(db: Database, embedder: Embedder) -> VectorIndex:
    if isinstance(embedder, BaseEmbedder):
        return embedder.index_for(db)
    return VectorIndex(embedder.name)


async def _prepare_vectors(db: Database, embedder: Embedder, question: str) -> Vector | None:
    """The question's vector, with the stored vectors loaded; None if the embedder fails."""
    try:
        # The model loads while the stored vectors do (each in its own thread).
        query, _ = await asyncio.gather(
            embedder.embed_query(question), _index(db, embedder).refresh(db)
        )
    except (PaperbotError, ImportError, OSError, RuntimeError) as exc:  # LLMUnavailable too
        log.warning("vector retrieval skipped: %s", exc)
        return None
    return query


async def _vector(
    db: Database,
    embedder: Embedder,
    prepared: asyncio.Future,
    bm25_ids: Sequence[int],
    allowed: set[int] | None,
    limit: int,
) -> tuple[list[tuple[int, float]], Vector | None, VectorIndex | None]:
    """``(papers.id, cosine)`` best first, the question's vector and the index searched;
    nothing if the embedder fails (bm25 carries on)."""
    query = await prepared
    if query is None:
        return [], None, None
    index = _index(db, embedder)
    try:
        # New papers found by bm25 but not embedded yet get their vector now (bounded).
        await ensure_embeddings(db, embedder, list(bm25_ids[:EMBED_ON_THE_FLY]))
    except (PaperbotError, ImportError, OSError, RuntimeError) as exc:
        log.warning("new papers not embedded: %s", exc)
    if not isinstance(embedder, BaseEmbedder):
        await index.refresh(db)
    return await index.search_async(query, limit, allowed), query, index


async def _term_coverage(
    db: Database, terms: Sequence[str], paper_ids: Sequence[int]
) -> dict[int, set[str]]:
    """For each paper, which of ``terms`` its text contains (stemmed like bm25)."""
    found: dict[int, set[str]] = {pid: set() for pid in paper_ids}
    if not terms or not paper_ids:
        return found
    marks = ",".join("?" * len(paper_ids))
    for term in terms:
        fts = fts_or_query([term])
        rows = await db.fetchall(
            f"SELECT rowid FROM papers_fts WHERE papers_fts MATCH ? AND rowid IN ({marks})",
            (fts, *paper_ids),
        )
        for row in rows:
            found[int(row[0])].add(term)
    return found


@dataclass(slots=True)
class _Frequencies:
    generation: int
    papers: int
    counts: dict[str, int]


_FREQUENCIES: weakref.WeakKeyDictionary[Database, _Frequencies] = weakref.WeakKeyDictionary()
MAX_CACHED_TERMS = 20_000


def idf(document_frequency: int, papers: int) -> float:
    """bm25's inverse document frequency (always > 0)."""
    df = min(max(document_frequency, 0), papers)
    return math.log((papers - df + 0.5) / (df + 0.5) + 1.0)


async def term_weights(db: Database, terms: Sequence[str]) -> dict[str, float]:
    """Each term's idf over the stored papers. Document frequencies are counted once per
    term and kept until this process writes to the store (about 1-15 ms a term at 90k)."""
    if not terms:
        return {}
    cached = _FREQUENCIES.get(db)
    if cached is None or cached.generation != db.generation:
        row = await db.fetchone("SELECT count(*) FROM papers")
        cached = _Frequencies(db.generation, int(row[0]) if row else 0, {})
        _FREQUENCIES[db] = cached
    todo = [term for term in terms if term not in cached.counts]
    if todo:
        if len(cached.counts) + len(todo) > MAX_CACHED_TERMS:
            cached.counts.clear()
        rows = await asyncio.gather(
            *(
                db.read.fetchone(
                    "SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ?",
                    (fts_or_query([term]),),
                )
                for term in todo
            )
        )
        for term, row in zip(todo, rows, strict=True):
            cached.counts[term] = int(row[0]) if row else 0
    return {term: idf(cached.counts.get(term, 0), cached.papers) for term in terms}


def weighted_coverage(matched: set[str], weights: dict[str, float]) -> float:
    total = sum(weights.values())
    return sum(weights.get(term, 0.0) for term in matched) / total if total > 0 else 0.0


def _enough_terms(coverage: float, n_terms: int) -> bool:
    """At least half of the question's content words (two at least) are in the paper."""
    matched = round(coverage * n_terms)
    needed = max(1 if n_terms < 2 else 2, math.ceil(0.5 * n_terms))
    return matched >= needed


@dataclass(frozen=True, slots=True)
class _Gate:
    """Whether a retrieved paper is on topic.

    With vectors: its cosine to the question is high (``alone``), or the blend of cosine and
    idf-weighted word coverage, ``(cosine + term_weight * coverage) / (1 + term_weight)``, is
    at least ``threshold``; so a paper is refused only when both signals are weak. Without
    vectors, or for an embedder with no calibrated blend (``threshold`` None), enough of the
    question's words must be in the paper (:func:`_enough_terms`). The thresholds are
    calibrated by ``bench/bench_retrieval.py --calibrate``.
    """

    alone: float | None = None  # cosine that suffices
    term_weight: float = 1.0
    threshold: float | None = None

    @classmethod
    def of(cls, embedder: Embedder | None) -> _Gate:
        if embedder is None:
            return cls()
        return cls(
            getattr(embedder, "min_similarity", 0.3),
            getattr(embedder, "gate_term_weight", 1.0),
            getattr(embedder, "gate_threshold", None),
        )

    def relevant(self, similarity: float | None, weighted: float, enough_terms: bool) -> bool:
        """``weighted``: the idf-weighted word coverage; ``enough_terms``: see above."""
        if self.alone is None or similarity is None:
            return enough_terms
        if similarity >= self.alone:
            return True
        if self.threshold is None:
            return enough_terms
        blend = (similarity + self.term_weight * weighted) / (1.0 + self.term_weight)
        return blend >= self.threshold


def _log_failure(task: asyncio.Future) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("word weights not counted: %s", task.exception())


async def retrieve(
    db: Database,
    question: str,
    *,
    embedder: Embedder | None = None,
    k: int = 5,
    paper_id: str | None = None,
    tag: str | None = None,
    since: date | None = None,
) -> list[Retrieved]:
    """The ``k`` stored papers most likely to answer ``question``, best first.

    ``paper_id`` restricts retrieval to that paper (it is returned even if no word
    matches: the question is about it); ``tag`` and ``since`` filter the candidates.
    """
    paper_rowid: int | None = None
    pinned: Paper | None = None
    if paper_id:
        try:
            arxiv_id, _ = split_arxiv_id(paper_id)
        except InvalidPaperId:
            return []
        pinned = await get_paper(db, arxiv_id)
        if pinned is None:
            return []
        row = await db.fetchone("SELECT id FROM papers WHERE arxiv_id = ?", (arxiv_id,))
        paper_rowid = int(row[0])
    clauses, params = _filters(tag, since, paper_rowid)
    terms = question_terms(question)
    fts = fts_or_query(terms)
    # The question's vector (and, the first time, the model and the stored vectors) loads
    # in worker threads while bm25 runs.
    prepared: asyncio.Task | None = None
    if embedder is not None and question.strip():
        prepared = asyncio.ensure_future(_prepare_vectors(db, embedder, question))
    weights_task = asyncio.ensure_future(term_weights(db, terms))
    # Should retrieval fail before it awaits them, the counts finish on their own (and fill
    # the cache); their own failure is then logged here rather than as never retrieved.
    weights_task.add_done_callback(_log_failure)
    try:
        bm25 = await _bm25(db, fts, clauses, params, CANDIDATES) if fts else []
    except BaseException:
        for task in (prepared, weights_task):
            if task is not None:
                task.cancel()
        raise
    papers: dict[int, Paper] = {pid: paper for pid, paper, _ in bm25}
    bm25_rank = {pid: rank for rank, (pid, _, _) in enumerate(bm25, start=1)}

    vector: list[tuple[int, float]] = []
    query: Vector | None = None
    index: VectorIndex | None = None
    if embedder is not None and prepared is not None:
        allowed = await _allowed_ids(db, clauses, params)
        vector, query, index = await _vector(
            db, embedder, prepared, [pid for pid, _, _ in bm25], allowed, CANDIDATES
        )
    vector_rank = {pid: rank for rank, (pid, _) in enumerate(vector, start=1)}
    similarity = dict(vector)

    fused: dict[int, float] = {}
    for pid, rank in bm25_rank.items():
        fused[pid] = fused.get(pid, 0.0) + 1.0 / (RRF_K + rank)
    weight = getattr(embedder, "fusion_weight", 1.0)
    for pid, rank in vector_rank.items():
        fused[pid] = fused.get(pid, 0.0) + weight / (RRF_K + rank)
    if pinned is not None and paper_rowid not in fused:
        fused[paper_rowid] = 0.0
        papers[paper_rowid] = pinned

    best = sorted(fused, key=lambda pid: (-fused[pid], bm25_rank.get(pid, 1 << 30)))[: max(1, k)]
    missing = [pid for pid in best if pid not in papers]
    if missing:
        marks = ",".join("?" * len(missing))
        for row in await db.fetchall(f"SELECT * FROM papers WHERE id IN ({marks})", missing):
            papers[int(row["id"])] = paper_from_row(row)
    matched = await _term_coverage(db, terms, best)
    weights = await weights_task
    if index is not None and query is not None:
        # bm25-only papers have no cosine from the vector ranking: the gate needs one.
        unknown = [pid for pid in best if pid not in similarity]
        if unknown:
            similarity.update(index.similarities(query, unknown))
    gate = _Gate.of(embedder if index is not None else None)

    results = []
    for pid in best:
        if pid not in papers:
            continue
        sim = similarity.get(pid)
        words = matched.get(pid, set())
        weighted = weighted_coverage(words, weights)
        coverage = len(words) / len(terms) if terms else 0.0
        relevant = pid == paper_rowid or gate.relevant(
            sim, weighted, _enough_terms(coverage, len(terms))
        )
        results.append(
            Retrieved(
                paper=papers[pid],
                score=fused[pid],
                bm25_rank=bm25_rank.get(pid),
                vector_rank=vector_rank.get(pid),
                similarity=sim,
                term_coverage=coverage,
                relevant=relevant,
                weighted_coverage=weighted,
            )
        )
    return results


__all__ = ["Retrieved", "fts_or_query", "idf", "question_terms", "retrieve", "term_weights"]
