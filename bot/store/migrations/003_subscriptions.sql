-- Topic subscriptions (tag, keyword, author) of users and roles, and DMs that could not be sent.
CREATE TABLE subscriptions (
    id              INTEGER PRIMARY KEY,
    guild_id        INTEGER NOT NULL,
    subscriber_id   INTEGER NOT NULL,                 -- a user id or a role id
    subscriber_type TEXT    NOT NULL CHECK (subscriber_type IN ('user', 'role')),
    kind            TEXT    NOT NULL CHECK (kind IN ('tag', 'keyword', 'author')),
    value           TEXT    NOT NULL,                 -- as typed
    norm            TEXT    NOT NULL,                 -- canonical tag / query / lowercased author
    terms           TEXT    NOT NULL DEFAULT '{}',    -- JSON {term FTS text: [stemmed tokens]}
    feed_id         INTEGER REFERENCES feeds (id) ON DELETE CASCADE,  -- NULL: any feed
    dm              INTEGER NOT NULL DEFAULT 0 CHECK (dm IN (0, 1)),
    created_at      TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now')),
    -- Roles are mentioned in one feed's channel and cannot receive DMs.
    CHECK (subscriber_type = 'user' OR (feed_id IS NOT NULL AND dm = 0))
);
-- A plain UNIQUE would let duplicates through when feed_id is NULL (NULLs are distinct).
CREATE UNIQUE INDEX subscriptions_unique
    ON subscriptions (guild_id, subscriber_type, subscriber_id, kind, norm, coalesce(feed_id, 0));
CREATE INDEX subscriptions_lookup ON subscriptions (guild_id, kind, norm);
CREATE INDEX subscriptions_subscriber ON subscriptions (guild_id, subscriber_id);
CREATE INDEX subscriptions_user ON subscriptions (subscriber_id);  -- forget_user, every guild
CREATE INDEX subscriptions_feed ON subscriptions (feed_id);        -- ON DELETE CASCADE

-- Users whose opted-in DMs failed (DMs closed): not retried until they re-enable DMs.
CREATE TABLE dm_status (
    user_id    INTEGER PRIMARY KEY,
    closed     INTEGER NOT NULL DEFAULT 1 CHECK (closed IN (0, 1)),
    closed_at  TEXT,
    last_error TEXT
);
