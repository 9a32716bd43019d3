"""The LLM tables (migration 004) and the in-memory vector index."""

from __future__ import annotations

from datetime import date

import pytest

import bot.llm.embeddings as embeddings
from bot.llm.embeddings import VectorIndex, normalize, pack, unpack
from bot.store.database import Database
from bot.store.llm_store import (
    add_turn,
    add_usage,
    conversation_history,
    delete_conversation,
    start_conversation,
    tokens_used,
    usage,
)


async def test_usage_is_counted_per_day_apart_for_embeddings(db: Database) -> None:
    day = date(2025, 1, 14)
    assert await add_usage(db, day, 100) == 100
    assert await add_usage(db, day, 50, embedding=True) == 100
    assert await add_usage(db, day, 20) == 120
    assert await tokens_used(db, day) == 120
    assert await tokens_used(db, date(2025, 1, 15)) == 0
    assert await usage(db, day) == {
        "tokens": 120,
        "calls": 2,
        "embedding_tokens": 50,
        "embedding_calls": 1,
        "estimated_tokens": 0,
        "estimated_embedding_tokens": 0,
    }
    await add_usage(db, day, 30, estimated=True)
    await add_usage(db, day, 7, embedding=True, estimated=True)
    counts = await usage(db, day)
    assert counts["tokens"] == 150 and counts["estimated_tokens"] == 30
    assert counts["embedding_tokens"] == 57 and counts["estimated_embedding_tokens"] == 7


async def test_conversation_turns_keep_their_order_and_roles(db: Database) -> None:
    conversation = await start_conversation(db, channel_id=5, guild_id=9)
    assert conversation.thread_id == 5  # no thread: the channel itself
    again = await start_conversation(db, channel_id=5)
    assert again.id == conversation.id
    await add_turn(db, conversation.id, "user", "first")
    await add_turn(db, conversation.id, "assistant", "reply", ["2501.06425"])
    await add_turn(db, conversation.id, "user", "second")
    assert await conversation_history(db, conversation.id, limit=2) == [
        ("assistant", "reply"),
        ("user", "second"),
    ]
    with pytest.raises(ValueError):
        await add_turn(db, conversation.id, "system", "nope")
    assert await delete_conversation(db, 5)
    assert await conversation_history(db, conversation.id) == []
    assert not await delete_conversation(db, 5)


def test_vectors_round_trip_normalised() -> None:
    blob = pack([3.0, 4.0])
    assert list(unpack(blob)) == pytest.approx([0.6, 0.8])
    assert list(normalize([0.0, 0.0])) == [0.0, 0.0]


@pytest.mark.parametrize("use_numpy", [True, False])
def test_index_search_ranks_by_cosine_with_and_without_numpy(
    use_numpy: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not use_numpy:
        monkeypatch.setattr(embeddings, "np", None)
    elif embeddings.np is None:
        pytest.skip("numpy is not installed")
    index = VectorIndex("m")
    index.add(1, normalize([1.0, 0.0, 0.0]))
    index.add(2, normalize([0.7, 0.7, 0.0]))
    index.add(3, normalize([0.0, 0.0, 1.0]))
    found = index.search([1.0, 0.1, 0.0], k=2)
    assert [pid for pid, _ in found] == [1, 2]
    assert found[0][1] == pytest.approx(0.995, abs=1e-3)
    assert [pid for pid, _ in index.search([1.0, 0.1, 0.0], k=5, allowed={2, 3})] == [2, 3]
    index.add(3, normalize([1.0, 0.0, 0.0]))  # replaced in place
    assert len(index) == 3 and index.search([1.0, 0.0, 0.0], k=1)[0][1] == pytest.approx(1.0)
