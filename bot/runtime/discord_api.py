"""Pointing discord.py at another Discord API (a local stand-in for tests).

``PAPERBOT_DISCORD_API=http://HOST:PORT`` sends REST calls to ``http://HOST:PORT/api/v10``
and opens the gateway at ``ws://HOST:PORT/gateway``. These two discord.py attributes are not
public API; ``tests/test_discord_api.py`` checks that they still exist.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

import discord
import yarl

log = logging.getLogger(__name__)

ENV_VAR = "PAPERBOT_DISCORD_API"


def point_discord_at(base_url: str) -> None:
    """Send discord.py's REST and gateway traffic to ``base_url``."""
    url = yarl.URL(base_url.rstrip("/"))
    if url.scheme not in {"http", "https"} or not url.host:
        raise ValueError(f"{ENV_VAR} must look like http://HOST:PORT, got {base_url!r}")
    discord.http.Route.BASE = str(url / "api" / "v10")
    ws_scheme = "wss" if url.scheme == "https" else "ws"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = url.with_scheme(ws_scheme) / "gateway"


def configure_from_env(environ: Mapping[str, str] | None = None) -> str | None:
    """Apply ``PAPERBOT_DISCORD_API`` if set; returns the URL used."""
    environ = os.environ if environ is None else environ
    base = environ.get(ENV_VAR)
    if base:
        point_discord_at(base)
        log.info("using the Discord API at %s", base)
    return base
