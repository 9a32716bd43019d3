"""/ask and the Ask button: grounded answers from the stored papers, with follow-ups in threads.

Loaded only when an LLM endpoint is configured (see ``bot.runtime.client.PaperBot``).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.labels import normalize_label
from bot.llm.answer import Answer, ask, converse
from bot.llm.client import LLMUnavailable
from bot.models import InvalidPaperId, split_arxiv_id
from bot.runtime.tree import UserError, parse_date_option
from bot.store.llm_store import find_conversation, get_conversation, start_conversation
from bot.store.papers import get_paper
from bot.text import sanitize, truncate

if TYPE_CHECKING:
    from bot.runtime.client import PaperBot

log = logging.getLogger(__name__)

MENTIONS = discord.AllowedMentions.none()
COOLDOWN_SECONDS = 20.0
PROGRESS_EVERY = 1.5  # seconds between edits that show the answer growing
# Kept back from llm.timeout for sending the final edit, so the whole reply fits in it.
REPLY_SLACK = 0.3


class Cooldowns:
    """One question per user every ``seconds`` (slash command, button and replies alike)."""

    def __init__(self, seconds: float = COOLDOWN_SECONDS) -> None:
        self.seconds = seconds
        self._last: dict[int, float] = {}

    def retry_after(self, user_id: int) -> float:
        now = time.monotonic()
        last = self._last.get(user_id)
        if last is not None and now - last < self.seconds:
            return self.seconds - (now - last)
        self._last[user_id] = now
        return 0.0


class AskButton(
    discord.ui.DynamicItem[discord.ui.Button],
    template=r"paperbot:ask:(?P<paper>[0-9A-Za-z./-]{4,40})",
):
    """The Ask button under each digest paper: opens a thread about that paper."""

    def __init__(self, paper_id: str, label: str = "Ask") -> None:
        super().__init__(
            discord.ui.Button(
                label=label, style=discord.ButtonStyle.primary, custom_id=f"paperbot:ask:{paper_id}"
            )
        )
        self.paper_id = paper_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Button, match: re.Match[str]
    ) -> AskButton:
        return cls(match["paper"], item.label or "Ask")

    async def callback(self, interaction: discord.Interaction) -> None:
        cog = interaction.client.get_cog("AskCog")
        if isinstance(cog, AskCog):
            await cog.open_thread(interaction, self.paper_id)


class AskCog(commands.Cog):
    def __init__(self, bot: PaperBot) -> None:
        self.bot = bot
        self.cooldowns = Cooldowns()

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(AskButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(AskButton)

    @property
    def timeout(self) -> float:
        """The user's whole wait, from the command to the final answer (``llm.timeout``)."""
        return self.bot.config.llm.timeout

    async def _answer(self, coroutine, started: float) -> str:
        """Run the answer so that it (or the apology) is sent within ``llm.timeout`` of
        ``started`` (a ``time.monotonic()``); every failure becomes one polite line."""
        left = self.timeout - (time.monotonic() - started) - REPLY_SLACK
        try:
            result: Answer = await asyncio.wait_for(coroutine, timeout=max(left, 0.05))
        except TimeoutError:
            log.warning("an answer took longer than llm.timeout (%g s)", self.timeout)
            return (
                f"Sorry, the language model did not answer within {self.timeout:g} s. "
                "Please try again in a moment."
            )
        except LLMUnavailable as exc:
            log.warning("LLM unavailable: %s", exc)
            return f"Sorry, I can't answer right now: {exc}"
        return result.text

    def _progress(self, edit):
        """An on_progress callback that edits at most every PROGRESS_EVERY seconds."""
        state = {"last": 0.0}

        async def on_progress(preview: str) -> None:
            now = time.monotonic()
            if now - state["last"] < PROGRESS_EVERY or not preview.strip():
                return
            state["last"] = now
            try:
                await edit(truncate(preview, 1900) + " ✍️")
            except discord.HTTPException as exc:
                log.debug("progress edit failed: %s", exc)

        return on_progress

    def _check_cooldown(self, user_id: int) -> None:
        wait = self.cooldowns.retry_after(user_id)
        if wait:
            raise UserError(f"One question at a time: try again in {wait:.0f} s.")

    @app_commands.command(name="ask", description="Ask a question answered from the stored papers")
    @app_commands.describe(
        question="Your question",
        paper="Only this paper (arXiv id or link)",
        tag="Only papers with this tag",
        since="Only papers from this date on (YYYY-MM-DD)",
    )
    async def ask_command(
        self,
        interaction: discord.Interaction,
        question: app_commands.Range[str, 3, 500],
        paper: str | None = None,
        tag: str | None = None,
        since: str | None = None,
    ) -> None:
        started = time.monotonic()
        paper_id = None
        if paper:
            try:
                paper_id, _ = split_arxiv_id(paper)
            except InvalidPaperId:
                raise UserError("`paper` must be an arXiv id or link, e.g. 2501.06425.") from None
        label = normalize_label(tag) if tag else None
        if tag and label is None:
            raise UserError(f"Unknown tag “{sanitize(tag)}”; see `/tags`.")
        start = parse_date_option(since, "since")
        self._check_cooldown(interaction.user.id)
        await interaction.response.defer(thinking=True)

        async def edit(text: str) -> None:
            await interaction.edit_original_response(content=text, allowed_mentions=MENTIONS)

        await edit("🔎 Looking through the stored papers…")
        conversation = None
        if isinstance(interaction.channel, discord.Thread):
            conversation = await get_conversation(self.bot.db, interaction.channel.id)
        if conversation is not None and not (tag or start):
            work = converse(
                self.bot.db,
                self.bot.llm,
                question,
                channel_id=conversation.channel_id,
                thread_id=conversation.thread_id,
                guild_id=interaction.guild_id,
                paper_id=paper_id,
                embedder=self.bot.embedder,
                on_progress=self._progress(edit),
            )
        else:
            work = ask(
                self.bot.db,
                self.bot.llm,
                question,
                embedder=self.bot.embedder,
                paper_id=paper_id,
                tag=label,
                since=start,
                on_progress=self._progress(edit),
            )
        await edit(await self._answer(work, started))

    @ask_command.autocomplete("tag")
    async def _ask_tag_autocomplete(self, interaction: discord.Interaction, current: str):
        cog = self.bot.get_cog("SearchCog")
        if cog is None:
            return []
        # /ask's tag is a vocabulary label (normalize_label above).
        return await cog.tag_autocomplete(interaction, current, vocabulary_only=True)

    async def open_thread(self, interaction: discord.Interaction, paper_id: str) -> None:
        """The Ask button: a thread about one paper (reused if one is already open)."""
        paper = await get_paper(self.bot.db, paper_id)
        if paper is None:
            await interaction.response.send_message(
                "That paper is no longer in my store.", ephemeral=True, allowed_mentions=MENTIONS
            )
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        channel = interaction.channel
        parent = channel.parent if isinstance(channel, discord.Thread) else channel
        if parent is None:
            await interaction.followup.send("I can't open a thread here.", ephemeral=True)
            return
        existing = await find_conversation(self.bot.db, parent.id, paper.arxiv_id)
        if existing is not None:
            thread = self.bot.get_channel(existing.thread_id)
            if thread is not None:
                await interaction.followup.send(
                    f"Questions about this paper go in {thread.mention}.",
                    ephemeral=True,
                    allowed_mentions=MENTIONS,
                )
                return
        name = truncate(f"Ask: {paper.title}", 100)
        intro = (
            f"Questions about **{truncate(sanitize(paper.title), 200)}** ({paper.url}).\n"
            "Use `/ask` here, or mention me in a reply; I answer from the stored summaries "
            "and cite the papers I use."
        )
        try:
            if isinstance(parent, discord.ForumChannel):
                created = await parent.create_thread(
                    name=name, content=intro, allowed_mentions=MENTIONS
                )
                thread = created.thread
            else:
                thread = await parent.create_thread(
                    name=name, type=discord.ChannelType.public_thread, auto_archive_duration=1440
                )
                await thread.send(intro, allowed_mentions=MENTIONS)
        except discord.Forbidden:
            await interaction.followup.send(
                "I don't have permission to create threads here.", ephemeral=True
            )
            return
        await start_conversation(
            self.bot.db,
            channel_id=parent.id,
            thread_id=thread.id,
            guild_id=interaction.guild_id,
            paper_id=paper.arxiv_id,
        )
        log.info("opened ask thread %s for paper %s", thread.id, paper.arxiv_id)
        await interaction.followup.send(
            f"Opened {thread.mention}: ask away.", ephemeral=True, allowed_mentions=MENTIONS
        )

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """A reply that mentions the bot inside an Ask thread continues that conversation."""
        if message.author.bot or not isinstance(message.channel, discord.Thread):
            return
        me = self.bot.user
        if me is None or me not in message.mentions:
            return
        conversation = await get_conversation(self.bot.db, message.channel.id)
        if conversation is None:
            return
        question = re.sub(rf"<@!?{me.id}>", "", message.content).strip()
        if len(question) < 3:
            return
        if self.cooldowns.retry_after(message.author.id):
            return
        started = time.monotonic()
        work = converse(
            self.bot.db,
            self.bot.llm,
            question,
            channel_id=conversation.channel_id,
            thread_id=conversation.thread_id,
            guild_id=message.guild.id if message.guild else None,
            embedder=self.bot.embedder,
        )
        async with message.channel.typing():
            text = await self._answer(work, started)
        await message.reply(text, allowed_mentions=MENTIONS, mention_author=False)


async def setup(bot: PaperBot) -> None:
    await bot.add_cog(AskCog(bot))
