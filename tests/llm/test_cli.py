"""The enrich / ask / embed commands, called as the CLI calls them (and through main)."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import pytest

import bot.cli
from bot.cli.llm_commands import add_llm_commands, ask_command, embed_command, enrich_command
from bot.cli.parser import build_parser
from bot.config import Config
from bot.errors import InputError
from bot.models import SummarySource
from bot.store.database import connect
from bot.store.papers import get_paper
from tests.llm.conftest import API_KEY, SEED_DAY, llm_config, store_fixtures
from tests.llm_server import FakeLLMServer, enrichment_responder


def _config(path: Path, server: FakeLLMServer | None = None) -> Config:
    config = Config()
    config.database.path = str(path)
    if server is not None:
        config.llm = llm_config(server)
        config.openai_api_key = API_KEY
    return config


def _ask_args(*question: str, **options: object) -> argparse.Namespace:
    values = {
        "question": list(question),
        "paper": None,
        "tag": None,
        "since": None,
        "limit": 5,
        "retrieve_only": False,
        "keywords_only": True,
        "json": False,
    }
    values.update(options)
    return argparse.Namespace(**values)


@pytest.fixture
async def store_path(tmp_path: Path) -> Path:
    path = tmp_path / "cli.db"
    async with connect(path) as db:
        await store_fixtures(db)
    return path


async def test_ask_retrieve_only_works_without_an_endpoint(
    store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _ask_args("How", "to", "shrink", "the", "key-value", "cache?", retrieve_only=True)
    assert await ask_command(args, _config(store_path)) == 0
    out = capsys.readouterr().out
    assert out.startswith("retrieval: bm25 only")
    assert " 1. [2501.06425] Tensor Product Attention Is All You Need" in out
    assert "score " in out and "bm25 #1" in out


async def test_ask_retrieve_only_json(store_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _ask_args("gradient spikes optimizer", retrieve_only=True, json=True, limit=2)
    assert await ask_command(args, _config(store_path)) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 2 and records[0]["id"] == "2501.06842"
    assert records[0]["retrieval"] == "bm25 only" and records[0]["rank"] == 1


async def test_ask_and_enrich_need_an_endpoint(store_path: Path) -> None:
    with pytest.raises(InputError, match="no LLM endpoint") as caught:
        await ask_command(_ask_args("anything"), _config(store_path))
    assert caught.value.exit_code == 2
    args = argparse.Namespace(date=SEED_DAY, since=None, until=None, force=False)
    with pytest.raises(InputError) as caught:
        await enrich_command(args, _config(store_path))
    assert caught.value.exit_code == 2


async def test_ask_answers_with_the_endpoint(
    store_path: Path, llm_server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    llm_server.queue("SPAM resets momentum when gradients spike [1].")
    args = _ask_args("Which", "optimizer", "handles", "gradient", "spikes?", json=True)
    assert await ask_command(args, _config(store_path, llm_server)) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["covered"] and record["sources"][0]["id"] == "2501.06842"
    assert record["sources"][0]["url"] == "https://arxiv.org/abs/2501.06842"


async def test_enrich_command_reports_tokens_and_time(
    store_path: Path, llm_server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    llm_server.responder = enrichment_responder()
    args = argparse.Namespace(date=SEED_DAY, since=None, until=None, force=False)
    assert await enrich_command(args, _config(store_path, llm_server)) == 0
    out = capsys.readouterr().out
    # The seed digest has no abstracts: its own bullets stay and the LLM only labels them.
    assert "10 papers over 1 day(s): 10 enriched (10 labels only: no abstract), 0 already" in out
    assert "tokens: " in out and "papers/s" in out
    async with connect(store_path) as db:
        paper = await get_paper(db, "2501.06425")
        assert paper is not None and paper.bullets_source == SummarySource.DIGEST
        assert paper.tags_source == SummarySource.LLM
    # A second run over a range finds everything done and calls nothing.
    calls = len(llm_server.chat_requests)
    args = argparse.Namespace(
        date=None, since=date(2025, 1, 1), until=date(2025, 1, 31), force=False
    )
    assert await enrich_command(args, _config(store_path, llm_server)) == 0
    assert "0 enriched, 10 already done" in capsys.readouterr().out
    assert len(llm_server.chat_requests) == calls


async def test_enrich_command_fails_when_papers_fail(
    store_path: Path, llm_server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    llm_server.fail(401, times=30)
    args = argparse.Namespace(date=SEED_DAY, since=None, until=None, force=False)
    assert await enrich_command(args, _config(store_path, llm_server)) == 1
    captured = capsys.readouterr()
    assert "10 failed" in captured.out and "HTTP 401" in captured.err


async def test_embed_command_uses_the_endpoint_model(
    store_path: Path, llm_server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    args = argparse.Namespace(limit=5)
    assert await embed_command(args, _config(store_path, llm_server)) == 0
    assert capsys.readouterr().out.startswith("embedded 5 papers with fake-embed")


def _parser_with_llm_commands() -> argparse.ArgumentParser:
    parser = build_parser()
    subparsers = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    if "ask" not in subparsers.choices:  # until the lead wires add_llm_commands in
        add_llm_commands(subparsers)
    return parser


def test_main_exit_codes(
    store_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bot.cli, "build_parser", _parser_with_llm_commands)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("PAPERBOT_LLM_BASE_URL", raising=False)
    monkeypatch.chdir(store_path.parent)
    db = str(store_path)
    assert (
        bot.cli.main(["--db", db, "ask", "--retrieve-only", "--keywords-only", "tensor attention"])
        == 0
    )
    assert "[2501.06425]" in capsys.readouterr().out
    assert bot.cli.main(["--db", db, "enrich", "--date", "2025-01-14"]) == 2
    assert "no LLM endpoint" in capsys.readouterr().err
