"""/digest: admins manage the channels that receive the daily digest.

The options are checked and applied by ``bot.delivery.feed_service``; the replies' text is
``bot.delivery.feed_render``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.delivery import feed_render, feed_service
from bot.delivery.feed_service import FeedOptions
from bot.delivery.sender import send_kwargs
from bot.runtime.autocomplete import time_zone, vocabulary_tag_list
from bot.runtime.tree import parse_date_option
from bot.store import feeds as feed_store
from bot.store.feeds import Feed

if TYPE_CHECKING:
    from bot.runtime.client import PaperBot

log = logging.getLogger(__name__)

FeedChannel = discord.TextChannel | discord.ForumChannel
LAYOUT_CHOICES = [app_commands.Choice(name=n, value=n) for n in ("compact", "full")]
EMPTY_CHOICES = [
    app_commands.Choice(name="post a short note", value="note"),
    app_commands.Choice(name="post nothing", value="skip"),
]
MENTIONS = discord.AllowedMentions.none()


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class DigestCommands(app_commands.Group, name="digest", description="Manage daily paper digests"):
    """Every subcommand needs the Manage Server permission."""

    def __init__(self, bot: PaperBot) -> None:
        super().__init__()
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        # default_permissions only hides the commands; enforce it on every call too.
        if not interaction.permissions.manage_guild:
            raise app_commands.MissingPermissions(["manage_guild"])
        return True

    async def _feed(self, interaction: discord.Interaction, channel: FeedChannel) -> Feed:
        return await feed_service.guild_feed(self.bot.db, interaction.guild_id, channel.id)

    async def _reply(self, interaction: discord.Interaction, text: str, **kwargs) -> None:
        await interaction.response.send_message(
            text, ephemeral=True, allowed_mentions=MENTIONS, **kwargs
        )

    @app_commands.command(name="setup", description="Post the daily digest in a channel")
    @app_commands.describe(
        channel="Text or forum channel for the digest",
        post_time="Local time to post, HH:MM (default 09:00)",
        timezone="IANA time zone of post_time (default UTC)",
        layout="compact: up to 10 papers a message; full: one message per paper",
        thread="Open a thread for each day's digest",
        sources="Comma-separated: hf, arxiv, digest (default hf)",
        include_tags="Only papers with one of these tags (comma-separated)",
        exclude_tags="Never papers with one of these tags",
        include_keywords="Only papers mentioning one of these words or phrases",
        exclude_keywords="Never papers mentioning one of these",
        min_upvotes="Minimum Hugging Face upvotes",
        max_papers="At most this many papers a day",
        empty_day="What to post on a day without papers",
        name="A short name for this feed",
        alert_channel="Where to report problems (e.g. missing permissions)",
    )
    @app_commands.autocomplete(
        timezone=time_zone,
        include_tags=vocabulary_tag_list,
        exclude_tags=vocabulary_tag_list,
    )
    @app_commands.choices(layout=LAYOUT_CHOICES, empty_day=EMPTY_CHOICES)
    async def setup_feed(
        self,
        interaction: discord.Interaction,
        channel: FeedChannel,
        post_time: str = "09:00",
        timezone: str = "UTC",
        layout: str = "compact",
        thread: bool = False,
        sources: str | None = None,
        include_tags: str | None = None,
        exclude_tags: str | None = None,
        include_keywords: str | None = None,
        exclude_keywords: str | None = None,
        min_upvotes: app_commands.Range[int, 0, 100000] = 0,
        max_papers: app_commands.Range[int, 1, 100] | None = None,
        empty_day: str | None = None,
        name: app_commands.Range[str, 0, 60] = "",
        alert_channel: discord.TextChannel | None = None,
    ) -> None:
        assert interaction.guild_id is not None
        options = FeedOptions.pick(locals())  # the command's options, by name
        feed = await feed_service.set_up(
            self.bot.db,
            self.bot.digests,
            interaction.guild_id,
            channel.id,
            options,
            alert_channel_id=alert_channel.id if alert_channel else None,
        )
        log.info("guild %s: digest set up in channel %s", interaction.guild_id, channel.id)
        await self._reply(interaction, feed_render.setup_reply(feed))

    @app_commands.command(name="edit", description="Change a digest's settings (and resume it)")
    @app_commands.describe(
        channel="The digest's channel",
        post_time="Local time to post, HH:MM",
        timezone="IANA time zone",
        layout="compact or full",
        thread="Open a thread for each day's digest",
        sources="Comma-separated: hf, arxiv, digest",
        include_tags="Only these tags (comma-separated; '-' clears)",
        exclude_tags="Never these tags ('-' clears)",
        include_keywords="Only papers mentioning these ('-' clears)",
        exclude_keywords="Never papers mentioning these ('-' clears)",
        min_upvotes="Minimum upvotes",
        max_papers="At most this many papers a day",
        empty_day="What to post on a day without papers",
        name="A short name",
    )
    @app_commands.autocomplete(
        timezone=time_zone,
        include_tags=vocabulary_tag_list,
        exclude_tags=vocabulary_tag_list,
    )
    @app_commands.choices(layout=LAYOUT_CHOICES, empty_day=EMPTY_CHOICES)
    async def edit_feed(
        self,
        interaction: discord.Interaction,
        channel: FeedChannel,
        post_time: str | None = None,
        timezone: str | None = None,
        layout: str | None = None,
        thread: bool | None = None,
        sources: str | None = None,
        include_tags: str | None = None,
        exclude_tags: str | None = None,
        include_keywords: str | None = None,
        exclude_keywords: str | None = None,
        min_upvotes: app_commands.Range[int, 0, 100000] | None = None,
        max_papers: app_commands.Range[int, 1, 100] | None = None,
        empty_day: str | None = None,
        name: app_commands.Range[str, 0, 60] | None = None,
    ) -> None:
        feed = await self._feed(interaction, channel)
        options = FeedOptions.pick(locals())  # the command's options, by name
        updated = await feed_service.edit(self.bot.db, self.bot.digests, feed, options)
        await self._reply(interaction, feed_render.edit_reply(updated, resumed=feed.paused))

    @app_commands.command(name="remove", description="Stop posting the digest in a channel")
    @app_commands.describe(channel="The digest's channel")
    async def remove_feed(self, interaction: discord.Interaction, channel: FeedChannel) -> None:
        feed = await self._feed(interaction, channel)
        await feed_service.remove(self.bot.db, self.bot.digests, feed)
        await self._reply(interaction, feed_render.remove_reply(feed))

    @app_commands.command(name="list", description="The digests of this server")
    async def list_feeds(self, interaction: discord.Interaction) -> None:
        feeds = await feed_store.list_feeds(self.bot.db, interaction.guild_id)
        await self._reply(interaction, feed_render.list_reply(feeds))

    @app_commands.command(name="preview", description="See a digest as it would be posted")
    @app_commands.describe(channel="The digest's channel", day="YYYY-MM-DD (default: latest)")
    async def preview(
        self, interaction: discord.Interaction, channel: FeedChannel, day: str | None = None
    ) -> None:
        feed = await self._feed(interaction, channel)
        when = feed_service.day_or_default(feed, parse_date_option(day, "day"), datetime.now(UTC))
        preview = await feed_service.preview(self.bot.deliverer, feed, when)
        embeds = {"embeds": send_kwargs(preview.payloads[0])["embeds"]} if preview.payloads else {}
        await self._reply(interaction, feed_render.preview_reply(preview), **embeds)

    @app_commands.command(name="post-now", description="Post a day's digest now")
    @app_commands.describe(channel="The digest's channel", day="YYYY-MM-DD (default: latest)")
    async def post_now(
        self, interaction: discord.Interaction, channel: FeedChannel, day: str | None = None
    ) -> None:
        feed = await self._feed(interaction, channel)
        when = feed_service.day_or_default(feed, parse_date_option(day, "day"), datetime.now(UTC))
        await interaction.response.defer(ephemeral=True, thinking=True)
        outcome = await feed_service.post_now(self.bot.db, self.bot.digests, feed, when)
        await interaction.followup.send(
            feed_render.post_now_reply(outcome, when, channel.mention),
            ephemeral=True,
            allowed_mentions=MENTIONS,
        )

    @app_commands.command(name="status", description="Health of this server's digests")
    async def status(self, interaction: discord.Interaction) -> None:
        assert interaction.guild_id is not None
        status = await feed_service.guild_status(
            self.bot.db,
            self.bot.digests,
            interaction.guild_id,
            lambda channel_id: self.bot.get_channel(channel_id) is not None,
        )
        usage = await self.bot.llm.usage_line() if self.bot.llm and status.feeds else None
        await self._reply(interaction, feed_render.status_reply(status, usage))

    @app_commands.command(name="alerts", description="Where to report digest problems")
    @app_commands.describe(channel="Channel for alerts (omit to turn alerts off)")
    async def alerts(
        self, interaction: discord.Interaction, channel: discord.TextChannel | None = None
    ) -> None:
        assert interaction.guild_id is not None
        await feed_store.set_alert_channel(
            self.bot.db, interaction.guild_id, channel.id if channel else None
        )
        text = f"Alerts go to {channel.mention}." if channel else "Alerts are off."
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=MENTIONS)


class DigestCog(commands.Cog):
    def __init__(self, bot: PaperBot) -> None:
        self.bot = bot
        self.group = DigestCommands(bot)

    async def cog_load(self) -> None:
        self.bot.tree.add_command(self.group)

    async def cog_unload(self) -> None:
        self.bot.tree.remove_command(self.group.name)


async def setup(bot: PaperBot) -> None:
    await bot.add_cog(DigestCog(bot))
