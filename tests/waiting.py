"""Waiting for a condition in tests, never for a fixed time."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any


async def wait_until(predicate: Callable[[], Any], limit: float = 30.0, what: str = "") -> Any:
    """Poll ``predicate`` (plain or async) until it returns something truthy; return that.

    ``limit`` only bounds a test that would otherwise hang: a loaded machine is slow, so it is
    generous, and a passing test never waits for it.
    """
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {limit} s waiting for {what or predicate}")
        await asyncio.sleep(0.02)
