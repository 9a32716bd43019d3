"""Fixtures for the LLM module: the fake OpenAI-compatible server, a client, stored papers."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import date

import pytest

from bot.config import LLMConfig
from bot.llm.client import LLMClient
from bot.models import Entry, Listing, Paper
from bot.sources.detect import load_file
from bot.sources.ingest import ingest
from bot.store.database import Database
from tests.conftest import FIXTURES
from tests.llm_server import FakeLLMServer

API_KEY = "sk-test-0123456789abcdef"
SEED = FIXTURES / "seed_2025-01-14.md"
CORPUS = FIXTURES / "sources" / "corpus" / "papers_corpus_20.jsonl"
SEED_DAY = date(2025, 1, 14)


def llm_config(server: FakeLLMServer, **changes: object) -> LLMConfig:
    config = LLMConfig(
        base_url=server.base_url,
        model="fake-chat",
        embedding_model="fake-embed",
        timeout=2.0,
        max_tokens=400,
        concurrency=2,
        daily_token_budget=0,
    )
    return replace(config, **changes)


@pytest.fixture
async def llm_server() -> AsyncIterator[FakeLLMServer]:
    async with FakeLLMServer(api_key=API_KEY) as server:
        yield server


@pytest.fixture
async def client(llm_server: FakeLLMServer, db: Database) -> AsyncIterator[LLMClient]:
    async with LLMClient(llm_config(llm_server), API_KEY, db=db, max_retries=0) as llm:
        yield llm


def make_paper(arxiv_id: str, title: str, abstract: str = "", **fields: object) -> Paper:
    values: dict[str, object] = {"published": date(2025, 1, 14), **fields}
    return Paper(arxiv_id=arxiv_id, title=title, abstract=abstract, **values)


async def store(db: Database, *papers: Paper, day: date = SEED_DAY) -> None:
    """Ingest papers as listed on ``day`` (missing bullets/tags derived without an LLM)."""
    await ingest(
        db, [Entry(paper, Listing(day, "hf", rank)) for rank, paper in enumerate(papers, 1)]
    )


async def store_fixtures(db: Database) -> None:
    """The seed digest (10 papers with digest bullets) and 17 real corpus records."""
    await ingest(db, load_file(SEED) + load_file(CORPUS))
