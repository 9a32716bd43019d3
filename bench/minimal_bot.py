"""The floor for interaction benchmarks: a minimal discord.py bot that answers at once.

    PAPERBOT_DISCORD_API=http://127.0.0.1:PORT DISCORD_TOKEN=... BENCH_GUILD_ID=...
    python -m bench.minimal_bot

One slash command, ``/search query:...``, shaped like paperbot's so the stand-in sends the
same interaction, answered with a one-line ephemeral message straight away. Whatever time
it takes is discord.py plus the stand-in on this machine, the least any bot can do.
"""

from __future__ import annotations

import asyncio
import os
import signal

import discord
from discord import app_commands

from bot.runtime.discord_api import configure_from_env


class MinimalBot(discord.Client):
    def __init__(self, guild_id: int) -> None:
        super().__init__(intents=discord.Intents.none(), guild_ready_timeout=0.1)
        self.tree = app_commands.CommandTree(self)
        self.guild = discord.Object(guild_id)

        @self.tree.command(name="search", description="Answer at once")
        async def search(interaction: discord.Interaction, query: str) -> None:
            await interaction.response.send_message(f"ok: {query[:50]}", ephemeral=True)

    async def setup_hook(self) -> None:
        self.tree.copy_global_to(guild=self.guild)
        await self.tree.sync(guild=self.guild)


async def main() -> None:
    configure_from_env()
    bot = MinimalBot(int(os.environ["BENCH_GUILD_ID"]))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.create_task(bot.start(os.environ["DISCORD_TOKEN"]))
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({runner, waiter}, return_when=asyncio.FIRST_COMPLETED)
    await bot.close()
    waiter.cancel()


if __name__ == "__main__":
    asyncio.run(main())
