"""The paperbot command line, run in-process through bot.cli.main."""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
from pathlib import Path

import pytest
from aiohttp import web

from bot.cli import main
from bot.models import SummarySource
from tests.conftest import FIXTURES
from tests.llm_server import FakeLLMServer
from tests.llm_server.responders import enrichment_responder

SEED = FIXTURES / "seed_2025-01-14.md"
SOURCES = FIXTURES / "sources"


@pytest.fixture
def run(tmp_path: Path, monkeypatch, capsys):
    """``run(*argv) -> (exit_code, stdout, stderr)`` against a database in tmp_path."""
    monkeypatch.chdir(tmp_path)  # no stray ./config.toml; the default database lands here

    def invoke(*argv: str) -> tuple[int, str, str]:
        code = main(["-q", *argv])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def table_rows(markdown: str) -> list[str]:
    return [line for line in markdown.splitlines() if line.startswith("| [")]


def test_import_then_export_reproduces_the_seed_with_mojibake_repaired(run):
    code, out, _ = run("import", str(SEED))
    assert code == 0 and "10 records, 10 new papers" in out
    code, exported, _ = run("export", "--date", "2025-01-14", "--format", "markdown")
    assert code == 0
    seed = SEED.read_text(encoding="utf-8")
    assert exported == seed.replace("TransformerÂ²", "Transformer²")
    assert table_rows(exported) != table_rows(seed)
    assert "## Papers for 2025-01-14" in exported and "Â" not in exported
    assert Path("paperbot.db").exists(), "the embedded SQLite default is ./paperbot.db"


def test_export_then_import_into_a_fresh_store_loses_nothing(run, tmp_path):
    run("import", str(SEED), str(SOURCES / "digests" / "2024-09-27.md"))
    code, backup, _ = run("export", "--format", "jsonl")
    assert code == 0 and len(backup.splitlines()) == 18
    (tmp_path / "backup.jsonl").write_text(backup, encoding="utf-8")
    code, first, _ = run("export", "--format", "markdown")
    code, _, _ = run("--db", "copy.db", "import", "backup.jsonl")
    assert code == 0
    code, second, _ = run("--db", "copy.db", "export", "--format", "markdown")
    assert second == first
    code, backup_again, _ = run("--db", "copy.db", "export", "--format", "jsonl")
    assert sorted(backup_again.splitlines()) == sorted(backup.splitlines())


def test_every_fixture_format_imports(run):
    files = [
        SOURCES / "hf_daily" / "2024-05-27.json",
        SOURCES / "hf_daily" / "2025-12-11.json",
        SOURCES / "arxiv" / "legacy2016_3_entries.xml",
        SOURCES / "arxiv" / "v2026_3_entries.xml",
        SOURCES / "corpus" / "papers_corpus_20.jsonl.gz",
        SOURCES / "digests" / "2025-09-26.md",
    ]
    code, out, err = run("import", *map(str, files))
    assert code == 0, err
    assert len(out.splitlines()) == len(files)
    code, stats, _ = run("db", "stats")
    assert "papers: " in stats and "listings_by_source" in stats


@pytest.mark.parametrize(
    "bad",
    [
        SOURCES / "hf_daily" / "2025-01-10_wrapped_python_repr.json",
        SOURCES / "arxiv" / "v2026_error.xml",
    ],
)
def test_a_malformed_file_fails_with_one_line_and_changes_nothing(run, bad):
    run("import", str(SEED))
    before = sqlite3.connect("paperbot.db").execute("SELECT count(*) FROM papers").fetchone()
    code, _out, err = run("import", str(SOURCES / "hf_daily" / "2025-12-11.json"), str(bad))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("paperbot: error:")
    after = sqlite3.connect("paperbot.db").execute("SELECT count(*) FROM papers").fetchone()
    assert after == before, "the good file in the same call was not half-imported either"


def test_search_json_lists_hits_with_id_title_and_score(run):
    run("import", str(SEED))
    code, out, _ = run("search", "tensor", "attention", "--json")
    hits = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and hits[0]["id"] == "2501.06425"
    assert {"id", "title", "score"} <= set(hits[0]) and hits[0]["score"] > 0
    code, out, _ = run("search", '"reward models"', "-medical", "--json")
    assert [json.loads(line)["id"] for line in out.splitlines()] == ["2501.07301"]


def test_search_readers_expectations_on_the_seed(run):
    run("import", str(SEED))
    expectations = {
        "video generation": "2501.06173",
        "web traversal benchmark": "2501.07572",
        "optimizer gradient spikes": "2501.06842",
        "biomedical image caption": "2501.07171",
        "chemistry": "2501.06590",
        "voice interaction": "2501.06282",
    }
    for query, expected in expectations.items():
        _code, out, _ = run("search", query, "--json", "--limit", "3")
        assert json.loads(out.splitlines()[0])["id"] == expected, query


def test_search_bad_input_is_polite(run):
    run("import", str(SEED))
    code, out, err = run("search", 'NEAR( "unbalanced ** OR')
    assert code == 0 and "Traceback" not in err
    code, out, err = run("search", "x", "--tag", "astrology")
    assert code == 2 and "unknown tag 'astrology'" in err
    code, out, _ = run("search", "--list-tags")
    assert code == 0 and "Natural Language Processing" in out


def test_digest_prints_every_format(run):
    run("import", str(SEED))
    code, text, _ = run("digest", "--date", "2025-01-14", "--format", "text")
    assert code == 0 and "Tensor Product Attention" in text
    code, payload, _ = run("digest", "--date", "2025-01-14", "--format", "discord-json")
    messages = json.loads(payload)
    assert sum(len(m["embeds"]) for m in messages) == 11  # header + 10 papers
    assert all(m["allowed_mentions"] == {"parse": []} for m in messages)
    code, markdown, _ = run("digest", "--date", "2025-01-14", "--format", "markdown")
    assert len(table_rows(markdown)) == 10


def test_db_backup_migrate_and_usage_errors(run, tmp_path):
    run("import", str(SEED))
    assert run("db", "migrate")[0] == 0
    code, _out, _ = run("db", "backup", "copy.db")
    assert code == 0
    copied = sqlite3.connect(tmp_path / "copy.db").execute("SELECT count(*) FROM papers")
    assert copied.fetchone()[0] == 10
    assert run("db", "backup", "copy.db")[0] == 2  # never overwrites
    with pytest.raises(SystemExit) as exit_info:
        main(["fetch", "--date", "2025-13-45"])
    assert exit_info.value.code == 2
    code, _, err = run("import", "missing.md")
    assert code == 2 and "missing.md" in err


def test_bad_config_file_is_one_line_naming_the_key(run, tmp_path):
    (tmp_path / "bad.toml").write_text("[sources]\nhttp_retries = 'x'\n", encoding="utf-8")
    code, _, err = run("--config", "bad.toml", "db", "stats")
    assert code == 2 and "'sources.http_retries'" in err and "bad.toml" in err


async def start_hugging_face() -> tuple[web.AppRunner, str]:
    """A local Daily Papers API: 2025-12-11 has 3 papers, 2025-12-12 is a bad date (400)."""
    day_file = (SOURCES / "hf_daily" / "2025-12-11.json").read_bytes()

    async def daily(request: web.Request) -> web.Response:
        day = request.query["date"]
        if day == "2025-12-11":
            return web.Response(body=day_file, content_type="application/json")
        if day == "2025-12-12":
            return web.Response(status=400, text='{"error": "bad date"}')
        return web.Response(body=b"[]", content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/daily_papers", daily)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"


def count(query: str) -> tuple:
    return sqlite3.connect("paperbot.db").execute(query).fetchone()


async def test_fetch_a_range_from_a_local_hugging_face_with_one_bad_day(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner, url = await start_hugging_face()
    (tmp_path / "config.toml").write_text(
        f'[sources]\nhf_base_url = "{url}"\nhttp_retries = 0\n', encoding="utf-8"
    )
    try:
        code = await asyncio.to_thread(
            main, ["-q", "fetch", "--since", "2025-12-10", "--until", "2025-12-12"]
        )
        stats = await asyncio.to_thread(count, "SELECT count(*), count(DISTINCT day) FROM listings")
    finally:
        await runner.cleanup()
    assert code == 1  # one day failed: reported, the others landed
    assert stats == (3, 1)


async def test_fetch_with_an_llm_endpoint_summarises_new_papers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner, url = await start_hugging_face()
    async with FakeLLMServer() as llm:
        llm.responder = enrichment_responder(labels=("Computer Vision", "Astrology"))
        (tmp_path / "config.toml").write_text(
            f'[sources]\nhf_base_url = "{url}"\nhttp_retries = 0\n'
            f'[llm]\nbase_url = "{llm.base_url}"\nmodel = "fake-chat"\n',
            encoding="utf-8",
        )
        try:
            code = await asyncio.to_thread(main, ["-q", "fetch", "--date", "2025-12-11"])
            rows = await asyncio.to_thread(
                count, "SELECT count(*), min(bullets_source), min(tags) FROM papers"
            )
        finally:
            await runner.cleanup()
        assert len(llm.chat_requests) == 3
    assert code == 0
    assert rows[0] == 3 and rows[1] == SummarySource.LLM
    assert rows[2] == '["Computer Vision"]'  # a label outside the vocabulary is dropped


def test_jsonl_corpus_shape_gz_and_plain_import_the_same(run):
    code, _out_gz, _ = run("import", str(SOURCES / "corpus" / "papers_corpus_20.jsonl.gz"))
    code, out_plain, _ = run("import", str(SOURCES / "corpus" / "papers_corpus_20.jsonl"))
    assert code == 0 and "0 new papers" in out_plain
    with gzip.open(SOURCES / "corpus" / "papers_corpus_20.jsonl.gz", "rt") as handle:
        assert len(handle.readlines()) == 21
