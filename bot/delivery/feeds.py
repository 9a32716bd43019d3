"""Channel feeds: turning a feed's settings into digest filters."""

from __future__ import annotations

from bot.config import Config, FeedConfig
from bot.models import DigestFilters


def feed_filters(feed: FeedConfig | None, config: Config) -> DigestFilters:
    """The selection rules of ``feed`` (or the defaults when there is no feed)."""
    if feed is None:
        return DigestFilters(max_papers=config.digest.max_papers)
    return DigestFilters(
        include_tags=tuple(feed.include_tags),
        exclude_tags=tuple(feed.exclude_tags),
        include_keywords=tuple(feed.include_keywords),
        exclude_keywords=tuple(feed.exclude_keywords),
        min_upvotes=feed.min_upvotes,
        max_papers=feed.max_papers or config.digest.max_papers,
    )
