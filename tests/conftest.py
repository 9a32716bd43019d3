"""Shared fixtures: a fresh migrated database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.search import index as search_index
from bot.store.database import Database, connect

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    async with connect(tmp_path / "paperbot.db") as database:
        yield database


@pytest.fixture(autouse=True)
def _restore_search_index_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """bot.cli.main() turns the index's background build off; undo that after each test."""
    monkeypatch.setattr(search_index, "AUTO_BUILD", search_index.AUTO_BUILD)
