from __future__ import annotations

import socket
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import aiohttp
import pytest

from bot.errors import SourceError
from bot.pacing import WindowLimiter
from bot.sources.http import USER_AGENT, HTTPStatusError, _retry_after_seconds, fetch_bytes
from tests.sources.helpers import FakeSleep, Reply, ScriptedServer


async def test_fetch_bytes_returns_the_body_and_sends_an_honest_user_agent(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/ok", Reply(body=b"[1, 2]"))
    body = await fetch_bytes(
        session, server.url("/ok"), params={"date": "2025-01-14"}, sleep=fake_sleep
    )
    assert body == b"[1, 2]"
    [request] = server.requests
    assert request.headers["User-Agent"] == USER_AGENT
    assert request.query == {"date": "2025-01-14"}
    assert fake_sleep.calls == []


async def test_fetch_bytes_retries_a_500_with_exponential_backoff_then_succeeds(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/flaky", Reply(500, "boom"), Reply(502, "bad gateway"), Reply(body=b"fine"))
    body = await fetch_bytes(session, server.url("/flaky"), backoff=0.5, sleep=fake_sleep)
    assert body == b"fine"
    assert server.hits("/flaky") == 3
    assert fake_sleep.calls == [0.5, 1.0]


async def test_fetch_bytes_gives_up_after_the_last_retry_with_one_clear_message(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/down", Reply(503, "maintenance"))
    with pytest.raises(SourceError) as caught:
        await fetch_bytes(session, server.url("/down"), retries=3, sleep=fake_sleep)
    assert server.hits("/down") == 4
    assert fake_sleep.calls == [1.0, 2.0, 4.0]
    message = str(caught.value)
    assert message.startswith(f"GET {server.url('/down')} failed after 4 attempts: HTTP 503")
    assert not isinstance(caught.value, HTTPStatusError)


async def test_fetch_bytes_honours_retry_after_on_429(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/busy", Reply(429, "slow down", headers={"Retry-After": "7"}), Reply(body=b"ok"))
    assert await fetch_bytes(session, server.url("/busy"), sleep=fake_sleep) == b"ok"
    assert fake_sleep.calls == [7.0]


async def test_fetch_bytes_caps_a_long_retry_after(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/busy", Reply(429, headers={"Retry-After": "3600"}), Reply(body=b"ok"))
    body = await fetch_bytes(session, server.url("/busy"), max_retry_after=20, sleep=fake_sleep)
    assert body == b"ok"
    assert fake_sleep.calls == [20.0]


async def test_fetch_bytes_raises_at_once_on_404_with_status_and_body_start(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/missing", Reply(404, "x" * 500, content_type="text/plain"))
    with pytest.raises(HTTPStatusError) as caught:
        await fetch_bytes(session, server.url("/missing"), sleep=fake_sleep)
    assert server.hits("/missing") == 1
    assert fake_sleep.calls == []
    assert caught.value.status == 404
    assert "HTTP 404 Not Found: " + "x" * 200 + "…" in str(caught.value)
    assert "x" * 201 not in str(caught.value)
    assert caught.value.body == "x" * 500


async def test_fetch_bytes_retries_a_timeout_then_reports_it(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/slow", Reply(body=b"late", delay=0.5))
    with pytest.raises(
        SourceError, match=r"failed after 2 attempts: no complete response within 0.1 s"
    ):
        await fetch_bytes(session, server.url("/slow"), timeout=0.1, retries=1, sleep=fake_sleep)
    assert server.hits("/slow") == 2
    assert fake_sleep.calls == [1.0]


async def test_fetch_bytes_retries_connection_errors(
    session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(SourceError, match=r"failed after 3 attempts: connection error"):
        await fetch_bytes(session, f"http://127.0.0.1:{port}/", retries=2, sleep=fake_sleep)
    assert fake_sleep.calls == [1.0, 2.0]


async def test_fetch_bytes_waits_for_the_rate_limiter_before_every_attempt(
    server: ScriptedServer, session: aiohttp.ClientSession, fake_sleep: FakeSleep
) -> None:
    server.script("/x", Reply(500), Reply(body=b"ok"))
    limiter = WindowLimiter(1, 3.0, clock=fake_sleep.clock, sleep=fake_sleep)
    await fetch_bytes(session, server.url("/x"), backoff=1.0, sleep=fake_sleep, limiter=limiter)
    # backoff 1 s after the 500, then the limiter tops it up to 3 s between the two starts
    assert fake_sleep.calls == [1.0, 2.0]


async def test_a_one_call_window_is_a_minimum_interval(fake_sleep: FakeSleep) -> None:
    limiter = WindowLimiter(1, 3.0, clock=fake_sleep.clock, sleep=fake_sleep)
    await limiter.wait()
    await limiter.wait()
    fake_sleep.now += 1.0  # one second of other work
    await limiter.wait()
    fake_sleep.now += 10.0
    await limiter.wait()
    assert fake_sleep.calls == [3.0, 2.0]


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2025, 1, 14, 12, 0, tzinfo=UTC)
    assert _retry_after_seconds("12") == 12.0
    assert (
        _retry_after_seconds(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30
    )
    assert _retry_after_seconds("soon") is None
    assert _retry_after_seconds(None) is None
