"""The default local embedder (WordLlama's table from the real ``wordllama`` wheel), the
snapshot matrix the vectors load from, and the commands that embed."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.cli import main
from bot.llm.embedding_names import STATIC_MODEL_NAME, package_dir
from bot.llm.embeddings import (
    StaticEmbedder,
    VectorIndex,
    embed_missing,
    embedding_text,
    write_snapshot,
)
from bot.llm.retrieval import retrieve
from bot.models import Entry
from bot.store.database import Database, connect
from bot.store.papers import get_paper, upsert_entries
from tests.llm.conftest import store_fixtures

ROOT = Path(__file__).resolve().parents[2]
SPAM = "2501.06842"


def test_vectors_are_wordllamas_own() -> None:
    """Our loader and pooling give the vectors WordLlama's inference class gives."""
    from tokenizers import Tokenizer
    from wordllama.inference import WordLlamaInference

    model = StaticEmbedder().load()
    root = package_dir("wordllama")
    assert root is not None
    tokenizer = Tokenizer.from_file(str(root / "tokenizers" / "l2_supercat_tokenizer_config.json"))
    reference = WordLlamaInference(model.table.astype(np.float32), tokenizer)
    texts = ["Tensor product attention", "Diffusion models for video generation.", "x" * 50]
    ours = model.encode(texts)
    assert ours.shape == (3, 256)
    np.testing.assert_allclose(ours, reference.embed(texts, norm=True), atol=1e-5)
    empty = model.encode([""])
    assert not empty.any()  # no token: a zero vector, not NaN


def test_loads_from_the_wheel_without_the_network_or_wordllamas_loader(tmp_path: Path) -> None:
    """A fresh interpreter with an empty home and the hub off embeds a question; neither
    wordllama's own loader (which would fetch the tokenizer) nor requests is imported."""
    script = (
        "import asyncio, sys\n"
        "from bot.llm.embeddings import StaticEmbedder\n"
        "v = asyncio.run(StaticEmbedder().embed_query('sparse attention for long context'))\n"
        "print(len(v), round(float(sum(x * x for x in v)), 3))\n"
        "print(sorted(m for m in ('wordllama', 'requests', 'torch') if m in sys.modules))\n"
    )
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["256 1.0", "[]"]
    assert not (tmp_path / ".cache").exists() and not (tmp_path / "cache").exists()


async def test_hybrid_with_the_local_model_and_its_gate(db: Database) -> None:
    await store_fixtures(db)
    embedder = StaticEmbedder()
    assert await embed_missing(db, embedder) == 29
    question = "Which optimizer keeps huge gradient outliers from destabilising LLM training?"
    results = await retrieve(db, question, embedder=embedder, k=3)
    assert results[0].paper.arxiv_id == SPAM
    assert results[0].vector_rank is not None and results[0].similarity > 0.4
    # The gate wants the cosine or the rarer words: "keeps", "huge", "destabilising" are in
    # none of the 29 papers, so they weigh most and the paraphrase above is refused here.
    assert 0 < results[0].weighted_coverage < results[0].term_coverage
    question = "How can gradient spikes during LLM training be handled by the optimizer?"
    results = await retrieve(db, question, embedder=embedder, k=3)
    assert results[0].paper.arxiv_id == SPAM and results[0].relevant
    for off_topic in ("How do I renew my passport at the embassy?", "Best sourdough recipe?"):
        found = await retrieve(db, off_topic, embedder=embedder)
        assert found and not any(item.relevant for item in found), off_topic


async def test_snapshot_loads_all_vectors_and_notices_changes(db: Database) -> None:
    await store_fixtures(db)
    embedder = StaticEmbedder()
    await embed_missing(db, embedder)
    assert await write_snapshot(db, embedder.name, force=True)
    index = VectorIndex(embedder.name)
    await index.refresh(db)
    assert len(index) == 29

    # A changed abstract is re-embedded under a new rowid: a fresh load sees the new vector.
    paper = await get_paper(db, SPAM)
    assert paper is not None
    changed = replace(paper, abstract="Robots learn to fold laundry from human videos.")
    await upsert_entries(db, [Entry(paper=changed)])
    assert await embed_missing(db, embedder) == 0  # it has a vector: only a changed text...
    from bot.llm.embeddings import ensure_embeddings

    row = await db.fetchone("SELECT id FROM papers WHERE arxiv_id = ?", (SPAM,))
    assert await ensure_embeddings(db, embedder, [int(row[0])]) == 1  # ...re-embeds it
    fresh = VectorIndex(embedder.name)
    await fresh.refresh(db)
    expected = (await embedder.embed_documents([embedding_text(changed)]))[0]
    got = fresh.similarities(expected, [int(row[0])])
    assert len(fresh) == 29 and got[int(row[0])] == pytest.approx(1.0, abs=1e-5)

    # A paper deleted since the snapshot: the snapshot is stale and is not used.
    async with db.transaction() as conn:
        await conn.execute("DELETE FROM papers WHERE arxiv_id = ?", ("2501.06425",))
    after = VectorIndex(embedder.name)
    await after.refresh(db)
    assert len(after) == 28


async def test_search_runs_off_the_event_loop(db: Database) -> None:
    await store_fixtures(db)
    embedder = StaticEmbedder()
    await embed_missing(db, embedder)
    index = embedder.index_for(db)
    await index.refresh(db)
    loop_thread = asyncio.get_running_loop()
    seen: list[bool] = []
    original = VectorIndex._search

    def spy(*args):
        seen.append(asyncio._get_running_loop() is loop_thread)
        return original(*args)

    VectorIndex._search = staticmethod(spy)  # type: ignore[method-assign]
    try:
        query = await embedder.embed_query("gradient spikes")
        found = await index.search_async(query, 3)
    finally:
        VectorIndex._search = staticmethod(original)  # type: ignore[method-assign]
    assert seen == [False] and len(found) == 3


def test_search_products_run_on_one_blas_thread(tmp_path: Path) -> None:
    """The first search sets numpy's OpenBLAS to one thread (and leaves an explicit
    ``OPENBLAS_NUM_THREADS`` alone); the results are the same either way."""
    script = (
        "import ctypes, numpy as np\n"
        "from bot.llm.embeddings import VectorIndex, _openblas_paths, single_threaded_blas\n"
        "rng = np.random.default_rng(7)\n"
        "m = rng.standard_normal((5000, 64)).astype(np.float32)\n"
        "m /= np.linalg.norm(m, axis=1, keepdims=True)\n"
        "ids = np.arange(5000, dtype=np.int64)\n"
        "q = m[42] + 0.01\n"
        "expected = np.argsort(-(m @ (q / np.linalg.norm(q))), kind='stable')[:5].tolist()\n"
        "found = VectorIndex._search(ids, m, q, 5, None)\n"
        "assert [pid for pid, _ in found] == expected, (found, expected)\n"
        "getter = None\n"
        "for path in _openblas_paths():\n"
        "    lib = ctypes.CDLL(path)\n"
        "    for name in ('scipy_openblas_get_num_threads64_', 'openblas_get_num_threads'):\n"
        "        getter = getter or getattr(lib, name, None)\n"
        "print(single_threaded_blas(), getter() if getter else None)\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    }
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    set_it, threads = done.stdout.split()
    if set_it == "True":  # numpy's wheels bundle OpenBLAS; another BLAS is left as it is
        assert threads == "1"
    explicit = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**env, "OPENBLAS_NUM_THREADS": "2"},
        cwd=tmp_path,
    )
    assert explicit.returncode == 0, explicit.stderr
    assert explicit.stdout.split()[0] == "False"


def test_embed_is_resumable_and_db_stats_counts_the_missing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    async def fill() -> None:
        async with connect(tmp_path / "paperbot.db") as db:
            await store_fixtures(db)

    asyncio.run(fill())

    def run(*argv: str) -> tuple[int, str]:
        code = main(["-q", *argv])
        return code, capsys.readouterr().out

    code, out = run("db", "stats")
    assert code == 0
    assert f"embedding_model: {STATIC_MODEL_NAME}" in out
    assert "papers_without_embedding: 29" in out
    code, out = run("embed", "--limit", "5")  # stopped early, like an interrupted run
    assert code == 0 and "embedded 5 papers" in out
    assert "papers_without_embedding: 24" in run("db", "stats")[1]
    code, out = run("embed")
    assert code == 0 and "embedded 24 papers" in out
    assert "papers_without_embedding: 0" in run("db", "stats")[1]
    code, out = run("ask", "--retrieve-only", "gradient spikes in LLM training")
    assert code == 0 and f"hybrid (bm25 + {STATIC_MODEL_NAME})" in out and SPAM in out


async def test_fetch_embeds_the_new_papers_at_once(tmp_path, monkeypatch, capsys):
    from tests.cli.test_commands import start_hugging_face

    monkeypatch.chdir(tmp_path)
    runner, url = await start_hugging_face()
    (tmp_path / "config.toml").write_text(
        f'[sources]\nhf_base_url = "{url}"\nhttp_retries = 0\n', encoding="utf-8"
    )
    try:
        code = await asyncio.to_thread(main, ["-q", "fetch", "--date", "2025-12-11"])
    finally:
        await runner.cleanup()
    assert code == 0 and "3 new" in capsys.readouterr().out
    async with connect(tmp_path / "paperbot.db") as db:
        rows = await db.fetchall("SELECT model FROM paper_embeddings")
    assert [row[0] for row in rows] == [STATIC_MODEL_NAME] * 3
