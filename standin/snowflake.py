"""Discord snowflakes: 64-bit ids that embed a millisecond timestamp and sort by creation time."""

from __future__ import annotations

import datetime
import time

DISCORD_EPOCH_MS = 1_420_070_400_000


def make_snowflake(timestamp_ms: int | None = None, *, worker: int = 1, increment: int = 0) -> int:
    """Build a snowflake for ``timestamp_ms`` (Unix milliseconds, default now)."""
    if timestamp_ms is None:
        timestamp_ms = int(time.time() * 1000)
    return ((timestamp_ms - DISCORD_EPOCH_MS) << 22) | ((worker & 0x1F) << 17) | (increment & 0xFFF)


def snowflake_time(snowflake: int) -> datetime.datetime:
    """The UTC creation time encoded in a snowflake."""
    ms = (int(snowflake) >> 22) + DISCORD_EPOCH_MS
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


class SnowflakeFactory:
    """Hands out strictly increasing snowflakes based on the wall clock."""

    def __init__(self, worker: int = 1) -> None:
        self._worker = worker
        self._last = 0

    def next(self) -> int:
        candidate = make_snowflake(worker=self._worker)
        if candidate <= self._last:
            candidate = self._last + 1
        self._last = candidate
        return candidate

    def __call__(self) -> int:
        return self.next()


def iso_now() -> str:
    """The current UTC time as Discord writes timestamps (ISO-8601 with offset)."""
    return datetime.datetime.now(datetime.UTC).isoformat()
