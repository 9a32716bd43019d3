"""A local OpenAI-compatible server for the LLM module's tests and benchmarks."""

from .responders import citing_responder, echoing_responder, enrichment_responder
from .server import (
    DEFAULT_CHAT_MODEL,
    DEFAULT_EMBED_MODEL,
    FakeLLMServer,
    RecordedRequest,
    Reply,
    count_tokens,
    cut_tokens,
    hashed_embedding,
)

__all__ = [
    "DEFAULT_CHAT_MODEL",
    "DEFAULT_EMBED_MODEL",
    "FakeLLMServer",
    "RecordedRequest",
    "Reply",
    "citing_responder",
    "count_tokens",
    "cut_tokens",
    "echoing_responder",
    "enrichment_responder",
    "hashed_embedding",
]
