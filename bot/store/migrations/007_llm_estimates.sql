-- Tokens counted without a `usage` from the server (llama.cpp sends none when streaming) are
-- estimated from the text; these columns keep how many of each day's tokens are estimates,
-- so the budget, /digest status and `paperbot db stats` can say so.
ALTER TABLE llm_usage ADD COLUMN estimated_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE llm_usage ADD COLUMN estimated_embedding_tokens INTEGER NOT NULL DEFAULT 0;
