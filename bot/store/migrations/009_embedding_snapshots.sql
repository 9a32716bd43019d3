-- All vectors of one embedding model as one matrix, so that loading 90k of them is one read
-- instead of 90k rows. A cache of paper_embeddings: it holds the rows up to last_rowid; later
-- rows are read one by one. Rewritten by `paperbot embed` (bot.embeddings.write_snapshot).
CREATE TABLE embedding_snapshots (
    model      TEXT    PRIMARY KEY,
    last_rowid INTEGER NOT NULL,   -- paper_embeddings rows up to this rowid are in it
    count      INTEGER NOT NULL,   -- how many: a smaller count in the table means rows went away
    dim        INTEGER NOT NULL,
    ids        BLOB    NOT NULL,   -- papers.id of each row, int64 little-endian
    vectors    BLOB    NOT NULL    -- count x dim float32 little-endian, L2-normalised
);
