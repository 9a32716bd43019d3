"""Recent search results, shared by identical searches (a burst of the same query runs once).

Entries are keyed by the search's parameters and valid while the store's write generation
(``Database.generation``) is unchanged and for at most ``ttl`` seconds (writes by another
process, such as ``paperbot import``, do not bump the generation). Searches asked while the
same one is running wait for it instead of running again.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

T = TypeVar("T")

TTL_SECONDS = 10.0
CAPACITY = 512


class ResultCache(Generic[T]):
    def __init__(self, ttl: float = TTL_SECONDS, capacity: int = CAPACITY) -> None:
        self.ttl = ttl
        self.capacity = capacity
        self._done: OrderedDict[Hashable, tuple[int, float, T]] = OrderedDict()
        self._running: dict[tuple[Hashable, int], asyncio.Future[T]] = {}

    async def get(self, key: Hashable, generation: int, compute: Callable[[], Awaitable[T]]) -> T:
        """The cached result for ``key`` at ``generation``, else ``await compute()`` once."""
        held = self._done.get(key)
        if held is not None and held[0] == generation and time.monotonic() - held[1] < self.ttl:
            self._done.move_to_end(key)
            return held[2]
        running = self._running.get((key, generation))
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[(key, generation)] = future
        try:
            result = await compute()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else needs to
            raise
        else:
            future.set_result(result)
            self._done[key] = (generation, time.monotonic(), result)
            self._done.move_to_end(key)
            while len(self._done) > self.capacity:
                self._done.popitem(last=False)
            return result
        finally:
            del self._running[(key, generation)]
