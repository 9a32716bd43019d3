-- Exact markdown round trip: each digest row as written, and every imported digest day
-- (a header-only day has no listings, but its export still shows the empty table).
ALTER TABLE listings ADD COLUMN row_text TEXT;  -- the digest table row; NULL for other sources

CREATE TABLE digest_days (
    day  TEXT    PRIMARY KEY,            -- YYYY-MM-DD
    rows INTEGER NOT NULL DEFAULT 0      -- rows in the last imported table for that day
);
