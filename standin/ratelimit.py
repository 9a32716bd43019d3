"""Discord-like rate limits with fixed windows on the monotonic clock, and fault injection."""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import Any

MESSAGE_BUCKET = "c0ffee0000000000000000000000msgs"


def ceil_ms(seconds: float) -> float:
    """Round up to whole milliseconds so a client never retries a hair too early."""
    return math.ceil(max(seconds, 0.0) * 1000) / 1000


@dataclass
class Window:
    """``limit`` requests per ``period`` seconds; the window opens on its first request."""

    limit: int
    period: float
    start: float | None = None
    count: int = 0

    def hit(self, now: float) -> tuple[bool, int, float]:
        """Try to take a slot: (allowed, remaining, seconds until the window resets)."""
        if self.start is None or now >= self.start + self.period:
            self.start = now
            self.count = 0
        reset_after = self.start + self.period - now
        if self.count >= self.limit:
            return False, 0, reset_after
        self.count += 1
        return True, self.limit - self.count, reset_after


@dataclass
class Fault:
    """One injected answer (or delay) for requests matching ``method`` and ``path_regex``."""

    method: str
    path_regex: str
    status: int | None
    count: int | None = 1
    retry_after: float | None = None
    body: dict[str, Any] | None = None
    delay: float = 0.0
    is_global: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    # The request is carried out (a message lands) and only its answer is held for ``delay``
    # seconds (``math.inf``: until the stand-in stops): a hung-but-landed request.
    land: bool = False
    used: int = 0

    def __post_init__(self) -> None:
        self._pattern = re.compile(self.path_regex)

    def matches(self, method: str, path: str) -> bool:
        if self.count is not None and self.used >= self.count:
            return False
        if self.method != "*" and self.method.upper() != method.upper():
            return False
        return self._pattern.search(path) is not None

    @property
    def exhausted(self) -> bool:
        return self.count is not None and self.used >= self.count


def rate_limit_headers(
    *, limit: int, remaining: int, reset_after: float, bucket: str, scope: str | None = None
) -> dict[str, str]:
    reset_after = ceil_ms(reset_after)
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset-After": f"{reset_after:.3f}",
        "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
        "X-RateLimit-Bucket": bucket,
    }
    if scope is not None:
        headers["X-RateLimit-Scope"] = scope
    return headers


def too_many_requests(
    retry_after: float,
    *,
    is_global: bool = False,
    limit: int = 5,
    bucket: str = MESSAGE_BUCKET,
    scope: str | None = None,
) -> tuple[dict[str, str], dict[str, Any]]:
    """Headers and body of a 429 that discord.py accepts as a real rate limit (``Via`` set)."""
    retry_after = ceil_ms(retry_after)
    headers = {"Via": "1.1 google", "Retry-After": str(max(1, math.ceil(retry_after)))}
    if is_global:
        headers["X-RateLimit-Global"] = "true"
        headers["X-RateLimit-Scope"] = "global"
    else:
        headers.update(
            rate_limit_headers(
                limit=limit,
                remaining=0,
                reset_after=retry_after,
                bucket=bucket,
                scope=scope or "user",
            )
        )
    body = {
        "message": "You are being rate limited.",
        "retry_after": retry_after,
        "global": is_global,
    }
    if is_global:
        body["code"] = 0
    return headers, body


def monotonic() -> float:
    return time.monotonic()
