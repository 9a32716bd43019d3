"""Fetch benchmark: the cost of ``fetch_bytes`` (retry policy, pacing) against a local server.

    python -m bench.bench_fetch [--calls 1000] [--rounds 5]

Three parts, each on 127.0.0.1 (the sources tests' scripted server), medians over the rounds:
``ok`` GETs answered 200 at once; ``retry`` GETs answered 500 then 200 (no backoff, so the time
is the retry machinery's and the second request's); ``paced`` GETs through a one-call window of
10 ms (arXiv's 3 s, scaled), reported as the ratio of the elapsed time to the floor.
Prints ``name: value`` lines.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import time

import aiohttp

from bot.sources.http import fetch_bytes
from tests.sources.helpers import Reply, ScriptedServer

try:
    from bot.pacing import WindowLimiter

    def interval_limiter(seconds: float) -> WindowLimiter:
        return WindowLimiter(1, seconds)

except ImportError:  # a checkout from before the one limiter (main at c983e34), for comparison
    from bot.sources.http import RateLimiter as interval_limiter  # type: ignore[attr-defined]

PACE = 0.01


async def _round(server: ScriptedServer, session: aiohttp.ClientSession, calls: int) -> dict:
    url_ok, url_flaky = server.url("/ok"), server.url("/flaky")
    started = time.perf_counter()
    for _ in range(calls):
        await fetch_bytes(session, url_ok)
    ok = (time.perf_counter() - started) / calls
    retries = max(1, calls // 4)
    started = time.perf_counter()
    for _ in range(retries):
        server.script("/flaky", Reply(500, "boom"), Reply(body=b"fine"))
        await fetch_bytes(session, url_flaky, backoff=0.0)
    retry = (time.perf_counter() - started) / retries
    paced_calls = max(2, calls // 10)
    limiter = interval_limiter(PACE)
    started = time.perf_counter()
    for _ in range(paced_calls):
        await fetch_bytes(session, url_ok, limiter=limiter)
    paced = (time.perf_counter() - started) / ((paced_calls - 1) * PACE)
    return {"ok": ok, "retry": retry, "paced": paced}


async def run(calls: int, rounds: int) -> None:
    server = ScriptedServer()
    await server.start()
    server.script("/ok", Reply(body=b"[1, 2]"))
    results: list[dict] = []
    try:
        async with aiohttp.ClientSession() as session:
            await _round(server, session, 20)  # warm-up: connections, imports
            for _ in range(rounds):
                results.append(await _round(server, session, calls))
    finally:
        await server.close()
    median = {name: statistics.median(r[name] for r in results) for name in results[0]}
    print(f"rounds: {rounds} of {calls} GETs (medians)")
    print(f"ok_ms_per_get: {median['ok'] * 1000:.3f}")
    print(f"retry_ms_per_get_500_then_200: {median['retry'] * 1000:.3f}")
    print(f"paced_ratio_to_floor: {median['paced']:.3f} (one call per {PACE * 1000:g} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("bot.sources.http").setLevel(logging.ERROR)  # the retry part's warnings
    load = os.getloadavg()
    print(f"load: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    asyncio.run(run(args.calls, args.rounds))
    print(f"load_after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
