"""The postings path (bot.search.postings / bot.search.exact): FTS5's bm25, bit for bit."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.models import Entry, Paper
from bot.search import postings, snapshots
from bot.search.bm25 import BM25, docsize, plan_phrases
from bot.search.engine import SearchEngine
from bot.search.exact import ExactSettings
from bot.search.query import parse_query
from bot.search.tokens import Fts5Tokenizer
from bot.store.papers import upsert_entries
from tests.search.test_index import COMMON, RARE, corpus
from tests.waiting import wait_until

EXACT = ExactSettings(min_papers=0, rebuild_seconds=0.0)
ANSWERED = [
    "model",
    "learning",
    "large language models",
    "model OR learning",
    "diffusion OR protein",
    "model -survey",
    "learning -language -data",
    "model robot",
    "müller",
    "novák learning",
    "naïve",
    "東京 model",
    "absentword",
    "model absentword",
]
NOT_ANSWERED = ['"large language models"', "quantiz*", "author:wang", "author:zhang learning"]


def odd_papers() -> list[Entry]:
    """Papers with text that is not ASCII, so SQLite tokenizes some of it."""
    texts = [
        ("Naïve Bayes for Müller's data", "Ein naïve Ansatz: Modell für Daten. model model"),
        ("東京 model of 言語", "A model trained on 東京 and 言語 corpora, with ü and é"),
        ("Novák–Smith learning", "Learning\u00a0with non-breaking\u2009spaces; café, déjà vu"),
    ]
    return [
        Entry(Paper(arxiv_id=f"2502.{n:05d}", title=t, abstract=a, authors=("A. Novák",)), None)
        for n, (t, a) in enumerate(texts)
    ]


@pytest.fixture
async def store(db):
    await upsert_entries(db, corpus(1200) + odd_papers())
    return db


@pytest.fixture
def tokenizer():
    fts5 = Fts5Tokenizer()
    yield fts5
    fts5.close()


async def fts5_top(db, text: str, limit: int, offset: int = 0) -> list[tuple[int, float]]:
    """FTS5's own ranking, ties by id (the postings' order among equal scores)."""
    rows = await db.fetchall(
        f"SELECT rowid, {BM25} AS score FROM papers_fts WHERE papers_fts MATCH ? "
        "ORDER BY score, rowid LIMIT ? OFFSET ?",
        (parse_query(text).to_fts(), limit, offset),
    )
    return [(row[0], -row[1]) for row in rows]


def built(db) -> postings.Postings:
    return postings.Postings.load(Path(postings.build(str(db.path), nice=0)))


def ranked(index: postings.Postings, tokenizer, text: str, limit: int, offset: int = 0):
    plan = plan_phrases(parse_query(text), tokenizer)
    assert plan is not None and index.answers(plan), text
    ids, scores = index.rank(plan, limit, offset)
    return list(zip(ids, scores, strict=True))


@pytest.mark.parametrize("text", ANSWERED)
async def test_scores_and_order_are_fts5s_bit_for_bit(store, tokenizer, text):
    index = built(store)
    for limit, offset in ((10, 0), (5, 7), (2000, 0)):
        assert ranked(index, tokenizer, text, limit, offset) == await fts5_top(
            store, text, limit, offset
        )


async def test_the_postings_count_what_fts5_counts(store):
    index = built(store)
    (papers,) = await store.fetchone("SELECT count(*) FROM papers")
    assert index.snapshot.rows == papers == len(corpus(1200)) + len(odd_papers())
    rows = await store.fetchall("SELECT id, sz FROM papers_fts_docsize")
    assert {row[0]: docsize(row[1]) for row in rows} == {
        row[0]: int(index.sizes[row[0]]) for row in rows
    }
    assert sum(int(size) for size in index.sizes) == index.snapshot.tokens


WORDS = COMMON + RARE + ["w1", "w7", "w42", "absentword", "novák", "東京"]


@st.composite
def word_queries(draw) -> str:
    groups = []
    for _ in range(draw(st.integers(1, 3))):
        alternatives = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
        groups.append(" OR ".join(alternatives))
    excluded = draw(st.lists(st.sampled_from(WORDS), max_size=2))
    return " ".join(groups + [f"-{word}" for word in excluded])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=word_queries(), limit=st.integers(1, 30), offset=st.integers(0, 40))
async def test_any_word_query_ranks_as_fts5_does(store, tokenizer, text, limit, offset):
    index = getattr(store, "_test_postings", None)
    if index is None:
        index = store._test_postings = built(store)
    assert ranked(index, tokenizer, text, limit, offset) == await fts5_top(
        store, text, limit, offset
    )


async def test_phrases_prefixes_and_columns_are_left_to_fts5(store, tokenizer):
    index = built(store)
    for text in NOT_ANSWERED:
        plan = plan_phrases(parse_query(text), tokenizer)
        assert plan is None or not index.answers(plan), text


# -- the engine: when the postings answer, and how they stay current ----------------------------


async def search_pairs(engine: SearchEngine, db, text: str, limit: int = 10):
    result = await engine.search(db, text, limit=limit)
    return [(hit.paper.arxiv_id, hit.score) for hit in result.hits], result.has_more


async def test_the_engine_answers_from_the_postings_as_fts5_would(store):
    with SearchEngine(exact=EXACT) as engine, SearchEngine(auto_build=False) as fts5_alone:
        assert await engine.exact.ranked(store, parse_query("model"), 10, 0) is None  # not yet
        assert await engine.exact.wait(store)
        for text in ANSWERED:
            via_postings = await engine.exact.ranked(store, parse_query(text), 11, 0)
            assert via_postings is not None, text
            got, has_more = await search_pairs(engine, store, text)
            expected, expected_more = await search_pairs(fts5_alone, store, text)
            assert has_more == expected_more
            # Equal scores may come in another order from FTS5's ORDER BY: compare as sets.
            assert [score for _, score in got] == [score for _, score in expected], text
            tied = {score for _, score in got if [s for _, s in got].count(score) > 1}
            assert {p for p, s in got if s not in tied} == {p for p, s in expected if s not in tied}


def entry(arxiv_id: str, title: str, abstract: str, version: int | None = None) -> Entry:
    paper = Paper(arxiv_id=arxiv_id, title=title, abstract=abstract, version=version)
    return Entry(paper, None)


async def assert_answers_as_fts5(engine: SearchEngine, db, texts) -> None:
    for text in texts:
        found = await engine.exact.ranked(db, parse_query(text), 20, 0)
        assert found is not None, text
        rows = await db.fetchall("SELECT id, arxiv_id FROM papers")
        by_id = {row["arxiv_id"]: row["id"] for row in rows}
        pairs = zip(found.papers, found.scores, strict=True)
        got = [(by_id[paper.arxiv_id], score) for paper, score in pairs]
        assert got == await fts5_top(db, text, 20), text


async def test_added_papers_are_answered_at_once_with_fts5s_scores(store):
    with SearchEngine(exact=EXACT) as engine:
        engine.prepare(store)
        assert await engine.exact.wait(store)
        await upsert_entries(
            store,
            [
                entry("2503.00001", "zyzzyva model", "zyzzyva learning, model"),
                entry("2503.00002", "Naïve 東京 robot", "model robot diffusion"),
            ],
        )
        # The saved postings plus the two new papers: N, avgdl and every idf have changed.
        await assert_answers_as_fts5(
            engine, store, ["zyzzyva", "model", "robot OR 東京", "model -zyzzyva"]
        )
        assert not engine.exact._busy  # no rebuild for a couple of new papers
        await upsert_entries(store, [entry("2503.00003", "zyzzyva again", "more")])
        await assert_answers_as_fts5(engine, store, ["zyzzyva", "learning model"])


async def test_an_edit_hands_searches_to_fts5_until_the_rebuild(store):
    with SearchEngine(exact=EXACT) as engine:
        engine.prepare(store)
        assert await engine.exact.wait(store)
        (saved,) = await store.fetchone("SELECT arxiv_id FROM papers ORDER BY id LIMIT 1")
        await upsert_entries(store, [entry(saved, "renamed zyzzyva", "zyzzyva", version=9)])
        query = parse_query("zyzzyva")
        assert await engine.exact.ranked(store, query, 10, 0) is None  # stale: FTS5 answers
        result = await engine.search(store, "zyzzyva")
        assert [hit.paper.arxiv_id for hit in result.hits] == [saved]
        assert await engine.exact.wait(store)  # the rebuild the stale search started
        await assert_answers_as_fts5(engine, store, ["zyzzyva", "renamed", "model"])
        folders = [p for p in snapshots.folder_for(store.path).iterdir() if p.is_dir()]
        assert len(folders) == 1  # older snapshots are removed


async def test_many_added_papers_start_a_rebuild_and_answers_stay_exact(store):
    with SearchEngine(exact=replace(EXACT, rebuild_after=1)) as engine:
        engine.prepare(store)
        assert await engine.exact.wait(store)
        first = engine.exact._loaded[engine_key(store)].snapshot
        await upsert_entries(store, [entry(f"2503.{n:05d}", "zyzzyva", "model") for n in range(3)])
        await assert_answers_as_fts5(engine, store, ["zyzzyva"])  # answered, and a build starts
        assert await engine.exact.wait(store)
        rebuilt = engine.exact._loaded[engine_key(store)].snapshot
        assert rebuilt.rows == first.rows + 3
        await assert_answers_as_fts5(engine, store, ["zyzzyva", "model"])


def engine_key(db) -> str:
    return str(Path(db.path).resolve())


async def test_saved_postings_are_loaded_by_the_next_engine(store):
    with SearchEngine(exact=EXACT) as first:
        first.prepare(store)
        assert await first.exact.wait(store)
    saved = next(snapshots.folder_for(store.path).iterdir())
    stamp = saved.stat().st_mtime_ns
    with SearchEngine(exact=EXACT) as second:
        second.prepare(store)
        assert await second.exact.wait(store)
        assert await second.exact.ranked(store, parse_query("model"), 5, 0) is not None
    assert saved.stat().st_mtime_ns == stamp  # loaded, not rebuilt


async def test_a_failed_build_logs_one_line_and_fts5_answers(store, caplog):
    snapshots.folder_for(store.path).write_text("not a folder")
    with SearchEngine(exact=EXACT) as engine, caplog.at_level(logging.INFO):
        engine.prepare(store)
        assert not await engine.exact.wait(store)
        warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warnings) == 1 and "building search postings" in warnings[0].getMessage()
        assert "\n" not in warnings[0].getMessage()
        result = await engine.search(store, "model")
        assert len(result.hits) == 10


async def test_small_stores_and_one_shot_engines_build_nothing(store):
    with SearchEngine() as default:  # 20,000 papers at least
        default.prepare(store)
        await default.search(store, "model")
        assert not await default.exact.wait(store)
    with SearchEngine(exact=EXACT, auto_build=False) as one_shot:
        one_shot.prepare(store)
        await one_shot.search(store, "model")
        assert not await one_shot.exact.wait(store)
    assert not snapshots.folder_for(store.path).exists()


async def test_closing_stops_a_build_in_progress(store):
    engine = SearchEngine(exact=EXACT)
    engine.prepare(store)
    await wait_until(lambda: engine.exact._children, what="the build to start")
    child = next(iter(engine.exact._children))
    engine.close()
    await wait_until(lambda: child.returncode is not None, what="the build to stop")


async def test_a_restart_after_papers_were_added_uses_the_saved_postings(store):
    with SearchEngine(exact=EXACT) as first:
        first.prepare(store)
        assert await first.exact.wait(store)
    saved = next(snapshots.folder_for(store.path).iterdir())
    await upsert_entries(store, [entry("2503.00009", "zyzzyva model", "robot")])
    with SearchEngine(exact=EXACT) as second:
        second.prepare(store)
        assert await second.exact.wait(store)
        await assert_answers_as_fts5(second, store, ["zyzzyva", "model robot"])
        assert not second.exact._busy
    assert [p.name for p in snapshots.folder_for(store.path).iterdir()] == [saved.name]


async def test_the_bots_start_waits_for_a_first_build_and_no_longer(store, caplog):
    with SearchEngine(exact=EXACT) as engine:
        await engine.prepare_first(store)  # no postings yet: built before it returns
        assert await engine.exact.ranked(store, parse_query("model"), 5, 0) is not None
    impatient = replace(EXACT, startup_wait_seconds=0.0)
    shutil.rmtree(snapshots.folder_for(store.path))
    with SearchEngine(exact=impatient) as engine, caplog.at_level(logging.WARNING):
        await engine.prepare_first(store)
        assert "not ready after 0 s" in caplog.text
        assert await engine.exact.wait(store)  # the build went on in the background


async def test_a_build_leaves_other_processes_builds_and_newer_postings_alone(store):
    root = snapshots.folder_for(store.path)
    root.mkdir()
    running = root / f".building-{os.getppid()}"  # a live process that is not this one
    abandoned = root / ".building-999999999"
    newer = root / "abc-999999-0-1-1"
    for folder in (running, abandoned, newer):
        folder.mkdir()
    kept = Path(postings.build(str(store.path), nice=0))
    assert sorted(p.name for p in root.iterdir()) == sorted([kept.name, running.name, newer.name])
    assert postings.build(str(store.path), nice=0) == str(kept)  # already built: nothing to do
