"""Harness for end-to-end bot tests: the real PaperBot against the Discord stand-in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.config import Config
from bot.runtime.client import PaperBot
from bot.sources.ingest import ingest
from bot.sources.markdown import parse_markdown
from bot.store.database import Database, connect
from tests.conftest import FIXTURES
from tests.discord_standin import StandIn, running_bot
from tests.discord_standin.fixtures import (  # noqa: F401
    discord_standin_fixture,
    standin_fixture,
)


@dataclass
class FakeClock:
    """A settable UTC clock for the scheduler."""

    now: datetime = field(default_factory=lambda: datetime(2025, 1, 15, 12, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now


def make_config(db_path: Path, **sections) -> Config:
    config = Config()
    config.database.path = str(db_path)
    config.discord_token = "unused"
    for name, values in sections.items():
        for key, value in values.items():
            setattr(getattr(config, name), key, value)
    return config


async def seed_store(db: Database) -> None:
    """The seed digest (10 papers listed on 2025-01-14, source 'digest')."""
    text = (FIXTURES / "seed_2025-01-14.md").read_text(encoding="utf-8")
    await ingest(db, parse_markdown(text))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Database]:
    async with connect(tmp_path / "bot.db") as db:
        await seed_store(db)
        yield db


BotFactory = Callable[..., "asynccontextmanager[PaperBot]"]


@pytest.fixture
def start_bot(standin: StandIn, store: Database, clock: FakeClock, tmp_path: Path):
    """``async with start_bot(config=..., **options) as bot``: a connected PaperBot."""

    @asynccontextmanager
    async def factory(config: Config | None = None, db: Database | None = None, **options):
        config = config or make_config(tmp_path / "bot.db")
        options.setdefault("guild_ready_timeout", 0.1)
        options.setdefault("chunk_guilds_at_startup", False)
        async with aiohttp.ClientSession() as session:
            bot = PaperBot(config=config, db=db or store, session=session, clock=clock, **options)
            async with running_bot(bot, standin.token) as running:
                yield running

    return factory


async def sync_to(bot: PaperBot, *guild_ids: int) -> None:
    """Sync the bot's slash commands to these guilds, as `paperbot run --sync` would."""
    bot.config.discord.command_guild_ids = list(guild_ids)
    await bot.sync_commands()
