"""/ask's cooldown: discord.py's own, one question per user, answered by the command tree."""

from __future__ import annotations

from types import SimpleNamespace

import discord
from discord import app_commands

from bot.runtime.tree import PaperTree
from cogs.ask import COOLDOWN_SECONDS, AskCog, question_cooldowns


class Response:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def is_done(self) -> bool:
        return False

    async def send_message(self, text: str, **_: object) -> None:
        self.sent.append(text)


def test_one_question_per_user_per_window() -> None:
    cog = AskCog(SimpleNamespace())  # type: ignore[arg-type]
    assert cog._on_cooldown(1) is None
    second = cog._on_cooldown(1)
    assert isinstance(second, app_commands.CommandOnCooldown)
    assert 0 < second.retry_after <= COOLDOWN_SECONDS
    assert cog._on_cooldown(2) is None  # per user
    cog.cooldowns = question_cooldowns(0)
    assert cog._on_cooldown(1) is None and cog._on_cooldown(1) is None


async def test_the_tree_answers_a_cooldown_with_the_commands_own_message() -> None:
    tree = PaperTree(discord.Client(intents=discord.Intents.none()))
    cog = AskCog(SimpleNamespace())  # type: ignore[arg-type]
    cog._on_cooldown(7)
    error = cog._on_cooldown(7)
    assert error is not None
    ask = SimpleNamespace(command=cog.ask_command, response=Response())
    await tree.on_error(ask, error)  # type: ignore[arg-type]
    other = SimpleNamespace(command=None, response=Response())
    await tree.on_error(other, error)  # type: ignore[arg-type]
    wait = f"{error.retry_after:.0f}"
    assert ask.response.sent == [f"One question at a time: try again in {wait} s."]
    assert other.response.sent == [f"Slow down a little: try again in {wait} s."]
