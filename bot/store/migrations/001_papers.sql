-- Papers, the days they were listed, their tags, and the full-text index.
CREATE TABLE papers (
    id             INTEGER PRIMARY KEY,          -- stable rowid for FTS5 (survives VACUUM)
    arxiv_id       TEXT    NOT NULL UNIQUE,      -- without version
    version        INTEGER,
    title          TEXT    NOT NULL,
    authors        TEXT    NOT NULL DEFAULT '[]',  -- JSON list
    abstract       TEXT    NOT NULL DEFAULT '',
    published      TEXT,                          -- arXiv date, YYYY-MM-DD
    sort_date      TEXT,                          -- published, else the first listing day
    categories     TEXT    NOT NULL DEFAULT '[]',
    bullets        TEXT    NOT NULL DEFAULT '[]',
    bullets_source INTEGER NOT NULL DEFAULT 0,
    tags           TEXT    NOT NULL DEFAULT '[]',
    tags_source    INTEGER NOT NULL DEFAULT 0,
    keywords       TEXT    NOT NULL DEFAULT '[]',
    github_urls    TEXT    NOT NULL DEFAULT '[]',
    hf_urls        TEXT    NOT NULL DEFAULT '[]',
    project_url    TEXT,
    comment        TEXT,
    upvotes        INTEGER,
    github_stars   INTEGER,
    -- Plain-text copies of the list columns, read by the external-content FTS index.
    authors_text   TEXT    NOT NULL DEFAULT '',
    summary_text   TEXT    NOT NULL DEFAULT '',
    tags_text      TEXT    NOT NULL DEFAULT '',
    created_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at     TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX papers_sort_date ON papers (sort_date);
CREATE INDEX papers_upvotes ON papers (upvotes);

CREATE TABLE listings (
    paper_id INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    day      TEXT    NOT NULL,
    source   TEXT    NOT NULL,
    rank     INTEGER,
    upvotes  INTEGER,
    PRIMARY KEY (paper_id, day, source)
);
CREATE INDEX listings_day ON listings (day, source, rank);

CREATE TABLE paper_tags (
    tag      TEXT    NOT NULL COLLATE NOCASE,
    paper_id INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, paper_id)
) WITHOUT ROWID;
CREATE INDEX paper_tags_paper ON paper_tags (paper_id);

CREATE VIRTUAL TABLE papers_fts USING fts5 (
    title, authors_text, summary_text, abstract, tags_text,
    content = 'papers', content_rowid = 'id',
    tokenize = 'porter unicode61 remove_diacritics 2'
);
-- Column weights for bm25: the title counts most, then tags, authors and the summary.
INSERT INTO papers_fts (papers_fts, rank) VALUES ('rank', 'bm25(10.0, 4.0, 3.0, 1.0, 4.0)');
