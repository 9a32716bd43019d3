"""The fast relevance path (bot/search/index.py): FTS5-identical tokens and bm25, and agreement."""

from __future__ import annotations

import random
import sqlite3
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.models import Entry, Paper
from bot.search.bm25 import IndexStats, RowScorer, bm25, plan_phrases, read_varint
from bot.search.engine import BM25, SearchEngine
from bot.search.index import IndexSettings, SearchIndex, index_path
from bot.search.query import parse_query
from bot.search.tokens import TOKENIZE, Fts5Tokenizer
from bot.store.papers import get_paper, upsert_entries

TRICKY = [
    "Naïve Café résumé coöperate",
    "Straße ß ẞ ﬁnance Ångström Øresund Łódź",
    "İstanbul ΣΊΣΥΦΟΣ ΐ ﬀ ǅ",
    "e\u0301te\u0301 combining a\u0300 marks",
    "中文 模型 日本語のテキスト 한국어",
    "GPT-4o's x_y foo_bar e.g. 3.14 COVID-19 R&D",
    "emoji 🤖 robots 🧪 and\u00a0no-break\u2009thin\u3000ideographic spaces",
    "tabs\tand\nnewlines\r\nand\u2028separators",
    "ＡＢＣ ｆｕｌｌ width ①②③ ⅷ ² ½",
    "zero\u200bwidth\u200djoiner soft\u00adhyphen",
    "a" * 70 + " " + "generalizations" * 5,
    "relational conditional rational hopefully probabilistic generalization",
    "Déjà vu: Über-models’ ‘quotes’ — dashes – and … ellipses",
    "MODELS Modeling modelled ModelS",
    "",
    "   ",
    "!!! ??? ...",
]


def fts5_tokens(texts: list[str]) -> list[list[str]]:
    """What FTS5 itself stores for each text, in order."""
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE VIRTUAL TABLE t USING fts5(x, tokenize = '{TOKENIZE}')")
    conn.execute("CREATE VIRTUAL TABLE v USING fts5vocab(t, 'instance')")
    conn.executemany("INSERT INTO t (rowid, x) VALUES (?, ?)", enumerate(texts, 1))
    found: dict[int, list[tuple[int, str]]] = {}
    for term, doc, offset in conn.execute("SELECT term, doc, offset FROM v"):
        found.setdefault(doc, []).append((offset, term))
    conn.close()
    return [[term for _, term in sorted(found.get(n, []))] for n in range(1, len(texts) + 1)]


def test_tokens_equal_fts5_on_tricky_text():
    tokenizer = Fts5Tokenizer()
    assert tokenizer.tokens_many(TRICKY) == fts5_tokens(TRICKY)
    # Cached words and chunks give the same answer the second time.
    assert [tokenizer.tokens(text) for text in TRICKY] == fts5_tokens(TRICKY)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=80), min_size=1, max_size=8))
def test_tokens_equal_fts5_on_any_text(texts):
    assert Fts5Tokenizer().tokens_many(texts) == fts5_tokens(texts)


SUFFIXES = ["", "s", "es", "ies", "ed", "ing", "ly", "y", "e", "er", "ation", "ational", "ization"]
SUFFIXES += ["ness", "fulness", "biliti", "bility", "ility", "ement", "ment", "ent", "ous", "ive"]
SUFFIXES += ["ize", "izer", "ism", "ist", "able", "ible", "ance", "ence", "al", "ic", "ll", "ss"]
STEMS = ["model", "generaliz", "rel", "condition", "hop", "fil", "happ", "sensi", "agre", "a"]
STEMS += ["operat", "valen", "digit", "organ", "feed", "ab", "mob", "vis", "x", "quant", "lo"]


@settings(max_examples=80, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from(STEMS), st.sampled_from(SUFFIXES)), max_size=40),
        min_size=5,
        max_size=5,
    ),
    st.lists(
        st.tuples(st.sampled_from(STEMS), st.sampled_from(SUFFIXES), st.booleans()),
        min_size=1,
        max_size=4,
    ),
)
def test_the_row_scorer_counts_as_full_tokenization_does(columns, words):
    tokenizer = Fts5Tokenizer()
    texts = [" ".join(stem + suffix for stem, suffix in column).upper() for column in columns]
    query = " ".join(stem + suffix + ("*" if star else "") for stem, suffix, star in words)
    plan = plan_phrases(parse_query(query), tokenizer)
    phrases = plan.scored
    idfs = [0.5 + number for number in range(len(phrases))]
    tokens = tokenizer.tokens_many(texts)
    expected = bm25(tokens, phrases, idfs, avgdl=30.0)
    scorer = RowScorer(phrases, idfs, 30.0, tokenizer)
    assert scorer.score(texts, sum(map(len, tokens))) == expected


def test_varints_and_the_averages_record():
    assert read_varint(bytes([0x05]), 0) == (5, 1)
    assert read_varint(bytes([0x81, 0x00]), 0) == (128, 2)
    assert read_varint(bytes([0xFF] * 8 + [0x01]), 0)[1] == 9
    conn = sqlite3.connect(":memory:")
    conn.execute(f"CREATE VIRTUAL TABLE f USING fts5(a, b, tokenize = '{TOKENIZE}')")
    conn.executemany("INSERT INTO f (a, b) VALUES (?, ?)", [("one two", "three")] * 300)
    conn.commit()  # FTS5 writes its statistics when the transaction ends
    (blob,) = conn.execute("SELECT block FROM f_data WHERE id = 1").fetchone()
    assert IndexStats.from_record(blob) == IndexStats(300, 900)


# -- a generated corpus where common words match most papers ---------------------------------

COMMON = ["model", "models", "learning", "language", "large", "data", "training", "attention"]
RARE = [
    "diffusion",
    "protein",
    "graph",
    "robot",
    "speech",
    "quantization",
    "quantized",
    "survey",
    "reasoning",
    "agent",
    "video",
    "kernel",
]
FILLER = [f"w{n}" for n in range(300)]
NAMES = ["Wang", "Zhang", "Li", "Müller", "Novák", "Smith", "Garcia", "Kim", "Chen", "Dubois"]


def corpus(count: int, seed: int = 3) -> list[Entry]:
    rng = random.Random(seed)
    entries = []
    for number in range(count):

        def words(k: int) -> str:
            pool = rng.choices([COMMON, RARE, FILLER], weights=[5, 1, 6], k=k)
            return " ".join(rng.choice(group) for group in pool)

        title = words(rng.randint(3, 14))
        if rng.random() < 0.1:
            title += " large language models"
        abstract = ". ".join(words(rng.randint(5, 25)) for _ in range(rng.randint(1, 8)))
        authors = tuple(
            f"{rng.choice('ABCDEFGH')}. {rng.choice(NAMES)}" for _ in range(rng.randint(1, 12))
        )
        entries.append(
            Entry(
                Paper(
                    arxiv_id=f"2501.{number:05d}",
                    title=title,
                    abstract=abstract,
                    authors=authors,
                    published=date(2025, 1, 1 + number % 28),
                ),
                None,
            )
        )
    return entries


QUERIES = [
    "model",
    "learning",
    "large language models",
    '"large language models"',
    '"language models"',
    "model OR learning",
    "diffusion OR protein",
    "model -survey",
    "learning -language -data",
    'attention -"large language"',
    "quantiz*",
    "author:wang",
    "author:zhang learning",
    "author:müller OR author:novak",
    "model robot",
]


FAST = IndexSettings(min_papers=0, min_postings=0)  # the fast path even on a small store


@pytest.fixture
def fast():
    with SearchEngine(settings=FAST) as engine:
        yield engine


@pytest.fixture
def every_candidate():
    """Every match is a candidate: exactly FTS5's order, whatever tantivy's."""
    with SearchEngine(settings=replace(FAST, candidates=5000)) as engine:
        yield engine


@pytest.fixture
def fts5_alone():
    with SearchEngine(settings=IndexSettings(min_papers=10**9)) as engine:
        yield engine


@pytest.fixture
async def store(db, fast):
    await upsert_entries(db, corpus(1500))
    await fast.indexes.ensure(db)
    return db


async def exact_top(db, text: str, limit: int = 10, offset: int = 0) -> list[tuple[int, float]]:
    rows = await db.fetchall(
        f"SELECT rowid, {BM25} AS score FROM papers_fts WHERE papers_fts MATCH ? "
        "ORDER BY score LIMIT ? OFFSET ?",
        (parse_query(text).to_fts(), limit, offset),
    )
    return [(row[0], -row[1]) for row in rows]


async def fast_top(
    engine: SearchEngine, db, text: str, limit: int = 10, offset: int = 0
) -> list[tuple[int, float]]:
    result = await engine.indexes.ranked(db, parse_query(text), limit, offset)
    assert result is not None, text
    return [(row["id"], score) for row, score in zip(result.rows, result.scores, strict=True)]


@pytest.mark.parametrize("text", QUERIES)
async def test_all_candidates_give_exactly_fts5s_ranking(store, every_candidate, text):
    exact = await exact_top(store, text, limit=30)
    mine = await fast_top(every_candidate, store, text, limit=30)
    assert [paper_id for paper_id, _ in mine] == [paper_id for paper_id, _ in exact]
    for (_, ours), (_, theirs) in zip(mine, exact, strict=True):
        assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-12)


async def test_the_index_matches_exactly_what_fts5_matches(store, fast):
    index = await fast.indexes.index_for(store)
    searcher = index.index.searcher()
    for text in QUERIES:
        plan = plan_phrases(parse_query(text), index.tokenizer)
        query = index.to_query(plan, searcher)
        expected = await store.fetchall(
            "SELECT rowid FROM papers_fts WHERE papers_fts MATCH ?", (parse_query(text).to_fts(),)
        )
        assert searcher.search(query, 1, count=True).count == len(expected), text


async def test_default_candidates_agree_with_exact_top_10(store, fast):
    overlaps = []
    for text in QUERIES:
        exact = {paper_id for paper_id, _ in await exact_top(store, text)}
        mine = {paper_id for paper_id, _ in await fast_top(fast, store, text)}
        overlaps.append(len(exact & mine) / max(1, len(exact)))
    assert sum(overlaps) / len(overlaps) >= 0.9


async def test_search_uses_the_fast_path_with_the_same_semantics(
    store, every_candidate, fts5_alone
):
    texts = [*QUERIES, "model", "robot speech", '"large language" -agent']
    fast_results = {text: await every_candidate.search(store, text, limit=7) for text in texts}
    for text in texts:
        slow = await fts5_alone.search(store, text, limit=7)
        fast = fast_results[text]
        assert fast.has_more == slow.has_more, text
        assert [h.score for h in fast.hits] == pytest.approx([h.score for h in slow.hits]), text


async def test_paging_walks_the_same_order(store, every_candidate):
    search = every_candidate.search
    pages = [await search(store, "learning -data", limit=5, offset=5 * n) for n in range(4)]
    walked = [hit.paper.arxiv_id for page in pages for hit in page.hits]
    whole = await search(store, "learning -data", limit=20)
    assert walked == [hit.paper.arxiv_id for hit in whole.hits]
    assert all(page.has_more for page in pages)


async def test_fast_path_steps_aside(store, fast):
    assert await fast.indexes.ranked(store, parse_query("model"), 5, 10_000) is None
    assert await fast.indexes.ranked(store, parse_query("zzzz*"), 5, 0) is not None
    with SearchEngine(settings=replace(FAST, max_prefix_terms=3)) as few_prefixes:
        assert await few_prefixes.indexes.ranked(store, parse_query("w*"), 5, 0) is None
    with SearchEngine(settings=replace(FAST, min_postings=10**9)) as costly:
        assert await costly.indexes.ranked(store, parse_query("model"), 5, 0) is None
    # Filters and other sorts never take it, and still work.
    found = await fast.search(store, "model", sort="date", limit=3)
    assert len(found.hits) == 3


async def test_small_stores_have_no_index(db, engine):
    await upsert_entries(db, corpus(50))
    assert await engine.indexes.index_for(db) is None
    assert not index_path(db.path).exists()
    assert (await engine.search(db, "model")).hits


async def test_new_and_changed_papers_are_found_before_the_index_catches_up(store, fast):
    index = await fast.indexes.index_for(store)
    index.start_sync = lambda build=False: None  # keep the index behind for this test
    watermark = index.state.watermark
    newcomer = Paper(
        arxiv_id="2502.00001",
        title="Model model model learning",
        abstract="model",
        authors=("Q. Wang",),
    )
    await upsert_entries(store, [Entry(newcomer, None)])
    first = await store.fetchone("SELECT id FROM papers WHERE arxiv_id = '2501.00000'")
    old = await store.fetchone("SELECT * FROM papers WHERE id = ?", (first[0],))
    revised = Paper(
        arxiv_id="2501.00000",
        title="Zebra crossing detection",
        abstract="zebra zebra",
        authors=(old["authors_text"],),
        version=2,
    )
    await upsert_entries(store, [Entry(revised, None)])
    assert index.state.watermark == watermark

    zebra = await fast_top(fast, store, "zebra")
    assert [paper_id for paper_id, _ in zebra] == [first[0]]
    assert zebra[0][1] == pytest.approx((await exact_top(store, "zebra"))[0][1])
    top = [paper_id for paper_id, _ in await fast_top(fast, store, "model", limit=30)]
    exact = [paper_id for paper_id, _ in await exact_top(store, "model", limit=30)]
    assert top[0] == exact[0]
    large = await fast_top(fast, store, '"large language models"', 200)
    assert first[0] not in [paper_id for paper_id, _ in large]


async def test_sync_catches_up_and_logs_only_text_changes(store, fast):
    index = await fast.indexes.index_for(store)
    before = index.state
    base = corpus(1)[0].paper
    await upsert_entries(store, [Entry(replace(base, arxiv_id="2503.00001", title="Kernel"), None)])
    stored = await get_paper(store, "2501.00001")
    await upsert_entries(store, [Entry(replace(stored, upvotes=5), None)])
    assert (await get_paper(store, "2501.00001")).upvotes == 5
    log = await store.fetchall("SELECT paper_id FROM search_index_log")
    assert log == []  # an upvote change is not a text change
    await upsert_entries(
        store, [Entry(replace(base, arxiv_id="2501.00001", title="Kernel", version=9), None)]
    )
    assert len(await store.fetchall("SELECT paper_id FROM search_index_log")) == 1

    index.start_sync()
    index.wait(30)
    assert index.state.watermark == before.watermark + 1
    assert index.state.seq == before.seq + 1
    assert await store.fetchall("SELECT paper_id FROM search_index_log") == []  # taken in
    searcher = index.index.searcher()
    plan = plan_phrases(parse_query("kernel"), index.tokenizer)
    expected = await store.fetchall("SELECT rowid FROM papers_fts WHERE papers_fts MATCH 'kernel'")
    assert searcher.search(index.to_query(plan, searcher), 1, count=True).count == len(expected)


async def test_an_index_of_another_database_is_rebuilt(store, fast):
    index = await fast.indexes.index_for(store)
    state = index.state
    other = SearchIndex(store.path, fast.tokenizer)
    assert other.open(state.uid)
    assert not other.open("someone-else")
    await store.conn.execute("UPDATE search_meta SET value = 'new' WHERE key = 'uid'")
    with SearchEngine(settings=FAST) as later:  # a new process: no index open yet
        rebuilt = await later.indexes.ensure(store)
        assert rebuilt.state.uid == "new"
        assert await fast_top(later, store, "model")


async def test_a_large_store_builds_its_index_in_the_background(db, fast):
    await upsert_entries(db, corpus(400))
    leftover = index_path(db.path).with_name(f"{db.path.name}.search.building-999999")
    leftover.mkdir()  # a build that died with its process
    assert await fast.indexes.index_for(db) is None  # FTS5 answers while it is built
    assert (await fast.search(db, "model")).hits
    index = fast.indexes._indexes[str(db.path.resolve())]
    index.wait(60)
    assert await fast.indexes.index_for(db) is index
    assert index.state.watermark == 400
    assert not leftover.exists()
    assert await fast.indexes.ranked(db, parse_query("model"), 5, 0) is not None


async def test_a_one_shot_engine_builds_no_index_in_the_background(db):
    await upsert_entries(db, corpus(400))
    with SearchEngine(settings=FAST, auto_build=False) as engine:
        assert await engine.indexes.index_for(db) is None
        assert (await engine.search(db, "model")).hits
        assert not index_path(db.path).exists()


async def test_a_closed_engine_answers_with_fts5_alone(store):
    engine = SearchEngine(settings=FAST)
    assert await engine.indexes.ranked(store, parse_query("model"), 5, 0) is not None
    engine.close()
    assert engine.indexes.closed
    assert await engine.indexes.ranked(store, parse_query("model"), 5, 0) is None
    assert (await engine.search(store, "model")).hits


async def test_a_failing_index_leaves_the_answer_to_fts5(
    store, fast, fts5_alone, monkeypatch, caplog
):
    expected = await fast.search(store, "model learning", limit=5)
    index = await fast.indexes.index_for(store)

    def broken(*args, **kwargs):
        raise ValueError("index files gone")

    monkeypatch.setattr(index, "candidates", broken)
    assert await fast.indexes.ranked(store, parse_query("model learning"), 5, 0) is None
    assert "FTS5 answers" in caplog.text
    slow = await fts5_alone.search(store, "model learning", limit=5)
    assert [h.score for h in slow.hits] == pytest.approx([h.score for h in expected.hits])
