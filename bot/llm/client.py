"""The optional LLM client: any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp).

Only ``/v1/chat/completions``, ``/v1/embeddings`` and ``/v1/models`` are used.
:class:`LLMClient` adds what the bot needs around the ``openai`` package: a concurrency limit,
a daily token budget kept in SQLite (a restart does not reset it; tokens the server did not
report are estimated and counted as such), JSON replies validated against the expected shape
with one repair round (or, after a reply cut by ``max_tokens``, one round with a larger
limit), one deadline (``llm.timeout``) for a call and all its retries, no retry of errors
that cannot change (4xx, a missing route), and one exception type, :class:`LLMUnavailable`,
whose message is a single line that never contains the API key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

import openai

from bot.config import Config, LLMConfig
from bot.errors import PaperbotError
from bot.store.database import Database
from bot.store.llm_store import add_usage, tokens_used, usage
from bot.text import one_line

try:  # the HTTP library the installed openai package is built on
    import httpx2 as _httpx
except ImportError:  # pragma: no cover - older openai releases use httpx
    import httpx as _httpx  # type: ignore[no-redef]

log = logging.getLogger(__name__)

T = TypeVar("T")
Message = dict[str, str]
DeltaCallback = Callable[[str], Awaitable[None]]

DEFAULT_MAX_RETRIES = 2
EMBED_BATCH = 64
RETRY_BACKOFF = 0.5  # seconds before the first retry; doubled each time
LENGTH_RETRY_FACTOR = 2  # a JSON reply cut by max_tokens is asked again with this much room
_SNIPPET = 160
_THINK_RE = re.compile(r"<think>.*?</think>", re.S | re.I)
_FENCE_RE = re.compile(r"^```[a-zA-Z]*\s*\n?(.*?)\n?```$", re.S)
_SECRET_RE = re.compile(r"\b(?:sk|pk|key|hf|gsk)[-_][A-Za-z0-9_\-*]{6,}")
# A 5xx that says the server cannot do this at all (llama.cpp without embeddings): permanent.
_UNSUPPORTED_RE = re.compile(
    r"must be created with embedding|not supported|unsupported|does not support|not enabled|"
    r"no such route|not found",
    re.I,
)


class LLMUnavailable(PaperbotError):
    """The LLM gave no usable answer. ``kind`` says why; the message is one safe line.

    kinds: auth, rate_limit, server, unsupported (a 5xx saying the server cannot do it),
    timeout, connection, bad_request, not_found, budget, bad_output, error. Only rate_limit,
    server and connection are retried.
    """

    def __init__(
        self,
        message: str,
        *,
        kind: str = "error",
        retry_after: float | None = None,
        tokens: int = 0,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.tokens = tokens  # tokens spent before the failure (a failed repair round)


class LLMBudgetExceeded(LLMUnavailable):
    """Today's (UTC) token budget is used up; no request was sent."""


class LLMBadOutput(LLMUnavailable):
    """The reply was not the JSON asked for, even after one repair round."""


@dataclass(frozen=True, slots=True)
class ChatResult:
    """A completed chat reply and its token usage (``estimated`` when the server sent none)."""

    text: str
    prompt_tokens: int
    completion_tokens: int
    model: str
    finish_reason: str | None = None
    estimated: bool = False

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class JSONResult(Generic[T]):
    """A validated JSON reply; ``tokens`` counts every round, ``repaired`` if one was needed."""

    value: T
    tokens: int
    repaired: bool
    text: str
    rounds: int = 1
    estimated: bool = False


def utc_today() -> date:
    return datetime.now(UTC).date()


def display_url(base_url: str) -> str:
    """``scheme://host[:port]/path`` without credentials or query, for messages and logs."""
    if not base_url:
        return "the OpenAI API"
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"


def strip_reasoning(text: str) -> str:
    """Drop ``<think>...</think>`` blocks that some local reasoning models emit."""
    return _THINK_RE.sub("", text).strip()


def parse_json_object(text: str) -> dict[str, Any]:
    """The JSON object in a reply (tolerates code fences and prose around it)."""
    body = strip_reasoning(text)
    fenced = _FENCE_RE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    if not body.startswith("{"):
        start, end = body.find("{"), body.rfind("}")
        if start == -1 or end <= start:
            raise ValueError("the reply contains no JSON object")
        body = body[start : end + 1]
    try:
        value = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _estimate_tokens(text: str) -> int:
    return len(text) // 4 + 1


class LLMClient:
    """An OpenAI-compatible endpoint with a concurrency limit and a daily token budget.

    Use ``async with LLMClient(...)`` (or call :meth:`close`). ``db`` persists the token
    count per UTC day; without it the count lives in memory. A budget of 0 means no limit.
    Chat tokens count against the budget; embedding tokens are recorded but not counted
    (they cost a fraction), yet once the budget is used up no request of either kind is sent.
    """

    def __init__(
        self,
        config: LLMConfig,
        api_key: str | None = None,
        *,
        db: Database | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        today: Callable[[], date] = utc_today,
    ) -> None:
        self.config = config
        self.db = db
        self._api_key = api_key or "not-needed"
        self._today = today
        self._where = display_url(config.base_url)
        # Retries are ours, not the openai package's: they share one deadline and skip
        # errors that cannot change.
        self.max_retries = max(0, max_retries)
        self._openai = openai.AsyncOpenAI(
            base_url=config.base_url or None,
            api_key=self._api_key,
            timeout=config.timeout,
            max_retries=0,
        )
        self._semaphore = asyncio.Semaphore(config.concurrency)
        self._usage: dict[date, int] = {}
        self._estimated: dict[date, int] = {}
        # Set once the endpoint showed it has no embeddings (404 or "not supported").
        self._embeddings_missing: LLMUnavailable | None = None
        self._usage_lock = asyncio.Lock()
        # Optional request parameters this server turned out to reject; not sent again.
        self._unsupported: set[str] = set()
        self._use_max_completion_tokens = False

    def without_retries(self) -> LLMClient:
        """A client for the same endpoint, budget and store that tries each request once."""
        return LLMClient(self.config, self._api_key, db=self.db, max_retries=0, today=self._today)

    @classmethod
    def from_config(
        cls, config: Config, *, db: Database | None = None, max_retries: int = DEFAULT_MAX_RETRIES
    ) -> LLMClient:
        """A client for ``config.llm`` with the key from the environment (OPENAI_API_KEY)."""
        return cls(config.llm, config.openai_api_key, db=db, max_retries=max_retries)

    def __repr__(self) -> str:  # never show the key
        return f"<LLMClient {self._where} model={self.config.model!r}>"

    @property
    def model(self) -> str:
        return self.config.model

    @property
    def where(self) -> str:
        """The endpoint as shown in messages (no credentials)."""
        return self._where

    @property
    def embedding_model(self) -> str:
        return self.config.embedding_model

    async def close(self) -> None:
        await self._openai.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- budget ---------------------------------------------------------------------------

    async def tokens_used_today(self) -> int:
        day = self._today()
        if self.db is not None:
            return await tokens_used(self.db, day)
        return self._usage.get(day, 0)

    async def usage_today(self) -> dict[str, int]:
        """Today's counts: ``tokens``, ``estimated_tokens`` (no ``usage`` sent), ``calls``..."""
        day = self._today()
        if self.db is not None:
            return await usage(self.db, day)
        return {
            "tokens": self._usage.get(day, 0),
            "estimated_tokens": self._estimated.get(day, 0),
        }

    async def usage_line(self) -> str:
        """Today's chat tokens against the budget, saying how many are estimates."""
        counts = await self.usage_today()
        budget = self.config.daily_token_budget
        of = f" of {budget:,}" if budget > 0 else " (no daily budget)"
        note = estimate_note(counts.get("estimated_tokens", 0))
        return f"LLM tokens today (UTC): {counts['tokens']:,}{of}{note}"

    def deadline(self) -> float:
        """The event-loop time by which a call started now must be done (``llm.timeout``)."""
        return asyncio.get_running_loop().time() + self.config.timeout

    async def _check_budget(self, what: str) -> None:
        budget = self.config.daily_token_budget
        if budget <= 0:
            return
        counts = await self.usage_today()
        used = counts["tokens"]
        if used >= budget:
            message = (
                f"the daily LLM token budget ({budget:,} tokens) is used up: {used:,} used today "
                f"(UTC){estimate_note(counts.get('estimated_tokens', 0))}; it resets at 00:00 UTC "
                "(llm.daily_token_budget)"
            )
            log.warning("LLM %s not sent: %s", what, message)
            raise LLMBudgetExceeded(message, kind="budget")

    async def _count(
        self, tokens: int, *, embedding: bool = False, estimated: bool = False
    ) -> None:
        day = self._today()
        async with self._usage_lock:
            if self.db is not None:
                await add_usage(self.db, day, tokens, embedding=embedding, estimated=estimated)
            elif not embedding:
                self._usage[day] = self._usage.get(day, 0) + tokens
                if estimated:
                    self._estimated[day] = self._estimated.get(day, 0) + tokens

    # --- errors ---------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        if self._api_key and self._api_key != "not-needed":
            text = text.replace(self._api_key, "***")
        return _SECRET_RE.sub("***", one_line(text))[:_SNIPPET]

    def _error(self, exc: BaseException) -> LLMUnavailable:
        """One clear line for any failure of the endpoint (never the key)."""
        where = self._where
        if isinstance(exc, LLMUnavailable):
            return exc
        if isinstance(exc, openai.APIStatusError):
            status = exc.status_code
            detail = self._scrub(_server_message(exc))
            if status in (401, 403):
                return LLMUnavailable(
                    f"LLM endpoint {where} refused the credentials (HTTP {status}); "
                    "check OPENAI_API_KEY",
                    kind="auth",
                )
            if status == 429:
                retry_after = _retry_after(exc.response)
                hint = f"; retry after {retry_after:g}s" if retry_after is not None else ""
                return LLMUnavailable(
                    f"LLM endpoint {where} is rate limiting requests (HTTP 429{hint})",
                    kind="rate_limit",
                    retry_after=retry_after,
                )
            if status == 404:
                return LLMUnavailable(
                    f"LLM endpoint {where} answered HTTP 404 (unknown model "
                    f"{self.config.model!r} or wrong base_url?){_detail(detail)}",
                    kind="not_found",
                )
            if status >= 500:
                kind = "unsupported" if _UNSUPPORTED_RE.search(detail) else "server"
                return LLMUnavailable(
                    f"LLM endpoint {where} failed (HTTP {status}){_detail(detail)}", kind=kind
                )
            return LLMUnavailable(
                f"LLM endpoint {where} rejected the request (HTTP {status}){_detail(detail)}",
                kind="bad_request",
            )
        if isinstance(exc, openai.APITimeoutError | _httpx.TimeoutException | TimeoutError):
            return LLMUnavailable(
                f"LLM endpoint {where} did not answer within {self.config.timeout:g}s "
                "(llm.timeout, retries included)",
                kind="timeout",
            )
        if isinstance(exc, openai.APIConnectionError | _httpx.TransportError | OSError):
            return LLMUnavailable(
                f"cannot reach LLM endpoint {where} (connection refused or lost)",
                kind="connection",
            )
        if isinstance(exc, openai.APIResponseValidationError | ValueError):
            return LLMUnavailable(
                f"LLM endpoint {where} sent a malformed response", kind="bad_request"
            )
        return LLMUnavailable(f"LLM request to {where} failed ({type(exc).__name__})", kind="error")

    def _fail(self, what: str, exc: BaseException) -> LLMUnavailable:
        error = self._error(exc)
        log.warning("LLM %s failed: %s", what, error)
        return error

    # --- chat -----------------------------------------------------------------------------

    def _params(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None,
        temperature: float | None,
        json_mode: bool,
        stream: bool,
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"model": self.config.model, "messages": list(messages)}
        limit = max_tokens or self.config.max_tokens
        if self._use_max_completion_tokens:
            params["max_completion_tokens"] = limit
        else:
            params["max_tokens"] = limit
        if temperature is not None and "temperature" not in self._unsupported:
            params["temperature"] = temperature
        if json_mode and "response_format" not in self._unsupported:
            params["response_format"] = {"type": "json_object"}
        if stream:
            params["stream"] = True
            if "stream_options" not in self._unsupported:
                params["stream_options"] = {"include_usage": True}
        return params

    def _drop_rejected(self, params: dict[str, Any], exc: openai.APIStatusError) -> bool:
        """After a 400/422, drop the optional parameter the server objected to; True if any."""
        if exc.status_code not in (400, 422):
            return False
        text = f"{getattr(exc, 'message', '')} {getattr(exc, 'body', '')}".lower()
        if "max_tokens" in params and "max_completion_tokens" in text:
            self._use_max_completion_tokens = True
            params["max_completion_tokens"] = params.pop("max_tokens")
            log.info("LLM endpoint %s wants max_completion_tokens; using it", self._where)
            return True
        for name in ("response_format", "stream_options", "temperature"):
            if name in params and name in text:
                return self._drop(params, name)
        # No parameter named: the usual suspects, most likely first.
        for name in ("response_format", "stream_options"):
            if name in params:
                return self._drop(params, name)
        return False

    def _drop(self, params: dict[str, Any], name: str) -> bool:
        params.pop(name)
        self._unsupported.add(name)
        log.info("LLM endpoint %s rejects %s; sending requests without it", self._where, name)
        return True

    async def _create(self, params: dict[str, Any], deadline: float) -> Any:
        for _ in range(4):
            try:
                return await self._openai.chat.completions.create(
                    **params, timeout=_remaining(deadline)
                )
            except openai.APIStatusError as exc:
                if not self._drop_rejected(params, exc):
                    raise
        return await self._openai.chat.completions.create(**params, timeout=_remaining(deadline))

    async def _retrying(self, what: str, call: Callable[[], Awaitable[T]], deadline: float) -> T:
        """``call()`` with at most ``max_retries`` retries of transient errors, all before
        ``deadline`` (event-loop time). When the deadline passes the request in flight is
        cancelled, which closes its connection, so the server stops working on it."""
        attempt = 0
        try:
            async with asyncio.timeout_at(deadline):
                while True:
                    try:
                        return await call()
                    except Exception as exc:
                        error = self._error(exc)
                        if (
                            isinstance(exc, _NotRetried)
                            or error.kind not in _RETRIED
                            or attempt >= self.max_retries
                        ):
                            raise
                        wait = error.retry_after
                        if wait is None:
                            wait = RETRY_BACKOFF * 2**attempt
                        if asyncio.get_running_loop().time() + wait >= deadline:
                            raise
                        attempt += 1
                        log.info(
                            "LLM %s failed (%s); retry %d in %.1fs", what, error, attempt, wait
                        )
                        await asyncio.sleep(wait)
        except TimeoutError as exc:
            raise self._fail(what, exc) from None
        except Exception as exc:
            raise self._fail(what, exc) from None

    async def chat(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int | None = None,
        temperature: float | None = 0.2,
        json_mode: bool = False,
        stream: bool = False,
        on_delta: DeltaCallback | None = None,
        deadline: float | None = None,
    ) -> ChatResult:
        """One chat completion. With ``stream`` (or ``on_delta``) the reply is streamed and
        ``on_delta`` gets each piece of text as it arrives. ``deadline`` (event-loop time,
        default now + ``llm.timeout``) bounds the call with its retries and the wait for a
        free slot. Raises :class:`LLMUnavailable`."""
        stream = stream or on_delta is not None
        deadline = self.deadline() if deadline is None else deadline
        await self._check_budget("chat")
        params = self._params(
            messages,
            max_tokens=max_tokens,
            temperature=temperature,
            json_mode=json_mode,
            stream=stream,
        )

        async def call() -> ChatResult:
            async with self._semaphore:
                if stream:
                    return await self._chat_stream(params, on_delta, deadline)
                return await self._chat_once(params, deadline)

        result = await self._retrying("chat", call, deadline)
        await self._count(result.tokens, estimated=result.estimated)
        return result

    async def _chat_once(self, params: dict[str, Any], deadline: float) -> ChatResult:
        response = await self._create(params, deadline)
        choices = getattr(response, "choices", None) or []
        if not choices:
            raise LLMUnavailable(
                f"LLM endpoint {self._where} sent a reply without choices", kind="bad_request"
            )
        text = choices[0].message.content or ""
        return self._result(params, text, response.usage, choices[0].finish_reason, response)

    async def _chat_stream(
        self, params: dict[str, Any], on_delta: DeltaCallback | None, deadline: float
    ) -> ChatResult:
        stream = await self._create(params, deadline)
        parts: list[str] = []
        usage = None
        delivered = False
        finish_reason = None
        model = None
        try:
            async for chunk in stream:
                delivered = True
                model = model or getattr(chunk, "model", None)
                if getattr(chunk, "usage", None):
                    usage = chunk.usage
                for choice in chunk.choices or ():
                    piece = choice.delta.content if choice.delta else None
                    if piece:
                        parts.append(piece)
                        if on_delta is not None:
                            await on_delta(piece)
                    if choice.finish_reason:
                        finish_reason = choice.finish_reason
        except Exception as exc:
            if delivered:  # text already shown: a retry would show it twice
                raise _NotRetried(self._error(exc)) from None
            raise
        finally:
            # Also on cancellation (the deadline): closing aborts the HTTP stream.
            await stream.close()
        return self._result(params, "".join(parts), usage, finish_reason, None, model)

    def _result(
        self,
        params: dict[str, Any],
        text: str,
        usage: Any,
        finish_reason: str | None,
        response: Any,
        model: str | None = None,
    ) -> ChatResult:
        model = model or getattr(response, "model", None) or self.config.model
        if usage is not None and (usage.prompt_tokens or usage.completion_tokens):
            return ChatResult(
                text,
                int(usage.prompt_tokens or 0),
                int(usage.completion_tokens or 0),
                model,
                finish_reason,
            )
        prompt = sum(_estimate_tokens(m.get("content", "")) for m in params["messages"])
        return ChatResult(text, prompt, _estimate_tokens(text), model, finish_reason, True)

    async def chat_json(
        self,
        messages: Sequence[Message],
        validate: Callable[[dict[str, Any]], T],
        *,
        max_tokens: int | None = None,
        temperature: float | None = 0.2,
        deadline: float | None = None,
    ) -> JSONResult[T]:
        """A reply parsed as a JSON object and checked by ``validate`` (raises ValueError).

        Asks for ``response_format={"type": "json_object"}`` (dropped if the server rejects
        it). At most two calls, never the same one twice: a reply cut by ``max_tokens``
        (``finish_reason: "length"``) is asked again with ``LENGTH_RETRY_FACTOR`` times the
        limit; any other invalid reply is sent back once with the problem. A second invalid
        reply raises :class:`LLMBadOutput`. ``deadline`` bounds each call (default: each gets
        ``llm.timeout``).
        """
        limit = max_tokens or self.config.max_tokens
        first = await self.chat(
            messages, max_tokens=limit, temperature=temperature, json_mode=True, deadline=deadline
        )
        try:
            return JSONResult(
                validate(parse_json_object(first.text)),
                first.tokens,
                False,
                first.text,
                estimated=first.estimated,
            )
        except ValueError as exc:
            problem = one_line(str(exc))[:300]
        if first.finish_reason == "length":
            larger = limit * LENGTH_RETRY_FACTOR
            log.info(
                "LLM JSON reply was cut at max_tokens=%d (%s); asking once with %d",
                limit,
                problem,
                larger,
            )
            second = await self._second_round(
                messages, first, max_tokens=larger, temperature=temperature, deadline=deadline
            )
        else:
            log.info("LLM reply was not the JSON asked for (%s); asking once to repair it", problem)
            repair = [
                *messages,
                {"role": "assistant", "content": first.text[:6000]},
                {
                    "role": "user",
                    "content": (
                        f"That reply is not usable: {problem}. Answer again with only the JSON "
                        "object in the requested shape: no prose, no code fences."
                    ),
                },
            ]
            second = await self._second_round(
                repair, first, max_tokens=limit, temperature=0.0, deadline=deadline
            )
        tokens = first.tokens + second.tokens
        estimated = first.estimated or second.estimated
        try:
            value = validate(parse_json_object(second.text))
        except ValueError as exc:
            cut = " (cut by max_tokens again)" if second.finish_reason == "length" else ""
            message = (
                f"the LLM did not return valid JSON after one "
                f"{'larger' if first.finish_reason == 'length' else 'repair'} round{cut} "
                f"({one_line(str(exc))[:200]})"
            )
            log.warning("LLM chat_json failed: %s", message)
            raise LLMBadOutput(message, kind="bad_output", tokens=tokens) from None
        return JSONResult(value, tokens, True, second.text, rounds=2, estimated=estimated)

    async def _second_round(
        self,
        messages: Sequence[Message],
        first: ChatResult,
        *,
        max_tokens: int,
        temperature: float | None,
        deadline: float | None,
    ) -> ChatResult:
        try:
            return await self.chat(
                messages,
                max_tokens=max_tokens,
                temperature=temperature,
                json_mode=True,
                deadline=deadline,
            )
        except LLMUnavailable as exc:
            exc.tokens += first.tokens
            raise

    # --- embeddings -----------------------------------------------------------------------

    async def embed(self, texts: Sequence[str], *, model: str | None = None) -> list[list[float]]:
        """Vectors for ``texts`` from ``/v1/embeddings`` (``llm.embedding_model`` by default)."""
        name = model or self.config.embedding_model
        if not name:
            raise LLMUnavailable(
                "no embedding model configured (llm.embedding_model)", kind="error"
            )
        if self._embeddings_missing is not None:
            raise self._embeddings_missing  # known: no request sent
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            batch = [text or " " for text in texts[start : start + EMBED_BATCH]]
            await self._check_budget("embeddings")
            deadline = self.deadline()

            async def call(batch: list[str] = batch, deadline: float = deadline) -> Any:
                async with self._semaphore:
                    response = await self._openai.embeddings.create(
                        input=batch,
                        model=name,
                        encoding_format="float",
                        timeout=_remaining(deadline),
                    )
                items = sorted(response.data, key=lambda item: item.index)
                if len(items) != len(batch):
                    raise ValueError("wrong number of vectors")
                return response, [list(map(float, item.embedding)) for item in items]

            try:
                response, got = await self._retrying("embeddings", call, deadline)
            except LLMUnavailable as exc:
                if exc.kind in ("not_found", "unsupported"):
                    self._embeddings_missing = LLMUnavailable(
                        f"LLM endpoint {self._where} serves no embeddings ({exc}); "
                        'set llm.embedding_model = "" to use the local model',
                        kind=exc.kind,
                    )
                    raise self._embeddings_missing from None
                raise
            usage_ = getattr(response, "usage", None)
            tokens = int(
                getattr(usage_, "total_tokens", 0) or getattr(usage_, "prompt_tokens", 0) or 0
            )
            estimated = sum(_estimate_tokens(t) for t in batch)
            await self._count(tokens or estimated, embedding=True, estimated=not tokens)
            vectors.extend(got)
        return vectors

    async def list_models(self) -> list[str]:
        """Model ids the endpoint serves (a cheap health check; no tokens)."""

        async def call() -> list[str]:
            page = await self._openai.models.list(timeout=_remaining(deadline))
            return [item.id async for item in page]

        deadline = self.deadline()
        return await self._retrying("models", call, deadline)


_RETRIED = frozenset({"rate_limit", "server", "connection"})


class _NotRetried(LLMUnavailable):
    """A failure after streamed text was delivered: retrying would show the text twice."""

    def __init__(self, error: LLMUnavailable) -> None:
        super().__init__(str(error), kind=error.kind)


def _remaining(deadline: float) -> float:
    """Seconds left before ``deadline`` (event-loop time), at least a few milliseconds."""
    return max(0.01, deadline - asyncio.get_running_loop().time())


def estimate_note(estimated: int) -> str:
    """``" (N of them estimated: ...)"`` when some counted tokens are estimates, else ``""``."""
    if estimated <= 0:
        return ""
    return f" ({estimated:,} of them estimated: the server sent no usage)"


def _server_message(exc: openai.APIStatusError) -> str:
    """The server's own error message (``error.message`` of the body), if any."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
    return re.sub(r"^Error code: \d+ - ", "", str(getattr(exc, "message", "") or ""))


def _detail(detail: str) -> str:
    return f": {detail}" if detail else ""


def _retry_after(response: Any) -> float | None:
    value = getattr(response, "headers", {}).get("retry-after") if response is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


__all__ = [
    "ChatResult",
    "JSONResult",
    "LLMBadOutput",
    "LLMBudgetExceeded",
    "LLMClient",
    "LLMUnavailable",
    "estimate_note",
    "parse_json_object",
]
