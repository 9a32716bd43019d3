"""Shared fixtures: a fresh migrated database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.db.database import Database, connect

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with connect(tmp_path / "paperbot.db") as database:
        yield database
