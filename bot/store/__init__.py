"""The store, SQL only: the connection, numbered migrations, and one module per table group.

`database` wraps aiosqlite (WAL, foreign keys, one writer, transactions); `connection` opens
and migrates; `papers`, `digests`, `feeds`, `ledger`, `subscriptions` and `llm_store` read and
write their tables and return the types of `bot.models`. No domain rules live here."""
