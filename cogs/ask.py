"""/ask and the Ask button: grounded answers from the stored papers, with follow-ups in threads.

Loaded only when an LLM endpoint is configured (see ``bot.runtime.client.PaperBot``).
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, cast

import discord
from discord import app_commands
from discord.ext import commands

from bot.labels import normalize_label
from bot.llm.answer import ask, converse
from bot.models import InvalidPaperId, split_arxiv_id
from bot.runtime import answers, autocomplete
from bot.runtime.tree import COOLDOWN_MESSAGE, UserError, parse_date_option
from bot.store.llm_store import get_conversation
from bot.store.papers import get_paper
from bot.text import sanitize

if TYPE_CHECKING:
    from bot.runtime.client import PaperBot

log = logging.getLogger(__name__)

MENTIONS = discord.AllowedMentions.none()
COOLDOWN_SECONDS = 20.0


def question_cooldowns(seconds: float = COOLDOWN_SECONDS) -> commands.CooldownMapping[int]:
    """One question per user every ``seconds``, shared by `/ask` and the replies in threads
    (keyed by user id)."""
    return commands.CooldownMapping.from_cooldown(1, seconds, _user_key)


def _user_key(user_id: int) -> int:
    return user_id


async def open_thread(interaction: discord.Interaction, paper_id: str) -> None:
    """The Ask button: a thread about one paper (reused if one is already open)."""
    bot = cast("PaperBot", interaction.client)
    paper = await get_paper(bot.db, paper_id)
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
    try:
        thread, new = await answers.thread_for_paper(bot, parent, paper, interaction.guild_id)
    except discord.Forbidden:
        await interaction.followup.send(
            "I don't have permission to create threads here.", ephemeral=True
        )
        return
    if new:
        text = f"Opened {thread.mention}: ask away."
    else:
        text = f"Questions about this paper go in {thread.mention}."
    await interaction.followup.send(text, ephemeral=True, allowed_mentions=MENTIONS)


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
        await open_thread(interaction, self.paper_id)


class AskCog(commands.Cog):
    def __init__(self, bot: PaperBot) -> None:
        self.bot = bot
        self.cooldowns = question_cooldowns()

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(AskButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(AskButton)

    @property
    def timeout(self) -> float:
        """The user's whole wait, from the command to the final answer (``llm.timeout``)."""
        return self.bot.config.llm.timeout

    def _on_cooldown(self, user_id: int) -> app_commands.CommandOnCooldown | None:
        """Take the user's question; the error to raise when they have none left."""
        bucket = self.cooldowns.get_bucket(user_id)
        wait = bucket.update_rate_limit() if bucket is not None else None
        return app_commands.CommandOnCooldown(bucket, wait) if bucket and wait else None

    @app_commands.command(
        name="ask",
        description="Ask a question answered from the stored papers",
        extras={COOLDOWN_MESSAGE: "One question at a time: try again in {:.0f} s."},
    )
    @app_commands.describe(
        question="Your question",
        paper="Only this paper (arXiv id or link)",
        tag="Only papers with this tag",
        since="Only papers from this date on (YYYY-MM-DD)",
    )
    # /ask's tag is a vocabulary label (normalize_label below).
    @app_commands.autocomplete(tag=autocomplete.vocabulary_tag)
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
        # After the options are checked, so that a typo does not cost the question.
        cooldown = self._on_cooldown(interaction.user.id)
        if cooldown is not None:
            raise cooldown
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
                on_progress=answers.progress_edits(edit),
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
                on_progress=answers.progress_edits(edit),
            )
        await edit(await answers.answer_text(work, self.timeout, started))

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
        if self._on_cooldown(message.author.id) is not None:
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
            text = await answers.answer_text(work, self.timeout, started)
        await message.reply(text, allowed_mentions=MENTIONS, mention_author=False)


async def setup(bot: PaperBot) -> None:
    await bot.add_cog(AskCog(bot))
