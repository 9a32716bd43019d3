"""The digest, pure: choosing, labelling, summarising and rendering papers.

`classify` labels papers from the 53-label vocabulary without an LLM, `summarize` writes short
bullets, `select` picks a day's papers for a feed's filters, `render` turns them into markdown,
text or Discord payloads within Discord's limits. Nothing here does I/O."""
