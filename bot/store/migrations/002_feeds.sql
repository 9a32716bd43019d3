-- Channel feeds, per-guild settings, fetch progress and the delivery ledger.
CREATE TABLE feeds (
    id           INTEGER PRIMARY KEY,
    guild_id     INTEGER NOT NULL,
    channel_id   INTEGER NOT NULL UNIQUE,
    name         TEXT    NOT NULL DEFAULT '',
    post_time    TEXT    NOT NULL DEFAULT '09:00',
    timezone     TEXT    NOT NULL DEFAULT 'UTC',
    sources      TEXT    NOT NULL DEFAULT '["hf"]',
    layout       TEXT    NOT NULL DEFAULT 'compact',
    thread       INTEGER NOT NULL DEFAULT 0,
    empty_day    TEXT    NOT NULL DEFAULT '',
    filters      TEXT    NOT NULL DEFAULT '{}',   -- JSON of DigestFilters
    origin       TEXT    NOT NULL DEFAULT 'command',  -- 'config' or 'command'
    paused       INTEGER NOT NULL DEFAULT 0,
    pause_reason TEXT,
    created_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    updated_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
CREATE INDEX feeds_guild ON feeds (guild_id);

CREATE TABLE guild_settings (
    guild_id         INTEGER PRIMARY KEY,
    alert_channel_id INTEGER
);

-- One row per (source, day): whether that day's listing has been fetched.
CREATE TABLE fetch_runs (
    source     TEXT    NOT NULL,
    day        TEXT    NOT NULL,
    status     TEXT    NOT NULL,   -- 'done' (papers stored), 'empty', 'failed'
    papers     INTEGER NOT NULL DEFAULT 0,
    attempts   INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    updated_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    PRIMARY KEY (source, day)
);

-- A feed's digest for a day: planned once, then each message is sent exactly once.
CREATE TABLE deliveries (
    id           INTEGER PRIMARY KEY,
    feed_id      INTEGER NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    day          TEXT    NOT NULL,
    status       TEXT    NOT NULL DEFAULT 'planned',  -- planned, sending, done, failed
    thread_id    INTEGER,
    planned_at   TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    finished_at  TEXT,
    error        TEXT,
    UNIQUE (feed_id, day)
);

CREATE TABLE delivery_messages (
    delivery_id INTEGER NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,          -- order within the day's digest
    kind        TEXT    NOT NULL,          -- header, papers, mentions, note
    paper_ids   TEXT    NOT NULL DEFAULT '[]',
    payload     TEXT    NOT NULL,          -- the exact JSON to send (content, embeds, ...)
    nonce       TEXT    NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'pending',  -- pending, sending, sent
    message_id  INTEGER,
    attempts    INTEGER NOT NULL DEFAULT 0,
    sent_at     TEXT,
    PRIMARY KEY (delivery_id, seq)
);
