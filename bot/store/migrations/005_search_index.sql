-- Bookkeeping for the secondary search index (bot/search_index.py), which is a cache: SQLite
-- stays the store of record. New papers are found by id (ids only grow), so bulk inserts pay
-- nothing; the rare in-place text changes and deletions are logged here by triggers.
CREATE TABLE search_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
-- Identifies this database, so that an index built for another file is never used for it.
INSERT INTO search_meta (key, value) VALUES ('uid', lower(hex(randomblob(16))));

CREATE TABLE search_index_log (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    paper_id INTEGER NOT NULL
);

CREATE TRIGGER papers_search_index_update
AFTER UPDATE OF title, authors_text, summary_text, abstract, tags_text ON papers
WHEN old.title IS NOT new.title
  OR old.authors_text IS NOT new.authors_text
  OR old.summary_text IS NOT new.summary_text
  OR old.abstract IS NOT new.abstract
  OR old.tags_text IS NOT new.tags_text
BEGIN
    INSERT INTO search_index_log (paper_id) VALUES (new.id);
END;

CREATE TRIGGER papers_search_index_delete AFTER DELETE ON papers
BEGIN
    INSERT INTO search_index_log (paper_id) VALUES (old.id);
END;
