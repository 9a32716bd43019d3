"""Sources: fetching and parsing papers, and ingesting them into the store.

`hf_daily`, `arxiv`, `markdown` and `jsonl` parse one format each (pure; `detect` picks one for a
file); `http` fetches with timeouts and retries; `fetch` gets a day from a configured source;
`ingest` derives summaries and tags and stores papers; `archive` imports and exports files;
`ingest_pool` parses big JSON Lines files on worker processes."""
