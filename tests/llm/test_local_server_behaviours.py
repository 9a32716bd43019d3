"""What real local servers (llama.cpp) do, imitated by the test server, and the fixes for each.

Every test goes through the real ``openai`` client to ``tests/llm_server`` on 127.0.0.1; the
numbers in the docstrings are those of the measured failures in issue 11.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from bot.cli.llm_commands import ask_command, llm_command
from bot.config import Config
from bot.llm.answer import CUT_MARK, UNGROUNDED, UNGROUNDED_TURN, answer, ask, converse
from bot.llm.client import LLMBadOutput, LLMClient, LLMUnavailable
from bot.llm.enrich import ENRICH_MAX_TOKENS, build_messages, enrich_papers
from bot.llm.grounding import ground
from bot.llm.probe import probe
from bot.models import SummarySource
from bot.store.database import Database, connect
from bot.store.papers import get_paper
from tests.llm.conftest import API_KEY, llm_config, make_paper, store, store_fixtures
from tests.llm_server import FakeLLMServer, Reply, echoing_responder, enrichment_responder
from tests.waiting import wait_until

TPA = make_paper(
    "2501.06425",
    "Tensor Product Attention Is All You Need",
    "Tensor Product Attention (TPA) factorises queries, keys and values to shrink the KV cache.",
    authors=("Yifan Zhang", "Yifeng Liu"),
)
SPAM = make_paper(
    "2501.06842",
    "SPAM: Spike-Aware Adam with Momentum Reset for Stable LLM Training",
    "SPAM resets momentum and clips spiked gradients to stabilise LLM training.",
)


# --- 1. grounding ---------------------------------------------------------------------------


async def test_an_answer_citing_nothing_is_not_presented_as_an_answer(
    client: LLMClient, llm_server: FakeLLMServer
) -> None:
    """1: invented ids, prompt markers, no citation: the papers found are listed instead."""
    llm_server.responder = echoing_responder()
    result = await answer(client, "How is the KV cache made smaller?", [TPA, SPAM])
    assert not result.grounded and not result.sources
    assert result.text.startswith(UNGROUNDED)
    for invented in ("2405.99999", "2406.12345", "Smith", "<paper", "Question:", "doubles"):
        assert invented not in result.text
    assert "[1] [Tensor Product Attention Is All You Need](<https://arxiv.org/abs/2501.06425>)" in (
        result.text
    )
    assert "https://arxiv.org/abs/2501.06842" in result.text
    assert result.to_json()["grounded"] is False


async def test_invented_ids_and_echoes_are_removed_from_a_grounded_answer(
    client: LLMClient, llm_server: FakeLLMServer
) -> None:
    llm_server.responder = echoing_responder(cite=" [1]")
    result = await answer(client, "How is the KV cache made smaller?", [TPA, SPAM])
    assert result.grounded and result.cited_ids == ("2501.06425",)
    assert result.body == "In short, the approach works well [1]."
    assert any("2406.12345" in line for line in result.removed)
    assert any("Smith et al." in line for line in result.removed)
    assert any("<paper>" in line for line in result.removed)


async def test_an_ungrounded_reply_stays_out_of_the_conversation_history(
    db: Database, client: LLMClient, llm_server: FakeLLMServer
) -> None:
    await store(db, TPA, SPAM)
    llm_server.responder = echoing_responder()
    first = await converse(db, client, "What does tensor product attention do?", channel_id=3)
    assert not first.grounded
    llm_server.responder = None
    llm_server.queue("It factorises the KV cache [1].")
    await converse(db, client, "How much memory does tensor product attention save?", channel_id=3)
    assert len(llm_server.chat_requests) == 2
    history = llm_server.chat_requests[-1].messages[2]["content"]
    assert history == UNGROUNDED_TURN and "2405.99999" not in llm_server.chat_requests[-1].prompt


def test_sentences_about_papers_not_sent_are_dropped_and_known_ids_become_citations() -> None:
    checked = ground(
        "TPA factorises the cache (arXiv:2501.06425). Zhang et al. test it on T6. "
        'The survey "Attention Is Not What You Need" disagrees [1]. '
        "SPAM helps too [2][7]. Another trick works [9].",
        [TPA, SPAM],
    )
    assert checked.body == (
        "TPA factorises the cache [1]. Zhang et al. test it on T6. SPAM helps too [2]."
    )
    assert checked.cited == [1, 2]
    assert len(checked.removed) == 3  # the invented title, citation [7], the sentence citing [9]


def test_the_models_own_labelled_lines_are_kept_when_they_cite() -> None:
    checked = ground(
        "Summary: TPA factorises the KV cache [1].\nTitle: Tensor Product Attention\n"
        "Question: how much memory? It saves most of it [1].",
        [TPA],
    )
    assert checked.body == "Summary: TPA factorises the KV cache [1].\nIt saves most of it [1]."


# --- 2. length ------------------------------------------------------------------------------


async def test_an_answer_cut_by_max_tokens_ends_at_a_sentence_and_is_marked(
    llm_server: FakeLLMServer, db: Database
) -> None:
    """2: finish_reason "length" no longer ends an answer mid-sentence."""
    llm_server.queue(
        "TPA shrinks the KV cache [1]. It factorises keys and values into small parts that "
        "are multiplied back together when attention needs them, at a small cost [1]."
    )
    async with LLMClient(llm_config(llm_server, max_tokens=16), API_KEY, db=db) as llm:
        result = await answer(llm, "How?", [TPA], on_progress=_ignore)
    assert result.truncated and result.grounded
    assert result.body == f"TPA shrinks the KV cache [1].\n{CUT_MARK}"
    assert llm_server.chat_requests[0].json["max_tokens"] == 16


async def _ignore(_text: str) -> None:
    return None


async def test_json_cut_by_max_tokens_is_asked_again_with_a_larger_limit_not_repaired(
    client: LLMClient, llm_server: FakeLLMServer
) -> None:
    """2: the retry is a different call (twice the limit), not the same call again."""
    reply = json.dumps({"bullets": ["one two three four five six"] * 5, "labels": []})
    llm_server.responder = lambda body: Reply(content=reply)
    result = await client.chat_json(
        [{"role": "user", "content": "json please"}], lambda v: v, max_tokens=40
    )
    first, second = llm_server.chat_requests
    assert (first.json["max_tokens"], second.json["max_tokens"]) == (40, 80)
    assert second.messages == first.messages  # not a repair round quoting the cut reply
    assert result.repaired and result.rounds == 2


async def test_json_cut_twice_fails_after_two_different_calls(
    client: LLMClient, llm_server: FakeLLMServer
) -> None:
    reply = json.dumps({"bullets": ["word " * 30] * 5})
    llm_server.responder = lambda body: Reply(content=reply)
    with pytest.raises(LLMBadOutput, match=r"larger round \(cut by max_tokens again\)") as info:
        await client.chat_json([{"role": "user", "content": "x"}], lambda v: v, max_tokens=20)
    assert [r.json["max_tokens"] for r in llm_server.chat_requests] == [20, 40]
    assert info.value.tokens > 0


async def test_enrichment_asks_for_a_json_budget_that_fits(
    db: Database, client: LLMClient, llm_server: FakeLLMServer
) -> None:
    """2: the measured enrichment failed twice under a small max_tokens; its own budget fits."""
    llm_server.responder = enrichment_responder()
    await store(db, TPA)
    paper = await get_paper(db, TPA.arxiv_id)
    assert paper is not None
    async with LLMClient(llm_config(llm_server, max_tokens=64), API_KEY, db=db) as small:
        report = await enrich_papers(db, small, [paper], force=True)
    assert report.enriched == 1 and report.failed == 0
    assert [r.json["max_tokens"] for r in llm_server.chat_requests] == [ENRICH_MAX_TOKENS]


# --- 3. evidence ----------------------------------------------------------------------------


async def test_a_digest_paper_without_abstract_keeps_its_bullets_and_the_prompt_has_them(
    db: Database, client: LLMClient, llm_server: FakeLLMServer
) -> None:
    """3: no "(no abstract)" prompt, and a plain enrich never replaces the digest's bullets."""
    await store_fixtures(db)
    paper = await get_paper(db, "2501.06425")
    assert paper is not None and not paper.abstract and paper.bullets_source == SummarySource.DIGEST
    llm_server.responder = enrichment_responder(labels=("Text Generation",))
    report = await enrich_papers(db, client, [paper])
    prompt = llm_server.chat_requests[0].user
    assert "(no abstract)" not in prompt
    assert all(bullet in prompt for bullet in paper.bullets)
    after = await get_paper(db, "2501.06425")
    assert after is not None
    assert after.bullets == paper.bullets and after.bullets_source == SummarySource.DIGEST
    assert after.tags == ("Text Generation",) and after.tags_source == SummarySource.LLM
    assert report.enriched == 1 and report.labels_only == 1
    # Done: a second plain run makes no call.
    again = await enrich_papers(db, client, [after])
    assert again.cached == 1 and len(llm_server.chat_requests) == 1


async def test_a_title_only_paper_is_not_sent_and_is_counted(
    db: Database, client: LLMClient, llm_server: FakeLLMServer
) -> None:
    bare = make_paper("2501.00077", "A Title and Nothing Else")
    await store(db, replace(bare, bullets=(), tags=()))
    stored = await get_paper(db, bare.arxiv_id)
    assert stored is not None
    stored = replace(stored, bullets=(), bullets_source=SummarySource.NONE)
    report = await enrich_papers(db, client, [stored], force=True)
    assert report.no_evidence == 1 and report.enriched == 0 and report.failed == 0
    assert llm_server.chat_requests == []
    assert any("only a title" in error for error in report.errors)


def test_the_prompt_uses_the_abstract_when_there_is_one() -> None:
    prompt = build_messages(replace(TPA, bullets=("A digest bullet.",)))[1]["content"]
    assert "Abstract: Tensor Product Attention" in prompt and "A digest bullet." not in prompt


# --- 4. one deadline ------------------------------------------------------------------------


async def test_the_timeout_bounds_the_whole_answer_and_frees_a_single_slot_server(
    db: Database,
) -> None:
    """4: llm.timeout = 1 with retries allowed: one attempt, closed at the deadline, and the
    next question is served at once instead of waiting behind the abandoned request."""
    async with FakeLLMServer(api_key=API_KEY, slots=1) as server:
        server.queue(Reply(content="late [1].", delay=60))
        config = llm_config(server, timeout=1.0)
        async with LLMClient(config, API_KEY, db=db, max_retries=2) as llm:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(LLMUnavailable, match="within 1s") as info:
                await answer(llm, "How?", [TPA], on_progress=_ignore)
            assert info.value.kind == "timeout"
            assert len(server.chat_requests) == 1  # a timeout is not retried past the deadline
            await wait_until(lambda: server.cancelled == 1 and server.active == 0)
            server.queue("TPA is quick [1].")
            result = await answer(llm, "How?", [TPA])
        assert result.grounded
        assert loop.time() - started < 60  # not stuck behind the abandoned request


async def test_a_stream_past_the_deadline_is_closed(db: Database) -> None:
    """4: the abandoned stream is aborted, so the server stops generating."""
    async with FakeLLMServer(api_key=API_KEY) as server:
        server.queue(Reply(content="TPA [1]. " + "more words " * 200, chunk_delay=0.05))
        async with LLMClient(llm_config(server, timeout=1.0), API_KEY, db=db) as llm:
            with pytest.raises(LLMUnavailable, match="within 1s"):
                await answer(llm, "How?", [TPA], on_progress=_ignore)
        await wait_until(lambda: server.cancelled == 1 and server.active == 0)
        assert len(server.chat_requests) == 1


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_client_errors_are_not_retried(
    llm_server: FakeLLMServer, db: Database, status: int
) -> None:
    llm_server.fail(status, times=3, error="bad model")
    async with LLMClient(llm_config(llm_server), API_KEY, db=db, max_retries=2) as llm:
        with pytest.raises(LLMUnavailable):
            await llm.chat([{"role": "user", "content": "x"}], temperature=None)
    sent = [r for r in llm_server.chat_requests if r.status == status]
    assert len(sent) == 1


async def test_server_errors_are_retried_within_the_deadline(
    llm_server: FakeLLMServer, db: Database
) -> None:
    llm_server.fail(500, times=2)
    llm_server.queue("fine")
    async with LLMClient(llm_config(llm_server), API_KEY, db=db, max_retries=2) as llm:
        result = await llm.chat([{"role": "user", "content": "x"}])
    assert result.text == "fine" and len(llm_server.chat_requests) == 3


@pytest.mark.parametrize("route", ["missing", "unsupported"])
async def test_a_server_without_embeddings_is_asked_once(db: Database, route: str) -> None:
    """4: a 500 "must be created with embedding=True" (llama.cpp) or a 404 is permanent."""
    async with FakeLLMServer(api_key=API_KEY, embeddings_route=route) as server:
        async with LLMClient(llm_config(server), API_KEY, db=db, max_retries=2) as llm:
            for _ in range(2):
                with pytest.raises(LLMUnavailable, match="serves no embeddings"):
                    await llm.embed(["a", "b"])
        assert server.hits.get("/v1/embeddings") == 1


# --- 5. accounting --------------------------------------------------------------------------


async def test_tokens_of_streams_without_usage_are_counted_and_labelled_as_estimates(
    db: Database,
) -> None:
    """5: llama.cpp sends no usage when streaming, even when asked."""
    async with FakeLLMServer(api_key=API_KEY, stream_usage=False) as server:
        server.queue("TPA shrinks the KV cache [1].")
        config = llm_config(server, daily_token_budget=10)
        async with LLMClient(config, API_KEY, db=db) as llm:
            result = await answer(llm, "How?", [TPA], on_progress=_ignore)
            assert server.chat_requests[0].json["stream_options"] == {"include_usage": True}
            assert result.estimated and result.to_json()["tokens_estimated"] is True
            counts = await llm.usage_today()
            assert counts["estimated_tokens"] == counts["tokens"] == result.tokens > 10
            line = await llm.usage_line()
            assert f"{result.tokens:,} of them estimated" in line
            with pytest.raises(LLMUnavailable, match="of them estimated: the server sent no usage"):
                await answer(llm, "Again?", [TPA])


async def test_db_stats_shows_estimated_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli.commands import db_command
    from bot.llm.client import utc_today
    from bot.store.llm_store import add_usage

    config = Config()
    config.database.path = str(tmp_path / "s.db")
    async with connect(config.database.path) as db:
        await add_usage(db, utc_today(), 120)
        await add_usage(db, utc_today(), 45, estimated=True)
    assert await db_command(argparse.Namespace(action="stats", target=None), config) == 0
    out = capsys.readouterr().out
    assert "llm_tokens_today: 165\n" in out and "llm_tokens_today_estimated: 45\n" in out


# --- 6. llm check ---------------------------------------------------------------------------


def _cli_config(path: Path, server: FakeLLMServer, **llm: object) -> Config:
    config = Config()
    config.database.path = str(path)
    config.llm = llm_config(server, **llm)
    config.openai_api_key = API_KEY
    return config


async def test_llm_check_reports_a_model_the_server_does_not_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """6: the server answers to any name; the check compares with /v1/models."""
    async with FakeLLMServer(api_key=API_KEY, models=("qwen2.5-0.5b",)) as server:
        config = _cli_config(tmp_path / "c.db", server, model="gpt-4o-mini", embedding_model="")
        code = await llm_command(argparse.Namespace(action="check"), config)
        assert server.chat_requests[0].json["model"] == "gpt-4o-mini"  # accepted, echoed
    out = capsys.readouterr().out
    assert code == 1
    assert "models: FAILED: 'gpt-4o-mini' is not among the 1 listed (qwen2.5-0.5b)" in out
    assert "chat: ok" in out


async def test_llm_check_probes_each_feature_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with FakeLLMServer(
        api_key=API_KEY,
        stream_usage=False,
        json_delay=0.3,
        embeddings_route="unsupported",
    ) as server:
        server.responder = lambda body: Reply(
            content='{"ok": true}' if "response_format" in body else "OK"
        )
        config = _cli_config(tmp_path / "c.db", server)
        code = await llm_command(argparse.Namespace(action="check"), config)
        assert len(server.chat_requests) == 3  # chat, stream, JSON: once each
        assert server.hits["/v1/embeddings"] == 1 and server.hits["/v1/models"] == 1
    out = capsys.readouterr().out
    assert code == 1  # embeddings fail
    assert "models: ok: 2 listed; 'fake-chat' is among them" in out
    assert "streaming: ok" in out
    assert "usage in streams: warning: not sent" in out
    json_line = next(line for line in out.splitlines() if line.startswith("JSON mode"))
    assert json_line.startswith("JSON mode: ok: valid JSON in ")
    assert float(json_line.rsplit(" ", 1)[1].rstrip("s")) >= 0.3
    assert "embeddings: FAILED" in out and "must be created with embedding=True" in out


async def test_llm_check_passes_on_a_complete_endpoint(
    llm_server: FakeLLMServer, db: Database
) -> None:
    llm_server.responder = lambda body: Reply(
        content='{"ok": true}' if "response_format" in body else "OK"
    )
    async with LLMClient(llm_config(llm_server), API_KEY, db=db, max_retries=0) as llm:
        report = await probe(llm)
    assert report.ok, report.lines()
    assert [c.name for c in report.checks] == [
        "models",
        "chat",
        "streaming",
        "usage in streams",
        "JSON mode",
        "embeddings",
    ]


# --- 7. "not covered" lists no paper as given ------------------------------------------------


async def test_not_covered_json_lists_no_paper_sent(
    tmp_path: Path, llm_server: FakeLLMServer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "n.db"
    async with connect(path) as db, LLMClient(llm_config(llm_server), API_KEY) as llm:
        await store_fixtures(db)
        direct = await ask(db, llm, "What is the best sourdough bread recipe?")
    assert not direct.covered and direct.papers == ()
    args = argparse.Namespace(
        question=["What", "is", "the", "capital", "of", "France?"],
        paper=None,
        tag=None,
        since=None,
        limit=5,
        retrieve_only=False,
        keywords_only=True,
        json=True,
    )
    assert await ask_command(args, _cli_config(path, llm_server)) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["covered"] is False and record["papers"] == []
    assert isinstance(record["retrieved_not_sent"], list)
    assert llm_server.chat_requests == []
