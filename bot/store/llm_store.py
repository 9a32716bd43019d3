"""Tables of the optional LLM module: token usage, enrichments, embeddings, conversations."""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from bot.store.database import Database

log = logging.getLogger(__name__)

_CHUNK = 500
ROLES = ("user", "assistant")


# --- token usage ---------------------------------------------------------------------------


async def tokens_used(db: Database, day: date) -> int:
    """Chat tokens counted for ``day`` (UTC): what the daily budget limits."""
    row = await db.fetchone("SELECT tokens FROM llm_usage WHERE day = ?", (day.isoformat(),))
    return int(row[0]) if row else 0


_USAGE_NAMES = (
    "tokens",
    "calls",
    "embedding_tokens",
    "embedding_calls",
    "estimated_tokens",
    "estimated_embedding_tokens",
)


async def usage(db: Database, day: date) -> dict[str, int]:
    """``day``'s counts: ``tokens``, ``calls``, ``embedding_tokens``, ``embedding_calls``, and
    ``estimated_tokens`` / ``estimated_embedding_tokens``: the part of each count that was
    estimated from the text because the server sent no ``usage``."""
    row = await db.fetchone(
        f"SELECT {', '.join(_USAGE_NAMES)} FROM llm_usage WHERE day = ?", (day.isoformat(),)
    )
    names = _USAGE_NAMES
    return dict(zip(names, (int(v) for v in row), strict=True)) if row else dict.fromkeys(names, 0)


async def add_usage(
    db: Database,
    day: date,
    tokens: int,
    calls: int = 1,
    *,
    embedding: bool = False,
    estimated: bool = False,
) -> int:
    """Add to ``day``'s chat (or embedding) count; ``estimated`` when the server sent no
    ``usage`` and ``tokens`` was guessed from the text. Return the day's chat tokens."""
    tokens = max(0, tokens)
    guessed = tokens if estimated else 0
    embed = (0, 0, tokens, calls, 0, guessed)
    values = embed if embedding else (tokens, calls, 0, 0, guessed, 0)
    async with db.transaction() as conn:
        await conn.execute(
            f"INSERT INTO llm_usage (day, {', '.join(_USAGE_NAMES)}) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (day) DO UPDATE SET "
            + ", ".join(f"{name} = {name} + excluded.{name}" for name in _USAGE_NAMES),
            (day.isoformat(), *values),
        )
        async with conn.execute(
            "SELECT tokens FROM llm_usage WHERE day = ?", (day.isoformat(),)
        ) as cursor:
            row = await cursor.fetchone()
    return int(row[0])


# --- enrichments ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnrichmentRecord:
    """The last enrichment outcome of one paper with one model."""

    arxiv_id: str
    model: str
    status: str  # 'ok' or 'failed'
    attempts: int
    tokens: int
    last_error: str | None


async def enrichment_records(
    db: Database, arxiv_ids: Sequence[str], model: str
) -> dict[str, EnrichmentRecord]:
    """Records for those of ``arxiv_ids`` that were attempted with ``model``."""
    found: dict[str, EnrichmentRecord] = {}
    for start in range(0, len(arxiv_ids), _CHUNK):
        chunk = list(arxiv_ids[start : start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        rows = await db.fetchall(
            "SELECT p.arxiv_id, e.model, e.status, e.attempts, e.tokens, e.last_error "
            "FROM llm_enrichments e JOIN papers p ON p.id = e.paper_id "
            f"WHERE e.model = ? AND p.arxiv_id IN ({marks})",
            (model, *chunk),
        )
        for row in rows:
            found[row[0]] = EnrichmentRecord(*row)
    return found


async def record_enrichment(
    db: Database,
    arxiv_id: str,
    model: str,
    *,
    status: str,
    tokens: int = 0,
    error: str | None = None,
) -> None:
    """Count one attempt for a stored paper (unknown ids are ignored)."""
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO llm_enrichments (paper_id, model, status, attempts, tokens, last_error) "
            "SELECT id, ?, ?, 1, ?, ? FROM papers WHERE arxiv_id = ? "
            "ON CONFLICT (paper_id, model) DO UPDATE SET status = excluded.status, "
            "attempts = attempts + 1, tokens = tokens + excluded.tokens, "
            "last_error = excluded.last_error, "
            "updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
            (model, status, max(0, tokens), error, arxiv_id),
        )


# --- embeddings ----------------------------------------------------------------------------


async def paper_rowids(db: Database, arxiv_ids: Sequence[str]) -> dict[str, int]:
    """The ``papers.id`` of each stored arXiv id."""
    found: dict[str, int] = {}
    for start in range(0, len(arxiv_ids), _CHUNK):
        chunk = list(arxiv_ids[start : start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        rows = await db.fetchall(
            f"SELECT arxiv_id, id FROM papers WHERE arxiv_id IN ({marks})", chunk
        )
        found.update({row[0]: int(row[1]) for row in rows})
    return found


async def embedding_hashes(db: Database, model: str, paper_ids: Sequence[int]) -> dict[int, str]:
    """``paper_id -> text_hash`` of the stored vectors among ``paper_ids``."""
    found: dict[int, str] = {}
    for start in range(0, len(paper_ids), _CHUNK):
        chunk = list(paper_ids[start : start + _CHUNK])
        marks = ",".join("?" * len(chunk))
        rows = await db.fetchall(
            f"SELECT paper_id, text_hash FROM paper_embeddings "
            f"WHERE model = ? AND paper_id IN ({marks})",
            (model, *chunk),
        )
        found.update({int(row[0]): row[1] for row in rows})
    return found


async def papers_without_embedding(db: Database, model: str, limit: int | None = None) -> list[int]:
    """``papers.id`` of papers with no vector for ``model``, newest first."""
    sql = (
        "SELECT p.id FROM papers p WHERE NOT EXISTS (SELECT 1 FROM paper_embeddings e "
        "WHERE e.paper_id = p.id AND e.model = ?) ORDER BY p.sort_date DESC, p.id DESC"
    )
    params: list = [model]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return [int(row[0]) for row in await db.fetchall(sql, params)]


async def save_embeddings(
    db: Database, model: str, rows: Iterable[tuple[int, int, bytes, str]]
) -> int:
    """Store ``(paper_id, dim, vector_blob, text_hash)`` rows, replacing older vectors."""
    values = [(paper_id, model, dim, blob, text_hash) for paper_id, dim, blob, text_hash in rows]
    if not values:
        return 0
    async with db.transaction() as conn:
        await conn.executemany(
            # REPLACE (delete, then insert) at a rowid above any used so far and above every
            # snapshot's: a changed vector is then after the snapshot that holds the old one.
            "INSERT OR REPLACE INTO paper_embeddings "
            "(rowid, paper_id, model, dim, vector, text_hash) VALUES ("
            " 1 + max((SELECT coalesce(max(rowid), 0) FROM paper_embeddings),"
            "         (SELECT coalesce(max(last_rowid), 0) FROM embedding_snapshots)),"
            " ?, ?, ?, ?, ?)",
            values,
        )
    return len(values)


async def embeddings_after(
    db: Database, model: str, after_rowid: int = 0
) -> list[tuple[int, int, int, bytes]]:
    """``(rowid, paper_id, dim, vector_blob)`` of vectors stored after ``after_rowid``."""
    rows = await db.fetchall(
        "SELECT rowid, paper_id, dim, vector FROM paper_embeddings "
        "WHERE model = ? AND rowid > ? ORDER BY rowid",
        (model, after_rowid),
    )
    return [(int(r[0]), int(r[1]), int(r[2]), bytes(r[3])) for r in rows]


Allocate = Callable[[int], Any]
BLOB_CHUNK = 1 << 20


def _read_blob(
    conn: sqlite3.Connection, table: str, column: str, rowid: int, allocate: Allocate
) -> Any:
    """One blob, read in chunks straight into ``allocate(its size)``: selecting a ~92 MB
    value makes SQLite assemble it and Python copy it again (~4x slower, cold)."""
    with conn.blobopen(table, column, rowid, readonly=True) as blob:
        out = allocate(len(blob))
        view = memoryview(out).cast("B")
        pos = 0
        while pos < len(view):
            chunk = blob.read(BLOB_CHUNK)
            if not chunk:
                raise sqlite3.DatabaseError(f"{table}.{column} ended early")
            view[pos : pos + len(chunk)] = chunk
            pos += len(chunk)
    return out


def read_vectors(
    path: str | Path, model: str, after_rowid: int = 0, *, allocate: Allocate = bytearray
) -> VectorRows:
    """The stored vectors of ``model`` on a read-only connection of its own, blocking (run it
    in a worker thread): the snapshot matrix when it is still whole, then the rows stored
    after it (or after ``after_rowid``, for a refresh). The snapshot's vectors are read into
    ``allocate(size in bytes)``, a writable buffer (numpy's large arrays fault in faster)."""
    uri = f"{Path(path).resolve().as_uri()}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=5.0)
    try:
        snapshot = None
        if after_rowid == 0:
            found = conn.execute(
                "SELECT rowid, last_rowid, count, dim, ids FROM embedding_snapshots "
                "WHERE model = ?",
                (model,),
            ).fetchone()
            if found is not None:
                kept = conn.execute(
                    "SELECT count(*) FROM paper_embeddings WHERE model = ? AND rowid <= ?",
                    (model, found[1]),
                ).fetchone()[0]
                if kept == found[2]:  # else papers were forgotten since: the snapshot is stale
                    vectors = _read_blob(
                        conn, "embedding_snapshots", "vectors", found[0], allocate
                    )
                    snapshot = (*found[1:], vectors)
        start = snapshot[0] if snapshot is not None else after_rowid
        rows = conn.execute(
            "SELECT rowid, paper_id, dim, vector FROM paper_embeddings "
            "WHERE rowid > ? AND +model = ? ORDER BY rowid",
            (start, model),
        ).fetchall()
        return VectorRows(snapshot, rows)
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class VectorRows:
    """What :func:`read_vectors` found: ``snapshot`` is ``(last_rowid, count, dim, ids,
    vectors)`` or None; ``rows`` are ``(rowid, paper_id, dim, vector)`` after it."""

    snapshot: tuple | None
    rows: list[tuple]


async def rows_after_snapshot(db: Database, model: str) -> int:
    """How many vectors of ``model`` a load would read one by one (not in the snapshot)."""
    row = await db.fetchone(
        "SELECT last_rowid FROM embedding_snapshots WHERE model = ?", (model,)
    )
    last = int(row[0]) if row else 0
    row = await db.fetchone(
        "SELECT count(*) FROM paper_embeddings WHERE model = ? AND rowid > ?", (model, last)
    )
    return int(row[0]) if row else 0


async def save_snapshot(
    db: Database, model: str, last_rowid: int, count: int, dim: int, ids: bytes, vectors: bytes
) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT OR REPLACE INTO embedding_snapshots "
            "(model, last_rowid, count, dim, ids, vectors) VALUES (?, ?, ?, ?, ?, ?)",
            (model, last_rowid, count, dim, ids, vectors),
        )


async def count_without_embedding(db: Database, model: str) -> int:
    """Stored papers with no vector for ``model``."""
    row = await db.fetchone(
        "SELECT count(*) FROM papers p WHERE NOT EXISTS (SELECT 1 FROM paper_embeddings e "
        "WHERE e.paper_id = p.id AND e.model = ?)",
        (model,),
    )
    return int(row[0]) if row else 0


async def embedding_count(db: Database, model: str) -> int:
    row = await db.fetchone("SELECT count(*) FROM paper_embeddings WHERE model = ?", (model,))
    return int(row[0]) if row else 0


# --- conversations -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Conversation:
    id: int
    guild_id: int | None
    channel_id: int
    thread_id: int
    paper_id: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class Turn:
    seq: int
    role: str  # 'user' or 'assistant'
    content: str
    paper_ids: tuple[str, ...]
    created_at: str


def _conversation(row) -> Conversation:
    return Conversation(
        id=int(row["id"]),
        guild_id=row["guild_id"],
        channel_id=int(row["channel_id"]),
        thread_id=int(row["thread_id"]),
        paper_id=row["paper_id"],
        created_at=row["created_at"],
    )


async def get_conversation(db: Database, thread_id: int) -> Conversation | None:
    """The conversation living in ``thread_id`` (a thread, or a channel without threads)."""
    row = await db.fetchone("SELECT * FROM conversations WHERE thread_id = ?", (thread_id,))
    return _conversation(row) if row else None


async def find_conversation(db: Database, channel_id: int, paper_id: str) -> Conversation | None:
    """The newest conversation about ``paper_id`` opened from ``channel_id`` (Ask button)."""
    row = await db.fetchone(
        "SELECT * FROM conversations WHERE channel_id = ? AND paper_id = ? "
        "AND thread_id != channel_id ORDER BY id DESC LIMIT 1",
        (channel_id, paper_id),
    )
    return _conversation(row) if row else None


async def start_conversation(
    db: Database,
    *,
    channel_id: int,
    thread_id: int | None = None,
    guild_id: int | None = None,
    paper_id: str | None = None,
) -> Conversation:
    """The conversation of ``thread_id`` (default: ``channel_id``), created if needed."""
    thread = channel_id if thread_id is None else thread_id
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO conversations (guild_id, channel_id, thread_id, paper_id) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (thread_id) DO NOTHING",
            (guild_id, channel_id, thread, paper_id),
        )
    found = await get_conversation(db, thread)
    assert found is not None  # just inserted, or already there
    return found


async def add_turn(
    db: Database,
    conversation_id: int,
    role: str,
    content: str,
    paper_ids: Sequence[str] = (),
) -> Turn:
    """Append one turn (``role`` is ``user`` or ``assistant``)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    async with db.transaction() as conn:
        async with conn.execute(
            "SELECT coalesce(max(seq), 0) + 1 FROM conversation_turns WHERE conversation_id = ?",
            (conversation_id,),
        ) as cursor:
            (seq,) = await cursor.fetchone()
        await conn.execute(
            "INSERT INTO conversation_turns (conversation_id, seq, role, content, paper_ids) "
            "VALUES (?, ?, ?, ?, ?)",
            (conversation_id, seq, role, content, json.dumps(list(paper_ids))),
        )
        async with conn.execute(
            "SELECT created_at FROM conversation_turns WHERE conversation_id = ? AND seq = ?",
            (conversation_id, seq),
        ) as cursor:
            (created_at,) = await cursor.fetchone()
    return Turn(int(seq), role, content, tuple(paper_ids), created_at)


async def conversation_turns(
    db: Database, conversation_id: int, limit: int | None = None
) -> list[Turn]:
    """The turns in order; with ``limit``, only the last ``limit`` of them."""
    sql = (
        "SELECT seq, role, content, paper_ids, created_at FROM conversation_turns "
        "WHERE conversation_id = ? ORDER BY seq DESC"
    )
    params: list = [conversation_id]
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    rows = await db.fetchall(sql, params)
    return [
        Turn(int(r[0]), r[1], r[2], tuple(json.loads(r[3] or "[]")), r[4]) for r in reversed(rows)
    ]


async def conversation_history(
    db: Database, conversation_id: int, limit: int = 10
) -> list[tuple[str, str]]:
    """The last ``limit`` turns as ``(role, text)`` pairs, oldest first (for the prompt)."""
    return [
        (turn.role, turn.content) for turn in await conversation_turns(db, conversation_id, limit)
    ]


async def delete_conversation(db: Database, thread_id: int) -> bool:
    """Forget the conversation of ``thread_id`` and its turns; True if there was one."""
    async with db.transaction() as conn:
        cursor = await conn.execute("DELETE FROM conversations WHERE thread_id = ?", (thread_id,))
        deleted = cursor.rowcount
        await cursor.close()
    return bool(deleted)
