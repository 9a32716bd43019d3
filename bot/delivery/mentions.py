"""Mention and DM messages for subscription matches (pure: no I/O, no Discord objects).

A feed's digest post is followed by :func:`mention_messages`: each subscriber (user or role)
is mentioned once, on one line listing the papers that matched them. Paper text is untrusted:
titles go through :func:`bot.text.sanitize`, and every payload's ``allowed_mentions`` names
exactly the ids mentioned in that message, so only the intended people are pinged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from bot.models import Paper
from bot.subscriptions.matching import SubscriberKey
from bot.text import ZWSP, is_safe_url, neutralize_mentions, one_line, sanitize, truncate

log = logging.getLogger(__name__)

MAX_CONTENT = 2000  # Discord's limit for message content
MAX_MENTION_IDS = 100  # Discord's limit for allowed_mentions.users (and .roles)
TITLE_LIMIT = 80  # a paper's title on a mention line
DM_TITLE_LIMIT = 200
MAX_PAPERS_PER_LINE = 10
MAX_HEADER = 300
SEPARATOR = " · "


def _merge(
    matches: Mapping[SubscriberKey, Sequence[Paper]],
    members_present: set[int] | None,
    roles_present: set[int] | None,
) -> dict[tuple[str, int], list[Paper]]:
    """One entry per subscriber (keys differing by feed merge), DM subscribers left out."""
    merged: dict[tuple[str, int], dict[str, Paper]] = {}
    guilds: set[int] = set()
    for key, papers in matches.items():
        if key.dm or not papers:
            continue
        guilds.add(key.guild_id)
        if len(guilds) > 1:
            raise ValueError(f"mentions for one guild's feed, got guilds {sorted(guilds)}")
        present = members_present if key.subscriber_type == "user" else roles_present
        if present is not None and key.subscriber_id not in present:
            continue  # a member who left, a deleted role
        bucket = merged.setdefault((key.subscriber_type, key.subscriber_id), {})
        for paper in papers:
            bucket.setdefault(paper.arxiv_id, paper)
    return {who: list(bucket.values()) for who, bucket in merged.items()}


def paper_link(paper: Paper, limit: int = TITLE_LIMIT) -> str:
    """The paper's title (inert: no mentions, markdown or links of its own) linked to arXiv."""
    title = truncate(sanitize(paper.title) or f"arXiv:{paper.arxiv_id}", limit)
    # A URL inside a masked link's text is refused by Discord (and looks like phishing).
    title = title.replace("://", ":" + ZWSP + "//")
    # <url> inside a masked link keeps Discord from unfurling an embed for every paper.
    return f"[{title}](<{paper.url}>)" if is_safe_url(paper.url) else title


def _header(text: str) -> str:
    """The caller's header on one line, short, and unable to ping (it may hold a feed name)."""
    return truncate(neutralize_mentions(one_line(text)), MAX_HEADER)


def _mention(subscriber_type: str, subscriber_id: int) -> str:
    return f"<@&{subscriber_id}>" if subscriber_type == "role" else f"<@{subscriber_id}>"


def _more(count: int) -> str:
    return f" and {count} more" if count else ""


def mention_line(
    mention: str, papers: Sequence[Paper], limit: int, max_papers: int = MAX_PAPERS_PER_LINE
) -> str:
    """``<@id> [Title](<url>) · …``, ending "and N more" when the papers do not all fit."""
    line = mention
    shown = 0
    for i, paper in enumerate(papers[:max_papers]):
        candidate = f"{line}{' ' if i == 0 else SEPARATOR}{paper_link(paper)}"
        if len(candidate) + len(_more(len(papers) - i - 1)) > limit:
            break
        line, shown = candidate, i + 1
    if shown == 0:
        return truncate(f"{mention} {len(papers)} papers", limit)
    return line + _more(len(papers) - shown)


def _payload(lines: list[str], users: list[int], roles: list[int]) -> dict[str, Any]:
    return {
        "content": "\n".join(lines),
        "embeds": [],
        "allowed_mentions": {
            "parse": [],
            "users": list(users),
            "roles": list(roles),
            "replied_user": False,
        },
    }


def mention_messages(
    matches: Mapping[SubscriberKey, Sequence[Paper]],
    *,
    members_present: set[int] | None = None,
    roles_present: set[int] | None = None,
    header: str = "",
    max_papers: int = MAX_PAPERS_PER_LINE,
) -> list[dict[str, Any]]:
    """Message payloads mentioning every matched subscriber once, with their papers.

    Subscribers who chose DMs (``key.dm``) are left out (see :func:`dm_messages`), so are users
    not in ``members_present`` and roles not in ``roles_present`` when those are given.
    ``matches`` are one feed's (one guild); see
    :func:`bot.subscriptions.matching.match_feed`. ``header``
    (e.g. "Papers for your subscriptions:", mentions in it are neutralised) starts the first
    message.
    Each message has at most 2000 characters and 100 user and 100 role mentions, and its
    ``allowed_mentions`` lists exactly the ids it mentions.
    """
    header = _header(header)
    limit = MAX_CONTENT - (len(header) + 1 if header else 0)
    messages: list[dict[str, Any]] = []
    lines: list[str] = [header] if header else []
    users: list[int] = []
    roles: list[int] = []
    size = len(header)
    for (kind, subscriber_id), papers in _merge(matches, members_present, roles_present).items():
        line = mention_line(_mention(kind, subscriber_id), papers, limit, max_papers)
        ids = roles if kind == "role" else users
        added = len(line) + (1 if lines else 0)
        if (users or roles) and (size + added > MAX_CONTENT or len(ids) >= MAX_MENTION_IDS):
            messages.append(_payload(lines, users, roles))
            lines, users, roles, size, added = [], [], [], 0, len(line)
            ids = roles if kind == "role" else users
        lines.append(line)
        ids.append(subscriber_id)
        size += added
    if users or roles:
        messages.append(_payload(lines, users, roles))
    return messages


def dm_matches(
    matches: Mapping[SubscriberKey, Sequence[Paper]],
) -> dict[int, tuple[Paper, ...]]:
    """The papers for each user who chose DMs, merged over guilds and feeds."""
    merged: dict[int, dict[str, Paper]] = {}
    for key, papers in matches.items():
        if key.dm and key.subscriber_type == "user":
            bucket = merged.setdefault(key.subscriber_id, {})
            for paper in papers:
                bucket.setdefault(paper.arxiv_id, paper)
    return {user: tuple(bucket.values()) for user, bucket in merged.items() if bucket}


def dm_messages(
    matches_for_user: Sequence[Paper], *, header: str = "Papers matching your subscriptions:"
) -> list[dict[str, Any]]:
    """The private list of one user's matching papers: no mentions at all, 2000 chars each."""
    papers = list({paper.arxiv_id: paper for paper in matches_for_user}.values())
    if not papers:
        return []
    header = _header(header)
    messages: list[dict[str, Any]] = []
    content = header
    for paper in papers:
        line = "• " + paper_link(paper, DM_TITLE_LIMIT)
        candidate = f"{content}\n{line}" if content else line
        if len(candidate) > MAX_CONTENT and content:
            messages.append(_dm_payload(content))
            candidate = line
        content = candidate
    messages.append(_dm_payload(content))
    return messages


def _dm_payload(content: str) -> dict[str, Any]:
    return {
        "content": content,
        "embeds": [],
        "allowed_mentions": {"parse": [], "users": [], "roles": [], "replied_user": False},
    }
