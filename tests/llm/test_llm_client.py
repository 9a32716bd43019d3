"""LLMClient against the local OpenAI-compatible server, through the real openai package."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import date
from pathlib import Path

import pytest

from bot.config import LLMConfig
from bot.llm.client import (
    LLMBadOutput,
    LLMBudgetExceeded,
    LLMClient,
    LLMUnavailable,
    parse_json_object,
)
from bot.store.database import Database, connect
from bot.store.llm_store import tokens_used, usage
from tests.llm.conftest import API_KEY, llm_config
from tests.llm_server import FakeLLMServer, Reply

USER = [{"role": "user", "content": "Say something in JSON please"}]


def _keys(value: dict) -> dict:
    if not isinstance(value.get("answer"), str):
        raise ValueError('"answer" must be a string')
    return value


async def test_chat_returns_text_and_counts_usage_tokens(
    client: LLMClient, llm_server: FakeLLMServer, db: Database
) -> None:
    llm_server.queue("Hello from the fake model")
    result = await client.chat(USER)
    assert result.text == "Hello from the fake model"
    assert result.completion_tokens == 5 and not result.estimated
    assert await client.tokens_used_today() == result.tokens
    request = llm_server.chat_requests[0]
    assert request.json["model"] == "fake-chat"
    assert request.json["max_tokens"] == 400
    assert request.headers["Authorization"] == f"Bearer {API_KEY}"


async def test_streaming_delivers_pieces_and_usage(
    client: LLMClient, llm_server: FakeLLMServer
) -> None:
    llm_server.queue("one two three four")
    pieces: list[str] = []

    async def on_delta(piece: str) -> None:
        pieces.append(piece)

    result = await client.chat(USER, on_delta=on_delta)
    assert "".join(pieces) == result.text == "one two three four"
    assert len(pieces) == 4
    assert result.completion_tokens == 4 and not result.estimated
    assert llm_server.chat_requests[0].json["stream"] is True


async def test_streaming_without_usage_estimates_tokens(
    client: LLMClient, llm_server: FakeLLMServer
) -> None:
    llm_server.queue(Reply(content="a reply with no usage chunk", usage=False))
    result = await client.chat(USER, stream=True)
    assert result.text == "a reply with no usage chunk"
    assert result.estimated and result.tokens > 0
    assert await client.tokens_used_today() == result.tokens


async def test_stream_options_rejected_is_dropped_and_remembered(db: Database) -> None:
    async with FakeLLMServer(reject_stream_options=True) as server:
        async with LLMClient(llm_config(server), db=db, max_retries=0) as llm:
            server.queue("streamed anyway", "again")
            assert (await llm.chat(USER, stream=True)).text == "streamed anyway"
            await llm.chat(USER, stream=True)
        statuses = [r.status for r in server.chat_requests]
        assert statuses == [400, 200, 200]
        assert "stream_options" not in server.chat_requests[-1].json


async def test_json_reply_is_parsed_and_validated(
    client: LLMClient, llm_server: FakeLLMServer
) -> None:
    llm_server.queue('```json\n{"answer": "42"}\n```')
    result = await client.chat_json(USER, _keys)
    assert result.value == {"answer": "42"} and not result.repaired
    assert llm_server.chat_requests[0].json["response_format"] == {"type": "json_object"}


async def test_invalid_json_gets_one_repair_round(
    client: LLMClient, llm_server: FakeLLMServer
) -> None:
    llm_server.queue('{"answer": 42', '{"answer": "42"}')
    result = await client.chat_json(USER, _keys)
    assert result.value == {"answer": "42"} and result.repaired
    assert len(llm_server.chat_requests) == 2
    repair = llm_server.chat_requests[1].messages
    assert repair[-2] == {"role": "assistant", "content": '{"answer": 42'}
    assert "not valid JSON" in repair[-1]["content"]
    assert result.tokens > 0


async def test_wrong_shape_is_repaired_with_the_validation_message(
    client: LLMClient, llm_server: FakeLLMServer
) -> None:
    llm_server.queue('{"reply": "42"}', '{"answer": "42"}')
    result = await client.chat_json(USER, _keys)
    assert result.repaired
    assert '"answer" must be a string' in llm_server.chat_requests[1].messages[-1]["content"]


async def test_invalid_json_twice_fails_clearly(
    client: LLMClient, llm_server: FakeLLMServer
) -> None:
    llm_server.queue("not json at all", "still not json")
    with pytest.raises(LLMBadOutput) as caught:
        await client.chat_json(USER, _keys)
    assert caught.value.kind == "bad_output"
    assert "valid JSON" in str(caught.value)
    assert caught.value.tokens > 0
    assert len(llm_server.chat_requests) == 2


async def test_server_rejecting_response_format_is_retried_without_it(db: Database) -> None:
    async with FakeLLMServer(reject_response_format=True) as server:
        async with LLMClient(llm_config(server), db=db, max_retries=0) as llm:
            server.queue('{"answer": "yes"}', '{"answer": "again"}')
            assert (await llm.chat_json(USER, _keys)).value == {"answer": "yes"}
            assert (await llm.chat_json(USER, _keys)).value == {"answer": "again"}
        assert [r.status for r in server.chat_requests] == [400, 200, 200]
        assert "response_format" not in server.chat_requests[2].json


async def test_401_is_one_clear_line_without_the_key(
    llm_server: FakeLLMServer, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "sk-wrong-key-9876543210"
    async with LLMClient(llm_config(llm_server), wrong, db=db, max_retries=0) as llm:
        with (
            caplog.at_level(logging.WARNING, logger="bot.llm.client"),
            pytest.raises(LLMUnavailable) as caught,
        ):
            await llm.chat(USER)
    message = str(caught.value)
    assert caught.value.kind == "auth"
    assert "HTTP 401" in message and "\n" not in message
    assert wrong not in message and wrong[-4:] not in message
    assert wrong not in repr(llm)
    failures = [r for r in caplog.records if r.name == "bot.llm.client"]
    assert len(failures) == 1
    assert wrong not in caplog.text and wrong[-4:] not in caplog.text


async def test_429_reports_retry_after(client: LLMClient, llm_server: FakeLLMServer) -> None:
    llm_server.fail(429, headers={"Retry-After": "7"}, error="slow down")
    with pytest.raises(LLMUnavailable) as caught:
        await client.chat(USER)
    assert caught.value.kind == "rate_limit"
    assert caught.value.retry_after == 7
    assert "HTTP 429" in str(caught.value)


async def test_transient_429_is_retried_by_the_client(
    llm_server: FakeLLMServer, db: Database
) -> None:
    async with LLMClient(llm_config(llm_server), API_KEY, db=db, max_retries=1) as llm:
        llm_server.queue(Reply(status=429, headers={"Retry-After": "0"}), "after the wait")
        assert (await llm.chat(USER)).text == "after the wait"
    assert [r.status for r in llm_server.chat_requests] == [429, 200]


async def test_500_is_a_server_error(client: LLMClient, llm_server: FakeLLMServer) -> None:
    llm_server.fail(500, error="model crashed")
    with pytest.raises(LLMUnavailable) as caught:
        await client.chat(USER)
    assert caught.value.kind == "server"
    assert "HTTP 500" in str(caught.value) and "model crashed" in str(caught.value)
    assert await client.tokens_used_today() == 0


async def test_slow_server_times_out(llm_server: FakeLLMServer, db: Database) -> None:
    config = llm_config(llm_server, timeout=1.0)
    async with LLMClient(config, API_KEY, db=db, max_retries=0) as llm:
        llm_server.queue(Reply(content="too late", delay=3))
        with pytest.raises(LLMUnavailable) as caught:
            await llm.chat(USER)
    assert caught.value.kind == "timeout"
    assert "within 1s" in str(caught.value)


async def test_connection_refused_is_clear(db: Database) -> None:
    async with FakeLLMServer() as server:
        config = llm_config(server)
    # The server is gone: nothing listens on its port any more.
    async with LLMClient(config, db=db, max_retries=0) as llm:
        with pytest.raises(LLMUnavailable) as caught:
            await llm.chat(USER)
    assert caught.value.kind == "connection"
    assert "cannot reach" in str(caught.value)


async def test_budget_is_persisted_and_enforced_without_calls(
    llm_server: FakeLLMServer, tmp_path: Path
) -> None:
    path = tmp_path / "budget.db"
    config = llm_config(llm_server, daily_token_budget=30)
    today = date(2025, 1, 14)
    async with (
        connect(path) as db,
        LLMClient(config, API_KEY, db=db, max_retries=0, today=lambda: today) as llm,
    ):
        llm_server.queue(" ".join(["word"] * 40))
        await llm.chat(USER)  # goes over the budget: allowed, it was under before
    async with connect(path) as db:  # a restart keeps today's count
        assert await tokens_used(db, today) > 30
        async with LLMClient(config, API_KEY, db=db, max_retries=0, today=lambda: today) as llm:
            sent = len(llm_server.requests)
            with pytest.raises(LLMBudgetExceeded) as caught:
                await llm.chat(USER)
            with pytest.raises(LLMBudgetExceeded):
                await llm.embed(["text"])
            assert len(llm_server.requests) == sent  # nothing was sent
            assert caught.value.kind == "budget"
            assert "budget" in str(caught.value) and "00:00 UTC" in str(caught.value)
            # The next UTC day starts from zero.
            tomorrow = date(2025, 1, 15)
            llm._today = lambda: tomorrow
            llm_server.queue("a new day")
            assert (await llm.chat(USER)).text == "a new day"


async def test_concurrency_limit_is_respected(llm_server: FakeLLMServer, db: Database) -> None:
    active = 0
    peak = 0

    async def slow(body: dict) -> Reply:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.05)
        active -= 1
        return Reply(content="done")

    llm_server.responder = slow
    config = llm_config(llm_server, concurrency=2)
    async with LLMClient(config, API_KEY, db=db, max_retries=0) as llm:
        results = await asyncio.gather(*(llm.chat(USER) for _ in range(6)))
    assert all(r.text == "done" for r in results)
    assert peak == 2


async def test_embeddings_and_models(
    client: LLMClient, llm_server: FakeLLMServer, db: Database
) -> None:
    vectors = await client.embed(["tensor attention memory", "tensor attention memory", "robots"])
    assert len(vectors) == 3 and len(vectors[0]) == 256
    assert vectors[0] == vectors[1] != vectors[2]
    assert llm_server.embedding_requests[0].json["model"] == "fake-embed"
    assert llm_server.embedding_requests[0].json["encoding_format"] == "float"
    # Embedding tokens are recorded apart: they do not use up the chat budget.
    counts = await usage(db, client._today())
    assert counts["embedding_tokens"] == 7 and counts["embedding_calls"] == 1
    assert await client.tokens_used_today() == 0
    assert await client.list_models() == ["fake-chat", "fake-embed"]


async def test_embedding_failure_is_the_same_clear_error(
    client: LLMClient, llm_server: FakeLLMServer
) -> None:
    llm_server.embedding_replies.append(Reply(status=503, error="warming up"))
    with pytest.raises(LLMUnavailable) as caught:
        await client.embed(["x"])
    assert caught.value.kind == "server"


def test_parse_json_object_tolerates_fences_prose_and_think_blocks() -> None:
    assert parse_json_object('<think>hmm</think>Sure: {"a": [1]} done') == {"a": [1]}
    with pytest.raises(ValueError, match="no JSON object"):
        parse_json_object("nothing here")
    with pytest.raises(ValueError, match="JSON object"):
        parse_json_object(json.dumps([1, 2]))


async def test_the_key_and_url_credentials_never_show_in_repr() -> None:
    config = LLMConfig(base_url="http://user:pw@127.0.0.1:9/v1")
    async with LLMClient(config, "sk-abcdefghijklmnop") as llm:
        assert "sk-abc" not in repr(llm) and "pw" not in repr(llm)
