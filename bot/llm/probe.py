"""``paperbot llm check``: what the configured endpoint really does, probed once.

Local servers differ from OpenAI in ways that matter to the bot: llama.cpp answers with any
model name, sends no ``usage`` in streams (so token counts become estimates), may be slow in
JSON mode, and may serve no embeddings. :func:`probe` sends one small request per feature
and says what works; the bot logs the same summary once at start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.llm.client import ChatResult, LLMClient, LLMUnavailable, parse_json_object

log = logging.getLogger(__name__)

_PING = [{"role": "user", "content": "Reply with the single word OK."}]
_JSON_PING = [
    {
        "role": "user",
        "content": 'Reply with this JSON object and nothing else: {"ok": true}',
    }
]
PROBE_TOKENS = 16  # max_tokens of each chat probe
JSON_PROBE_TOKENS = 32


@dataclass(frozen=True, slots=True)
class Check:
    """One probed feature: ``ok`` None means "works, with a caveat" (a warning)."""

    name: str
    ok: bool | None
    detail: str

    @property
    def line(self) -> str:
        mark = {True: "ok", False: "FAILED", None: "warning"}[self.ok]
        return f"{self.name}: {mark}: {self.detail}"


@dataclass
class ProbeReport:
    endpoint: str
    model: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Chat works and nothing failed (warnings allowed)."""
        return all(check.ok is not False for check in self.checks)

    def lines(self) -> list[str]:
        return [f"LLM endpoint {self.endpoint}, model {self.model!r}"] + [
            check.line for check in self.checks
        ]


async def _timed(call: Callable[[], Awaitable[Any]]) -> tuple[Any, float]:
    started = time.monotonic()
    value = await call()
    return value, time.monotonic() - started


async def probe(client: LLMClient) -> ProbeReport:
    """Probe ``client``'s endpoint once per feature (a few dozen tokens in all)."""
    report = ProbeReport(client.where, client.model)
    add = report.checks.append

    try:
        models, seconds = await _timed(client.list_models)
    except LLMUnavailable as exc:
        add(Check("models", None, f"not listed ({exc})"))
    else:
        listed = ", ".join(models[:5]) + (f" and {len(models) - 5} more" if len(models) > 5 else "")
        if client.model in models:
            add(Check("models", True, f"{len(models)} listed; {client.model!r} is among them"))
        else:
            add(
                Check(
                    "models",
                    False,
                    f"{client.model!r} is not among the {len(models)} listed ({listed or 'none'}); "
                    "a server that answers any name (llama.cpp) hides this: set llm.model to a "
                    "listed id",
                )
            )
        if client.embedding_model and client.embedding_model not in models:
            add(
                Check(
                    "embedding model",
                    None,
                    f"{client.embedding_model!r} is not listed (llm.embedding_model)",
                )
            )

    try:
        chat, seconds = await _timed(
            lambda: client.chat(_PING, max_tokens=PROBE_TOKENS, temperature=0.0)
        )
    except LLMUnavailable as exc:
        add(Check("chat", False, str(exc)))
        return report  # nothing else can work
    add(Check("chat", True, f"answered in {seconds:.2f}s{_usage(chat)}{_echo(chat, client)}"))

    try:
        streamed, seconds = await _timed(
            lambda: client.chat(_PING, max_tokens=PROBE_TOKENS, temperature=0.0, stream=True)
        )
    except LLMUnavailable as exc:
        add(Check("streaming", False, f"{exc} (/ask streams its answers)"))
    else:
        add(Check("streaming", True, f"answered in {seconds:.2f}s"))
        if streamed.estimated:
            add(
                Check(
                    "usage in streams",
                    None,
                    "not sent: /ask token counts are estimates (labelled as such)",
                )
            )
        else:
            add(Check("usage in streams", True, "sent"))

    try:
        json_reply, seconds = await _timed(
            lambda: client.chat(
                _JSON_PING, max_tokens=JSON_PROBE_TOKENS, temperature=0.0, json_mode=True
            )
        )
    except LLMUnavailable as exc:
        add(Check("JSON mode", False, f"{exc} (enrichment needs it)"))
    else:
        try:
            parse_json_object(json_reply.text)
        except ValueError as exc:
            add(Check("JSON mode", None, f"answered in {seconds:.2f}s but not with JSON ({exc})"))
        else:
            add(Check("JSON mode", True, f"valid JSON in {seconds:.2f}s"))

    if not client.embedding_model:
        add(Check("embeddings", True, "not used (llm.embedding_model is empty)"))
    else:
        try:
            vectors, seconds = await _timed(lambda: client.embed(["probe"]))
        except LLMUnavailable as exc:
            add(Check("embeddings", False, str(exc)))
        else:
            add(Check("embeddings", True, f"{len(vectors[0])} dimensions in {seconds:.2f}s"))
    return report


def _usage(result: ChatResult) -> str:
    return "; usage not sent (tokens estimated)" if result.estimated else "; usage sent"


def _echo(result: ChatResult, client: LLMClient) -> str:
    if result.model and result.model != client.model:
        return f"; the server says it used {result.model!r}"
    return ""


async def log_probe(client: LLMClient) -> ProbeReport | None:
    """Probe and log the summary (the bot does this once at start); never raises."""
    try:
        async with client.without_retries() as once:  # "once": no retry hides a failure
            report = await probe(once)
    except Exception:
        log.exception("LLM endpoint check failed")
        return None
    for line in report.lines():
        level = logging.WARNING if ("FAILED" in line or "warning" in line) else logging.INFO
        log.log(level, "LLM check: %s", line)
    return report


__all__ = ["Check", "ProbeReport", "log_probe", "probe"]
