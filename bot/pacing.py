"""The one rate limiter: a sliding window, for Discord sends and for polite HTTP fetches.

Discord allows ~50 requests/s (``WindowLimiter(48, 1.0)``); arXiv asks for one request every
3 seconds (``WindowLimiter(1, 3.0)``: one start in any 3 s, i.e. a minimum interval)."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any


class WindowLimiter:
    """At most ``max_calls`` starts in any ``period`` seconds.

    Unlike a fixed interval between calls, time lost to a slow call is made up later
    (the window allows a short burst), so a long run stays close to the allowed rate.
    """

    def __init__(
        self,
        max_calls: int,
        period: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if max_calls < 1 or period <= 0:
            raise ValueError("max_calls must be >= 1 and period > 0")
        self.max_calls = max_calls
        self.period = period
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Return when one more call may start (call right before the request)."""
        async with self._lock:
            while True:
                now = self._clock()
                while self._starts and now - self._starts[0] >= self.period:
                    self._starts.popleft()
                if len(self._starts) < self.max_calls:
                    self._starts.append(now)
                    return
                await self._sleep(self._starts[0] + self.period - now)
