"""A large JSON Lines file is parsed and derived by worker processes: the store comes out the
same as from the sequential reader, and errors are the same and leave the store as it was."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pytest

from bot.errors import InputError
from bot.sources import ingest_pool
from bot.sources.archive import import_files
from bot.store.database import connect
from tests.conftest import FIXTURES
from tests.store_dump import store_dump

CORPUS = FIXTURES / "sources" / "corpus" / "papers_corpus_20.jsonl"


def _use_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every JSON Lines file from now on through two workers, in chunks of 3 lines."""
    monkeypatch.setattr(ingest_pool, "MIN_POOL_BYTES", 0)
    monkeypatch.setattr(ingest_pool, "worker_count", lambda: 2)
    monkeypatch.setattr(ingest_pool, "CHUNK_LINES", 3)


async def _import(path: Path, names: list[str]) -> list[tuple]:
    async with connect(path) as db:
        results = await import_files(db, names)
    return [(item.records, item.new, item.updated, item.days) for item in results]


def _corpus_copy(folder: Path, lines: list[str], *, gz: bool = False) -> Path:
    """The fixture's lines twice over, the second time as other papers (ids changed)."""
    path = folder / ("corpus.jsonl.gz" if gz else "corpus.jsonl")
    opener = gzip.open if gz else open
    with opener(path, "wt", encoding="utf-8") as handle:
        handle.writelines(lines)
    return path


def _doubled(lines: list[str]) -> list[str]:
    others = []
    for line in lines:
        record = json.loads(line)
        record["id"] = record["id"].replace("25", "24", 1)
        others.append(json.dumps(record) + "\n")
    return [*lines, "\n", *others, *lines[:3]]  # a blank line and repeats, as files have


async def test_workers_store_what_the_sequential_reader_stores(tmp_path, monkeypatch):
    source = _corpus_copy(tmp_path, _doubled(CORPUS.read_text(encoding="utf-8").splitlines(True)))
    seed = str(FIXTURES / "seed_2025-01-14.md")
    expected = await _import(tmp_path / "sequential.db", [str(source), seed])
    _use_workers(monkeypatch)
    assert await _import(tmp_path / "pooled.db", [str(source), seed]) == expected
    assert expected[0][0] == 41  # 43 lines: a blank one and 4 ids that are not arXiv's
    sequential, pooled = store_dump(tmp_path / "sequential.db"), store_dump(tmp_path / "pooled.db")
    assert pooled == sequential
    assert len(pooled["papers"]) == 46 and pooled["fts"]  # 36 from the file, 10 from the seed


async def _error_of(path: Path, names: list[str]) -> str:
    with pytest.raises(InputError) as caught:
        await _import(path, names)
    return str(caught.value)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [("truncated json", "line 32: not valid JSON"), ("no id", "line 32: the record has"),
     ("not utf-8", "unreadable (UnicodeDecodeError")],
)  # fmt: skip
async def test_a_bad_line_late_in_the_file_is_reported_as_before_and_nothing_is_stored(
    tmp_path, monkeypatch, bad, reason
):
    lines = _doubled(CORPUS.read_text(encoding="utf-8").splitlines(True))
    lines[31] = {"truncated json": '{"id": "2501.00001", "ti\n', "no id": '{"title": "x"}\n'}.get(
        bad, lines[31]
    )
    path = _corpus_copy(tmp_path, lines)
    if bad == "not utf-8":
        data = path.read_bytes().split(b"\n")
        data[31] = b'{"id": "2501.00001", "title": "\xff"}'
        path.write_bytes(b"\n".join(data))
    before = tmp_path / "before.db"
    await _import(before, [str(FIXTURES / "seed_2025-01-14.md")])
    expected = await _error_of(tmp_path / "nothing.db", [str(path)])
    assert reason in expected
    _use_workers(monkeypatch)
    store = tmp_path / "store.db"
    await _import(store, [str(FIXTURES / "seed_2025-01-14.md")])
    assert await _error_of(store, [str(path)]) == expected
    assert store_dump(store) == store_dump(before)


async def test_a_truncated_gzip_file_fails_as_before(tmp_path, monkeypatch):
    lines = _doubled(CORPUS.read_text(encoding="utf-8").splitlines(True))
    path = _corpus_copy(tmp_path, lines, gz=True)
    path.write_bytes(path.read_bytes()[: path.stat().st_size * 2 // 3])
    expected = await _error_of(tmp_path / "sequential.db", [str(path)])
    assert "unreadable (EOFError" in expected
    _use_workers(monkeypatch)
    store = tmp_path / "pooled.db"
    assert await _error_of(store, [str(path)]) == expected
    assert store_dump(store)["papers"] == []


async def test_skipped_records_are_logged_once_as_before(tmp_path, monkeypatch, caplog):
    path = _corpus_copy(tmp_path, _doubled(CORPUS.read_text(encoding="utf-8").splitlines(True)))
    caplog.set_level(logging.INFO, logger="bot.sources.jsonl")
    await _import(tmp_path / "sequential.db", [str(path)])
    expected = [record.getMessage() for record in caplog.records if "skipped" in record.message]
    assert expected == [f"{path}: skipped 4 record(s) without an arXiv id (first at line 9)"]
    caplog.clear()
    _use_workers(monkeypatch)
    await _import(tmp_path / "pooled.db", [str(path)])
    assert [record.getMessage() for record in caplog.records if "skipped" in record.message] == (
        expected
    )
