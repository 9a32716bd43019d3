"""The embeds and text of `/search` and `/tags`: plain dicts, ``discord.Embed.from_dict``-ready.

Pure: it formats what the search returns. One paper's card is ``bot.digest.render.paper_card``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from bot.digest.render import EMBED_COLOR, format_authors
from bot.models import Paper
from bot.search.engine import SearchResult
from bot.search.sessions import SearchSession
from bot.text import sanitize, truncate

PAGE_SIZE = 5


def hit_line(number: int, paper: Paper) -> str:
    title = truncate(sanitize(paper.title), 180)
    meta = [truncate(sanitize(format_authors(paper.authors, 3)), 80)]
    if paper.published:
        meta.append(paper.published.isoformat())
    if paper.upvotes:
        meta.append(f"▲ {paper.upvotes}")
    if paper.tags:
        meta.append(truncate(sanitize(", ".join(paper.tags[:3])), 80))
    return f"**{number}. [{title}]({paper.url})**\n{' · '.join(part for part in meta if part)}"


def query_label(text: str) -> str:
    return truncate(sanitize(text, markdown=False), 200)


def results_embed(result: SearchResult, page: int, label: str) -> dict[str, Any]:
    first = page * PAGE_SIZE + 1
    lines = [hit_line(first + i, hit.paper) for i, hit in enumerate(result.hits)]
    shown = f"{first}–{first + len(result.hits) - 1}" + ("+" if result.has_more else "")
    return {
        "title": truncate(f"Search: {label}", 256),
        "description": "\n\n".join(lines)[:4096],
        "color": EMBED_COLOR,
        "footer": {"text": f"Results {shown} · page {page + 1}"},
    }


def no_results_text(result: SearchResult, session: SearchSession, tag_names: Sequence[str]) -> str:
    """Why nothing matched, with tags that might fit (from ``tag_names``) and what to drop."""
    if result.unused_tags:
        names = ", ".join(f"`{sanitize(tag)}`" for tag in result.unused_tags)
        return f"No papers carry the tag {names} yet."
    words = re.findall(r"\w+", session.text.lower())
    lowered = {name.lower(): name for name in tag_names}
    near = []
    for word in words:
        near += [n for n in tag_names if word in n.lower().split()]
        near += [lowered[m] for m in difflib.get_close_matches(word, list(lowered), n=2)]
    near = list(dict.fromkeys(near))[:3]
    hints = []
    if near:
        hints.append("tags that might fit: " + ", ".join(f"`{n}`" for n in near))
    if len(words) > 1 or session.tags or session.authors or session.since or session.until:
        hints.append("try fewer words or filters")
    if '"' in session.text:
        hints.append("drop the quotes to match the words anywhere")
    suffix = f" Suggestions: {'; '.join(hints)}." if hints else ""
    return f"No papers match that search.{suffix}"


def tags_embed(counts: Sequence[tuple[str, int]]) -> dict[str, Any]:
    """`/tags`: every stored tag with its paper count."""
    if not counts:
        text = "No papers are stored yet."
    else:
        text = "\n".join(f"`{count:>6}` {sanitize(tag)}" for tag, count in counts)
    return {"title": "Tags", "description": text[:4096], "color": EMBED_COLOR}
