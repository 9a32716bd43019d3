"""A stuck or slow local LLM server: how long until the caller hears back?

``llm.timeout`` = T against the project's test server (``tests/llm_server``), two cases:

* stuck: the reply never starts in time (every attempt waits 30 s);
* slow: the reply streams, but slowly (a token every 0.1 s for 10 s), as a small CPU model does.

Baseline: the ``openai`` package used as the bot used it before (timeout T per attempt, which
for a stream bounds each read, not the answer; 2 retries).
paperbot: :class:`bot.llm.client.LLMClient`,
one deadline for the call and its retries. Also timed: the next question right after, on a
single-slot server. Note: this test server frees its slot as soon as the client disconnects
(as llama.cpp does for a stream at its next write), so ``next_question`` only shows that the
slot is free; a server that keeps computing after a disconnect would make the baseline's
abandoned retries cost far more. Prints ``name: value`` lines (seconds on the caller's clock,
median of ``--runs``) and baseline/paperbot ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import tempfile
import time
from pathlib import Path

import openai

from bot.config import LLMConfig
from bot.llm.client import LLMClient, LLMUnavailable
from bot.store.database import connect
from tests.llm_server import FakeLLMServer, Reply

MESSAGES = [{"role": "user", "content": "Say OK."}]
STUCK = Reply(content="late", delay=30.0)
SLOW = Reply(content="word " * 100, chunk_delay=0.1)


async def _baseline(server: FakeLLMServer, limit: float, stream: bool) -> tuple[float, float]:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="x", timeout=limit)
    try:
        started = time.monotonic()
        with contextlib.suppress(openai.APIError):
            reply = await client.chat.completions.create(
                model="m", messages=MESSAGES, max_tokens=400, stream=stream
            )
            if stream:
                async for _chunk in reply:
                    pass
        failed = time.monotonic() - started
        server.replies.clear()  # attempts not made (no retry) must not answer the next question
        started = time.monotonic()
        await client.with_options(timeout=120, max_retries=0).chat.completions.create(
            model="m", messages=MESSAGES, max_tokens=8
        )
        return failed, time.monotonic() - started
    finally:
        await client.close()


async def _paperbot(
    server: FakeLLMServer, limit: float, stream: bool, db_path: Path
) -> tuple[float, float]:
    config = LLMConfig(base_url=server.base_url, model="m", timeout=limit, daily_token_budget=0)
    async with connect(db_path) as db, LLMClient(config, "x", db=db) as client:
        started = time.monotonic()
        with contextlib.suppress(LLMUnavailable):
            await client.chat(MESSAGES, max_tokens=400, stream=stream)
        failed = time.monotonic() - started
        server.replies.clear()  # attempts not made (no retry) must not answer the next question
        started = time.monotonic()
        await client.chat(MESSAGES, max_tokens=8)
        return failed, time.monotonic() - started


async def _run(kind: str, case: str, limit: float, db_path: Path) -> tuple[float, float]:
    async with FakeLLMServer(slots=1) as server:
        server.responder = lambda body: Reply(content="OK")
        bad = STUCK if case == "stuck" else SLOW
        server.queue(bad, bad, bad)  # every attempt of the first question
        stream = case == "slow"
        if kind == "baseline":
            return await _baseline(server, limit, stream)
        return await _paperbot(server, limit, stream, db_path)


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--timeout", type=float, default=2.0, help="llm.timeout (seconds)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"llm_timeout_s: {args.timeout:g}")
    print(f"runs: {args.runs}")
    with tempfile.TemporaryDirectory() as tmp:
        for case in ("stuck", "slow"):
            medians: dict[str, float] = {}
            for kind in ("baseline", "paperbot"):
                values = [
                    await _run(kind, case, args.timeout, Path(tmp) / f"{case}{kind}{run}.db")
                    for run in range(args.runs)
                ]
                medians[kind] = statistics.median(v[0] for v in values)
                print(f"{case}_{kind}_answer_or_error_after_s: {medians[kind]:.2f}")
                nxt = statistics.median(v[1] for v in values)
                print(f"{case}_{kind}_next_question_s: {nxt:.2f}")
            ratio = medians["baseline"] / medians["paperbot"]
            print(f"{case}_ratio_baseline_over_paperbot: {ratio:.1f}")


if __name__ == "__main__":
    logging.disable(logging.WARNING)  # the expected timeouts would be logged
    asyncio.run(main())
