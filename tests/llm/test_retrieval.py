"""Hybrid retrieval: bm25 over an OR of the question's content words, fused with embeddings."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from bot.llm.client import LLMClient
from bot.llm.embeddings import (
    EndpointEmbedder,
    LocalEmbedder,
    embed_missing,
    local_embedder_available,
)
from bot.llm.retrieval import _Gate, fts_or_query, idf, question_terms, retrieve, term_weights
from bot.models import Entry
from bot.store.database import Database
from bot.store.llm_store import embedding_count
from bot.store.papers import get_paper, upsert_entries
from tests.llm.conftest import make_paper, store, store_fixtures
from tests.llm_server import FakeLLMServer, Reply

TPA = "2501.06425"
SPAM = "2501.06842"
VIDEO = "2501.06173"


def _ids(results) -> list[str]:
    return [item.paper.arxiv_id for item in results]


def test_question_terms_drop_stopwords_and_keep_content_words() -> None:
    terms = question_terms("Which papers propose a way to reduce the KV-cache memory of LLMs?")
    assert terms == ["reduce", "kv", "cache", "memory", "llms"]
    assert fts_or_query(terms) == (
        '{title summary_text abstract tags_text} : ("reduce" OR "kv" OR "cache" OR "memory" OR '
        '"llms")'
    )
    assert question_terms("what is it?") == []
    assert fts_or_query([]) is None


async def test_bm25_finds_a_paper_without_matching_every_word(db: Database) -> None:
    await store_fixtures(db)
    # "shrink" and "giant" appear nowhere: an AND query would find nothing.
    results = await retrieve(
        db, "How do I shrink the key-value cache memory of giant language models?", k=3
    )
    assert _ids(results)[0] == TPA
    top = results[0]
    assert top.bm25_rank == 1 and top.vector_rank is None and top.similarity is None
    assert top.relevant and 0 < top.term_coverage < 1


async def test_filters_restrict_candidates(db: Database) -> None:
    await store_fixtures(db)
    question = "video generation with language models"
    assert _ids(await retrieve(db, question, tag="text-to-video")) == [VIDEO]
    recent = await retrieve(db, question, since=date(2025, 3, 1), k=10)
    assert recent and all(
        item.paper.published and item.paper.published >= date(2025, 3, 1) for item in recent
    )
    only = await retrieve(db, "something unrelated entirely", paper_id=f"arXiv:{SPAM}v2")
    assert _ids(only) == [SPAM] and only[0].relevant
    assert await retrieve(db, question, paper_id="2599.99999") == []


async def test_off_topic_questions_are_flagged_not_relevant(db: Database) -> None:
    await store_fixtures(db)
    results = await retrieve(db, "What is the capital city of France and its population?")
    assert all(not item.relevant for item in results)
    assert await retrieve(db, "?") == []


async def test_hybrid_fuses_both_rankings_and_embeds_each_paper_once(
    db: Database, client: LLMClient, llm_server: FakeLLMServer
) -> None:
    await store_fixtures(db)
    embedder = EndpointEmbedder(client)
    embedded = await embed_missing(db, embedder)
    count = await embedding_count(db, "fake-embed")
    assert embedded == count > 20
    assert await embed_missing(db, embedder) == 0

    results = await retrieve(
        db, "optimizer momentum reset for gradient spikes", embedder=embedder, k=5
    )
    assert _ids(results)[0] == SPAM
    assert results[0].bm25_rank is not None and results[0].vector_rank is not None
    assert results[0].similarity is not None and results[0].similarity > 0.2
    assert results[0].score == pytest.approx(
        1 / (60 + results[0].bm25_rank) + 1 / (60 + results[0].vector_rank)
    )
    before = len(llm_server.embedding_requests)
    await retrieve(db, "tensor attention", embedder=embedder)
    # Only the question itself was embedded: the papers' vectors are stored.
    assert len(llm_server.embedding_requests) == before + 1
    assert llm_server.embedding_requests[-1].json["input"] == ["tensor attention"]


async def test_new_and_changed_papers_get_vectors_during_retrieval(
    db: Database, client: LLMClient
) -> None:
    await store_fixtures(db)
    embedder = EndpointEmbedder(client)
    await embed_missing(db, embedder)
    paper = await get_paper(db, TPA)
    assert paper is not None
    await upsert_entries(db, [Entry(replace(paper, abstract=paper.abstract + " More words."))])
    results = await retrieve(db, "tensor product attention", embedder=embedder)
    assert results[0].paper.arxiv_id == TPA and results[0].vector_rank == 1


async def test_embedding_failure_falls_back_to_bm25(
    db: Database, client: LLMClient, llm_server: FakeLLMServer
) -> None:
    await store_fixtures(db)
    llm_server.embedding_replies.extend([Reply(status=500)] * 3)
    results = await retrieve(db, "optimizer for gradient spikes", embedder=EndpointEmbedder(client))
    assert _ids(results)[0] == SPAM and results[0].vector_rank is None


@pytest.mark.skipif(not local_embedder_available(), reason="the embeddings extra is not installed")
async def test_local_model_finds_a_paraphrased_question(db: Database) -> None:
    await store_fixtures(db)
    embedder = LocalEmbedder()
    await embed_missing(db, embedder)
    question = "Which optimizer keeps huge gradient outliers from destabilising LLM training?"
    results = await retrieve(db, question, embedder=embedder, k=3)
    assert _ids(results)[0] == SPAM
    assert results[0].vector_rank == 1 and results[0].similarity > 0.4
    off_topic = await retrieve(db, "What is the capital city of France?", embedder=embedder)
    assert off_topic and not any(item.relevant for item in off_topic)


def test_gate_refuses_only_when_cosine_and_weighted_words_are_both_weak() -> None:
    gate = _Gate(alone=0.55, term_weight=0.75, threshold=0.43)
    assert gate.relevant(0.56, 0.0, False)  # a high cosine suffices
    assert gate.relevant(0.40, 0.50, False)  # (0.40 + 0.75 * 0.50) / 1.75 = 0.443
    assert not gate.relevant(0.40, 0.40, True)  # 0.40: both weak, whatever the word count
    assert not gate.relevant(0.10, 0.70, True)  # 0.357: the words alone are not enough
    words_only = _Gate(alone=0.3)  # an embedder with no calibrated blend
    assert words_only.relevant(0.1, 0.0, True) and not words_only.relevant(0.1, 1.0, False)
    assert _Gate().relevant(None, 0.0, True) and not _Gate().relevant(None, 1.0, False)


async def test_term_weights_are_idf_counted_once_and_recounted_after_a_write(
    db: Database,
) -> None:
    await store_fixtures(db)
    total = (await db.fetchone("SELECT count(*) FROM papers"))[0]
    weights = await term_weights(db, ["training", "spike", "sourdough"])
    df = {
        term: (
            await db.fetchone(
                "SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ?", (fts_or_query([term]),)
            )
        )[0]
        for term in ("training", "spike", "sourdough")
    }
    assert df["sourdough"] == 0 < df["spike"] < df["training"]
    assert weights == {term: idf(df[term], total) for term in df}
    assert weights["sourdough"] > weights["spike"] > weights["training"] > 0
    assert await term_weights(db, ["spike"]) == {"spike": weights["spike"]}  # from the cache
    await store(db, make_paper("2501.99999", "Sourdough starters", "A sourdough paper."))
    again = await term_weights(db, ["sourdough"])
    assert again["sourdough"] == idf(1, total + 1) < weights["sourdough"]
