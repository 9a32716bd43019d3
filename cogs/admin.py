"""Owner-only maintenance: syncing slash commands on purpose, never in on_ready."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord.ext import commands

if TYPE_CHECKING:
    from bot.runtime.client import PaperBot

log = logging.getLogger(__name__)


class AdminCog(commands.Cog):
    def __init__(self, bot: PaperBot) -> None:
        self.bot = bot

    @commands.command(name="sync")
    @commands.is_owner()
    async def sync(self, ctx: commands.Context) -> None:
        """`@PaperBot sync`: push the slash commands to Discord (owner only)."""
        synced = await self.bot.sync_commands()
        await ctx.reply(
            "Synced " + "; ".join(synced) + ".", allowed_mentions=discord.AllowedMentions.none()
        )

    @commands.Cog.listener()
    async def on_command_error(self, ctx: commands.Context, error: commands.CommandError) -> None:
        if isinstance(error, commands.CommandNotFound | commands.NotOwner):
            return  # mentions that are not commands, or someone else trying: stay quiet
        log.warning("text command %s failed: %s", ctx.command, error)


async def setup(bot: PaperBot) -> None:
    await bot.add_cog(AdminCog(bot))
