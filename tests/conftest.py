"""Shared fixtures: a fresh migrated database and a search engine per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bot.search.engine import SearchEngine
from bot.store.database import Database, connect

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with connect(tmp_path / "paperbot.db") as database:
        yield database


@pytest.fixture
def engine() -> Iterator[SearchEngine]:
    """A search engine of the test's own, closed after it."""
    with SearchEngine() as search_engine:
        yield search_engine
