"""Gateway events that take things away: a guild leaving, a channel or role deleted; and on
every READY, what went away unseen (``bot.runtime.forget.reconcile``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord
from discord.ext import commands

from bot.runtime import forget

if TYPE_CHECKING:
    from bot.runtime.client import PaperBot


class ServersCog(commands.Cog):
    def __init__(self, bot: PaperBot) -> None:
        self.bot = bot

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        # After a new session (not a resume) events may have been missed meanwhile.
        await self.bot.reconcile_guilds()

    @commands.Cog.listener()
    async def on_guild_remove(self, guild: discord.Guild) -> None:
        # discord.py calls this for a removal only; an outage is on_guild_unavailable.
        if (await forget.guild_removed(self.bot.db, guild.id)).feeds:
            await self.bot.digests.sync_feeds()

    @commands.Cog.listener()
    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        if (await forget.channel_deleted(self.bot.db, channel.guild.id, channel.id)).feeds:
            await self.bot.digests.sync_feeds()

    @commands.Cog.listener()
    async def on_guild_role_delete(self, role: discord.Role) -> None:
        await forget.role_deleted(self.bot.db, role.guild.id, role.id)


async def setup(bot: PaperBot) -> None:
    await bot.add_cog(ServersCog(bot))
