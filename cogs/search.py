"""/search, /paper and /tags: find any stored paper in seconds."""

from __future__ import annotations

import difflib
import logging
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.digest.render import EMBED_COLOR, MAX_EMBED_TOTAL, embed_size, format_authors, paper_embed
from bot.errors import InputError
from bot.labels import LABELS
from bot.models import InvalidPaperId, split_arxiv_id
from bot.runtime.tree import UserError, parse_date_option
from bot.search.cache import ResultCache
from bot.search.engine import SearchResult
from bot.search.tag_options import complete_tag, complete_tag_list
from bot.store.papers import get_paper, tag_counts
from bot.text import sanitize, truncate

if TYPE_CHECKING:
    from bot.runtime.client import PaperBot

log = logging.getLogger(__name__)

PAGE_SIZE = 5
SESSION_TTL = 15 * 60  # seconds a result's buttons keep working
MAX_SESSIONS = 2000
MENTIONS = discord.AllowedMentions.none()
SORT_CHOICES = [app_commands.Choice(name=n, value=n) for n in ("relevance", "date", "upvotes")]


@dataclass
class SearchSession:
    """What a result message's Previous / Next buttons need to fetch another page."""

    user_id: int
    text: str
    tags: tuple[str, ...]
    authors: tuple[str, ...]
    since: date | None
    until: date | None
    sort: str
    created: float


class SearchSessions:
    """Recent searches by token, bounded in number and age (they are cheap to lose)."""

    def __init__(self, ttl: float = SESSION_TTL, capacity: int = MAX_SESSIONS) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._items: OrderedDict[str, SearchSession] = OrderedDict()

    def add(self, session: SearchSession) -> str:
        token = secrets.token_hex(6)
        self._items[token] = session
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return token

    def forget_user(self, user_id: int) -> None:
        for token in [t for t, s in self._items.items() if s.user_id == user_id]:
            del self._items[token]

    def get(self, token: str) -> SearchSession | None:
        session = self._items.get(token)
        if session is None or time.monotonic() - session.created > self.ttl:
            self._items.pop(token, None)
            return None
        return session


def hit_line(number: int, paper, score: float | None = None) -> str:
    title = truncate(sanitize(paper.title), 180)
    meta = [truncate(sanitize(format_authors(paper.authors, 3)), 80)]
    if paper.published:
        meta.append(paper.published.isoformat())
    if paper.upvotes:
        meta.append(f"▲ {paper.upvotes}")
    if paper.tags:
        meta.append(truncate(sanitize(", ".join(paper.tags[:3])), 80))
    return f"**{number}. [{title}]({paper.url})**\n{' · '.join(part for part in meta if part)}"


def results_embed(result: SearchResult, page: int, query_label: str) -> dict[str, Any]:
    first = page * PAGE_SIZE + 1
    lines = [hit_line(first + i, hit.paper) for i, hit in enumerate(result.hits)]
    shown = f"{first}–{first + len(result.hits) - 1}" + ("+" if result.has_more else "")
    return {
        "title": truncate(f"Search: {query_label}", 256),
        "description": "\n\n".join(lines)[:4096],
        "color": EMBED_COLOR,
        "footer": {"text": f"Results {shown} · page {page + 1}"},
    }


class PageButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"paperbot:search:(?P<token>[0-9a-f]{12}):(?P<page>\d{1,4})",
):
    """Previous / Next. Stateless on the wire, so clicks after a restart answer politely."""

    def __init__(self, token: str, page: int, label: str = "Next", disabled: bool = False) -> None:
        super().__init__(
            discord.ui.Button(
                label=label,
                style=discord.ButtonStyle.secondary,
                custom_id=f"paperbot:search:{token}:{page}",
                disabled=disabled,
            )
        )
        self.token = token
        self.page = page

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> PageButton:
        return cls(match["token"], int(match["page"]), item.label or "", item.disabled)

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog("SearchCog")
        if isinstance(cog, SearchCog):
            await cog.turn_page(interaction, self.token, self.page)


def page_view(token: str, page: int, has_more: bool) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(PageButton(token, max(page - 1, 0), "◀ Previous", disabled=page == 0))
    view.add_item(PageButton(token, page + 1, "Next ▶", disabled=not has_more))
    return view


class SearchCog(commands.Cog):
    def __init__(self, bot: PaperBot) -> None:
        self.bot = bot
        self.sessions = SearchSessions()
        self.results: ResultCache[SearchResult] = ResultCache()
        # Counting every tag row takes ~80 ms at 90k papers (on a reader thread): reused for
        # a minute, and autocompletes arriving together share one count.
        self._tags: ResultCache[list[tuple[str, int]]] = ResultCache(ttl=60, capacity=1)

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(PageButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(PageButton)

    async def known_tags(self) -> list[tuple[str, int]]:
        return await self._tags.get("tags", 0, lambda: tag_counts(self.bot.db))

    async def tag_list_autocomplete(
        self, interaction: discord.Interaction, current: str, *, vocabulary_only: bool = False
    ) -> list[app_commands.Choice[str]]:
        """For comma-separated tag options: complete the last item, keeping the earlier ones."""
        counts = dict(await self.known_tags())
        pairs = complete_tag_list(counts, current, vocabulary_only=vocabulary_only)
        return [app_commands.Choice(name=label, value=value) for label, value in pairs]

    async def tag_autocomplete(
        self, interaction: discord.Interaction, current: str, *, vocabulary_only: bool = False
    ) -> list[app_commands.Choice[str]]:
        """At most 25 tags the asking command accepts (see bot.tag_options)."""
        counts = dict(await self.known_tags())
        pairs = complete_tag(counts, current, vocabulary_only=vocabulary_only)
        return [app_commands.Choice(name=label, value=value) for label, value in pairs]

    async def _run(self, session: SearchSession, page: int) -> SearchResult:
        key = (session.text, session.tags, session.authors, session.since, session.until)
        key += (session.sort, page)
        try:
            return await self.results.get(
                key,
                self.bot.db.generation,
                lambda: self.bot.search_engine.search(
                    self.bot.db,
                    session.text,
                    tags=session.tags,
                    authors=session.authors,
                    since=session.since,
                    until=session.until,
                    sort=session.sort,  # type: ignore[arg-type]
                    limit=PAGE_SIZE,
                    offset=page * PAGE_SIZE,
                ),
            )
        except InputError as exc:
            raise UserError(str(exc)) from None

    async def _no_results_text(self, session: SearchSession) -> str:
        words = re.findall(r"\w+", session.text.lower())
        names = [name for name, _ in await self.known_tags()] or list(LABELS)
        lowered = {name.lower(): name for name in names}
        near = []
        for word in words:
            near += [n for n in names if word in n.lower().split()]
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

    @app_commands.command(name="search", description="Full-text search over every stored paper")
    @app_commands.describe(
        query='Words, "exact phrases", -exclusions, OR, tag:NAME, author:NAME',
        tag="Only papers with this tag",
        author="Only papers by this author",
        since="From this date (YYYY-MM-DD)",
        until="Up to this date (YYYY-MM-DD)",
        sort="Order of the results (default: relevance)",
        public="Post the results in the channel instead of only to you",
    )
    @app_commands.choices(sort=SORT_CHOICES)
    async def search_command(
        self,
        interaction: discord.Interaction,
        query: app_commands.Range[str, 1, 300],
        tag: str | None = None,
        author: app_commands.Range[str, 1, 100] | None = None,
        since: str | None = None,
        until: str | None = None,
        sort: str = "relevance",
        public: bool = False,
    ) -> None:
        session = SearchSession(
            user_id=interaction.user.id,
            text=query,
            tags=(tag,) if tag else (),
            authors=(author,) if author else (),
            since=parse_date_option(since, "since"),
            until=parse_date_option(until, "until"),
            sort=sort,
            created=time.monotonic(),
        )
        result = await self._run(session, 0)
        if not result.hits:
            if result.unused_tags:
                names = ", ".join(f"`{sanitize(tag)}`" for tag in result.unused_tags)
                text = f"No papers carry the tag {names} yet."
            else:
                text = await self._no_results_text(session)
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=MENTIONS)
            return
        token = self.sessions.add(session)
        label = truncate(sanitize(query, markdown=False), 200)
        await interaction.response.send_message(
            embed=discord.Embed.from_dict(results_embed(result, 0, label)),
            view=page_view(token, 0, result.has_more),
            ephemeral=not public,
            allowed_mentions=MENTIONS,
        )

    @search_command.autocomplete("tag")
    async def _search_tag_autocomplete(self, interaction: discord.Interaction, current: str):
        return await self.tag_autocomplete(interaction, current)

    async def turn_page(self, interaction: discord.Interaction, token: str, page: int) -> None:
        session = self.sessions.get(token)
        if session is None:
            await interaction.response.edit_message(
                content="This search has expired; run `/search` again.", view=None
            )
            return
        if interaction.user.id != session.user_id:
            await interaction.response.send_message(
                "Only the person who searched can turn these pages; run your own `/search`.",
                ephemeral=True,
                allowed_mentions=MENTIONS,
            )
            return
        result = await self._run(session, page)
        if not result.hits and page > 0:
            page, result = page - 1, await self._run(session, page - 1)
        label = truncate(sanitize(session.text, markdown=False), 200)
        await interaction.response.edit_message(
            embed=discord.Embed.from_dict(results_embed(result, page, label)),
            view=page_view(token, page, result.has_more),
        )

    @app_commands.command(name="paper", description="Show one paper's full card")
    @app_commands.describe(
        paper="arXiv id or link: 2501.06425, arXiv:2501.06425v2, arxiv.org/abs/… or hf.co/papers/…",
        public="Post the card in the channel instead of only to you",
    )
    async def paper_command(
        self,
        interaction: discord.Interaction,
        paper: app_commands.Range[str, 1, 200],
        public: bool = False,
    ) -> None:
        try:
            arxiv_id, _ = split_arxiv_id(paper)
        except InvalidPaperId:
            raise UserError(
                "That is not an arXiv id or paper link; try `2501.06425` or "
                "`https://arxiv.org/abs/2501.06425`."
            ) from None
        stored = await get_paper(self.bot.db, arxiv_id)
        if stored is None:
            raise UserError(f"Paper {arxiv_id} is not in my store yet; try `/search`.")
        embed = paper_embed(stored)
        room = min(1024, MAX_EMBED_TOTAL - embed_size(embed) - len("Abstract"))
        if stored.abstract and room > 100 and len(embed.get("fields", [])) < 25:
            abstract = truncate(sanitize(stored.abstract), room)
            embed.setdefault("fields", []).append({"name": "Abstract", "value": abstract})
        await interaction.response.send_message(
            embed=discord.Embed.from_dict(embed), ephemeral=not public, allowed_mentions=MENTIONS
        )

    @app_commands.command(name="tags", description="Known tags with their paper counts")
    async def tags_command(self, interaction: discord.Interaction) -> None:
        counts = await tag_counts(self.bot.db)
        if not counts:
            text = "No papers are stored yet."
        else:
            text = "\n".join(f"`{count:>6}` {sanitize(tag)}" for tag, count in counts)
        await interaction.response.send_message(
            embed=discord.Embed(title="Tags", description=text[:4096], color=EMBED_COLOR),
            ephemeral=True,
            allowed_mentions=MENTIONS,
        )


async def setup(bot: PaperBot) -> None:
    await bot.add_cog(SearchCog(bot))
