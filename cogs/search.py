"""/search, /paper and /tags: find any stored paper in seconds."""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.digest.render import paper_card
from bot.labels import LABELS
from bot.models import InvalidPaperId, split_arxiv_id
from bot.runtime import autocomplete
from bot.runtime.tree import UserError, parse_date_option
from bot.search.engine import SearchResult
from bot.search.render import (
    PAGE_SIZE,
    no_results_text,
    query_label,
    results_embed,
    tags_embed,
)
from bot.search.sessions import SearchSession
from bot.store.papers import get_paper, tag_counts

if TYPE_CHECKING:
    from bot.runtime.client import PaperBot

log = logging.getLogger(__name__)

MENTIONS = discord.AllowedMentions.none()
SORT_CHOICES = [app_commands.Choice(name=n, value=n) for n in ("relevance", "date", "upvotes")]


async def run_search(bot: PaperBot, session: SearchSession, page: int) -> SearchResult:
    """One page of a search; identical searches share it (``SearchSessions.results``)."""
    return await bot.search_sessions.results.get(
        session.key(page),
        bot.db.generation,
        lambda: bot.search_engine.search(
            bot.db,
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


async def turn_page(interaction: discord.Interaction, token: str, page: int) -> None:
    """A Previous / Next click: only the searcher may turn, and only while the search lasts."""
    bot = cast("PaperBot", interaction.client)
    session = bot.search_sessions.get(token)
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
    result = await run_search(bot, session, page)
    if not result.hits and page > 0:
        page, result = page - 1, await run_search(bot, session, page - 1)
    await interaction.response.edit_message(
        embed=discord.Embed.from_dict(results_embed(result, page, query_label(session.text))),
        view=page_view(token, page, result.has_more),
    )


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
        await turn_page(interaction, self.token, self.page)


def page_view(token: str, page: int, has_more: bool) -> discord.ui.View:
    view = discord.ui.View(timeout=None)
    view.add_item(PageButton(token, max(page - 1, 0), "◀ Previous", disabled=page == 0))
    view.add_item(PageButton(token, page + 1, "Next ▶", disabled=not has_more))
    return view


class SearchCog(commands.Cog):
    def __init__(self, bot: PaperBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(PageButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(PageButton)

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
    @app_commands.autocomplete(tag=autocomplete.any_tag)
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
        result = await run_search(self.bot, session, 0)
        if not result.hits:
            names = [name for name, _ in await self.bot.tag_options.known_tags()] or list(LABELS)
            text = no_results_text(result, session, names)
            await interaction.response.send_message(text, ephemeral=True, allowed_mentions=MENTIONS)
            return
        token = self.bot.search_sessions.add(session)
        await interaction.response.send_message(
            embed=discord.Embed.from_dict(results_embed(result, 0, query_label(query))),
            view=page_view(token, 0, result.has_more),
            ephemeral=not public,
            allowed_mentions=MENTIONS,
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
        await interaction.response.send_message(
            embed=discord.Embed.from_dict(paper_card(stored)),
            ephemeral=not public,
            allowed_mentions=MENTIONS,
        )

    @app_commands.command(name="tags", description="Known tags with their paper counts")
    async def tags_command(self, interaction: discord.Interaction) -> None:
        counts = await tag_counts(self.bot.db)
        await interaction.response.send_message(
            embed=discord.Embed.from_dict(tags_embed(counts)),
            ephemeral=True,
            allowed_mentions=MENTIONS,
        )


async def setup(bot: PaperBot) -> None:
    await bot.add_cog(SearchCog(bot))
