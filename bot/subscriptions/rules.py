"""What may be subscribed to: validating and normalising tag, keyword and author subscriptions.

Pure (no I/O): the service (:mod:`bot.subscriptions.service`) passes the stored tags in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from bot.errors import InputError
from bot.labels import LABELS, normalize_label
from bot.models import Subscription, TermTokens
from bot.search.query import parse_query
from bot.search.tags import resolve_tag
from bot.subscriptions.matching import (
    Tokenizer,
    borrow,
    canonical_author,
    canonical_query,
    query_terms,
    subscription_query,
)

MAX_VALUE_LENGTH = 200
KINDS: tuple[str, ...] = ("tag", "keyword", "author")
SUBSCRIBER_TYPES: tuple[str, ...] = ("user", "role")


def vocabulary(tags: Sequence[str] | None) -> list[str]:
    """The classifier's labels followed by ``tags`` (the stored ones), without repeats."""
    return list(dict.fromkeys([*LABELS, *(tags or ())]))


def _resolve(known: list[str], text: str) -> str:
    return normalize_label(text) or resolve_tag(known, text)


def prepare_subscription(
    guild_id: int,
    subscriber_id: int,
    kind: str,
    value: str,
    *,
    subscriber_type: str = "user",
    feed_id: int | None = None,
    dm: bool = False,
    known_tags: Sequence[str] | None = None,
    tokenizer: Tokenizer | None = None,
) -> Subscription:
    """Validate and normalise a new subscription (no I/O); raises InputError with the reason.

    ``known_tags`` adds to the classifier's labels (pass the stored tags).
    """
    if subscriber_type not in SUBSCRIBER_TYPES:
        raise InputError(f"unknown subscriber type {subscriber_type!r}")
    if kind not in KINDS:
        raise InputError(f"unknown subscription kind {kind!r}; use one of {', '.join(KINDS)}")
    if subscriber_type == "role" and feed_id is None:
        raise InputError("a role subscription belongs to a feed: pick the feed's channel")
    if subscriber_type == "role" and dm:
        raise InputError("roles cannot receive direct messages")
    text = " ".join(value.split())
    if not text:
        raise InputError(f"type the {kind} to subscribe to")
    if len(text) > MAX_VALUE_LENGTH:
        raise InputError(
            f"that {kind} is too long ({len(text)} characters, {MAX_VALUE_LENGTH} max)"
        )
    terms: TermTokens = ()
    if kind == "tag":
        norm = _resolve(vocabulary(known_tags), text)
    elif kind == "author":
        author = canonical_author(text)
        if author is None:
            raise InputError(f"{text!r} has no letters or digits to look for in author names")
        norm = author
    else:
        query = parse_query(text)
        if not query.has_text:
            raise InputError(
                f"{text!r} has no word to look for: a keyword subscription needs at least one "
                "word (exclusions and tag: filters alone match nothing)"
            )
        known = vocabulary(known_tags)
        query = replace(
            query,
            tags=tuple(dict.fromkeys(_resolve(known, tag) for tag in query.tags)),
            excluded_tags=tuple(dict.fromkeys(_resolve(known, t) for t in query.excluded_tags)),
        )
        norm = canonical_query(query)
    query = subscription_query(kind, norm)
    if query is not None:
        with borrow(tokenizer) as local:
            terms = query_terms(query, local)
        tokens = dict(terms)
        groups = [*query.groups, *((term,) for term in query.authors)]
        for group in groups:
            if not any(tokens[term.to_fts()] for term in group):
                words = " or ".join(repr(" ".join(term.words)) for term in group)
                raise InputError(f"{words} has no word the search can find; try other words")
    return Subscription(
        guild_id=guild_id,
        subscriber_id=subscriber_id,
        subscriber_type=subscriber_type,
        kind=kind,
        value=text,
        norm=norm,
        terms=terms,
        feed_id=feed_id,
        dm=dm,
    )


def lenient_norm(kind: str, value: str, known: list[str]) -> str:
    """The norm a stored subscription would have, without failing on tags no longer known."""
    text = " ".join(value.split())
    if kind == "tag":
        try:
            return _resolve(known, text)
        except InputError:
            return text
    if kind == "author":
        return canonical_author(text) or text.lower()
    query = parse_query(text)
    resolved = []
    for tags in (query.tags, query.excluded_tags):
        names = []
        for tag in tags:
            try:
                names.append(_resolve(known, tag))
            except InputError:
                names.append(tag)
        resolved.append(tuple(dict.fromkeys(names)))
    return canonical_query(replace(query, tags=resolved[0], excluded_tags=resolved[1]))
