"""HTTP GET with timeouts, retries (tenacity) and polite pacing, shared by the fetchers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from yarl import URL

from bot.errors import SourceError
from bot.pacing import WindowLimiter

log = logging.getLogger(__name__)

USER_AGENT = "paperbot/0.1 (+https://github.com/paperbot/paperbot)"

Sleep = Callable[[float], Awaitable[Any]]

_MAX_ERROR_BODY = 200


class HTTPStatusError(SourceError):
    """A response with a status that retrying will not fix (most 4xx)."""

    def __init__(self, message: str, *, url: str, status: int, body: str) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.body = body  # the whole decoded body, for callers that parse error documents


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """The knobs of :func:`fetch_bytes`, bundled so fetchers can pass them through."""

    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0
    max_retry_after: float = 60.0
    sleep: Sleep = asyncio.sleep


DEFAULT_POLICY = RetryPolicy()


def _retryable(status: int) -> bool:
    """Rate limiting and server-side trouble are worth another try."""
    return status == 429 or status >= 500


def _display_url(url: str | URL, params: Mapping[str, str] | None) -> str:
    target = url if isinstance(url, URL) else URL(url)
    if params:
        target = target.update_query(params)
    return str(target)


def _retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a Retry-After header: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _snippet(body: str) -> str:
    text = " ".join(body.split())
    return text[:_MAX_ERROR_BODY] + ("…" if len(text) > _MAX_ERROR_BODY else "")


class _Retryable(SourceError):
    """One attempt failed in a way another attempt may fix (a 429, a 5xx, a timeout, ...)."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.retry_after = retry_after


class _Backoff(wait_exponential):
    """``backoff * 2**n`` seconds, or the server's Retry-After (capped) when it sent one."""

    def __init__(self, backoff: float, max_retry_after: float) -> None:
        super().__init__(multiplier=backoff)
        self.max_retry_after = max_retry_after

    def __call__(self, retry_state: RetryCallState) -> float:
        failure = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(failure, _Retryable) and failure.retry_after is not None:
            return min(failure.retry_after, self.max_retry_after)
        return super().__call__(retry_state)


async def _get_once(
    session: aiohttp.ClientSession,
    url: str | URL,
    params: Mapping[str, str] | None,
    timeout: float,  # noqa: ASYNC109 - a per-attempt limit, handed to aiohttp
    shown: str,
    limiter: WindowLimiter | None,
) -> bytes:
    """One GET: the body of a 2xx, :class:`_Retryable`, or the error that retrying won't fix."""
    if limiter is not None:
        await limiter.wait()
    try:
        async with session.get(
            url,
            params=params,
            headers={"User-Agent": USER_AGENT},
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as response:
            if 200 <= response.status < 300:
                return await response.read()
            body = (await response.read()).decode(response.charset or "utf-8", "replace")
            status_text = f"HTTP {response.status} {response.reason or ''}".rstrip()
            if not _retryable(response.status):
                message = f"GET {shown} failed: {status_text}"
                if body.strip():
                    message += f": {_snippet(body)}"
                raise HTTPStatusError(message, url=shown, status=response.status, body=body)
            retry_after = None
            if response.status in (429, 503):
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            raise _Retryable(status_text, retry_after)
    except TimeoutError:
        raise _Retryable(f"no complete response within {timeout:g} s") from None
    except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
        raise _Retryable(f"connection error ({type(exc).__name__}: {exc})") from None
    except aiohttp.ClientResponseError as exc:
        # Only from a session created with raise_for_status=True.
        if not _retryable(exc.status):
            message = f"GET {shown} failed: HTTP {exc.status} {exc.message}".rstrip()
            raise HTTPStatusError(message, url=shown, status=exc.status, body="") from exc
        raise _Retryable(f"HTTP {exc.status} {exc.message}".rstrip()) from None
    except aiohttp.ClientError as exc:
        raise SourceError(f"GET {shown} failed: {type(exc).__name__}: {exc}") from exc


async def fetch_bytes(
    session: aiohttp.ClientSession,
    url: str | URL,
    *,
    params: Mapping[str, str] | None = None,
    timeout: float = 30.0,  # noqa: ASYNC109 - a per-attempt limit, handed to aiohttp
    retries: int = 3,
    backoff: float = 1.0,
    max_retry_after: float = 60.0,
    sleep: Sleep = asyncio.sleep,
    limiter: WindowLimiter | None = None,
) -> bytes:
    """GET ``url`` and return the body of a 2xx response.

    Up to ``retries`` more attempts follow a 429, a 5xx, a timeout or a connection error, after
    ``backoff * 2**n`` seconds (a 429's or 503's Retry-After is honoured, capped at
    ``max_retry_after``); tenacity runs the policy. Any other status raises
    :class:`HTTPStatusError` at once. When the attempts run out, :class:`SourceError` says
    what went wrong the last time.
    """
    shown = _display_url(url, params)
    attempts = retries + 1

    def announce(state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome else None
        delay = state.upcoming_sleep
        number = state.attempt_number
        log.warning("GET %s: %s; retry %d/%d in %.1f s", shown, failure, number, retries, delay)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=_Backoff(backoff, max_retry_after),
        retry=retry_if_exception_type(_Retryable),
        before_sleep=announce,
        sleep=sleep,
        reraise=True,
    )
    try:
        return await retrying(_get_once, session, url, params, timeout, shown, limiter)
    except _Retryable as failure:
        noun = "attempt" if attempts == 1 else "attempts"
        raise SourceError(f"GET {shown} failed after {attempts} {noun}: {failure}") from None


async def fetch_with_policy(
    session: aiohttp.ClientSession,
    url: str | URL,
    policy: RetryPolicy,
    *,
    params: Mapping[str, str] | None = None,
    limiter: WindowLimiter | None = None,
) -> bytes:
    """:func:`fetch_bytes` with the settings of a :class:`RetryPolicy`."""
    return await fetch_bytes(
        session,
        url,
        params=params,
        timeout=policy.timeout,
        retries=policy.retries,
        backoff=policy.backoff,
        max_retry_after=policy.max_retry_after,
        sleep=policy.sleep,
        limiter=limiter,
    )
