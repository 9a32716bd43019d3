"""A local OpenAI-compatible server for tests: chat completions (plain and SSE), embeddings, models.

Behaviour is scriptable: queue :class:`Reply` objects (or plain strings) with
:meth:`FakeLLMServer.queue`, or set :attr:`FakeLLMServer.responder` to a function of the request
body. Faults are replies too: ``Reply(status=429, headers={"Retry-After": "1"})``,
``Reply(status=500)``, ``Reply(delay=5)`` (slower than the client's timeout), or invalid JSON
content followed by a valid reply for the repair round. Every request is kept in
:attr:`FakeLLMServer.requests`.

It also imitates what real local servers (llama.cpp, vLLM, Ollama) do that OpenAI does not:
``stream_usage=False`` sends no ``usage`` in streams even when asked (llama.cpp); any model
name is accepted and echoed while ``/v1/models`` lists only :attr:`models`; ``max_tokens`` is
honoured by cutting the reply and answering ``finish_reason: "length"``; ``json_delay`` makes
JSON mode slow; ``embeddings_route`` can be ``"missing"`` (HTTP 404, no route) or
``"unsupported"`` (HTTP 500, like llama.cpp started without embeddings). :attr:`active`
counts requests being worked on and :attr:`cancelled` those whose client went away, so a test
can see that an abandoned request stopped; ``slots=1`` serves one chat request at a time, as a
single-slot llama.cpp server does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import inspect
import json
import logging
import math
import re
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

log = logging.getLogger(__name__)

DEFAULT_CHAT_MODEL = "fake-chat"
DEFAULT_EMBED_MODEL = "fake-embed"
_WORD_RE = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    _WORD_RE.findall(
        "a an the of in on for to and or is are was were be by with from that this which what "
        "how do does did can could about into as at it its their there these those than then"
    )
)


@dataclass
class Reply:
    """One scripted answer. ``status`` >= 400 sends an OpenAI-style error body."""

    content: str = ""
    status: int = 200
    error: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the response starts
    chunk_delay: float = 0.0  # seconds between streamed chunks
    usage: bool = True  # False: send no usage (like some local servers)
    finish_reason: str = "stop"
    raw_body: str | None = None  # sent verbatim (malformed responses)


Responder = Callable[[dict[str, Any]], "Reply | str | Awaitable[Reply | str]"]


@dataclass
class RecordedRequest:
    """A request the server received (``json`` is the parsed body) and the status it got."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    status: int = 0

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.json or {}).get("messages", []))

    @property
    def system(self) -> str:
        return "\n".join(m.get("content", "") for m in self.messages if m.get("role") == "system")

    @property
    def user(self) -> str:
        """The last user message."""
        users = [m.get("content", "") for m in self.messages if m.get("role") == "user"]
        return users[-1] if users else ""

    @property
    def prompt(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.messages)


def count_tokens(text: str) -> int:
    """A rough, deterministic token count (words and punctuation runs)."""
    return len(re.findall(r"\w+|[^\w\s]+", text))


def cut_tokens(text: str, limit: int) -> str:
    """``text`` up to its ``limit``-th token (as :func:`count_tokens` counts), as a server cuts."""
    matches = list(re.finditer(r"\w+|[^\w\s]+", text))
    if len(matches) <= limit:
        return text
    return text[: matches[limit - 1].end()]


def _stem(word: str) -> str:
    for suffix in ("ings", "ing", "ies", "es", "s", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def hashed_embedding(text: str, dim: int = 256) -> list[float]:
    """Hashed bag of (crudely stemmed) words, L2-normalised: similar texts get similar vectors."""
    vector = [0.0] * dim
    for word in _WORD_RE.findall(text.lower()):
        if word in _STOP:
            continue
        digest = hashlib.blake2b(_stem(word).encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dim
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(v * v for v in vector))
    if norm == 0:
        vector[0] = 1.0
        return vector
    return [v / norm for v in vector]


class FakeLLMServer:
    """An OpenAI-compatible HTTP server on 127.0.0.1 and a random port.

    ``async with FakeLLMServer() as server:`` then point a client at ``server.base_url``.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        models: Iterable[str] = (DEFAULT_CHAT_MODEL, DEFAULT_EMBED_MODEL),
        embedding_dim: int = 256,
        reject_response_format: bool = False,
        reject_stream_options: bool = False,
        stream_usage: bool = True,
        json_delay: float = 0.0,
        embeddings_route: str = "ok",
        slots: int = 0,
    ) -> None:
        self.api_key = api_key
        self.models = list(models)
        self.embedding_dim = embedding_dim
        self.reject_response_format = reject_response_format
        self.reject_stream_options = reject_stream_options
        self.stream_usage = stream_usage
        self.json_delay = json_delay
        if embeddings_route not in ("ok", "missing", "unsupported"):
            raise ValueError(
                f"embeddings_route must be ok, missing or unsupported, not {embeddings_route}"
            )
        self.embeddings_route = embeddings_route
        self.hits: dict[str, int] = {}  # requests per path, including unrouted ones
        # slots > 0: chat requests wait for one of this many slots, as on a single-slot
        # llama.cpp server (a request whose client went away frees its slot).
        self._slots = asyncio.Semaphore(slots) if slots > 0 else None
        self.active = 0  # chat requests being worked on now
        self.cancelled = 0  # chat requests whose client disconnected before the end
        self.replies: deque[Reply | str] = deque()
        self.embedding_replies: deque[Reply] = deque()  # faults for /v1/embeddings
        self.responder: Responder | None = None
        self.requests: list[RecordedRequest] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    # --- scripting ------------------------------------------------------------------------

    def queue(self, *replies: Reply | str) -> None:
        """Answer the next chat requests with these, in order (before any responder)."""
        self.replies.extend(replies)

    def fail(self, status: int, times: int = 1, **kwargs: Any) -> None:
        """Queue ``times`` error replies with ``status``."""
        self.queue(*(Reply(status=status, **kwargs) for _ in range(times)))

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    def reset(self) -> None:
        self.requests.clear()
        self.replies.clear()
        self.embedding_replies.clear()

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> FakeLLMServer:
        app = web.Application(middlewares=[self._count_hit])
        app.router.add_post("/v1/chat/completions", self._chat)
        if self.embeddings_route != "missing":
            app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(
            app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        self.port = server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeLLMServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # --- handlers -------------------------------------------------------------------------

    @web.middleware
    async def _count_hit(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Every request, routed or not (a missing route is still a request that was sent)."""
        self.hits[request.path] = self.hits.get(request.path, 0) + 1
        return await handler(request)

    async def _record(self, request: web.Request) -> RecordedRequest:
        try:
            body = await request.json() if request.can_read_body else None
        except json.JSONDecodeError:
            body = None
        record = RecordedRequest(request.method, request.path, dict(request.headers), body)
        self.requests.append(record)
        return record

    def _auth_error(self, record: RecordedRequest) -> web.Response | None:
        if self.api_key is None:
            return None
        sent = record.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if sent == self.api_key:
            return None
        # Like OpenAI, echo a masked form of the key; the client must not repeat even that.
        masked = sent[:3] + "*" * max(0, len(sent) - 7) + sent[-4:] if len(sent) > 7 else "***"
        return self._error(
            record,
            Reply(status=401, error=f"Incorrect API key provided: {masked}."),
            code="invalid_api_key",
        )

    def _error(
        self, record: RecordedRequest, reply: Reply, code: str | None = None
    ) -> web.Response:
        record.status = reply.status
        body = {
            "error": {
                "message": reply.error or f"fake server error {reply.status}",
                "type": "invalid_request_error" if reply.status < 500 else "server_error",
                "param": None,
                "code": code,
            }
        }
        return web.json_response(body, status=reply.status, headers=reply.headers)

    async def _next_reply(self, body: dict[str, Any]) -> Reply:
        if self.replies:
            reply: Reply | str = self.replies.popleft()
        elif self.responder is not None:
            produced = self.responder(body)
            reply = await produced if inspect.isawaitable(produced) else produced
        else:
            reply = "OK"
        return Reply(content=reply) if isinstance(reply, str) else reply

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.active += 1
        try:
            if self._slots is None:
                return await self._chat_work(request)
            async with self._slots:
                return await self._chat_work(request)
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.active -= 1

    async def _chat_work(self, request: web.Request) -> web.StreamResponse:
        record = await self._record(request)
        denied = self._auth_error(record)
        if denied is not None:
            return denied
        body = record.json if isinstance(record.json, dict) else {}
        if self.reject_response_format and "response_format" in body:
            return self._error(
                record,
                Reply(status=400, error="Unrecognized request argument supplied: response_format"),
            )
        if self.reject_stream_options and "stream_options" in body:
            return self._error(
                record, Reply(status=400, error="Unrecognized argument: stream_options")
            )
        reply = await self._next_reply(body)
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if self.json_delay and "response_format" in body:
            await asyncio.sleep(self.json_delay)
        if reply.status >= 400:
            return self._error(record, reply)
        record.status = reply.status
        if reply.raw_body is not None:
            return web.Response(
                text=reply.raw_body, content_type="application/json", headers=reply.headers
            )
        model = body.get("model", DEFAULT_CHAT_MODEL)  # echoed, whatever it is
        limit = body.get("max_tokens") or body.get("max_completion_tokens")
        if isinstance(limit, int) and limit > 0 and count_tokens(reply.content) > limit:
            reply = replace(reply, content=cut_tokens(reply.content, limit), finish_reason="length")
        prompt_tokens = sum(
            count_tokens(str(m.get("content", ""))) for m in body.get("messages", [])
        )
        completion_tokens = count_tokens(reply.content)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if body.get("stream"):
            include_usage = self.stream_usage and bool(
                (body.get("stream_options") or {}).get("include_usage")
            )
            return await self._stream(request, reply, model, usage if include_usage else None)
        payload = {
            "id": f"chatcmpl-{len(self.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": reply.finish_reason,
                }
            ],
        }
        if reply.usage:
            payload["usage"] = usage
        return web.json_response(payload, headers=reply.headers)

    async def _stream(
        self, request: web.Request, reply: Reply, model: str, usage: dict[str, int] | None
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", **reply.headers}
        )
        await response.prepare(request)
        base = {
            "id": "chatcmpl-stream",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
        }

        async def send(data: dict[str, Any] | str) -> None:
            text = data if isinstance(data, str) else json.dumps(data)
            await response.write(f"data: {text}\n\n".encode())

        pieces = re.findall(r"\S+\s*|\s+", reply.content) or [""]
        for number, piece in enumerate(pieces):
            delta: dict[str, str] = {"content": piece}
            if number == 0:
                delta["role"] = "assistant"
            await send({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]})
            if reply.chunk_delay:
                await asyncio.sleep(reply.chunk_delay)
        await send(
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": reply.finish_reason}]}
        )
        if usage is not None and reply.usage:
            await send({**base, "choices": [], "usage": usage})
        await send("[DONE]")
        await response.write_eof()
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        denied = self._auth_error(record)
        if denied is not None:
            return denied
        if self.embeddings_route == "unsupported":
            # llama.cpp's server without embeddings enabled answers every call like this.
            return self._error(
                record,
                Reply(
                    status=500,
                    error="Llama model must be created with embedding=True to call this method",
                ),
            )
        if self.embedding_replies:
            reply = self.embedding_replies.popleft()
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if reply.status >= 400:
                return self._error(record, reply)
        body = record.json if isinstance(record.json, dict) else {}
        inputs = body.get("input", [])
        if isinstance(inputs, str):
            inputs = [inputs]
        fmt = body.get("encoding_format", "float")
        data = []
        for index, text in enumerate(inputs):
            vector = hashed_embedding(str(text), self.embedding_dim)
            if fmt == "base64":
                encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            else:
                encoded = vector
            data.append({"object": "embedding", "index": index, "embedding": encoded})
        tokens = sum(count_tokens(str(text)) for text in inputs)
        record.status = 200
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body.get("model", DEFAULT_EMBED_MODEL),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _models(self, request: web.Request) -> web.Response:
        record = await self._record(request)
        denied = self._auth_error(record)
        if denied is not None:
            return denied
        record.status = 200
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models]
        return web.json_response({"object": "list", "data": data})
