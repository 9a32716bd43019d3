"""Every way a :class:`~bot.models.Paper` is shown: Discord payloads and plain text.

Discord payloads are plain, JSON-serialisable dicts in the API's shape
(``{"content", "embeds", "allowed_mentions"}``), built to respect every Discord limit; paper text
is untrusted and goes through :func:`bot.text.sanitize`. :func:`validate_message` lists what
Discord would reject (or what could ping someone) in a payload.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any, Literal
from urllib.parse import urlsplit

from bot.digest.select import effective_tags, top_tags
from bot.digest.summarize import fallback_bullets
from bot.models import Paper
from bot.text import has_unsafe_mention, is_safe_url, one_line, sanitize, truncate

# Discord's limits (https://discord.com/developers/docs/resources/message#embed-object-embed-limits)
MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_EMBED_TOTAL = 6000  # title + description + field names/values + footer + author name
MAX_TITLE = 256
MAX_DESCRIPTION = 4096
MAX_FIELDS = 25
MAX_FIELD_NAME = 256
MAX_FIELD_VALUE = 1024
MAX_FOOTER = 2048
MAX_AUTHOR = 256

EMBED_COLOR = 0xB31B1B  # arXiv red
HEADER_COLOR = 0xFFD21E  # Hugging Face yellow
LAYOUTS: tuple[str, ...] = ("full", "compact")
Layout = Literal["full", "compact"]

FULL_AUTHORS = 5
COMPACT_AUTHORS = 3
MAX_BULLET = 600
MIN_PARTIAL_LINE = 40  # a description line cut shorter than this is dropped instead
COMPACT_TITLE = 200
COMPACT_FOOTER = 120
COMPACT_AUTHORS_LINE = 100
COMPACT_LINKS_LINE = 260
COMPACT_TOTAL = 590  # so that ten compact embeds fit in one message
LINK_SEPARATOR = " · "
BULLET = "• "


def no_mentions() -> dict[str, list[str]]:
    """The ``allowed_mentions`` every payload carries: nobody is pinged by paper text."""
    return {"parse": []}


def message(embeds: Sequence[dict[str, Any]], content: str = "") -> dict[str, Any]:
    """A message payload with ``allowed_mentions`` that pings no one."""
    return {"content": content, "embeds": list(embeds), "allowed_mentions": no_mentions()}


def format_authors(authors: Sequence[str], limit: int = FULL_AUTHORS) -> str:
    """The first ``limit`` authors, then "et al." when there are more."""
    names: list[str] = []
    wanted = max(limit, 1) + 1  # one more than shown tells whether "et al." follows
    for author in authors:  # papers with hundreds of authors: clean only the few needed
        name = one_line(author)
        if name:
            names.append(name)
            if len(names) == wanted:
                break
    shown = ", ".join(names[: max(limit, 1)])
    return f"{shown} et al." if len(names) > limit else shown


def _path(url: str) -> str:
    return urlsplit(url).path.strip("/")


def _hf_label(url: str) -> str:
    return "🤗 " + (truncate(_path(url), 60) or "Hugging Face")


def paper_links(paper: Paper) -> list[tuple[str, str]]:
    """``(label, url)`` for the paper's links, safe URLs only, without duplicates."""
    github = list(paper.github_urls)
    candidates = [("arXiv", paper.url), ("Hugging Face", paper.hf_paper_url)]
    candidates += [("GitHub" if len(github) == 1 else _path(url), url) for url in github]
    candidates += [(_hf_label(url), url) for url in paper.hf_urls]
    if paper.project_url:
        candidates.append(("Project page", paper.project_url))
    links: dict[str, str] = {}
    for label, url in candidates:
        url = url.strip()
        if is_safe_url(url) and url not in links:
            links[url] = sanitize(label) or "link"
    return [(label, url) for url, label in links.items()]


def join_links(links: Iterable[tuple[str, str]], limit: int) -> str:
    """Masked links joined by " · ", as many whole links as fit in ``limit`` characters."""
    text = ""
    for label, url in links:
        item = f"[{label}]({url})"
        candidate = f"{text}{LINK_SEPARATOR}{item}" if text else item
        if len(candidate) > limit:
            break
        text = candidate
    return text


def join_lines(lines: Iterable[str], limit: int) -> str:
    """Lines joined by newlines within ``limit``; the first one that overflows is truncated."""
    text = ""
    for line in lines:
        candidate = f"{text}\n{line}" if text else line
        if len(candidate) <= limit:
            text = candidate
            continue
        room = limit - len(text) - (1 if text else 0)
        if room >= MIN_PARTIAL_LINE:
            text = f"{text}\n{truncate(line, room)}" if text else truncate(line, room)
        break
    return text


def _length(value: Any) -> int:
    return len(value) if isinstance(value, str) else 0


def _nested(embed: dict[str, Any], key: str, inner: str) -> Any:
    value = embed.get(key)
    return value.get(inner) if isinstance(value, dict) else None


def embed_size(embed: dict[str, Any]) -> int:
    """The characters Discord counts towards the 6000 limit for one embed."""
    size = _length(embed.get("title")) + _length(embed.get("description"))
    fields = embed.get("fields")
    for field in fields if isinstance(fields, list) else []:
        if isinstance(field, dict):
            size += _length(field.get("name")) + _length(field.get("value"))
    size += _length(_nested(embed, "footer", "text"))
    return size + _length(_nested(embed, "author", "name"))


def _bullets(paper: Paper) -> tuple[str, ...]:
    return paper.bullets or fallback_bullets(paper)


def _title(paper: Paper, limit: int) -> str:
    return truncate(sanitize(paper.title) or f"arXiv:{paper.arxiv_id}", limit)


def _footer(paper: Paper, *, with_tags: bool = False) -> str:
    parts: list[str] = []
    if paper.upvotes is not None:
        parts.append(f"▲ {paper.upvotes}")
    if paper.github_stars:
        parts.append(f"★ {paper.github_stars}")
    tags = sanitize(", ".join(effective_tags(paper)), markdown=False) if with_tags else ""
    if tags:
        parts.append(tags)
    else:
        parts.append(f"arXiv:{paper.arxiv_id}")
        if paper.published:
            parts.append(paper.published.isoformat())
    return sanitize(" · ".join(parts), markdown=False)


def _base_embed(paper: Paper, title_limit: int, footer: str) -> dict[str, Any]:
    embed: dict[str, Any] = {"title": _title(paper, title_limit)}
    if is_safe_url(paper.url):
        embed["url"] = paper.url
    embed["color"] = EMBED_COLOR
    embed["footer"] = {"text": footer}
    return embed


def _full_embed(paper: Paper) -> dict[str, Any]:
    embed = _base_embed(paper, MAX_TITLE, truncate(_footer(paper), MAX_FOOTER))
    authors = truncate(sanitize(format_authors(paper.authors), markdown=False), MAX_AUTHOR)
    if authors:
        embed["author"] = {"name": authors}
    fields = []
    tags = truncate(sanitize(", ".join(effective_tags(paper))), MAX_FIELD_VALUE)
    if tags:
        fields.append({"name": "Tags", "value": tags, "inline": True})
    links = join_links(paper_links(paper), MAX_FIELD_VALUE)
    if links:
        fields.append({"name": "Links", "value": links, "inline": False})
    embed["fields"] = fields
    room = min(MAX_DESCRIPTION, MAX_EMBED_TOTAL - embed_size(embed))
    lines = (BULLET + truncate(sanitize(bullet), MAX_BULLET) for bullet in _bullets(paper))
    description = join_lines((line for line in lines if line != BULLET), room)
    if description:
        embed["description"] = description
    return embed


def _compact_embed(paper: Paper) -> dict[str, Any]:
    footer = truncate(_footer(paper, with_tags=True), COMPACT_FOOTER)
    embed = _base_embed(paper, COMPACT_TITLE, footer)
    room = COMPACT_TOTAL - embed_size(embed)
    authors = format_authors(paper.authors, COMPACT_AUTHORS)
    authors = truncate(sanitize(authors), COMPACT_AUTHORS_LINE)
    links_room = min(COMPACT_LINKS_LINE, room - len(authors) - 1)
    links = join_links(paper_links(paper)[1:], links_room)  # the title already links to arXiv
    fixed = [line for line in (authors, links) if line]
    bullet_room = room - sum(map(len, fixed)) - len(fixed)  # one newline per extra line
    bullet = next((sanitize(b) for b in _bullets(paper) if sanitize(b)), "")
    if bullet and bullet_room >= MIN_PARTIAL_LINE:
        fixed.insert(1 if authors else 0, truncate(BULLET + bullet, bullet_room))
    if fixed:
        embed["description"] = "\n".join(fixed)
    return embed


def paper_embed(paper: Paper, *, compact: bool = False) -> dict[str, Any]:
    """One paper as an embed: linked title, authors, bullets, tags, links, upvotes in the footer."""
    return _compact_embed(paper) if compact else _full_embed(paper)


def _header_embed(day: date, papers: Sequence[Paper], feed_name: str | None) -> dict[str, Any]:
    title = f"📄 Papers for {day.isoformat()}"
    if feed_name and (name := sanitize(feed_name)):
        title = f"{title} · {name}"
    count = len(papers)
    lines = [f"**{count}** paper{'s' if count != 1 else ''}" if count else "No papers today."]
    tags = [f"{truncate(sanitize(tag), 60)} ({n})" for tag, n in top_tags(papers)]
    if tags:
        lines.append("Top tags: " + ", ".join(tags))
    return {
        "title": truncate(title, MAX_TITLE),
        "description": truncate("\n".join(lines), MAX_DESCRIPTION),
        "color": HEADER_COLOR,
    }


def digest_header(
    day: date, papers: Sequence[Paper], feed_name: str | None = None
) -> dict[str, Any]:
    """The digest's opening message: date, paper count and top tags."""
    return message([_header_embed(day, papers, feed_name)])


def _pack(embeds: Sequence[dict[str, Any]], per_message: int) -> list[list[dict[str, Any]]]:
    """Group embeds in order into messages of at most ``per_message`` and 6000 characters."""
    groups: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    size = 0
    for embed in embeds:
        needed = embed_size(embed)
        if current and (len(current) >= per_message or size + needed > MAX_EMBED_TOTAL):
            groups.append(current)
            current, size = [], 0
        current.append(embed)
        size += needed
    if current:
        groups.append(current)
    return groups


def digest_messages(
    day: date,
    papers: Sequence[Paper],
    layout: Layout = "full",
    header: bool = True,
    *,
    feed_name: str | None = None,
) -> list[dict[str, Any]]:
    """A day's digest as message payloads, every one within Discord's limits.

    ``full``: one message per paper; ``compact``: up to ten papers a message. The header (when
    asked for) shares the first message when it fits. No papers and no header: no messages.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown digest layout {layout!r}; expected one of {LAYOUTS}")
    embeds = [paper_embed(paper, compact=layout == "compact") for paper in papers]
    head = [_header_embed(day, papers, feed_name)] if header else []
    if layout == "compact":
        groups = _pack(head + embeds, MAX_EMBEDS)
    else:
        groups = _pack(head + embeds[:1], MAX_EMBEDS) + [[embed] for embed in embeds[1:]]
    return [message(group) for group in groups]


def _wrap(text: str, width: int, indent: str) -> list[str]:
    return textwrap.wrap(text, width, initial_indent=indent, subsequent_indent=indent + "  ")


def _paper_text(index: int, paper: Paper, width: int) -> list[str]:
    indent = " " * (len(str(index)) + 2)
    lines = textwrap.wrap(
        one_line(paper.title) or paper.arxiv_id,
        width,
        initial_indent=f"{index}. ",
        subsequent_indent=indent,
    )
    if paper.authors:
        lines += _wrap("Authors: " + format_authors(paper.authors), width, indent)
    meta = [f"▲ {paper.upvotes}"] if paper.upvotes is not None else []
    if tags := effective_tags(paper):
        meta.append(", ".join(one_line(tag) for tag in tags))
    if meta:
        lines += _wrap(" · ".join(meta), width, indent)
    for bullet in _bullets(paper):
        lines += _wrap("- " + one_line(bullet), width, indent)
    lines += [f"{indent}{label}: {url}" for label, url in _text_links(paper)]
    return lines


def _text_links(paper: Paper) -> list[tuple[str, str]]:
    links = [("arXiv", paper.url), ("Hugging Face", paper.hf_paper_url)]
    links += [("GitHub", url.strip()) for url in paper.github_urls]
    links += [("Model/data", url.strip()) for url in paper.hf_urls]
    if paper.project_url:
        links.append(("Project", paper.project_url.strip()))
    return [(label, url) for label, url in links if is_safe_url(url)]


def render_text(day: date, papers: Sequence[Paper], *, width: int = 100) -> str:
    """The digest as plain text for a terminal."""
    count = len(papers)
    heading = f"Papers for {day.isoformat()} ({count} paper{'s' if count != 1 else ''})"
    blocks = [f"{heading}\n{'=' * len(heading)}"]
    if not papers:
        blocks.append("No papers.")
    blocks += ["\n".join(_paper_text(i, paper, width)) for i, paper in enumerate(papers, 1)]
    return "\n\n".join(blocks) + "\n"


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def _check_length(problems: list[str], where: str, value: Any, limit: int) -> None:
    if not isinstance(value, str):
        problems.append(f"{where} is not a string")
    elif len(value) > limit:
        problems.append(f"{where} has {len(value)} characters (limit {limit})")


def _check_text(problems: list[str], where: str, value: Any, limit: int) -> None:
    """A required text: a string of 1..limit characters that is not only whitespace."""
    _check_length(problems, where, value, limit)
    if isinstance(value, str) and not value.strip():
        problems.append(f"{where} is empty")


def _validate_fields(problems: list[str], where: str, fields: Any) -> None:
    if not isinstance(fields, list):
        problems.append(f"{where}.fields is not a list")
        return
    if len(fields) > MAX_FIELDS:
        problems.append(f"{where} has {len(fields)} fields (limit {MAX_FIELDS})")
    for j, field in enumerate(fields):
        if not isinstance(field, dict):
            problems.append(f"{where}.fields[{j}] is not an object")
            continue
        _check_text(problems, f"{where}.fields[{j}].name", field.get("name"), MAX_FIELD_NAME)
        _check_text(problems, f"{where}.fields[{j}].value", field.get("value"), MAX_FIELD_VALUE)


def _validate_embed(problems: list[str], where: str, embed: dict[str, Any]) -> None:
    if "title" in embed:
        _check_length(problems, f"{where}.title", embed["title"], MAX_TITLE)
    if "description" in embed:
        _check_text(problems, f"{where}.description", embed["description"], MAX_DESCRIPTION)
    _validate_fields(problems, where, embed.get("fields", []))
    if "footer" in embed:
        _check_text(problems, f"{where}.footer.text", _nested(embed, "footer", "text"), MAX_FOOTER)
    if "author" in embed:
        _check_text(problems, f"{where}.author.name", _nested(embed, "author", "name"), MAX_AUTHOR)
    if "url" in embed and not (isinstance(embed["url"], str) and is_safe_url(embed["url"])):
        problems.append(f"{where}.url is not an http(s) URL")
    color = embed.get("color", 0)
    if not isinstance(color, int) or not 0 <= color <= 0xFFFFFF:
        problems.append(f"{where}.color is not a 24-bit integer")
    if not any(embed.get(key) for key in ("title", "description", "fields", "footer", "author")):
        problems.append(f"{where} is empty")


def validate_message(payload: dict[str, Any]) -> list[str]:
    """Everything in a message payload that Discord would reject or that could ping someone."""
    problems: list[str] = []
    try:
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError) as error:
        problems.append(f"payload is not JSON-serialisable UTF-8: {error}")
    content = payload.get("content", "")
    _check_length(problems, "content", content, MAX_CONTENT)
    embeds = payload.get("embeds", [])
    if not isinstance(embeds, list):
        return [*problems, "embeds is not a list"]
    if len(embeds) > MAX_EMBEDS:
        problems.append(f"{len(embeds)} embeds (limit {MAX_EMBEDS})")
    if not embeds and not (isinstance(content, str) and content.strip()):
        problems.append("message is empty")
    for i, embed in enumerate(embeds):
        if isinstance(embed, dict):
            _validate_embed(problems, f"embeds[{i}]", embed)
        else:
            problems.append(f"embeds[{i}] is not an object")
    total = sum(embed_size(embed) for embed in embeds if isinstance(embed, dict))
    if total > MAX_EMBED_TOTAL:
        problems.append(f"embeds total {total} characters (limit {MAX_EMBED_TOTAL})")
    mentions = payload.get("allowed_mentions")
    if not isinstance(mentions, dict) or not isinstance(mentions.get("parse"), list):
        problems.append("allowed_mentions.parse is missing")
    elif {"everyone", "roles", "users"} & set(mentions["parse"]):
        problems.append(f"allowed_mentions parses {mentions['parse']}")
    if any(has_unsafe_mention(text) for text in _strings([content, embeds])):
        problems.append("a mention in the text is not neutralised")
    return problems
