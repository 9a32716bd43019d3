"""Test helpers: fixture paths, a scripted HTTP server on 127.0.0.1, a fake sleep/clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer

FIXTURES = Path(__file__).parent.parent / "fixtures"
SOURCE_FIXTURES = FIXTURES / "sources"


@dataclass
class Reply:
    """One scripted response; ``delay`` makes the server sit on the request first."""

    status: int = 200
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str = "application/json"


@dataclass
class SeenRequest:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


class ScriptedServer:
    """Replies to each path with its scripted replies in order; the last one repeats."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[Reply]] = {}
        self.requests: list[SeenRequest] = []
        self._server: TestServer | None = None

    def script(self, path: str, *replies: Reply) -> None:
        self.scripts[path] = list(replies)

    def url(self, path: str = "") -> str:
        assert self._server is not None
        return str(self._server.make_url(path))

    def hits(self, path: str) -> int:
        return sum(1 for request in self.requests if request.path == path)

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(SeenRequest(request.path, dict(request.query), dict(request.headers)))
        queue = self.scripts.get(request.path)
        if not queue:
            return web.Response(status=404, text=f"no script for {request.path}")
        reply = queue.pop(0) if len(queue) > 1 else queue[0]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        body = reply.body.encode() if isinstance(reply.body, str) else reply.body
        return web.Response(
            status=reply.status,
            body=body,
            headers=reply.headers,
            content_type=reply.content_type,
        )

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1", port=0)
        await self._server.start_server()

    async def close(self) -> None:
        if self._server is not None:
            await self._server.close()


class FakeSleep:
    """Records requested sleeps instead of waiting; optionally advances a fake clock."""

    def __init__(self) -> None:
        self.calls: list[float] = []
        self.now = 1000.0

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now
