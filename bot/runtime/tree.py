"""One error path for slash commands: user mistakes become one polite ephemeral line."""

from __future__ import annotations

import logging
from datetime import date

import discord
from discord import app_commands

from bot.errors import PaperbotError

log = logging.getLogger(__name__)


class UserError(app_commands.AppCommandError):
    """A mistake the user can fix; its message is shown to them as is."""


def parse_date_option(text: str | None, name: str) -> date | None:
    """A YYYY-MM-DD slash-command option (None when not given)."""
    if not text:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UserError(f"`{name}` must be a date like 2025-01-14.") from None


async def reply_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """Answer (or follow up) privately, whatever state the interaction is in."""
    mentions = discord.AllowedMentions.none()
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=mentions)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=mentions)


class PaperTree(app_commands.CommandTree):
    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        original = getattr(error, "original", error)
        if isinstance(error, UserError):
            text = str(error)
        elif isinstance(original, PaperbotError):
            text = str(original)
        elif isinstance(error, app_commands.MissingPermissions):
            text = "Sorry, only members with the Manage Server permission can do that."
        elif isinstance(error, app_commands.CommandOnCooldown):
            text = f"Slow down a little: try again in {error.retry_after:.0f} s."
        elif isinstance(error, app_commands.NoPrivateMessage):
            text = "This command only works in a server."
        elif isinstance(error, app_commands.CheckFailure):
            text = "Sorry, you can't use this command here."
        else:
            command = interaction.command.qualified_name if interaction.command else "?"
            log.error("command /%s failed", command, exc_info=original)
            text = "Something went wrong on my side; it has been logged. Please try again later."
        try:
            await reply_ephemeral(interaction, text)
        except discord.HTTPException as exc:
            log.warning("could not report an error to the user: %s", exc)
