"""The search result cache: identical searches share one run; a write makes entries stale."""

from __future__ import annotations

import asyncio

import pytest

from bot.search.cache import ResultCache


async def test_identical_concurrent_searches_run_once_and_share_the_result():
    cache: ResultCache[int] = ResultCache()
    runs = 0
    release = asyncio.Event()

    async def compute() -> int:
        nonlocal runs
        runs += 1
        await release.wait()
        return 42

    waiting = [asyncio.create_task(cache.get("q", 0, compute)) for _ in range(20)]
    await asyncio.sleep(0)
    release.set()
    assert await asyncio.gather(*waiting) == [42] * 20
    assert runs == 1
    assert await cache.get("q", 0, compute) == 42 and runs == 1


async def test_a_new_generation_or_an_old_entry_runs_again():
    cache: ResultCache[int] = ResultCache(ttl=60)
    calls: list[int] = []

    async def compute() -> int:
        calls.append(1)
        return len(calls)

    assert await cache.get("q", 0, compute) == 1
    assert await cache.get("q", 1, compute) == 2  # the store was written
    cache.ttl = 0
    assert await cache.get("q", 1, compute) == 3  # too old


async def test_an_error_reaches_every_waiter_and_is_not_cached():
    cache: ResultCache[int] = ResultCache()
    release = asyncio.Event()

    async def failing() -> int:
        await release.wait()
        raise ValueError("bad query")

    waiting = [asyncio.create_task(cache.get("q", 0, failing)) for _ in range(3)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)

    async def fine() -> int:
        return 7

    assert await cache.get("q", 0, fine) == 7


async def test_the_cache_is_bounded():
    cache: ResultCache[str] = ResultCache(capacity=3)
    for n in range(10):
        await cache.get(n, 0, lambda n=n: asyncio.sleep(0, result=str(n)))
    assert len(cache._done) == 3


@pytest.mark.parametrize("size", [1, 4])
async def test_the_read_pool_sees_committed_writes_at_once(tmp_path, size):
    from bot.models import Entry, Paper
    from bot.store.database import connect
    from bot.store.papers import get_paper, upsert_entries

    async with connect(tmp_path / "pool.db", readers=size) as db:
        assert db.read is not db
        before = db.generation
        await upsert_entries(db, [Entry(Paper(arxiv_id="2501.00001", title="Fresh"))])
        assert db.generation > before
        stored = await get_paper(db, "2501.00001")
    assert stored is not None and stored.title == "Fresh"


@pytest.mark.parametrize("size", [1, 3])
async def test_warming_opens_one_connection_per_reader_thread(tmp_path, size):
    from bot.store.database import connect
    from bot.store.readers import MMAP_BYTES

    async with connect(tmp_path / "warm.db", readers=size) as db:
        pool = db.read
        assert not pool._opened
        await db.warm()
        assert len(pool._opened) == size  # each thread opened its own, before any search
        row = await pool.fetchone("PRAGMA mmap_size")
        assert row[0] == MMAP_BYTES
        assert tuple(await pool.fetchone("SELECT count(*) FROM papers")) == (0,)
        assert len(pool._opened) == size
