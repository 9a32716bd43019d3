"""Which state of the store a set of search postings describes, and where they are saved.

Kept apart from :mod:`bot.search.postings` (numpy) so that the query path can check a snapshot,
and find saved postings, without importing numpy until it has postings to load.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from bot.search.bm25 import IndexStats

# What identifies a snapshot of the store: max paper id, the change log's last sequence number
# (sqlite_sequence: it never goes back, even when the log is pruned) and the FTS5 averages
# record (rows and tokens), all read in one transaction.
SNAPSHOT_SQL = (
    "SELECT (SELECT coalesce(max(id), 0) FROM papers), "
    "(SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'search_index_log'), "
    "(SELECT block FROM papers_fts_data WHERE id = 1)"
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One state of the store's searchable text."""

    max_id: int
    log_seq: int
    rows: int  # FTS5's N
    tokens: int  # FTS5's total token count (all columns)

    @classmethod
    def from_row(cls, row) -> Snapshot:
        stats = IndexStats.from_record(row[2])
        return cls(int(row[0]), int(row[1]), stats.rows, stats.tokens)

    @property
    def name(self) -> str:
        return f"{self.max_id}-{self.log_seq}-{self.rows}-{self.tokens}"


def folder_for(db_path: str | Path) -> Path:
    """Where the postings of the database file ``db_path`` are saved, one folder a snapshot."""
    return Path(f"{db_path}.postings")


def saved_folder(db_path: str | Path, uid: str, snapshot: Snapshot) -> Path:
    return folder_for(db_path) / f"{uid}-{snapshot.name}"


def read_uid(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM search_meta WHERE key = 'uid'").fetchone()
    return None if row is None else str(row[0])


def snapshot_of(folder: Path) -> Snapshot:
    """The snapshot a saved folder (``<uid>-<max id>-<log seq>-<rows>-<tokens>``) describes."""
    max_id, log_seq, rows, tokens = (int(part) for part in folder.name.split("-")[-4:])
    return Snapshot(max_id, log_seq, rows, tokens)


def newest_saved(root: Path, uid: str) -> Path | None:
    """The newest saved postings of the database ``uid``, if any."""
    found: list[tuple[tuple[int, int], Path]] = []
    if root.is_dir():
        for entry in root.iterdir():
            if entry.is_dir() and entry.name.startswith(f"{uid}-"):
                try:
                    snapshot = snapshot_of(entry)
                except ValueError:
                    continue
                found.append(((snapshot.max_id, snapshot.log_seq), entry))
    return max(found)[1] if found else None


def remove_others(root: Path, keep: str) -> None:
    """Delete older snapshots and abandoned builds (another process's build in progress, or a
    newer snapshot it published, stay); a failure to delete is not an error."""
    kept = snapshot_of(root / keep)
    for entry in root.iterdir():
        if entry.name == keep or not entry.is_dir():
            continue
        if entry.name.startswith(".building-"):
            pid = entry.name.removeprefix(".building-")
            if pid.isdigit() and int(pid) != os.getpid() and _alive(int(pid)):
                continue
        else:
            try:
                other = snapshot_of(entry)
            except ValueError:
                continue  # not ours
            if (other.max_id, other.log_seq) > (kept.max_id, kept.log_seq):
                continue
        shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
