"""Search: the query language, the FTS5 engine, and the large-store ranking index.

`query` parses what users type; `engine` runs it against the store (filters, sorting, paging,
tag suggestions); `index`, `bm25` and `tokens` rank common words fast on large stores;
`cache` keeps recent result pages; `sessions` keeps the searches behind result buttons;
`tag_options` serves tag autocompletion; `render` builds the result embeds."""
