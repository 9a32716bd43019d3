"""Autocomplete callbacks shared by every cog's tag options (see ``bot.search.tag_options``).

Each reads the bot's one ``TagOptions``, so no cog reaches into another for them.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, cast
from zoneinfo import available_timezones

import discord
from discord import app_commands

if TYPE_CHECKING:
    from bot.runtime.client import PaperBot

Choices = list[app_commands.Choice[str]]


async def _complete(
    interaction: discord.Interaction, current: str, *, vocabulary_only: bool, many: bool
) -> Choices:
    bot = cast("PaperBot", interaction.client)
    pairs = await bot.tag_options.complete(current, vocabulary_only=vocabulary_only, many=many)
    return [app_commands.Choice(name=label, value=value) for label, value in pairs]


async def any_tag(interaction: discord.Interaction, current: str) -> Choices:
    """One tag, stored or of the vocabulary (`/search`, `/subscribe`)."""
    return await _complete(interaction, current, vocabulary_only=False, many=False)


async def vocabulary_tag(interaction: discord.Interaction, current: str) -> Choices:
    """One label of the vocabulary (`/ask`)."""
    return await _complete(interaction, current, vocabulary_only=True, many=False)


async def vocabulary_tag_list(interaction: discord.Interaction, current: str) -> Choices:
    """Comma-separated labels of the vocabulary (digest filters): completes the last one."""
    return await _complete(interaction, current, vocabulary_only=True, many=True)


@cache
def _zones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


async def time_zone(interaction: discord.Interaction, current: str) -> Choices:
    """IANA time zones: those starting with what was typed first, then those containing it."""
    lowered = current.lower()
    first = [z for z in _zones() if z.lower().startswith(lowered)]
    rest = [z for z in _zones() if lowered in z.lower() and not z.lower().startswith(lowered)]
    return [app_commands.Choice(name=z, value=z) for z in (first + rest)[:25]]
