-- Scheduled retries of a failed delivery survive a restart: how many attempts ran and when the
-- next one is due. Delivery statuses: planned, sending, done, failed (feed paused),
-- retrying (next_attempt_at set), expired (retries gave up at the deadline).
ALTER TABLE deliveries ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE deliveries ADD COLUMN next_attempt_at TEXT;
ALTER TABLE deliveries ADD COLUMN first_attempt_at TEXT;
CREATE INDEX deliveries_unfinished ON deliveries (status) WHERE status != 'done';
