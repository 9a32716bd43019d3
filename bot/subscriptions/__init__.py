"""Subscriptions, pure: validating what users subscribe to, and matching papers.

`rules` validates and normalises a tag, keyword or author subscription; `matching` finds, for a
day's papers, every subscription they satisfy (indexed, one FTS5 pass per distinct phrase);
`service` adds and removes subscriptions through the store."""
