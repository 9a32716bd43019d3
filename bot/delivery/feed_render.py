"""The text of `/digest`'s replies: a feed described in one line, a delivery, a status.

Pure: it formats what ``bot.delivery.feed_service`` returns and reads nothing itself.
"""

from __future__ import annotations

from datetime import date

from bot.delivery.feed_service import GuildStatus, Preview
from bot.delivery.sender import Outcome
from bot.store.feeds import Feed
from bot.store.ledger import Delivery
from bot.text import sanitize, truncate

MAX_CONTENT = 2000  # Discord's limit for a message's text


def describe_feed(feed: Feed) -> str:
    filters = feed.filters
    parts = [
        f"<#{feed.channel_id}> at {feed.post_time} {feed.timezone}",
        f"sources {', '.join(feed.sources)}",
        f"layout {feed.layout}" + (", thread" if feed.thread else ""),
    ]
    if filters.include_tags:
        parts.append("tags " + ", ".join(filters.include_tags))
    if filters.exclude_tags:
        parts.append("not " + ", ".join(filters.exclude_tags))
    if filters.include_keywords:
        parts.append("keywords " + ", ".join(sanitize(k) for k in filters.include_keywords))
    if filters.exclude_keywords:
        parts.append("without " + ", ".join(sanitize(k) for k in filters.exclude_keywords))
    if filters.min_upvotes:
        parts.append(f"≥{filters.min_upvotes} upvotes")
    if filters.max_papers:
        parts.append(f"≤{filters.max_papers} papers")
    if feed.origin == "config":
        parts.append("from config.toml")
    state = f" — **paused**: {sanitize(feed.pause_reason or '')}" if feed.paused else ""
    name = f"**{sanitize(feed.name)}**: " if feed.name else ""
    return f"{name}{'; '.join(parts)}{state}"


def setup_reply(feed: Feed) -> str:
    return (
        f"Done. {describe_feed(feed)}.\nThe first digest comes at the next post time; "
        "`/digest preview` shows what it will look like."
    )


def edit_reply(feed: Feed, resumed: bool) -> str:
    return f"Updated. {describe_feed(feed)}.{' The digest is resumed.' if resumed else ''}"


def remove_reply(feed: Feed) -> str:
    note = " (it is declared in config.toml and returns on restart)"
    return f"Removed the digest of <#{feed.channel_id}>{note if feed.origin == 'config' else ''}."


def list_reply(feeds: list[Feed]) -> str:
    if not feeds:
        return "No digests yet. Create one with `/digest setup`."
    return "\n".join(f"• {describe_feed(feed)}" for feed in feeds)[:MAX_CONTENT]


def preview_reply(preview: Preview) -> str:
    if not preview.papers:
        return f"No stored papers for {preview.day} pass this digest's filters."
    extra = len(preview.payloads) - 1
    more = f" (and {extra} more messages)" if extra > 0 else ""
    return f"Preview of {preview.day}: {len(preview.papers)} papers{more}."


def post_now_reply(outcome: Outcome, when: date, where: str) -> str:
    """What `/digest post-now` did, truthfully (a failure says when the next attempt is)."""
    partial = f" ({outcome.sent} of {outcome.total} message(s) sent)" if outcome.sent else ""
    if outcome.status == "done":
        return f"Posted {outcome.sent} message(s) for {when} in {where}."
    if outcome.status == "skipped":
        return f"The digest for {when} was already posted in {where}."
    if outcome.status == "paused":
        return f"Could not post: {sanitize(outcome.detail)}. The digest is paused."
    if outcome.status == "failed" and outcome.retry_at is not None:
        return (
            f"Posting failed{partial}: {sanitize(outcome.detail)}. Retrying automatically; "
            f"next attempt at <t:{int(outcome.retry_at.timestamp())}:T>."
        )
    if outcome.status == "expired":
        return (
            f"Posting failed{partial}: {sanitize(outcome.detail)}. The retries have reached "
            "`delivery.deadline_hours`; run `/digest post-now` again to try once more."
        )
    return sanitize(outcome.detail)


def describe_delivery(delivery: Delivery) -> str:
    """The latest delivery of a feed, for `/digest status`."""
    error = f" ({sanitize(truncate(delivery.error, 120))})" if delivery.error else ""
    if delivery.status == "retrying" and delivery.next_attempt_at is not None:
        return (
            f"last: {delivery.day} failed{error}, attempt {delivery.attempts}; retrying, "
            f"next attempt at <t:{int(delivery.next_attempt_at.timestamp())}:T>"
        )
    if delivery.status == "expired":
        return f"last: {delivery.day} gave up after {delivery.attempts} attempts{error}"
    return f"last: {delivery.day} {delivery.status}{error}"


def status_reply(status: GuildStatus, usage_line: str | None = None) -> str:
    """`/digest status`: one line per feed, the fetches, the alert channel, LLM usage."""
    if not status.feeds:
        return "No digests yet."
    lines = []
    for health in status.feeds:
        feed = health.feed
        last = describe_delivery(health.last) if health.last else "nothing posted yet"
        upcoming = health.next_post if not feed.paused else None
        next_text = f"next: <t:{int(upcoming.timestamp())}:f>" if upcoming else "next: —"
        state = f"⚠️ paused: {sanitize(feed.pause_reason or '')}" if feed.paused else "✅ active"
        if not health.channel_exists:
            fix = "; remove it from config.toml" if feed.origin == "config" else ""
            state = f"⚠️ channel gone (deleted, or I can't see it): nothing can be posted{fix}"
        lines.append(f"<#{feed.channel_id}> {state}; {last}; {next_text}")
    fetches = []
    for source, latest in status.fetches.items():
        if source == "digest":
            fetches.append("digest: imported by hand")
        elif latest is None:
            fetches.append(f"{source}: not fetched yet")
        else:
            day, state, papers, error = latest
            detail = f" ({sanitize(truncate(error, 120))})" if error and state == "failed" else ""
            fetches.append(f"{source}: {day} {state}, {papers} papers{detail}")
    lines.append("Fetches: " + "; ".join(fetches))
    alert = status.alert_channel_id
    lines.append(f"Alerts go to <#{alert}>." if alert else "No alert channel set.")
    if usage_line is not None:
        lines.append(usage_line)
    return "\n".join(lines)[:MAX_CONTENT]
