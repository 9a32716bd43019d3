"""Search: the query language, the FTS5 engine, and the large-store ranking index.

`query` parses what users type; `engine` runs it against the store (filters, sorting, paging,
tag suggestions); `index`, `bm25` and `tokens` rank common words fast on large stores;
`cache` keeps recent result pages; `tag_options` serves tag autocompletion."""
