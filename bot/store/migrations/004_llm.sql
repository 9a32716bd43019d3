-- The optional LLM module: token usage, enrichment attempts, embeddings, /ask conversations.

-- Tokens used per UTC day, so a restart does not reset the budget. Chat tokens count against
-- llm.daily_token_budget; embedding tokens (far cheaper) are only recorded.
CREATE TABLE llm_usage (
    day              TEXT    PRIMARY KEY,  -- YYYY-MM-DD (UTC)
    tokens           INTEGER NOT NULL DEFAULT 0,
    calls            INTEGER NOT NULL DEFAULT 0,
    embedding_tokens INTEGER NOT NULL DEFAULT 0,
    embedding_calls  INTEGER NOT NULL DEFAULT 0
);

-- Enrichment (LLM bullets + labels) per paper and model: the last outcome and the totals.
CREATE TABLE llm_enrichments (
    paper_id   INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    model      TEXT    NOT NULL,
    status     TEXT    NOT NULL,          -- 'ok' or 'failed'
    attempts   INTEGER NOT NULL DEFAULT 0,
    tokens     INTEGER NOT NULL DEFAULT 0,  -- all attempts together
    last_error TEXT,
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (paper_id, model)
);

-- One vector per paper and embedding model: float32, little-endian, L2-normalised.
CREATE TABLE paper_embeddings (
    paper_id  INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
    model     TEXT    NOT NULL,
    dim       INTEGER NOT NULL,
    vector    BLOB    NOT NULL,
    text_hash TEXT    NOT NULL,           -- of the embedded text: a changed abstract re-embeds
    PRIMARY KEY (paper_id, model)
);
CREATE INDEX paper_embeddings_model ON paper_embeddings (model, paper_id);

-- /ask conversations: one per thread (or channel), so follow-ups keep their context.
CREATE TABLE conversations (
    id         INTEGER PRIMARY KEY,
    guild_id   INTEGER,                   -- NULL in DMs and on the command line
    channel_id INTEGER NOT NULL,          -- where it was started
    thread_id  INTEGER NOT NULL UNIQUE,   -- where it continues (the channel itself if no thread)
    paper_id   TEXT,                      -- arXiv id when it is about one paper
    created_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);

CREATE TABLE conversation_turns (
    conversation_id INTEGER NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    role            TEXT    NOT NULL CHECK (role IN ('user', 'assistant')),
    content         TEXT    NOT NULL,
    paper_ids       TEXT    NOT NULL DEFAULT '[]',  -- JSON list of the arXiv ids cited / used
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (conversation_id, seq)
);
