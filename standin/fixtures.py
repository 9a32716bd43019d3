"""pytest fixtures for the Discord stand-in. To use them in a test module or ``conftest.py``::

    from standin.fixtures import (  # noqa: F401
        discord_standin_fixture,
        standin_fixture,
    )

- ``standin``: a started :class:`StandIn` (default world) with discord.py pointed at it for the
  test; the previous discord.py targets are restored afterwards.
- ``discord_standin``: the same stand-in without touching discord.py (e.g. for a subprocess test
  that sets ``PAPERBOT_DISCORD_API=standin.url``).

Tests that need other options build their own::

    async with running_standin(enforce_limits=True) as standin:
        with discord_py_pointed_at(standin.url): ...
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .seams import point_discord_py_at
from .server import StandIn, running_standin


@pytest.fixture(name="discord_standin")
async def discord_standin_fixture() -> AsyncIterator[StandIn]:
    async with running_standin() as standin:
        yield standin


@pytest.fixture(name="standin")
async def standin_fixture(discord_standin: StandIn) -> AsyncIterator[StandIn]:
    restore = point_discord_py_at(discord_standin.url)
    try:
        yield discord_standin
    finally:
        restore()
