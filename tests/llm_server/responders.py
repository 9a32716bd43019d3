"""Ready-made responders for :class:`~tests.llm_server.server.FakeLLMServer`."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from .server import Reply

_TITLE_RE = re.compile(r"^Title: (.+)$", re.M)


def _last_user(body: dict[str, Any]) -> str:
    users = [m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"]
    return str(users[-1]) if users else ""


def enrichment_responder(
    labels: Sequence[str] = ("Natural Language Processing", "Text Generation"),
    bullets: int = 5,
) -> Callable[[dict[str, Any]], Reply]:
    """Answer enrichment prompts with valid JSON bullets about the paper's title."""

    def respond(body: dict[str, Any]) -> Reply:
        match = _TITLE_RE.search(_last_user(body))
        title = match.group(1).strip() if match else "the paper"
        items = [
            f"This paper studies {title} and reports point {n} of its findings in one sentence."
            for n in range(1, bullets + 1)
        ]
        return Reply(content=json.dumps({"bullets": items, "labels": list(labels)}))

    return respond


def citing_responder(text: str = "The papers answer it [1].") -> Callable[[dict[str, Any]], Reply]:
    """Answer every question with ``text`` (use [n] citations in it)."""

    def respond(body: dict[str, Any]) -> Reply:
        return Reply(content=text)

    return respond


def echoing_responder(cite: str = "") -> Callable[[dict[str, Any]], Reply]:
    """A weak local model: repeats the prompt's markers, invents arXiv ids and authors.

    Like the replies measured with a small GGUF model on llama.cpp: copies of
    ``<paper id="6">`` and ``Question:``, two invented arXiv ids, and (unless ``cite`` is
    given, e.g. ``" [1]"``) no citation of a paper it was sent.
    """

    def respond(body: dict[str, Any]) -> Reply:
        question = re.search(r"^Question: (.+)$", _last_user(body), re.M)
        asked = question.group(1).strip() if question else "the question"
        return Reply(
            content=(
                f'<paper id="6">\nQuestion: {asked}\n'
                "According to Smith et al. (arXiv:2405.99999), the method doubles accuracy. "
                "A follow-up study, arXiv 2406.12345, by J. Doe confirms it on every benchmark."
                f"\nIn short, the approach works well{cite}.\n</paper>"
            )
        )

    return respond
