"""HTTP GET with timeouts, retries and polite pacing, shared by the fetchers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

from bot.errors import SourceError

log = logging.getLogger(__name__)

USER_AGENT = "paperbot/0.1 (+https://github.com/paperbot/paperbot)"

Sleep = Callable[[float], Awaitable[Any]]
Clock = Callable[[], float]

_MAX_ERROR_BODY = 200


class HTTPStatusError(SourceError):
    """A response with a status that retrying will not fix (most 4xx)."""

    def __init__(self, message: str, *, url: str, status: int, body: str) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.body = body  # the whole decoded body, for callers that parse error documents


class RateLimiter:
    """Keeps at least ``min_interval`` seconds between the starts of successive requests.

    arXiv asks for one request every 3 seconds; share one limiter between every arXiv call.
    ``clock`` and ``sleep`` are injectable so tests do not wait.
    """

    def __init__(
        self,
        min_interval: float,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.min_interval = min_interval
        self._clock = clock
        self._sleep = sleep
        self._last: float | None = None
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Return once a request may start; call it right before each request."""
        async with self._lock:
            now = self._clock()
            if self._last is not None:
                delay = self._last + self.min_interval - now
                if delay > 0:
                    log.debug("rate limiter: waiting %.2f s", delay)
                    await self._sleep(delay)
                    now = max(self._clock(), self._last + self.min_interval)
            self._last = now


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
    limiter: RateLimiter | None = None,
) -> bytes:
    """GET ``url`` and return the body of a 2xx response.

    Up to ``retries`` more attempts follow a 429, a 5xx, a timeout or a connection error, after
    ``backoff * 2**n`` seconds (a 429's or 503's Retry-After is honoured, capped at
    ``max_retry_after``). Any other status raises :class:`HTTPStatusError` at once. When the
    attempts run out, :class:`SourceError` says what went wrong the last time.
    """
    shown = _display_url(url, params)
    attempts = retries + 1
    headers = {"User-Agent": USER_AGENT}
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    problem = "no attempt made"
    for attempt in range(attempts):
        delay = backoff * (2**attempt)
        if limiter is not None:
            await limiter.wait()
        try:
            async with session.get(
                url, params=params, headers=headers, timeout=client_timeout
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
                problem = status_text
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                if retry_after is not None and response.status in (429, 503):
                    delay = min(retry_after, max_retry_after)
        except TimeoutError:
            problem = f"no complete response within {timeout:g} s"
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            problem = f"connection error ({type(exc).__name__}: {exc})"
        except aiohttp.ClientResponseError as exc:
            # Only from a session created with raise_for_status=True.
            if not _retryable(exc.status):
                message = f"GET {shown} failed: HTTP {exc.status} {exc.message}".rstrip()
                raise HTTPStatusError(message, url=shown, status=exc.status, body="") from exc
            problem = f"HTTP {exc.status} {exc.message}".rstrip()
        except aiohttp.ClientError as exc:
            raise SourceError(f"GET {shown} failed: {type(exc).__name__}: {exc}") from exc
        if attempt + 1 < attempts:
            log.warning(
                "GET %s: %s; retry %d/%d in %.1f s", shown, problem, attempt + 1, retries, delay
            )
            await sleep(delay)
    noun = "attempt" if attempts == 1 else "attempts"
    raise SourceError(f"GET {shown} failed after {attempts} {noun}: {problem}")


async def fetch_with_policy(
    session: aiohttp.ClientSession,
    url: str | URL,
    policy: RetryPolicy,
    *,
    params: Mapping[str, str] | None = None,
    limiter: RateLimiter | None = None,
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
