"""What a test compares between two stores: every row an import writes, and the index's terms."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def store_dump(path: Path) -> dict[str, list[tuple]]:
    """Every stored row that an import writes (timestamps aside) and the index's terms."""
    conn = sqlite3.connect(path)
    columns = [
        row[1]
        for row in conn.execute("PRAGMA table_info(papers)")
        if row[1] not in ("created_at", "updated_at")
    ]
    conn.execute("CREATE VIRTUAL TABLE temp.terms USING fts5vocab(main, papers_fts, instance)")
    queries = {
        "papers": f"SELECT {', '.join(columns)} FROM papers ORDER BY id",
        "tags": "SELECT tag, paper_id FROM paper_tags ORDER BY tag, paper_id",
        "listings": "SELECT * FROM listings ORDER BY paper_id, day, source",
        "log": "SELECT * FROM search_index_log",
        "fts": "SELECT * FROM temp.terms ORDER BY term, doc, col, offset",
        "fts_config": "SELECT * FROM papers_fts_config ORDER BY k",
    }
    dump = {name: conn.execute(query).fetchall() for name, query in queries.items()}
    conn.close()
    return dump
