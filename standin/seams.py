"""Point discord.py at the stand-in, and run a bot against it for the length of a test.

discord.py has no supported option for another API host; these two class attributes are the
seams (checked against discord.py 2.7.1, and asserted by standin/tests/test_standin.py):

- ``discord.http.Route.BASE`` is read whenever a Route is built (REST, interaction callbacks,
  webhooks/follow-ups);
- ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` is where a plain Client connects.

The application has its own switch (``PAPERBOT_DISCORD_API=http://HOST:PORT``); this module is
the test-side equivalent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

import discord
import discord.gateway
import discord.http
import yarl

ClientT = TypeVar("ClientT", bound=discord.Client)


def point_discord_py_at(url: str) -> Callable[[], None]:
    """Send discord.py's REST and gateway traffic to ``url`` (``http://HOST:PORT``).

    Returns a function that restores the previous targets.
    """
    base = yarl.URL(url)
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = str(base.with_path("/api/v10"))
    scheme = "wss" if base.scheme == "https" else "ws"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = base.with_scheme(scheme).with_path(
        "/gateway"
    )

    def restore() -> None:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway

    return restore


@contextlib.contextmanager
def discord_py_pointed_at(url: str) -> Iterator[None]:
    restore = point_discord_py_at(url)
    try:
        yield
    finally:
        restore()


@contextlib.asynccontextmanager
async def running_bot(
    client: ClientT, token: str, *, ready_timeout: float = 10.0
) -> AsyncIterator[ClientT]:
    """Start ``client`` with ``token``, wait for ``on_ready``, and close it on exit.

    Errors from ``client.start`` (e.g. LoginFailure) are raised here instead of hanging.
    """
    task = asyncio.create_task(client.start(token), name="standin-bot")
    ready = asyncio.create_task(client.wait_until_ready())
    try:
        done, _ = await asyncio.wait(
            {task, ready}, timeout=ready_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if task in done:
            task.result()  # raises the start() error
            raise RuntimeError("client.start() returned before the client became ready")
        if ready not in done:
            raise TimeoutError(f"bot not ready within {ready_timeout}s")
        yield client
    finally:
        ready.cancel()
        await client.close()
        # start() returns once closed; an error it raised was already reported above.
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=5)
