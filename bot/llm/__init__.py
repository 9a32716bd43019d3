"""The optional LLM module (any OpenAI-compatible endpoint) and local embeddings.

`client` talks to the endpoint within one deadline; `enrich` summarises and labels papers on
ingest; `embeddings` and `embedding_names` hold the local embedder and its vectors;
`retrieval` finds the papers a question is about (bm25 + vectors, with a relevance gate);
`answer` and `grounding` write answers that cite only the papers sent; `probe` checks a server."""
